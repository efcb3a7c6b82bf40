package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSyntaxErrorsDoNotCascade loads each repository under testdata/syntax and
// compares its problems with <name>.golden (go test -update rewrites them). A
// YAML syntax error is reported with its line and column, and references from
// the other files to names the broken file may define are not reported.
func TestSyntaxErrorsDoNotCascade(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "syntax", "*", "features"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no test repositories: %v", err)
	}
	for _, features := range dirs {
		repo := filepath.Dir(features)
		t.Run(filepath.Base(repo), func(t *testing.T) {
			_, ps, err := LoadFeaturesWithProblems(repo)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, repo+".golden", ps.Error()+"\n")
			for _, p := range ps {
				if strings.HasPrefix(p.Msg, "YAML syntax error") && (p.Line == 0 || p.Column == 0) {
					t.Errorf("syntax error without line and column: %s", p)
				}
			}
		})
	}
}

// checkGolden compares got with the golden file (go test -update rewrites it).
func checkGolden(t *testing.T, golden, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("problems differ from %s:\n--- got\n%s--- want\n%s", golden, got, want)
	}
}
