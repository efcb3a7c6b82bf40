package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// errorsRepo copies testdata/errors/project into a temp dir.
func errorsRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join("testdata", "errors", "project")
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// engineText is text of DuckDB's messages and of Atrium's generated SQL, which
// never reaches a user.
var engineText = []string{"SELECT", "LINE 1", "read_csv", "TIMESTAMPTZ", "atrium_", "Conversion Error", "Invalid Input Error", "CSV Error"}

type cliCase struct {
	name    string
	setup   [][]string        // commands that must succeed first, on the intact project
	overlay map[string]string // then: project path -> testdata/errors/broken file
	args    []string          // run with --repo DIR prepended; "SPINE:x" becomes DIR/x
	code    int
	stdout  []string // substrings
	stderr  []string // substrings
	absent  []string // substrings of neither stream
}

func runCLICases(t *testing.T, cases []cliCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := errorsRepo(t)
			for _, s := range tc.setup {
				if code, out, errOut := atrium(t, append([]string{"--repo", dir}, s...)...); code != exitOK {
					t.Fatalf("atrium %v = %d\n%s%s", s, code, out, errOut)
				}
			}
			for to, from := range tc.overlay {
				copyTreeFile(t, filepath.Join("testdata", "errors", "broken", from), filepath.Join(dir, to))
			}
			args := []string{"--repo", dir}
			for _, a := range tc.args {
				if f, ok := strings.CutPrefix(a, "SPINE:"); ok {
					a = filepath.Join(dir, f)
				}
				args = append(args, a)
			}
			code, out, errOut := atrium(t, args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q", w)
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q", w)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(out+errOut, a) {
					t.Errorf("output holds %q", a)
				}
			}
			if t.Failed() {
				t.Logf("atrium %v\n--- stdout\n%s--- stderr\n%s", tc.args, out, errOut)
			}
		})
	}
}

func TestUsageErrorsPointToTheCommandsHelp(t *testing.T) {
	runCLICases(t, []cliCase{
		{name: "missing argument", args: []string{"run"}, code: exitUsage,
			stderr: []string{"error: run takes 1 argument(s), got 0", "usage: atrium run SET --start DATE --end DATE", "run 'atrium run --help' for details"}},
		{name: "extra arguments", args: []string{"run", "a", "b", "--start", "2026-12-01", "--end", "2026-12-02"}, code: exitUsage,
			stderr: []string{`run takes 1 argument(s), got 2: "a" "b"`, "run 'atrium run --help'"}},
		{name: "argument to a command without any", args: []string{"historical", "spine.csv"}, code: exitUsage,
			stderr: []string{`historical takes no arguments, got "spine.csv"`, "usage: atrium historical --spine FILE", "run 'atrium historical --help'"}},
		{name: "missing flags", args: []string{"run", "item_price"}, code: exitUsage,
			stderr: []string{"--start and --end are required", "run 'atrium run --help'"}},
		{name: "unknown flag", args: []string{"materialize", "--bogus"}, code: exitUsage,
			stderr: []string{"unknown flag: --bogus", "usage: atrium materialize --end TS", "run 'atrium materialize --help'"}},
		{name: "unknown command with a suggestion", args: []string{"histrical"}, code: exitUsage,
			stderr: []string{`unknown command "histrical" for "atrium"; did you mean historical?`, "run 'atrium --help' for details"},
			absent: []string{"usage: "}},
		{name: "unknown command", args: []string{"frobnicate"}, code: exitUsage,
			stderr: []string{`unknown command "frobnicate" for "atrium"`, "run 'atrium --help'"}, absent: []string{"did you mean"}},
		{name: "no command prints help", args: nil, code: exitOK, stdout: []string{"Start with:  atrium demo"}},
	})
}

