//go:build atrium_online_client

// Built once the online feature API and its Go client (client/) are merged into
// main; until then `go build -tags atrium_online_client` does not compile here.

package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/client"
	"github.com/atrium-ml/atrium/internal/demo"
)

func init() { checkOnline = checkOnlineOutcomes }

// checkOnlineOutcomes serves the demo project in-process and checks that the
// online vectors of the last search's listings are the offline store's latest
// rows (a point-in-time join at the end of the data), with their statuses, and
// that an unknown listing is NOT_FOUND.
func checkOnlineOutcomes(t *testing.T, dir string, cfg demo.Config) {
	ctx := context.Background()
	m, err := demo.NewMarket(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.LastSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := []int64{unknownListing}
	spine := "listing_id,ts\n"
	for _, im := range s.Impressions {
		ids = append(ids, im.Listing.ID)
		spine += fmt.Sprintf("%d,%s\n", im.Listing.ID, cfg.End().Format(demo.TimeLayout))
	}
	spine = fmt.Sprintf("listing_id,ts\n%d,%s\n", unknownListing, cfg.End().Format(demo.TimeLayout)) + spine[len("listing_id,ts\n"):]
	spinePath, outPath := filepath.Join(dir, "online-spine.csv"), filepath.Join(dir, "online-offline.csv")
	if err := os.WriteFile(spinePath, []byte(spine), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := atrium(t, "--repo", dir, "historical", "--spine", spinePath, "--service", "ranker", "--out", outPath); code != exitOK {
		t.Fatalf("historical = %d, %s %s", code, out, errOut)
	}
	offline := readCSVFile(t, outPath)

	url, stop, err := serveInProcess(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.GetOnlineFeatures(ctx, client.OnlineFeaturesRequest{FeatureService: "ranker", Entities: new(client.Columns).Int64("listing_id", ids...)})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Rows() != len(ids) || len(resp.Vectors) != 6 {
		t.Fatalf("response has %d rows and %d columns, want %d and 6", resp.Rows(), len(resp.Vectors), len(ids))
	}
	ttl := map[string]time.Duration{"rent": 90 * 24 * time.Hour, "price_per_m2": 90 * 24 * time.Hour, "neighborhood": 90 * 24 * time.Hour,
		"ctr_7d": 2 * 24 * time.Hour, "clicks_sum_1d": 2 * 24 * time.Hour}
	present := 0
	for _, v := range resp.Vectors[1:] {
		for r := range ids {
			st, got, want := v.Statuses[r], v.Values[r], offline[r][v.Name]
			switch {
			case r == 0:
				if st != client.StatusNotFound {
					t.Errorf("unknown listing %s: %s, want NOT_FOUND", v.Name, st)
				}
			case st == client.StatusOutsideMaxAge:
				if age := time.Since(v.EventTimestamps[r]); age <= ttl[v.Name] {
					t.Errorf("listing %d %s: OUTSIDE_MAX_AGE at age %s, ttl %s", ids[r], v.Name, age, ttl[v.Name])
				}
			case want == "":
				if st != client.StatusNotFound && st != client.StatusNullValue {
					t.Errorf("listing %d %s: %s %v, but the offline store has no value at %s", ids[r], v.Name, st, got, cfg.End())
				}
			case st != client.StatusPresent || fmt.Sprint(got) != want && !sameNumber(got, want):
				t.Errorf("listing %d %s: online %s %v, offline %s", ids[r], v.Name, st, got, want)
			default:
				present++
			}
		}
	}
	if present == 0 {
		t.Error("no online value was PRESENT and equal to the offline one")
	}
	if err := stop(); err != nil {
		t.Errorf("serve ended with %v", err)
	}
}

func sameNumber(got any, want string) bool {
	var g float64
	switch x := got.(type) {
	case float64:
		g = x
	case int64:
		g = float64(x)
	default:
		return false
	}
	var w float64
	if _, err := fmt.Sscan(want, &w); err != nil {
		return false
	}
	return math.Abs(g-w) <= 1e-9*math.Max(1, math.Abs(w))
}

// TestDemoOnlineOutsideMaxAge serves data that ended long ago: engagement rows
// (ttl 2d) are older than their ttl now and must be served as OUTSIDE_MAX_AGE.
func TestDemoOnlineOutsideMaxAge(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "old")
	if code, out, errOut := atrium(t, "demo", "--dir", dir, "--size", "tiny", "--start", "2026-09-01"); code != exitOK {
		t.Fatalf("demo = %d\n%s\n%s", code, out, errOut)
	}
	ctx := context.Background()
	url, stop, err := serveInProcess(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c, _ := client.New(url)
	resp, err := c.GetOnlineFeatures(ctx, client.OnlineFeaturesRequest{Features: []string{"listing_engagement:clicks_sum_1d"}, Entities: new(client.Columns).Int64("listing_id", 1, 2, 3)})
	if err != nil {
		t.Fatal(err)
	}
	v, ok := resp.Column("clicks_sum_1d")
	if !ok {
		t.Fatalf("no clicks_sum_1d in %v", resp.FeatureNames)
	}
	outside := 0
	for r, st := range v.Statuses {
		switch st {
		case client.StatusOutsideMaxAge:
			outside++
		case client.StatusNotFound:
		default:
			t.Errorf("listing %d: %s %v, want OUTSIDE_MAX_AGE (or NOT_FOUND) for data of September 2026", r+1, st, v.Values[r])
		}
	}
	if outside == 0 {
		t.Errorf("no listing served OUTSIDE_MAX_AGE: %v", v.Statuses)
	}
}
