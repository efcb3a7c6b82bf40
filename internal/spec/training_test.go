package spec

import (
	"errors"
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
	f, err := LoadFeatures(filepath.Join("testdata", "features"))
	if err != nil {
		t.Skipf("no feature testdata: %v", err)
	}
	for _, c := range []struct {
		name, features, want string
	}{
		{"missing service", "{service: nope}", `spec.yaml:2: feature service "nope" is not defined`},
		{"missing feature", "[nope:x]", "spec.yaml:2: features: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := "name: x\nfeatures: " + c.features + "\nspine: {path: s.csv, timestamp: ts, label: y}\nsplit: {by: random, valid: 0.2, test: 0.2}\nmodel: {objective: binary}\n"
			tr, err := ParseTraining("spec.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			_, ps := tr.CheckFeatures(f)
			if !strings.HasPrefix(ps.Error(), c.want) {
				t.Errorf("problems %q, want prefix %q", ps.Error(), c.want)
			}
		})
	}
}
