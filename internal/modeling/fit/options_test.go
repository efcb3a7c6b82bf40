package fit

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/linear"
)

// TestValidateListsEveryProblem: Validate reports all problems at once, each
// with the key of the field at fault, before any data is read.
func TestValidateListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		o      Options
		fields []string // the problems' fields, in order
		want   []string // in the message
	}{
		{"nothing set", Options{}, []string{"data", "label", "task"},
			[]string{"data is required", "label is required", "task is required"}},
		{"bad task and algorithm", Options{Data: "d.csv", Label: "y", Task: "survival", Algorithm: "forest"}, []string{"task", "algorithm"},
			[]string{`task "survival": want binary, regression, multiclass or lambdarank`, `algorithm "forest": want gbdt or linear`}},
		{"linear ranking without group", Options{Data: "d.csv", Label: "y", Task: "lambdarank", Algorithm: "linear"}, []string{"group", "algorithm"},
			[]string{"task lambdarank needs group (the query column)", "linear models do not rank: use algorithm gbdt for lambdarank"}},
		{"linear model as LightGBM text", Options{Data: "d.csv", Label: "y", Task: "binary", Algorithm: "linear", Out: filepath.Join(dir, "m.TXT")}, []string{"out"},
			[]string{"LightGBM text holds tree models only"}},
		{"fraction and file", Options{Data: "d.csv", Label: "y", Task: "binary", Valid: "v.csv", ValidFraction: 0.2}, []string{"valid_fraction"},
			[]string{"valid_fraction 0.2: want a share in [0, 1), and not together with valid"}},
		{"fraction of 1, bad split, negative log_every", Options{Data: "d.csv", Label: "y", Task: "binary", ValidFraction: 1, Split: "by-day", LogEvery: -1},
			[]string{"valid_fraction", "split", "log_every"}, []string{"valid_fraction 1:", `split "by-day": want random, stratified, group or time`, "log_every -1: want >= 0"}},
		{"out in a missing directory", Options{Data: "d.csv", Label: "y", Task: "binary", Out: filepath.Join(dir, "no", "m.json")}, []string{"out"},
			[]string{"out " + filepath.Join(dir, "no", "m.json") + ": directory " + filepath.Join(dir, "no") + " does not exist"}},
		{"column parameters", Options{Data: "d.csv", Label: "y", Task: "binary", Params: map[string]string{"query": "0", "cat_feature": "0", "num_leaves": "1"}},
			[]string{"params", "params"}, []string{"params cat_feature: columns are given by name with categorical", "params query: columns are given by name with group"}},
		{"tree parameters", Options{Data: "d.csv", Label: "y", Task: "multiclass", Params: map[string]string{"num_leaves": "1", "eta": "-1"}},
			[]string{"params"}, []string{`parameter "num_leaves": 1, want 2..131072`, `parameter "learning_rate": -1, want > 0`}},
		{"objective against task", Options{Data: "d.csv", Label: "y", Task: "binary", Params: map[string]string{"application": "huber"}},
			[]string{"params"}, []string{"objective huber does not fit task binary (want binary)"}},
		{"linear parameters", Options{Data: "d.csv", Label: "y", Task: "binary", Algorithm: "linear", Params: map[string]string{"num_leaves": "3"}},
			[]string{"params"}, []string{`unknown parameter "num_leaves"`}},
		{"linear objective against task", Options{Data: "d.csv", Label: "y", Task: "binary", Algorithm: "linear", Params: map[string]string{"objective": "regression"}},
			[]string{"params"}, []string{"params objective=regression contradicts task binary"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			var oe *OptionsError
			if !errors.As(err, &oe) || !errors.Is(err, ErrOptions) {
				t.Fatalf("error %v, want an *OptionsError", err)
			}
			var fields []string
			for _, p := range oe.Problems {
				fields = append(fields, p.Field)
			}
			if !slices.Equal(fields, tt.fields) {
				t.Errorf("fields %q, want %q\n%v", fields, tt.fields, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestValidateNames: messages name options as the caller does (the CLI's
// flags), and parameter problems stay classifiable by their package's
// sentinel.
func TestValidateNames(t *testing.T) {
	o := Options{Data: "d.csv", Label: "y", Task: "lambdarank", ValidFraction: -1, Params: map[string]string{"num_leaves": "1"},
		Name: func(key string) string { return "--" + strings.ReplaceAll(key, "_", "-") }}
	err := o.Validate()
	for _, w := range []string{"--task lambdarank needs --group", "--valid-fraction -1: want a share in [0, 1), and not together with --valid"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	if !errors.Is(err, gbdt.ErrParams) {
		t.Errorf("error %v: want gbdt.ErrParams among its problems", err)
	}
	o = Options{Data: "d.csv", Label: "y", Task: "binary", Algorithm: "linear", Params: map[string]string{"tol": "-1"}}
	if err := o.Validate(); !errors.Is(err, linear.ErrParams) || !errors.Is(err, ErrOptions) {
		t.Errorf("error %v: want linear.ErrParams and ErrOptions", err)
	}
}

func TestValidateAccepts(t *testing.T) {
	for _, o := range []Options{
		{Data: "d.csv", Label: "y", Task: "binary"},
		{Data: "d.csv", Label: "y", Task: "regression", Algorithm: "linear", Params: map[string]string{"lambda_l2": "0.1"}, Out: filepath.Join(t.TempDir(), "m.json")},
		{Data: "d.csv", Label: "y", Task: "multiclass", Params: map[string]string{"num_classes": "3"}, ValidFraction: 0.2, Split: "random"},
		{Data: "d.csv", Label: "y", Task: "lambdarank", Group: "q", Params: map[string]string{"label_gain": "0,1,3"}, Out: "m.txt"},
		// A seed by alias and Seed together: the seed parameter wins, no "set twice".
		{Data: "d.csv", Label: "y", Task: "binary", Seed: 7, Params: map[string]string{"random_state": "3"}},
	} {
		if err := o.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

// TestLabelCheck: the labels each task accepts, with num_class and
// label_gain taken from the parameters under any alias.
func TestLabelCheck(t *testing.T) {
	tests := []struct {
		task   string
		params map[string]string
		y      float64
		want   string // "" when the label is accepted
	}{
		{"binary", nil, 1, ""},
		{"binary", nil, 2, "label is 2, want 0 or 1 for task binary"},
		{"multiclass", nil, 7, ""},
		{"multiclass", nil, 1.5, "label is 1.5, want a class index 0, 1, 2, ..."},
		{"multiclass", nil, -1, "label is -1, want a class index 0, 1, 2, ..."},
		{"multiclass", map[string]string{"num_classes": "3"}, 3, "label is 3, want a class index 0..2 (num_class=3)"},
		{"multiclass", map[string]string{"num_class": "3"}, 2, ""},
		{"lambdarank", nil, 30, ""},
		{"lambdarank", nil, 31, "label is 31, want a whole-number relevance 0..30 (one per label_gain entry)"},
		{"lambdarank", map[string]string{"label_gain": "0,1,3"}, 3, "want a whole-number relevance 0..2"},
		{"lambdarank", nil, 0.5, "label is 0.5, want a whole-number relevance"},
		{"regression", nil, -3.5, ""},
	}
	for _, tt := range tests {
		o := Options{Task: tt.task, Params: tt.params}
		o.EnsureDefaults()
		check := o.labelCheck()
		got := ""
		if check != nil {
			got = check(tt.y)
		}
		if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
			t.Errorf("%s %v, label %v: %q, want %q", tt.task, tt.params, tt.y, got, tt.want)
		}
	}
}

func TestColumnParamField(t *testing.T) {
	for param, want := range map[string]string{
		gbdt.ParamCategoricalFeature: "categorical", gbdt.ParamLabelColumn: "label", gbdt.ParamWeightColumn: "weight",
		gbdt.ParamGroupColumn: "group", gbdt.ParamIgnoreColumn: "ignore", "num_leaves": "",
	} {
		if got := ColumnParamField(param); got != want {
			t.Errorf("ColumnParamField(%q) = %q, want %q", param, got, want)
		}
	}
}
