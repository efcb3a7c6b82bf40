package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/client"
	"github.com/atrium-ml/atrium/internal/demo"
	"github.com/atrium-ml/atrium/internal/demo/steps"
)

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
	ids := []int64{steps.UnknownListing}
	spine := "listing_id,ts\n"
	for _, im := range s.Impressions {
		ids = append(ids, im.Listing.ID)
		spine += fmt.Sprintf("%d,%s\n", im.Listing.ID, cfg.End().Format(demo.TimeLayout))
	}
	spine = fmt.Sprintf("listing_id,ts\n%d,%s\n", steps.UnknownListing, cfg.End().Format(demo.TimeLayout)) + spine[len("listing_id,ts\n"):]
	spinePath, outPath := filepath.Join(dir, "online-spine.csv"), filepath.Join(dir, "online-offline.csv")
	if err := os.WriteFile(spinePath, []byte(spine), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := atrium(t, "--repo", dir, "historical", "--spine", spinePath, "--service", "ranker", "--out", outPath); code != exitOK {
		t.Fatalf("historical = %d, %s %s", code, out, errOut)
	}
	offline := readCSVFile(t, outPath)

	srv := serveDemo(t, dir)
	checkOnDemandParity(t, dir, cfg, srv, s)
	resp, err := srv.Client.GetOnlineFeatures(ctx, client.OnlineFeaturesRequest{FeatureService: "ranker", Entities: new(client.Columns).Int64("listing_id", ids...)})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Vectors) != 6 || resp.Rows() != len(ids) {
		t.Fatalf("response has %d columns of %d rows, want 6 of %d", len(resp.Vectors), resp.Rows(), len(ids))
	}
	ttl := map[string]time.Duration{"rent": 90 * 24 * time.Hour, "price_per_m2": 90 * 24 * time.Hour, "neighborhood": 90 * 24 * time.Hour,
		"ctr_7d": 2 * 24 * time.Hour, "clicks_sum_1d": 2 * 24 * time.Hour}
	present := 0
	for _, v := range resp.Vectors[1:] {
		name := v.Name
		for r := range ids {
			st, got, want := v.Statuses[r], v.Values[r], offline[r][name]
			switch {
			case r == 0:
				if st != client.StatusNotFound {
					t.Errorf("unknown listing %s: %s, want NOT_FOUND", name, st)
				}
			case st == client.StatusOutsideMaxAge:
				if age := time.Since(v.EventTimestamps[r]); age <= ttl[name] {
					t.Errorf("listing %d %s: OUTSIDE_MAX_AGE at age %s, ttl %s", ids[r], name, age, ttl[name])
				}
			case want == "":
				if st != client.StatusNotFound && st != client.StatusNullValue {
					t.Errorf("listing %d %s: %s %v, but the offline store has no value at %s", ids[r], name, st, got, cfg.End())
				}
			case st != client.StatusPresent || fmt.Sprint(got) != want && !sameNumber(got, want):
				t.Errorf("listing %d %s: online %s %v, offline %s", ids[r], name, st, got, want)
			default:
				present++
			}
		}
	}
	if present == 0 {
		t.Error("no online value was PRESENT and equal to the offline one")
	}
	if err := srv.Close(); err != nil {
		t.Errorf("serve ended with %v", err)
	}
}