func TestTimeFlags(t *testing.T) {
	applied := [][]string{{"apply"}}
	runCLICases(t, []cliCase{
		{name: "run with space-separated times", setup: applied,
			args: []string{"run", "item_price", "--start", "2026-12-01 06:00:00", "--end", "2026-12-03 23:59:59"}, code: exitOK,
			stdout: []string{"item_price 2026-12-01..2026-12-03 succeeded: 3 rows in, 3 rows out, 3 partitions"}},
		{name: "run with T-separated times without a zone", setup: applied,
			args: []string{"run", "item_price", "--start", "2026-12-01T06:00:00", "--end", "2026-12-03T06:00:00"}, code: exitOK,
			stdout: []string{"item_price 2026-12-01..2026-12-03 succeeded"}},
		{name: "run with RFC 3339", setup: applied,
			args: []string{"run", "item_price", "--start", "2026-12-01T00:00:00Z", "--end", "2026-12-03T00:00:00+00:00"}, code: exitOK,
			stdout: []string{"item_price 2026-12-01..2026-12-03 succeeded"}},
		{name: "run with a time it cannot read", setup: applied,
			args: []string{"run", "item_price", "--start", "2026-12-01 06:00", "--end", "2026-12-03"}, code: exitUsage,
			stderr: []string{`--start: "2026-12-01 06:00": want an RFC 3339 time (2026-12-04T06:00:00Z), 2026-12-04 06:00:00 or 2026-12-04T06:00:00 (UTC)`}},
		{name: "materialize with a space-separated time",
			setup: [][]string{{"apply"}, {"run", "item_price", "--start", "2026-12-01", "--end", "2026-12-03"}},
			args:  []string{"materialize", "--end", "2026-12-03 06:00:00"}, code: exitOK,
			stdout: []string{"item_price: 2 keys written", "up to 2026-12-03T06:00:00Z"}},
	})
}

func TestDataErrorsNameFileLineAndValue(t *testing.T) {
	applied := [][]string{{"apply"}}
	ran := [][]string{{"apply"}, {"run", "item_price", "--start", "2026-12-01", "--end", "2026-12-03"}}
	historical := func(spine string, extra ...string) []string {
		return append([]string{"historical", "--spine", "SPINE:" + spine, "--service", "pricing", "--out", "SPINE:out.csv"}, extra...)
	}
	runCLICases(t, []cliCase{
		{name: "apply: a short CSV row is one problem at its line", overlay: map[string]string{"data/items.csv": "items_short_row.csv"},
			args: []string{"apply"}, code: exitFailure,
			stderr: []string{"1 problem(s)", `features/items.yaml:3: source "items": data/items.csv line 3: 2 fields, but the header has 3`},
			absent: append([]string{"Binder Error", "no join key column", "no timestamp column"}, engineText...)},
		{name: "run: a short CSV row", overlay: map[string]string{"data/items.csv": "items_short_row.csv"}, setup: applied,
			args: []string{"run", "item_price", "--start", "2026-12-01", "--end", "2026-12-03"}, code: exitFailure,
			stderr: []string{"error: run item_price: source items: data/items.csv line 3: 2 fields, but the header has 3"}, absent: engineText},
		{name: "run: a bad timestamp", overlay: map[string]string{"data/items.csv": "items_bad_ts.csv"}, setup: applied,
			args: []string{"run", "item_price", "--start", "2026-12-01", "--end", "2026-12-03"}, code: exitFailure,
			stderr: []string{`reading source items: data/items.csv line 3: column updated_at: "2026-12-02 25:00:00" is not a timestamp`}, absent: engineText},
		{name: "run: an unknown set lists the known ones", setup: applied,
			args: []string{"run", "item_prices", "--start", "2026-12-01", "--end", "2026-12-03"}, code: exitFailure,
			stderr: []string{`unknown feature set "item_prices" in catalog version 1: the catalog has item_price`}},
		{name: "run: an end far past the data warns", setup: applied,
			args: []string{"run", "item_price", "--start", "2026-12-01", "--end", "2027-06-30"}, code: exitOK,
			stderr: []string{"level=WARN", "the 209 days 2026-12-04..2027-06-30 will be empty partitions", "the source's last event is at 2026-12-03 08:00:00"}},
		{name: "run: an end a week past the data does not warn", setup: applied,
			args: []string{"run", "item_price", "--start", "2026-12-01", "--end", "2026-12-10"}, code: exitOK,
			absent: []string{"WARN"}},
		{name: "historical: no time column names --spine-time", setup: ran, overlay: map[string]string{"spine.csv": "spine_no_time.csv"},
			args: historical("spine.csv"), code: exitFailure,
			stderr: []string{"cannot tell which column is the time", "columns: item_id, label", "--spine-time COLUMN names the spine's time column"}},
		{name: "historical: a missing --spine-time column", setup: ran,
			args: historical("spine.csv", "--spine-time", "when"), code: exitFailure,
			stderr: []string{`no time column "when", expected one of: item_id, ts, label`, "--spine-time COLUMN"}},
		{name: "historical: a bad spine timestamp", setup: ran, overlay: map[string]string{"spine.csv": "spine_bad_ts.csv"},
			args: historical("spine.csv"), code: exitFailure,
			stderr: []string{`spine.csv line 3: column ts: "2026-12-03T99:00:00" is not a timestamp`}, absent: engineText},
		{name: "historical: a short spine row", setup: ran, overlay: map[string]string{"spine.csv": "spine_short_row.csv"},
			args: historical("spine.csv"), code: exitFailure,
			stderr: []string{"spine.csv line 2: 2 fields, but the header has 3"}, absent: engineText},
		{name: "apply: a YAML syntax error does not cascade", overlay: map[string]string{"features/entities.yaml": "entities_syntax.yaml"},
			args: []string{"apply"}, code: exitFailure,
			stderr: []string{"1 problem(s)", "features/entities.yaml:2:37: YAML syntax error: ',' or ']' must be specified"},
			absent: []string{"unknown entity"}},
	})
}

