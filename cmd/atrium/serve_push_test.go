package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/client"
)

// TestServePushGuards: `atrium serve` takes server.push_max_skew from
// atrium.yaml and applies the feature set's checks to pushes, and keys can be
// deleted through it.
func TestServePushGuards(t *testing.T) {
	dir := exampleRepo(t)
	if err := os.WriteFile(filepath.Join(dir, "atrium.yaml"), []byte("server:\n  push_max_skew: 1h\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := atrium(t, "--repo", dir, "apply"); code != exitOK {
		t.Fatalf("apply = %d\n%s\n%s", code, out, errOut)
	}
	c, err := client.New(startServer(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	push := func(id int64, ts time.Time, rent float64) error {
		_, err := c.Push(ctx, client.PushRequest{FeatureSet: "listing_profile",
			Rows: new(client.Columns).Int64("listing_id", id).Time("timestamp", ts).
				Float64("rent", rent).Values("price_per_m2", nil).String("neighborhood", "Mitte")})
		return err
	}
	now := time.Now()
	// 30 minutes ahead: within the configured hour (the default 5m would refuse it).
	if err := push(1, now.Add(30*time.Minute), 1200); err != nil {
		t.Fatalf("push 30m ahead with push_max_skew 1h: %v", err)
	}
	var e *client.Error
	if err := push(1, now.Add(2*time.Hour), 1200); !errors.As(err, &e) || e.StatusCode != 400 || !strings.Contains(e.Message, "plus 1h0m0s") {
		t.Errorf("push 2h ahead: %v, want 400 naming the 1h skew", err)
	}
	if err := push(2, now, 5); !errors.As(err, &e) || e.StatusCode != 422 || !strings.Contains(e.Message, "feature rent = 5 fails between [100, 100000]") {
		t.Errorf("push failing an error check: %v, want 422 naming the row and feature", err)
	}
	if n, err := c.DeleteOnline(ctx, client.DeleteRequest{FeatureSet: "listing_profile", Keys: new(client.Columns).Int64("listing_id", 1)}); err != nil || n != 1 {
		t.Fatalf("DeleteOnline: %d, %v", n, err)
	}
	resp, err := c.GetOnlineFeatures(ctx, client.OnlineFeaturesRequest{
		Features: []string{"listing_profile:rent"}, Entities: new(client.Columns).Int64("listing_id", 1, 2)})
	if err != nil {
		t.Fatal(err)
	}
	if rent, _ := resp.Column("rent"); rent.Statuses[0] != client.StatusNotFound || rent.Statuses[1] != client.StatusNotFound {
		t.Errorf("after the delete and the refused push: %v, want both NOT_FOUND", rent.Statuses)
	}
}
