package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/serving/predlog"
	"github.com/atrium-ml/atrium/internal/spec"
)

// TestPredictionsCmd logs requests where `atrium serve` would (the embedded
// offline store's directory) and shows the newest with `atrium predictions`.
func TestPredictionsCmd(t *testing.T) {
	dir := t.TempDir() // no atrium.yaml: embedded defaults under dir/.atrium
	p, err := spec.LoadProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	logDir, err := predictionLogDir(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := predlog.Open(ctx, predlog.Options{Dir: logDir})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i := range 3 {
		w.Log(predlog.Record{
			RequestID: fmt.Sprint("req-", i), Time: now.Add(time.Duration(i-3) * time.Minute), Model: "ranker", Version: "4",
			Route: predlog.RouteRank, Rows: 2, Context: []predlog.Field{{Name: "user_id", Value: "u1"}},
			Entities: []predlog.Column{{Name: "listing_id", Values: []string{"l1", "l2"}}},
			Features: []string{"rent"}, Values: []float64{1200, 950}, Scores: []float64{0.25, 0.75},
			Latency: predlog.Latency{Total: 2500 * time.Microsecond},
		})
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}

	out := mustAtrium(t, dir, "predictions", "--model", "ranker", "--since", "10m", "--limit", "3")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "TIME") {
		t.Fatalf("want a header and 3 rows, got\n%s", out)
	}
	for i, want := range []string{
		"ranker 4 rank req-1 1 0.75 2.500 listing_id=l2 user_id=u1",
		"ranker 4 rank req-2 0 0.25 2.500 listing_id=l1 user_id=u1",
		"ranker 4 rank req-2 1 0.75 2.500 listing_id=l2 user_id=u1",
	} {
		if got := strings.Join(strings.Fields(lines[i+1])[1:], " "); got != want {
			t.Errorf("row %d: %q, want %q", i, got, want)
		}
	}

	out = mustAtrium(t, dir, "predictions", "--output", "json", "--limit", "1")
	var rows []predlog.Row
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rows) != 1 || rows[0].Features["rent"] != 950 || rows[0].Entities["user_id"] != "u1" {
		t.Errorf("json rows %+v", rows)
	}

	code, out, errOut := atrium(t, "--repo", dir, "predictions", "--model", "nobody")
	if code != exitOK || strings.Count(out, "\n") != 1 || !strings.Contains(errOut, `no logged predictions for model "nobody"`) {
		t.Errorf("unknown model: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, _, errOut := atrium(t, "--repo", dir, "predictions", "--since", "yesterday"); code != exitUsage || !strings.Contains(errOut, "--since") {
		t.Errorf("bad --since: code %d, stderr %q", code, errOut)
	}
}
