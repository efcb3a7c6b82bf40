package skew

import (
	"testing"

	"github.com/atrium-ml/atrium/internal/serving/predlog"
)

// A request value serving logged next to the model's inputs (a number or a
// text) counts as logged, though it is not a model input; one no row
// carries does not.
func TestAnyLogged(t *testing.T) {
	rows := []predlog.Row{
		{Features: map[string]float64{"rent": 1}},
		{Features: map[string]float64{"budget_override": 900}, Categorical: map[string]string{"device": "ios"}},
	}
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"budget_override", true},
		{"device", true},
		{"rent", true},
		{"promo_code", false},
	} {
		if got := anyLogged(rows, tc.name); got != tc.want {
			t.Errorf("anyLogged(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
	if anyLogged(nil, "rent") {
		t.Error("no rows carry a value")
	}
}
