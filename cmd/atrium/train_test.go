package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
