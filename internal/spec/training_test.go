package spec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTrainingSpecs parses each testdata/training/*.yaml and compares its
// problems (or "ok") with <name>.golden (go test -update rewrites them):
// every problem of a file at once, each at its line.
func TestTrainingSpecs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "training", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no training specs: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			got := "ok\n"
			if _, err := LoadTraining(f); err != nil {
				var ps Problems
				if !errors.As(err, &ps) {
					t.Fatalf("error is not Problems: %v", err)
				}
				got = ps.Error() + "\n"
			}
			checkGolden(t, strings.TrimSuffix(f, ".yaml")+".golden", got)
		})
	}
}

func TestTrainingDefaults(t *testing.T) {
	tr, err := LoadTraining(filepath.Join("testdata", "training", "kfold.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Split.By != SplitByKFold || tr.Split.KFold != 5 || tr.Split.Test != DefaultKFoldTest || tr.Split.Seed != 1 {
		t.Errorf("split = %+v, want kfold 5 with test %v and seed 1", tr.Split, DefaultKFoldTest)
	}
	if tr.Model.Kind != ModelGBDT || tr.Metric() != "l2" || tr.Maximize() {
		t.Errorf("model %+v metric %s maximize %v, want gbdt, l2, minimize", tr.Model, tr.Metric(), tr.Maximize())
	}
	tr, err = LoadTraining(filepath.Join("testdata", "training", "ranker.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Split.ValidSpan.String() != "7d" || len(tr.Tune.Space) != 4 || tr.Tune.Space[0].Name != "num_leaves" || !tr.Tune.Space[0].Log {
		t.Errorf("split %+v space %+v", tr.Split, tr.Tune.Space)
	}
	if !tr.Maximize() || tr.Line("tune.space.min_data_in_leaf") != 16 || tr.Line("register.promote.alias") != 18 {
		t.Errorf("maximize %v, lines %d %d", tr.Maximize(), tr.Line("tune.space.min_data_in_leaf"), tr.Line("register.promote.alias"))
	}
}

func TestTrainingCheckFeatures(t *testing.T) {
	path := filepath.Join("testdata", "features", "issue_example.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseFeatures(path, data)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, features, want string
	}{
		{"missing service", "{service: nope}", `spec.yaml:2: feature service "nope" is not defined`},
		{"missing feature", "[nope:x]", "spec.yaml:2: features: "},
		{"excluded feature missing", "{service: ranker, exclude: [\"listing_engagement:ctr_7d\", nope]}", `spec.yaml:2: features.exclude: "nope" is not a feature`},
		// In a block list each reference is at its own line.
		{"missing feature, block list", "\n  - \"listing_engagement:ctr_7d\"\n  - nope:x", "spec.yaml:4: features: "},
		{"excluded feature missing, block list", "\n  service: ranker\n  exclude:\n    - \"listing_engagement:ctr_7d\"\n    - nope", `spec.yaml:6: features.exclude: "nope" is not a feature`},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := "name: x\nfeatures: " + c.features + "\nspine: {path: s.csv, timestamp: ts, label: y}\nsplit: {by: random, valid: 0.2, test: 0.2}\nmodel: {objective: binary}\n"
			tr, err := ParseTraining("spec.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			res, ps := tr.CheckFeatures(f)
			for _, r := range res {
				if r.Ref == "listing_engagement:ctr_7d" {
					t.Errorf("excluded feature %s resolved", r.Ref)
				}
			}
			if !strings.HasPrefix(ps.Error(), c.want) {
				t.Errorf("problems %q, want prefix %q", ps.Error(), c.want)
			}
		})
	}
}