// serveDemo serves the online feature API of the demo project in dir in this
// process, on the project's stores, until the test ends.
func serveDemo(t *testing.T, dir string) *steps.Server {
	t.Helper()
	st := (&env{ctx: context.Background(), stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.DiscardHandler)}).forRepo(dir)
	t.Cleanup(func() {
		if err := st.close(); err != nil {
			t.Error(err)
		}
	})
	srv, err := steps.ServeFeatures(context.Background(), st, st.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// sameNumber reports whether a served number (int64 or float64) and a CSV
// field hold the same value.
func sameNumber(got any, want string) bool {
	var g float64
	switch x := got.(type) {
	case int64:
		g = float64(x)
	case float64:
		g = x
	default:
		return false
	}
	w, err := strconv.ParseFloat(want, 64)
	return err == nil && math.Abs(g-w) <= 1e-9*math.Max(1, math.Abs(w))
}

// TestDemoOnlineOutsideMaxAge serves data that ended long ago: engagement rows
// (ttl 2d) are older than their ttl now and must be served as OUTSIDE_MAX_AGE.
func TestDemoOnlineOutsideMaxAge(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "old")
	if code, out, errOut := atrium(t, "demo", "--dir", dir, "--size", "tiny", "--start", "2026-09-01"); code != exitOK {
		t.Fatalf("demo = %d\n%s\n%s", code, out, errOut)
	}
	srv := serveDemo(t, dir)
	resp, err := srv.Client.GetOnlineFeatures(context.Background(), client.OnlineFeaturesRequest{Features: []string{"listing_engagement:clicks_sum_1d"},
		Entities: new(client.Columns).Int64("listing_id", 1, 2, 3)})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Vectors) != 2 || resp.FeatureNames[1] != "clicks_sum_1d" {
		t.Fatalf("response columns %v, want listing_id, clicks_sum_1d", resp.FeatureNames)
	}
	v := resp.Vectors[1]
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

// checkOnDemandParity serves the demo's on-demand user x listing features
// for the user and listings of the last session at the end of the data, and
// checks each value equals what historical computes for the same entities
// at the same time: one definition, one evaluator, the same values.
func checkOnDemandParity(t *testing.T, dir string, cfg demo.Config, srv *steps.Server, s *demo.Session) {
	ctx := context.Background()
	var listings, users []int64
	spine := "listing_id,user_id,ts\n"
	for _, im := range s.Impressions {
		listings, users = append(listings, im.Listing.ID), append(users, s.User.ID)
		spine += fmt.Sprintf("%d,%d,%s\n", im.Listing.ID, s.User.ID, cfg.End().Format(demo.TimeLayout))
	}
	spinePath, outPath := filepath.Join(dir, "od-spine.csv"), filepath.Join(dir, "od-offline.csv")
	if err := os.WriteFile(spinePath, []byte(spine), 0o644); err != nil {
		t.Fatal(err)
	}
	feats := []string{"user_listing:rent_to_budget", "user_listing:neighborhood_match"}
	if code, out, errOut := atrium(t, "--repo", dir, "historical", "--spine", spinePath, "--features", strings.Join(feats, ","), "--out", outPath); code != exitOK {
		t.Fatalf("historical = %d, %s %s", code, out, errOut)
	}
	offline := readCSVFile(t, outPath)
	resp, err := srv.Client.GetOnlineFeatures(ctx, client.OnlineFeaturesRequest{Features: feats,
		Entities: new(client.Columns).Int64("listing_id", listings...).Int64("user_id", users...)})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Vectors) != 4 || resp.Rows() != len(listings) || len(offline) != len(listings) {
		t.Fatalf("online: %d columns x %d rows, offline %d rows; want 4 x %d", len(resp.Vectors), resp.Rows(), len(offline), len(listings))
	}
	present := 0
	for _, v := range resp.Vectors[2:] {
		for r := range listings {
			got, want := v.Values[r], offline[r][v.Name]
			if want == "" {
				if got != nil || v.Statuses[r] != client.StatusNullValue {
					t.Errorf("listing %d %s: online %v (%s), offline null", listings[r], v.Name, got, v.Statuses[r])
				}
				continue
			}
			present++
			if f := num(t, fmt.Sprint(got)); got == nil || math.Abs(f-num(t, want)) > 1e-12*math.Abs(f) || v.Statuses[r] != client.StatusPresent {
				t.Errorf("listing %d %s: online %v (%s), offline %s", listings[r], v.Name, got, v.Statuses[r], want)
			}
		}
	}
	if present == 0 {
		t.Error("no on-demand value present: the parity check compared only nulls")
	}
}
