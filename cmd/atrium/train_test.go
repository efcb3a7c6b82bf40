package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/data/profile"
	"github.com/atrium-ml/atrium/internal/modeling/train"
	"github.com/atrium-ml/atrium/internal/serving/register"
)

// TestTrainBadSpec checks that atrium train reports every problem of a
// spec at its line, as a usage error, before opening any store.
func TestTrainBadSpec(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "ranker.yaml")
	src := `name: ranker
features: {service: ranker}
spine: {path: s.csv, timestamp: ts, label: y}
split: {by: random, valid: 0.5, test: 0.6}
model: {objective: binary}
tune: {metric: ndcg@10, space: {num_leaves: {int: [63, 7]}}}
`
	if err := os.WriteFile(spec, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := atrium(t, "--repo", dir, "train", spec)
	if code != exitUsage {
		t.Fatalf("exit %d, want %d; stderr %s", code, exitUsage, errOut)
	}
	for _, want := range []string{spec + ":4: split.valid + split.test = 1.1 leaves no training rows",
		spec + ":6: tune.metric ndcg@10 does not fit objective binary", spec + ":6: tune.space.num_leaves: low 63 > high 7"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

// TestTrainSummary checks the summary's lines for what a run was: a
// holdout split, k folds (their count and the refit's rows, not one fold's
// sizes), and a process that ran trials of a study another process
// finishes (which it names, with no test metric or version).
func TestTrainSummary(t *testing.T) {
	base := train.Result{Study: "ranker", Metric: "auc", Maximize: true, Trials: 4, Complete: 4, BestTrial: 2,
		BestParams: map[string]string{"num_leaves": "8"}, ValidMetric: 0.8, TestMetric: 0.79, Iterations: 30,
		TrainRows: 600, ValidRows: 200, TestRows: 200, RunID: "r1", Decision: train.Decision{Reason: "no promote block"},
		Registered: &register.Result{Name: "ranker", Version: "1"}}
	kfold := base
	kfold.Folds, kfold.TrainRows, kfold.ValidRows = 4, 800, 800
	other := base
	other.FinishedBy, other.TestMetric, other.Registered, other.Iterations = "process 99 on h", 0, nil, 0
	other.Decision = train.Decision{Reason: "left to process 99 on h, which finishes the study"}
	for _, c := range []struct {
		name      string
		r         train.Result
		want, not []string
	}{
		{"holdout", base, []string{"(train 600, valid 200, test 200)", "(refit on train+valid: 30 iterations)", "valid       auc 0.8\n",
			"test        auc 0.79", "registered  ranker version 1"}, []string{"folds", "finishing"}},
		{"kfold", kfold, []string{"(4 folds of 800 rows, each validated once, test 200)", "(refit on the 800 rows of all folds: 30 iterations)",
			"valid       auc 0.8 (the 4 folds' mean curve at its best iteration)", "test        auc 0.79"}, []string{"train 800", "train+valid"}},
		{"finished by another process", other, []string{"study       ranker: 4 trials", "best trial  #2 num_leaves=8\n",
			"finishing   left to process 99 on h: the study's trials are done, and it refits, tests, registers and promotes (run r1)"},
			[]string{"test  ", "decision", "registered", "(refit"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b strings.Builder
			if err := writeTrainSummary(&b, "text", &c.r, ""); err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("summary lacks %q:\n%s", w, b.String())
				}
			}
			for _, w := range c.not {
				if strings.Contains(b.String(), w) {
					t.Errorf("summary has %q:\n%s", w, b.String())
				}
			}
		})
	}
}

// checkReferenceProfiles checks that every version the demo trained (the
// untuned baseline and the tuned ranker) keeps a reference profile with the
// prediction distribution monitoring's prediction drift compares with,
// after the demo's monitor step has read it.
func checkReferenceProfiles(t *testing.T, dir string) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, ".atrium", "artifacts", "*", "*", "artifacts", "reference", "profile.json"))
	if err != nil || len(paths) != 2 {
		t.Fatalf("reference profiles %v (%v), want the baseline's and the ranker's", paths, err)
	}
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		p, err := profile.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if p.Prediction == nil || p.Prediction.Count == 0 || len(p.Columns) != 10 {
			t.Errorf("%s: %d columns, prediction %+v; want 10 columns and the validation predictions", path, len(p.Columns), p.Prediction)
		}
	}
}

// checkTrainDryRun runs `atrium train --dry-run` on the demo's tuned ranker
// after the demo registered it: the plan names the data's rows per split,
// the search, the metric and the current champion, and nothing is written
// to the artifact store (no run, no model, no profile).
//
// The row counts depend on the day the demo runs (its data ends yesterday),
// so they are the ones the demo's own `atrium train training/ranker.yaml`
// printed in fitOut: the dry run must plan the split the real run made.
func checkTrainDryRun(t *testing.T, dir, fitOut string) {
	t.Helper()
	_, real, _ := strings.Cut(fitOut, "$ atrium train training/ranker.yaml")
	m := regexp.MustCompile(`data +(\d+) rows .*\(train (\d+), valid (\d+), test (\d+)\)`).FindStringSubmatch(real)
	if m == nil {
		t.Fatalf("the demo's fit step shows no data line of atrium train training/ranker.yaml:\n%s", fitOut)
	}
	before := treeOf(t, filepath.Join(dir, ".atrium", "artifacts"))
	out := mustAtrium(t, dir, "train", filepath.Join(dir, "training", "ranker.yaml"), "--dry-run")
	for _, want := range []string{"study       ranker (dry run: nothing trained, tracked or registered)", "data        " + m[1] + " rows ",
		fmt.Sprintf("            train %s, valid %s, test %s rows", m[2], m[3], m[4]), "trials      16, 2 at a time, sampler tpe, pruner median",
		"space       num_leaves int [4, 63] log", "            feature_fraction float [0.5, 1]",
		"metric      maximize ndcg@10 on valid, then on test", "tracking    experiment ranker",
		"register    a new version of ranker at alias challenger", "promote     champion: now version 1, replaced only if beaten"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "best trial") || strings.Contains(out, "registered  ") {
		t.Errorf("the dry run trained or registered:\n%s", out)
	}
	// Its JSON holds the plan and the split, none of a run's results.
	js := mustAtrium(t, dir, "-o", "json", "train", filepath.Join(dir, "training", "ranker.yaml"), "--dry-run")
	var plan map[string]any
	if err := json.Unmarshal([]byte(js), &plan); err != nil {
		t.Fatalf("dry run JSON: %v\n%s", err, js)
	}
	if plan["dry_run"] != true || plan["plan"] == nil || fmt.Sprint(plan["train_rows"]) != m[2] {
		t.Errorf("dry run JSON lacks dry_run, plan or train_rows %s:\n%s", m[2], js)
	}
	for _, k := range []string{"best_trial", "best_params", "valid_metric", "test_metric", "decision", "seconds"} {
		if _, ok := plan[k]; ok {
			t.Errorf("dry run JSON has %q, a result of a run that did not happen:\n%s", k, js)
		}
	}
	if after := treeOf(t, filepath.Join(dir, ".atrium", "artifacts")); after != before {
		t.Errorf("the dry run changed the artifact store:\nbefore\n%s\nafter\n%s", before, after)
	}
}

// treeOf lists the files under dir with their sizes.
func treeOf(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %d\n", path, info.Size())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
