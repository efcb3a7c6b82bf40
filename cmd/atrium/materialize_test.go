package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/client"
	"github.com/atrium-ml/atrium/internal/platform/server"
)

// TestMaterializeAndServe runs the online path of the CLI on the issue's
// example: apply, run, materialize (incrementally), then the feature API that
// `atrium serve` mounts, through the Go client.
func TestMaterializeAndServe(t *testing.T) {
	dir := exampleRepo(t)
	code, _, errOut := atrium(t, "--repo", dir, "materialize", "--end", "2024-01-04")
	if code != exitFailure || !strings.Contains(errOut, "no feature definitions applied") {
		t.Fatalf("materialize before apply = %d, %q", code, errOut)
	}
	mustAtrium(t, dir, "apply")
	mustAtrium(t, dir, "run", "listing_profile", "--start", "2024-01-01", "--end", "2024-01-05")
	mustAtrium(t, dir, "run", "listing_engagement", "--start", "2024-01-01", "--end", "2024-01-05")

	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"materialize"}, exitUsage, "--end is required"},
		{[]string{"materialize", "--end", "tomorrow"}, exitUsage, `--end: "tomorrow": want an RFC 3339 time`},
		{[]string{"materialize", "--end", "now", "nope"}, exitUsage, "unknown feature set nope: the catalog has listing_profile, listing_engagement"},
	} {
		code, _, errOut := atrium(t, append([]string{"--repo", dir}, tt.args...)...)
		if code != tt.code || !strings.Contains(errOut, tt.msg) {
			t.Errorf("atrium %v = %d, %q; want %d with %q", tt.args, code, errOut, tt.code, tt.msg)
		}
	}

	out := mustAtrium(t, dir, "materialize", "--end", "2024-01-04T00:00:00Z", "listing_profile")
	if !strings.Contains(out, "listing_profile: 2 keys written (rows after 2023-10-06T00:00:00Z up to 2024-01-04T00:00:00Z)") {
		t.Errorf("first materialize: %q", out)
	}
	out = mustAtrium(t, dir, "materialize", "--end", "2024-01-04T00:00:00Z")
	if !strings.Contains(out, "listing_profile: already materialized up to 2024-01-04T00:00:00Z") ||
		!strings.Contains(out, "listing_engagement: ") {
		t.Errorf("second materialize: %q", out)
	}
	out = mustAtrium(t, dir, "-o", "json", "materialize", "--end", "2024-01-05")
	var results []struct {
		Set     string
		Rows    int64
		Skipped bool
	}
	if err := json.Unmarshal([]byte(out), &results); err != nil || len(results) != 2 {
		t.Fatalf("materialize -o json: %q (%v)", out, err)
	}

	// The API `atrium serve` mounts, over what was materialized.
	var stderr bytes.Buffer
	e := &env{ctx: context.Background(), stdout: io.Discard, stderr: &stderr, repo: dir, log: slog.New(slog.NewTextHandler(&stderr, nil))}
	defer e.close()
	api, err := featureAPI(e)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server.New(server.Options{Logger: e.log}, api).Handler())
	defer srv.Close()
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	resp, err := c.GetOnlineFeatures(ctx, client.OnlineFeaturesRequest{
		Features: []string{"listing_profile:rent", "listing_profile:price_per_m2", "listing_engagement:ctr_7d"},
		Entities: new(client.Columns).Int64("listing_id", 1, 2, 3),
	})
	if err != nil {
		t.Fatal(err)
	}
	rent, _ := resp.Column("rent")
	price, _ := resp.Column("price_per_m2")
	// Listing 1's latest row (2024-01-03) has area 0, so a NULL price; listing 3
	// has no row in the days run. The rows are from 2024, older than the ttl
	// (90d) today: served, but flagged.
	if rent.Values[0] != 1300.0 || rent.Values[1] != 900.5 || rent.Values[2] != nil {
		t.Errorf("rent %v", rent.Values)
	}
	if rent.Statuses[0] != client.StatusOutsideMaxAge || rent.Statuses[2] != client.StatusNotFound {
		t.Errorf("rent statuses %v", rent.Statuses)
	}
	if want := time.Date(2024, 1, 3, 9, 0, 0, 0, time.UTC); !rent.EventTimestamps[0].Equal(want) {
		t.Errorf("listing 1 event time %s, want %s", rent.EventTimestamps[0], want)
	}
	if price.Values[0] != nil {
		t.Errorf("price_per_m2 of listing 1: %v, want null", price.Values[0])
	}

	// Join-key types were learned at materialization: a string key is refused.
	_, err = c.GetOnlineFeatures(ctx, client.OnlineFeaturesRequest{
		Features: []string{"listing_profile:rent"},
		Entities: new(client.Columns).String("listing_id", "1"),
	})
	if !client.IsClientError(err) || !strings.Contains(err.Error(), "listing_id is an int64 join key") {
		t.Errorf("string key for an int64 join key: %v", err)
	}

	// While the server holds the embedded store, `atrium materialize` runs
	// through the server's /materialize-incremental.
	t.Setenv("ATRIUM_ADDR", srv.Listener.Addr().String())
	out = mustAtrium(t, dir, "materialize", "--end", "2024-01-06", "--full", "listing_profile")
	if !strings.Contains(out, "listing_profile: 2 keys written (rows after 2023-10-08T00:00:00Z up to 2024-01-06T00:00:00Z)") {
		t.Errorf("materialize through the server: %q", out)
	}

	// A push reaches serving at once, and the offline store with it.
	now := time.Now().UTC().Truncate(time.Second)
	n, err := c.Push(ctx, client.PushRequest{
		FeatureSet: "listing_profile",
		To:         client.PushOnlineAndOffline,
		Rows: new(client.Columns).Int64("listing_id", 3).Time("timestamp", now).
			Float64("rent", 777).Float64("price_per_m2", 19.4).String("neighborhood", "sul"),
	})
	if err != nil || n != 1 {
		t.Fatalf("push: %d, %v", n, err)
	}
	resp, err = c.GetOnlineFeatures(ctx, client.OnlineFeaturesRequest{
		FeatureService: "ranker",
		Entities:       new(client.Columns).Int64("listing_id", 3),
	})
	if err != nil {
		t.Fatal(err)
	}
	if rent, _ := resp.Column("rent"); rent.Values[0] != 777.0 || rent.Statuses[0] != client.StatusPresent {
		t.Errorf("after push: rent %v %v", rent.Values, rent.Statuses)
	}

	// A push to the offline store only: training data has it, serving does not.
	if _, err := c.Push(ctx, client.PushRequest{
		FeatureSet: "listing_profile",
		To:         client.PushOffline,
		Rows: new(client.Columns).Int64("listing_id", 4).Time("timestamp", now).
			Float64("rent", 444).Float64("price_per_m2", 11).String("neighborhood", "norte"),
	}); err != nil {
		t.Fatal(err)
	}
	resp, err = c.GetOnlineFeatures(ctx, client.OnlineFeaturesRequest{
		Features: []string{"listing_profile:rent"},
		Entities: new(client.Columns).Int64("listing_id", 4),
	})
	if err != nil {
		t.Fatal(err)
	}
	if rent, _ := resp.Column("rent"); rent.Statuses[0] != client.StatusNotFound {
		t.Errorf("after an offline-only push: rent %v %v, want NOT_FOUND online", rent.Values, rent.Statuses)
	}
	spine := filepath.Join(dir, "spine.csv")
	at := now.Add(time.Second).Format(time.RFC3339)
	if err := os.WriteFile(spine, []byte("listing_id,ts\n3,"+at+"\n4,"+at+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	train := filepath.Join(dir, "train.csv")
	mustAtrium(t, dir, "historical", "--spine", spine, "--features", "listing_profile:rent,listing_profile:neighborhood", "--out", train)
	got, err := os.ReadFile(train)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{",777,sul", ",444,norte"} {
		if !strings.Contains(strings.ReplaceAll(string(got), ".0,", ","), want) {
			t.Errorf("training set after pushes to the offline store lacks %q:\n%s", want, got)
		}
	}
}
