package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// exampleRepo is a project with the features/*.yaml example and the tiny
// data of the window golden tests.
func exampleRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	copyFile(t, filepath.Join("..", "..", "internal", "spec", "testdata", "features", "issue_example.yaml"), filepath.Join(dir, "features", "example.yaml"))
	for _, f := range []string{"listings.csv", "events1.csv", "events2.csv"} {
		copyFile(t, filepath.Join("..", "..", "internal", "data", "offline", "offlinetest", "testdata", "windows", "issue_example", "data", f), filepath.Join(dir, "data", f))
	}
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestApplyRunRuns(t *testing.T) {
	dir := exampleRepo(t)
	code, out, errOut := atrium(t, "--repo", dir, "run", "listing_engagement", "--start", "2024-01-01", "--end", "2024-01-05")
	if code != exitFailure || !strings.Contains(errOut, "no feature definitions applied") {
		t.Fatalf("run before apply = %d, %q, %q", code, out, errOut)
	}
	code, out, errOut = atrium(t, "--repo", dir, "apply", "--dry-run")
	if code != exitOK || !strings.Contains(out, "+ feature_set listing_engagement (v1)") || !strings.Contains(out, "dry run: would store catalog version 1") {
		t.Fatalf("apply --dry-run = %d, %q, %q", code, out, errOut)
	}
	code, out, errOut = atrium(t, "--repo", dir, "apply")
	if code != exitOK || !strings.Contains(out, "applied catalog version 1 (7 added, 0 changed, 0 removed)") {
		t.Fatalf("apply = %d, %q, %q", code, out, errOut)
	}
	code, out, _ = atrium(t, "--repo", dir, "apply")
	if code != exitOK || !strings.Contains(out, "no changes (catalog version 1)") {
		t.Fatalf("second apply = %d, %q", code, out)
	}
	code, out, errOut = atrium(t, "--repo", dir, "run", "listing_engagement", "--start", "2024-01-01", "--end", "2024-01-05")
	if code != exitOK || !strings.Contains(out, "listing_engagement 2024-01-01..2024-01-05 succeeded: 6 rows in, 9 rows out, 5 partitions") ||
		!strings.Contains(out, "check ok     ctr_7d: between [0, 1]") {
		t.Fatalf("run = %d, %q, %q", code, out, errOut)
	}
	code, out, errOut = atrium(t, "--repo", dir, "-o", "json", "runs")
	var runs []struct {
		Set, Status string
		RowsOut     int64 `json:"rows_out"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &runs) != nil || len(runs) != 1 || runs[0].Set != "listing_engagement" || runs[0].Status != "succeeded" || runs[0].RowsOut != 9 {
		t.Fatalf("runs -o json = %d, %q, %q", code, out, errOut)
	}
	code, out, _ = atrium(t, "--repo", dir, "runs", "listing_profile")
	if code != exitOK || strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "ID") {
		t.Errorf("runs listing_profile = %d, %q; want only the header", code, out)
	}

	// An edit shows up as a change with details.
	path := filepath.Join(dir, "features", "example.yaml")
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), "ttl: 2d", "ttl: 3d", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ = atrium(t, "--repo", dir, "apply")
	if code != exitOK || !strings.Contains(out, "~ feature_set listing_engagement (v2): ttl") || !strings.Contains(out, "applied catalog version 2 (0 added, 1 changed, 0 removed)") {
		t.Errorf("apply after an edit = %d, %q", code, out)
	}
}

func TestApplyReportsEveryProblem(t *testing.T) {
	dir := exampleRepo(t)
	bad := `feature_sets:
  - name: broken
    entity: listing
    source: nowhere
    features:
      - {name: a, type: float64, expr: rent}
  - name: sql_errors
    entity: listing
    source: listings
    features:
      - {name: b, type: float64, expr: "rent +"}
      - {name: c, type: int64, expr: "neighborhood"}
      - {name: d, type: float64, expr: "rent", aggs: [median]}
feature_services:
  - {name: svc, features: ["listing_profile:nope"]}
`
	if err := os.WriteFile(filepath.Join(dir, "features", "z_bad.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := atrium(t, "--repo", dir, "apply")
	if code != exitFailure || out != "" {
		t.Fatalf("apply = %d, stdout %q", code, out)
	}
	for _, want := range []string{
		"6 problem(s)",
		`features/z_bad.yaml:13: feature "d": unknown aggregation "median"`,
		`features/z_bad.yaml:4: feature set "broken": unknown source "nowhere", expected one of: listings, events`,
		`features/z_bad.yaml:11: feature set "sql_errors": feature b: bad SQL expression "rent +"`,
		`features/z_bad.yaml:12: feature set "sql_errors": feature c: type mismatch: expression "neighborhood" has type VARCHAR, declared int64`,
		`features/z_bad.yaml:13: feature set "sql_errors": feature "d" has aggs but the set has no windows`,
		`features/z_bad.yaml:15: feature service "svc": reference "listing_profile:nope": unknown feature "nope"`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	// Nothing was registered.
	if code, _, errOut := atrium(t, "--repo", dir, "run", "listing_profile", "--start", "2024-01-01", "--end", "2024-01-01"); code != exitFailure || !strings.Contains(errOut, "no feature definitions applied") {
		t.Errorf("run after a failed apply = %d, %q", code, errOut)
	}
}

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{
		{"run", "x"},
		{"run", "x", "--start", "2024-01-01", "--end", "yesterday"},
		{"run", "x", "--start", "2024-01-05", "--end", "2024-01-01"},
		{"run", "--start", "2024-01-01", "--end", "2024-01-01"},
		{"runs", "a", "b"},
	} {
		if code, _, errOut := atrium(t, append([]string{"--repo", t.TempDir()}, args...)...); code != exitUsage {
			t.Errorf("atrium %v = %d (%s), want usage error", args, code, errOut)
		}
	}
}

// historicalWant is the training set of historicalSpine in exampleRepo for the
// service ranker. Listing 1 at Jan 3 12:00: profile row of Jan 3 09:00 (rent
// 1300, no price per m2 since area is 0), engagement row of Jan 3 (ctr 0.5,
// clicks 0 that day). Listing 2 at Jan 4: profile row of Jan 2 within 90d;
// engagement row of Jan 4 (ctr null: no impressions). Listing 9: nothing.
const (
	historicalSpine = "listing_id,ts,label\n1,2024-01-03 12:00:00,1\n2,2024-01-04 00:00:00,0\n9,2024-01-04 00:00:00,0\n"
	historicalWant  = `listing_id,ts,label,rent,price_per_m2,neighborhood,ctr_7d,clicks_sum_1d
1,2024-01-03 12:00:00,1,1300.0,,centro,0.5,0
2,2024-01-04 00:00:00,0,900.5,30.016666666666666,norte,,0
9,2024-01-04 00:00:00,0,,,,,
`
)

// historicalFlow applies exampleRepo's definitions in dir, runs both sets, and
// writes the training set of the spine file spine to out.
func historicalFlow(t *testing.T, dir, spine, out string) {
	t.Helper()
	for _, args := range [][]string{
		{"apply"},
		{"run", "listing_profile", "--start", "2024-01-01", "--end", "2024-01-05"},
		{"run", "listing_engagement", "--start", "2024-01-01", "--end", "2024-01-05"},
	} {
		mustAtrium(t, dir, args...)
	}
	if err := os.WriteFile(spine, []byte(historicalSpine), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, errOut := atrium(t, "--repo", dir, "historical", "--spine", spine, "--service", "ranker", "--out", out)
	if code != exitOK || !strings.Contains(stdout, "wrote 3 rows x 8 columns (5 features)") {
		t.Fatalf("historical = %d, %q, %q", code, stdout, errOut)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != historicalWant {
		t.Errorf("%s:\n%s\nwant\n%s", out, b, historicalWant)
	}
}

func TestHistoricalCLI(t *testing.T) {
	dir := exampleRepo(t)
	spine, out := filepath.Join(dir, "spine.csv"), filepath.Join(dir, "train.csv")
	historicalFlow(t, dir, spine, out)
	code, _, errOut := atrium(t, "--repo", dir, "historical", "--spine", spine, "--features", "listing_profile:rent,nope", "--out", out)
	if code != exitFailure || !strings.Contains(errOut, `unknown feature set or service "nope"`) {
		t.Errorf("historical with a bad ref = %d, %q", code, errOut)
	}
	for _, args := range [][]string{
		{"historical", "--spine", spine, "--out", out},
		{"historical", "--spine", spine, "--service", "ranker", "--features", "listing_profile", "--out", out},
		{"historical", "--service", "ranker", "--out", out},
	} {
		if code, _, errOut := atrium(t, append([]string{"--repo", dir}, args...)...); code != exitUsage {
			t.Errorf("atrium %v = %d (%s), want usage error", args, code, errOut)
		}
	}
}

// TestRepositoryPathWithURLAndGlobCharacters runs apply, run and historical in
// a repository whose path holds URL syntax ('%41', ' #', '?') and glob
// characters ('[1]'), with the spine in a directory named like a pattern. The
// metadata DB and the offline store live under the repository's own .atrium,
// and nothing is written where the path leads once URL-decoded or matched as a
// pattern.
func TestRepositoryPathWithURLAndGlobCharacters(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "q%41 #x?[1]")
	if err := os.CopyFS(dir, os.DirFS(exampleRepo(t))); err != nil {
		t.Fatal(err)
	}
	spineDir := filepath.Join(dir, "sp[1]")
	if err := os.MkdirAll(spineDir, 0o755); err != nil {
		t.Fatal(err)
	}
	historicalFlow(t, dir, filepath.Join(spineDir, "spine.csv"), filepath.Join(spineDir, "train.csv"))
	for _, p := range []string{".atrium/atrium.db", ".atrium/offline/set=listing_profile", ".atrium/offline/set=listing_engagement"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Errorf("entries beside the repository: %v, want none", entries)
	}
}
