package spec

import (
	"errors"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/spec/spectest"
)

// problems parses src and returns its problems, one a line, or "ok".
func problems(t *testing.T, src string) string {
	t.Helper()
	_, err := ParseTraining("spec.yaml", []byte(src))
	if err == nil {
		return "ok"
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error is not Problems: %v", err)
	}
	return ps.Error()
}

// TestTrainingNumbers checks that a plain number in scientific notation is
// a number wherever one is expected (goccy/go-yaml reads 1e-3 as a
// string), that a quoted one stays a string, and that bounds that could not
// be read bring no false follow-on problems.
func TestTrainingNumbers(t *testing.T) {
	for _, c := range []struct {
		name, param, want string
	}{
		{"exponent", "learning_rate: {float: [1e-3, 0.3], log: true}", "ok"},
		{"capital exponent and sign", "lambda_l2: {float: [1E-3, 1e+2], log: true}", "ok"},
		{"large", "lambda_l1: {float: [0, 1e308]}", "ok"},
		{"negative exponent low", "min_gain_to_split: {float: [-1e-3, 1]}", "ok"},
		{"int bounds", "num_leaves: {int: [4e0, 3e1]}", "ok"},
		{"quoted stays a string", `learning_rate: {float: ["1e-3", 0.3], log: true}`,
			`spec.yaml:8: tune.space.learning_rate.float: got the string "1e-3", expected a number`},
		{"single-quoted", `learning_rate: {float: [0.01, '3e-1'], log: true}`,
			`spec.yaml:8: tune.space.learning_rate.float: got the string "3e-1", expected a number`},
		{"overflow", "learning_rate: {float: [0.01, 1e999]}",
			`spec.yaml:8: tune.space.learning_rate.float: got the string "1e999", expected a number`},
		{"not a number", "learning_rate: {float: [1e, 0.3], log: true}",
			`spec.yaml:8: tune.space.learning_rate.float: got the string "1e", expected a number`},
		{"bounds not a list", "learning_rate: {float: abc, log: true}",
			`spec.yaml:8: tune.space.learning_rate.float: got the string "abc", expected a list`},
		{"one bound", "learning_rate: {float: [1e-3], log: true}",
			"spec.yaml:8: tune.space.learning_rate.float: expected [low, high]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := problems(t, spectest.TrainingSrc("{objective: binary}", []string{c.param}, "")); got != c.want {
				t.Errorf("problems:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
	src := strings.Replace(spectest.TrainingSrc("{objective: binary}", nil, "{model: m, promote: {alias: champion, if_better_by: 1e-3}}"),
		"valid: 0.2, test: 0.2", "valid: 2e-1, test: 1E-1", 1)
	tr, err := ParseTraining("spec.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Split.Valid != 0.2 || tr.Split.Test != 0.1 || tr.Register.Promote.IfBetterBy != 0.001 {
		t.Errorf("split %+v, if_better_by %v: want 0.2, 0.1 and 0.001", tr.Split, tr.Register.Promote.IfBetterBy)
	}
}
