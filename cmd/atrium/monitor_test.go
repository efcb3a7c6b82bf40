package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestMonitorDriftCLI(t *testing.T) {
	dir := t.TempDir()
	ref, cur := filepath.Join(dir, "ref.csv"), filepath.Join(dir, "cur.csv")
	var rb, cb strings.Builder
	rb.WriteString("price,city\n")
	cb.WriteString("price,city\n")
	for i := range 1500 {
		city := []string{"oslo", "rome", "lima"}[i%3]
		rb.WriteString(strings.Join([]string{strconv.Itoa(100 + i%97), city}, ",") + "\n")
		cb.WriteString(strings.Join([]string{strconv.Itoa(130 + i%97), city}, ",") + "\n")
	}
	for p, s := range map[string]string{ref: rb.String(), cur: cb.String()} {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	html := filepath.Join(dir, "drift.html")
	code, out, errOut := atrium(t, "monitor", "drift", "--reference", ref, "--current", cur, "--output", "json",
		"--method", "city=psi", "--threshold", "city=0.25", "--out", html, "--fail")
	if code != exitFailure || !strings.Contains(errOut, "dataset drift: 1 of 2 columns drifted (--fail)") {
		t.Errorf("exit %d, stderr %q; want 1 with the --fail message", code, errOut)
	}
	var res struct {
		Columns []struct {
			Column, Method   string
			Score, Threshold float64
			Drift            bool
		}
		DriftedShare float64 `json:"drifted_share"`
		DatasetDrift bool    `json:"dataset_drift"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(res.Columns) != 2 || res.Columns[0].Method != "wasserstein" || !res.Columns[0].Drift ||
		res.Columns[1].Method != "psi" || res.Columns[1].Threshold != 0.25 || res.Columns[1].Drift || res.DriftedShare != 0.5 || !res.DatasetDrift {
		t.Errorf("result %+v", res)
	}
	if b, err := os.ReadFile(html); err != nil || !strings.Contains(string(b), "<svg") {
		t.Errorf("HTML report: %v", err)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--reference", ref}, "--current"},
		{[]string{"--reference", ref, "--current", cur, "--method", "city=anova"}, `unknown method "anova"`},
		{[]string{"--reference", ref, "--current", cur, "--threshold", "city=-1"}, "want COLUMN=VALUE with a positive number"},
	} {
		code, _, errOut := atrium(t, append([]string{"monitor", "drift"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want usage error mentioning %q", tc.args, code, errOut, tc.msg)
		}
	}
}
