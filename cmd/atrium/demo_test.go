package main

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readCSVFile reads a CSV file into rows of named fields.
func readCSVFile(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var rows []map[string]string
	for _, rec := range recs[1:] {
		row := map[string]string{}
		for i, name := range recs[0] {
			row[name] = rec[i]
		}
		rows = append(rows, row)
	}
	return rows
}

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "proj")
	code, out, errOut := atrium(t, "init", dir)
	if code != exitOK {
		t.Fatalf("init = %d, %s", code, errOut)
	}
	for _, f := range []string{"atrium.yaml", "features/rentals.yaml", "features/users.yaml", "data/listings.csv", "data/users.csv", "data/events-2026-09-01.csv"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("init did not write %s: %v", f, err)
		}
	}
	if !strings.Contains(out, "296 events") {
		t.Errorf("init output does not count the tiny sample's 296 events:\n%s", out)
	}

	// A second init refuses, names the files, and changes nothing.
	custom := []byte("project: mine\n")
	os.WriteFile(filepath.Join(dir, "atrium.yaml"), custom, 0o644)
	code, _, errOut = atrium(t, "init", dir)
	if code != exitFailure || !strings.Contains(errOut, "atrium.yaml: already exists") || !strings.Contains(errOut, "listings.csv: already exists") {
		t.Errorf("second init = %d, %q; want a failure naming the files", code, errOut)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "atrium.yaml")); !bytes.Equal(got, custom) {
		t.Error("refused init changed atrium.yaml")
	}
	// --no-data still refuses over project files, but not over data.
	code, _, errOut = atrium(t, "init", "--no-data", dir)
	if code != exitFailure || strings.Contains(errOut, "listings.csv") {
		t.Errorf("init --no-data = %d, %q; want a failure naming project files only", code, errOut)
	}
	if code, _, errOut = atrium(t, "init", "--force", dir); code != exitOK {
		t.Errorf("init --force = %d, %s", code, errOut)
	}
	if code, _, errOut = atrium(t, "init", "a", "b"); code != exitUsage {
		t.Errorf("init a b = %d, %s; want a usage error", code, errOut)
	}
	if code, _, errOut = atrium(t, "init", "--size", "huge", t.TempDir()); code != exitUsage || !strings.Contains(errOut, "tiny") {
		t.Errorf("init --size huge = %d, %s; want a usage error listing sizes", code, errOut)
	}
}

func TestDemoRankingCommand(t *testing.T) {
	dir := t.TempDir()
	train, test := filepath.Join(dir, "train.csv"), filepath.Join(dir, "test.csv")
	code, out, errOut := atrium(t, "demo", "ranking", "--size", "tiny", "--out", train, "--test-out", test, "--test-days", "1")
	if code != exitOK {
		t.Fatalf("demo ranking = %d, %s", code, errOut)
	}
	trainRows, testRows := readCSVFile(t, train), readCSVFile(t, test)
	// The tiny preset shows 256 listings in 32 sessions over 4 days.
	if len(trainRows)+len(testRows) != 256 || len(testRows) == 0 {
		t.Errorf("ranking files have %d + %d rows, want 256 in all", len(trainRows), len(testRows))
	}
	if !strings.Contains(out, "rows of") || trainRows[0]["session_id"] != "1" {
		t.Errorf("output %q, first row %v", out, trainRows[0])
	}
	if code, _, errOut = atrium(t, "demo", "ranking", "--size", "tiny"); code != exitUsage || !strings.Contains(errOut, "--out") {
		t.Errorf("demo ranking without --out = %d, %s", code, errOut)
	}
	if code, _, errOut = atrium(t, "demo", "ranking", "--out", filepath.Join(dir, "x.txt"), "--size", "tiny"); code != exitFailure || !strings.Contains(errOut, "want a .csv or .parquet") {
		t.Errorf("demo ranking --out x.txt = %d, %s", code, errOut)
	}
}

func TestDemoGenerateCommand(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := atrium(t, "demo", "generate", "--size", "tiny", "--events", "600", dir)
	if code != exitOK {
		t.Fatalf("demo generate = %d, %s", code, errOut)
	}
	events, _ := filepath.Glob(filepath.Join(dir, "data", "events*.csv"))
	n := 0
	for _, f := range events {
		n += len(readCSVFile(t, f))
	}
	if n < 450 || n > 750 || !strings.Contains(out, count(int64(n))+" events") {
		t.Errorf("--events 600 wrote %d events; output %q", n, out)
	}
}

func TestHasCommand(t *testing.T) {
	for path, want := range map[string]bool{"version": true, "demo ranking": true, "demo": true, "no-such": false, "demo no-such": false} {
		if got := hasCommand(path); got != want {
			t.Errorf("hasCommand(%q) = %v, want %v", path, got, want)
		}
	}
}

// TestDemoEndToEnd runs `atrium demo` on the tiny preset and checks what each
// step that is part of this build really did.
func TestDemoEndToEnd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	code, out, errOut := atrium(t, "demo", "--dir", dir, "--size", "tiny")
	if code != exitOK {
		t.Fatalf("demo = %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Log(out)
	if !strings.Contains(out, "[1/") || !strings.Contains(out, "296 events in 6 files") {
		t.Errorf("demo output does not report the generated data:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "features", "rentals.yaml")); err != nil {
		t.Error(err)
	}
	// A second demo into the same directory refuses to overwrite the project...
	if code, _, errOut := atrium(t, "demo", "--dir", dir, "--size", "tiny"); code != exitFailure || !strings.Contains(errOut, "already exists") {
		t.Errorf("demo into an existing project = %d, %s", code, errOut)
	}
}
