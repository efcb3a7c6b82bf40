package skew

import (
	"errors"
	"fmt"
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

// An error naming the check's temporary spine names the logged rows
// instead, and still unwraps to its cause.
func TestSpineNamed(t *testing.T) {
	cause := errors.New("point-in-time join: spine /tmp/atrium-skew-1/spine.csv has no column \"user_id\"")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{cause, `point-in-time join: spine of the logged rows has no column "user_id"`},
		{fmt.Errorf("takes x, which neither service s nor the spine /tmp/atrium-skew-1/spine.csv has: %w", cause),
			`takes x, which neither service s nor the spine of the logged rows has: point-in-time join: spine of the logged rows has no column "user_id"`},
		{errors.New("read /tmp/atrium-skew-1/spine.csv: denied"), "read the spine of the logged rows: denied"},
		{errors.New("offline store down"), "offline store down"},
	} {
		got := spineNamed(tc.err, "/tmp/atrium-skew-1/spine.csv")
		if got.Error() != tc.want || !errors.Is(got, tc.err) {
			t.Errorf("spineNamed(%q) = %q (unwraps: %v), want %q", tc.err, got, errors.Is(got, tc.err), tc.want)
		}
	}
}
