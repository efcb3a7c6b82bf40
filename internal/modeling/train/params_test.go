package train

import (
	"errors"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/spec"
	"github.com/atrium-ml/atrium/internal/spec/spectest"
)

// problems parses src and checks its parameters as Run does first, and
// returns the problems, one a line, or "ok".
func problems(t *testing.T, src string) string {
	t.Helper()
	tr, err := spec.ParseTraining("spec.yaml", []byte(src))
	if err != nil {
		var ps spec.Problems
		if !errors.As(err, &ps) {
			t.Fatalf("error is not Problems: %v", err)
		}
		return ps.Error()
	}
	if ps := spec.Problems(checkParams(tr)); len(ps) > 0 {
		return ps.Error()
	}
	return "ok"
}

// TestTrainingParams checks model.params and tune.space against the
// learner's own parameter parsing: every bad name or value at its line,
// before any training, and the parameters the orchestrator sets itself
// refused in both.
func TestTrainingParams(t *testing.T) {
	for _, c := range []struct {
		name  string
		model string
		space []string
		want  string
	}{
		{"fine", "{objective: binary, params: {num_iterations: 10, learning_rate: 1e-3, bagging_freq: 1}}",
			[]string{"num_leaves: {int: [2, 64], log: true}", "feature_fraction: {float: [0.5, 1.0]}", `boosting: {choice: [gbdt]}`}, "ok"},
		{"bad fixed name and value", "{objective: binary, params: {num_iterations: 10, num_leaves: abc, no_such_param: 3}}", nil,
			"spec.yaml:5: model.params.no_such_param: unknown (see docs/modeling-gbdt.md for the supported LightGBM parameters)\n" +
				`spec.yaml:5: model.params.num_leaves: want an integer, got "abc"`},
		{"fixed out of range", "{objective: binary, params: {bagging_fraction: 1.5}}", nil,
			"spec.yaml:5: model.params.bagging_fraction: 1.5, want in (0, 1]"},
		{"searched, negative exponent", "{objective: binary}", []string{"min_gain_to_split: {float: [-1e-3, 1]}"},
			"spec.yaml:8: tune.space.min_gain_to_split: -0.001, want >= 0"},
		{"fixed given twice", "{objective: binary, params: {num_leaves: 7, num_leaf: 8}}", nil,
			`spec.yaml:5: model.params: parameter "num_leaves": set twice, as "num_leaf" and "num_leaves"`},
		{"fixed objective and metric", "{objective: binary, params: {application: regression, metric: auc, nthread: 4}}", nil,
			"spec.yaml:5: model.params.application: set by model.objective, expected it there and not in model.params\n" +
				"spec.yaml:5: model.params.metric: set by tune.metric (the study's metric), expected it there and not in model.params\n" +
				"spec.yaml:5: model.params.nthread: set by atrium train --threads, expected it there and not in model.params"},
		{"searched name", "{objective: binary}", []string{"num_leavs: {int: [2, 8]}"},
			"spec.yaml:8: tune.space.num_leavs: unknown (see docs/modeling-gbdt.md for the supported LightGBM parameters)"},
		{"searched choice", "{objective: binary}", []string{"max_bin: {choice: [1, 63, abc]}", "boosting: {choice: [gbdt, goss]}"},
			"spec.yaml:8: tune.space.max_bin: 1, want 2..65535\n" +
				`spec.yaml:8: tune.space.max_bin: want an integer, got "abc"` + "\n" +
				`spec.yaml:9: tune.space.boosting: unsupported boosting "goss" (only gbdt)`},
		{"searched bounds", "{objective: binary}", []string{"num_leaves: {int: [1, 8]}", "feature_fraction: {float: [0.5, 1.5]}"},
			"spec.yaml:8: tune.space.num_leaves: 1, want 2..131072\nspec.yaml:9: tune.space.feature_fraction: 1.5, want in (0, 1]"},
		{"float range of an int", "{objective: binary}", []string{"num_leaves: {float: [2, 8]}"},
			`spec.yaml:8: tune.space.num_leaves: a float range samples fractional values such as 3.5: want an integer, got "3.5"`},
		{"searched with the fixed", "{objective: binary, params: {scale_pos_weight: 2}}", []string{"is_unbalance: {choice: [true, false]}"},
			"spec.yaml:8: tune.space.is_unbalance: cannot be used together with scale_pos_weight"},
		{"spec-owned searched", "{objective: binary}",
			[]string{"objective: {choice: [regression, binary]}", "metric: {choice: [l2, binary_error]}", "ndcg_eval_at: {int: [1, 5]}", "num_threads: {int: [1, 2]}"},
			"spec.yaml:8: objective is set by model.objective, not searched\n" +
				"spec.yaml:9: metric is set by tune.metric (the study's metric), not searched\n" +
				"spec.yaml:10: ndcg_eval_at is set by tune.metric's @k (ndcg@10), not searched\n" +
				"spec.yaml:11: num_threads is set by atrium train --threads, not searched"},
		{"searched alias of fixed", "{objective: binary, params: {num_leaves: 7}}", []string{"num_leaf: {int: [2, 8]}"},
			"spec.yaml:8: num_leaf is both searched and fixed in model.params (as num_leaves, the same parameter num_leaves): remove one"},
		{"searched twice", "{objective: binary}", []string{"lambda_l1: {float: [0, 1]}", "reg_alpha: {float: [0, 1]}"},
			"spec.yaml:9: reg_alpha is searched twice, as lambda_l1 too (the same parameter lambda_l1): search it once"},
		{"multiclass without num_class", "{objective: multiclass, params: {num_iterations: 5}}", nil, "ok"},
		{"multiclass num_class", "{objective: multiclass, params: {num_class: 1}}", nil,
			"spec.yaml:5: model.params.num_class: 1, want 2..65536 for multiclass"},
		{"multiclass num_class and others", "{objective: multiclass, params: {num_iterations: 5, num_class: 3}}", []string{"num_leaves: {int: [2, 8]}"}, "ok"},
		{"multiclass num_classes alias", "{objective: multiclass, params: {num_classes: 3, num_leaves: 7}}", nil, "ok"},
		{"multiclass num_class searched", "{objective: multiclass, params: {num_iterations: 5}}", []string{"num_class: {int: [3, 4]}", "num_leaves: {int: [2, 8]}"}, "ok"},
		{"multiclass num_class twice", "{objective: multiclass, params: {num_class: 3, num_classes: 4}}", nil,
			`spec.yaml:5: model.params: parameter "num_class": set twice, as "num_class" and "num_classes"`},
		{"linear fine", "{kind: linear, objective: binary, params: {lambda_l2: 1e-2, max_iter: 50}}", []string{"lambda_l1: {float: [0, 1]}"}, "ok"},
		{"linear bad", "{kind: linear, objective: binary, params: {num_leaves: 31, max_iter: x}}", []string{"tol: {choice: [1e-7, -1]}"},
			`spec.yaml:5: model.params.max_iter: max_iter="x": want an integer >= 1` + "\n" +
				`spec.yaml:5: model.params.num_leaves: unknown parameter "num_leaves"` + "\n" +
				`spec.yaml:8: tune.space.tol: tol="-1": want a number >= 0`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := problems(t, spectest.TrainingSrc(c.model, c.space, "")); got != c.want {
				t.Errorf("problems:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

// TestTrainingRegisterName checks register.model with the registry's own
// name rule, at its line.
func TestTrainingRegisterName(t *testing.T) {
	for _, c := range []struct{ name, model, want string }{
		{"fine", "ranker", "ok"},
		{"space allowed", `"my ranker"`, "ok"},
		{"slash", `"bad name/x"`, `spec.yaml:8: register.model "bad name/x": Invalid model name 'bad name/x'. Names cannot contain '/' or ':'.`},
		{"colon", `"a:b"`, `spec.yaml:8: register.model "a:b": Invalid model name 'a:b'. Names cannot contain '/' or ':'.`},
		{"dot", `".."`, `spec.yaml:8: register.model "..": `},
		{"too long", strings.Repeat("m", 300), `spec.yaml:8: register.model "` + strings.Repeat("m", 300) + `": 'register.model' exceeds the maximum length of 256 characters`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := problems(t, spectest.TrainingSrc("{objective: binary}", nil, "{model: "+c.model+", promote: {alias: champion}}"))
			if got != c.want && (c.want == "ok" || !strings.HasPrefix(got, c.want)) {
				t.Errorf("problems:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}