// TestJSONListsAreNeverNull: --output json shows [] where a list is meant.
func TestJSONListsAreNeverNull(t *testing.T) {
	dir := errorsRepo(t)
	jsonOut := func(args ...string) (int, string) {
		t.Helper()
		code, out, errOut := atrium(t, append([]string{"--repo", dir, "-o", "json"}, args...)...)
		if strings.Contains(out, "null") {
			t.Errorf("atrium %v: null in %s (stderr %s)", args, out, errOut)
		}
		if !json.Valid([]byte(out)) {
			t.Errorf("atrium %v: stdout is not JSON: %q", args, out)
		}
		return code, out
	}
	if _, out := jsonOut("runs"); strings.TrimSpace(out) != "[]" {
		t.Errorf("runs on an empty project = %s, want []", out)
	}
	jsonOut("apply")
	if _, out := jsonOut("apply"); !strings.Contains(out, `"changes":[]`) {
		t.Errorf("second apply = %s, want changes: []", out)
	}
	if _, out := jsonOut("materialize", "--end", "2026-12-03"); !strings.HasPrefix(out, "[") {
		t.Errorf("materialize = %s, want a list", out)
	}
	// A failed run replaced no partitions and ran no checks: [] both.
	copyTreeFile(t, filepath.Join("testdata", "errors", "broken", "items_short_row.csv"), filepath.Join(dir, "data", "items.csv"))
	if code, out := jsonOut("run", "item_price", "--start", "2026-12-01", "--end", "2026-12-03"); code != exitFailure ||
		!strings.Contains(out, `"partitions":[]`) || !strings.Contains(out, `"checks":[]`) {
		t.Errorf("failed run = %d %s, want partitions: [] and checks: []", code, out)
	}
	if _, out := jsonOut("runs"); !strings.Contains(out, `"status":"failed"`) || !strings.Contains(out, `"partitions":[]`) {
		t.Errorf("runs = %s, want the failed run with partitions: []", out)
	}
}

func copyTreeFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
