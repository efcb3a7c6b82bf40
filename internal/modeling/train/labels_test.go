package train

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// labelSpec trains on a spine derived from the project's sessions (SPINE),
// with the objective OBJ; GROUP and METRIC complete the spine and the tune
// block.
const labelSpec = `name: labels
features: {service: ranker}
spine: {path: SPINE, timestamp: ts, label: relevanceGROUP}
split: {by: random, valid: 0.2, test: 0.2, seed: 1}
model: {kind: gbdt, objective: OBJ, params: {num_iterations: 5PARAMS}}
tune: {trials: 1METRIC}
`

// writeSpine writes data/name, the project's sessions with edit applied to
// the relevance of each data row (i is its 0-based index); a nil edit
// leaves the header only. It returns the spine's path in the project.
func (p *project) writeSpine(t *testing.T, name string, edit func(i int, rel string) string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(p.dir, "data", "sessions.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(src), "\n"), "\n")
	out := []string{lines[0]}
	for i, l := range lines[1:] {
		if edit == nil {
			break
		}
		cut := strings.LastIndexByte(l, ',')
		out = append(out, l[:cut+1]+edit(i, l[cut+1:]))
	}
	if err := os.WriteFile(filepath.Join(p.dir, "data", name), []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return "data/" + name
}

// TestRunBadLabels checks that a label the objective refuses, an empty
// spine and labels that cannot give the study's metric are spec problems
// reported before any trial, at the spine's line, naming the spine file (not
// the temporary training set), the label column, the row or the value, and
// what the objective wants; labels that fit pass.
func TestRunBadLabels(t *testing.T) {
	p := newProject(t)
	// at sets the relevance of row i to v (i < 0: none), clicked makes the
	// others 0 or 1, zero makes them 0.
	at := func(i int, v string, rest func(string) string) func(int, string) string {
		return func(j int, rel string) string {
			if j == i {
				return v
			}
			return rest(rel)
		}
	}
	keep := func(rel string) string { return rel }
	clicked := func(rel string) string { return map[bool]string{true: "1", false: "0"}[rel != "0"] }
	zero := func(string) string { return "0" }
	for _, c := range []struct {
		name, objective, params, metric string
		edit                            func(int, string) string
		want                            string // "": no problem
	}{
		{"word", "lambdarank", "", "", at(1, "skipped", keep),
			`labels.yaml:3: spine data/word.csv: label "relevance": row 2: value "skipped" is not a number; lambdarank wants a whole-number relevance 0..30`},
		{"empty cell", "binary", "", "", at(8, "", clicked),
			`labels.yaml:3: spine data/empty-cell.csv: label "relevance": row 9: missing label; binary wants 0 or 1`},
		{"header only", "binary", "", "", nil, `labels.yaml:3: spine data/header-only.csv has no data rows`},
		{"binary 2", "binary", "", "", at(2, "2", clicked),
			`labels.yaml:3: spine data/binary-2.csv: label "relevance": row 3: unexpected value 2; binary wants 0 or 1`},
		{"binary relevance", "binary", "", "", at(-1, "", keep), `label "relevance": row `},
		{"one class auc", "binary", "", ", metric: auc", at(-1, "", zero),
			`labels.yaml:3: spine data/one-class-auc.csv: label "relevance": every row is 0, one class only: metric auc is undefined; binary wants 0 or 1, both present`},
		{"one class logloss", "binary", "", "", at(-1, "", zero), ""},
		{"binary fine", "binary", "", ", metric: auc", at(-1, "", clicked), ""},
		{"multiclass fraction", "multiclass", "", "", at(4, "1.5", keep),
			`labels.yaml:3: spine data/multiclass-fraction.csv: label "relevance": row 5: unexpected value 1.5; multiclass wants class indexes 0, 1, ..., k-1`},
		{"multiclass negative", "multiclass", "", "", at(0, "-1", keep), `label "relevance": row 1: unexpected value -1; multiclass wants`},
		{"multiclass one class", "multiclass", "", "", at(-1, "", zero),
			`labels.yaml:3: spine data/multiclass-one-class.csv: label "relevance": every row is 0, one class only; multiclass wants class indexes 0, 1, ..., k-1 with k >= 2 (or set num_class)`},
		{"multiclass over num_class", "multiclass", ", num_class: 3", "", at(1, "3", keep),
			`label "relevance": row 2: unexpected value 3; multiclass wants a class index 0..2 (num_class 3)`},
		{"multiclass fine", "multiclass", "", "", at(-1, "", keep), ""},
		{"lambdarank negative", "lambdarank", "", "", at(6, "-1", keep), `label "relevance": row 7: unexpected value -1; lambdarank wants a whole-number relevance 0..30`},
		{"lambdarank fraction", "lambdarank", "", "", at(6, "0.5", keep), `label "relevance": row 7: unexpected value 0.5; lambdarank wants`},
		{"lambdarank label_gain", "lambdarank", `, label_gain: "0,1,3"`, "", at(-1, "", keep), `unexpected value 3; lambdarank wants a whole-number relevance 0..2`},
		{"lambdarank fine", "lambdarank", "", "", at(-1, "", keep), ""},
		{"regression word", "regression", "", "", at(3, "n/a", keep), `label "relevance": row 4: value "n/a" is not a number; regression wants a number`},
		{"huber fine", "huber", "", "", at(-1, "", keep), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			group := ""
			if c.objective == "lambdarank" {
				group = ", group: session_id"
			}
			spine := p.writeSpine(t, strings.ReplaceAll(c.name, " ", "-")+".csv", c.edit)
			src := strings.NewReplacer("SPINE", spine, "OBJ", c.objective, "GROUP", group, "METRIC", c.metric, "PARAMS", c.params).Replace(labelSpec)
			_, err := p.run(t, p.spec(t, "labels.yaml", src), true)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case c.want != "" && (!errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), c.want)):
				t.Errorf("error %v, want ErrSpec containing %q", err, c.want)
			case err != nil && strings.Contains(err.Error(), "training-set"):
				t.Errorf("error %v names the temporary training set", err)
			}
		})
	}
}
