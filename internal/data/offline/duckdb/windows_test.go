package duckdb_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/data/offline"
)

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWindowGolden runs each case of testdata/windows: features.yaml and source
// files in, the runs listed in "run", and every stored row of each set compared
// with expected_<set>.csv. The cases pin the window semantics: rows at every slide
// step T of the run's days, windows T - w <= ts < T, keys present when the largest
// window has a row, 0 for sums and counts of empty windows and NULL otherwise.
func TestWindowGolden(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join("testdata", "windows", "*"))
	if err != nil || len(cases) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, dir := range cases {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			abs, _ := filepath.Abs(dir)
			e, _ := openEngine(t, abs)
			sets := map[string]bool{}
			for _, line := range strings.Split(string(mustRead(t, filepath.Join(dir, "run"))), "\n") {
				f := strings.Fields(line)
				if len(f) == 0 || strings.HasPrefix(f[0], "#") {
					continue
				}
				res, err := e.Run(context.Background(), offline.RunRequest{Set: f[0], Start: date(t, f[1]), End: date(t, f[2])})
				if err != nil {
					t.Fatalf("run %v: %v", f, err)
				}
				if !res.Published {
					t.Fatalf("run %v not published: %+v", f, res)
				}
				sets[f[0]] = true
			}
			for set := range sets {
				want := strings.Split(strings.TrimSpace(string(mustRead(t, filepath.Join(dir, "expected_"+set+".csv")))), "\n")
				got := storedRows(t, e, set)
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("set %s rows differ\n--- got\n%s\n--- want\n%s", set, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			}
		})
	}
}
