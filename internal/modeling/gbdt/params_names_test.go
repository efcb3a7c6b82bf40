package gbdt

import (
	"errors"
	"strings"
	"testing"
)

// TestParamName: every alias resolves to its canonical name, the one table
// other packages use instead of a copy of LightGBM's aliases.
func TestParamName(t *testing.T) {
	tests := []struct {
		key, want string
		column    bool
	}{
		{"objective", ParamObjective, false},
		{"application", ParamObjective, false},
		{" Loss ", ParamObjective, false},
		{"num_classes", ParamNumClass, false},
		{"random_state", ParamSeed, false},
		{"label_gain", ParamLabelGain, false},
		{"n_estimators", "num_iterations", false},
		{"categorical_feature", ParamCategoricalFeature, true},
		{"cat_column", ParamCategoricalFeature, true},
		{"label", ParamLabelColumn, true},
		{"weight", ParamWeightColumn, true},
		{"query_id", ParamGroupColumn, true},
		{"query", ParamGroupColumn, true},
		{"blacklist", ParamIgnoreColumn, true},
	}
	for _, tt := range tests {
		got, ok := ParamName(tt.key)
		if !ok || got != tt.want {
			t.Errorf("ParamName(%q) = %q, %v; want %q", tt.key, got, ok, tt.want)
		}
		if IsColumnParam(got) != tt.column {
			t.Errorf("IsColumnParam(%q) = %v, want %v", got, !tt.column, tt.column)
		}
	}
	if name, ok := ParamName("colour"); ok {
		t.Errorf("ParamName(colour) = %q, want no parameter", name)
	}
	// Only canonical names answer IsColumnParam.
	if IsColumnParam("query") || IsColumnParam("colour") {
		t.Error("IsColumnParam takes canonical names only")
	}
}

// TestParseParamsRefusesColumns: a parameter that names data columns is
// refused, whatever alias it comes by, with every other problem.
func TestParseParamsRefusesColumns(t *testing.T) {
	_, err := ParseParams(map[string]string{"query": "0", "cat_feature": "name:c", "num_leaves": "1"})
	if !errors.Is(err, ErrParams) {
		t.Fatalf("error %v, want ErrParams", err)
	}
	for _, want := range []string{`parameter "query": names data columns`, `parameter "cat_feature": names data columns`, `parameter "num_leaves": 1`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
