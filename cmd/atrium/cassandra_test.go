package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/atrium-ml/atrium/internal/data/online/onlinetest"
)

// TestMaterializeToCassandraExpiresWithTTL materializes the sample project
// into Cassandra (ATRIUM_ONLINE) and reads the rows' CQL TTLs back: each
// listing_profile row expires when its event time plus the set's ttl (90d)
// passes, so `atrium materialize` hands the applied sets' ttl to the store.
func TestMaterializeToCassandraExpiresWithTTL(t *testing.T) {
	base := os.Getenv("ATRIUM_TEST_CASSANDRA")
	if base == "" {
		t.Skip("ATRIUM_TEST_CASSANDRA is unset: no Cassandra node (. .ci/cassandra.sh starts one)")
	}
	onlinetest.LockNode(t, "cassandra", false) // not while the cassandra package's fault test pauses the node
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("ATRIUM_TEST_CASSANDRA=%q: %v", base, err)
	}
	keyspace := fmt.Sprintf("%s_cmd%d", strings.Trim(u.Path, "/"), time.Now().UnixNano()%1e9)
	c := gocql.NewCluster(strings.Split(u.Host, ",")...)
	c.Consistency = gocql.One
	c.Timeout = 30 * time.Second
	raw, err := c.CreateSession()
	if err != nil {
		t.Fatalf("connect to %s: %v", u.Host, err)
	}
	defer raw.Close()
	t.Cleanup(func() { _ = raw.Query("DROP KEYSPACE IF EXISTS " + keyspace).Exec() })
	store := *u
	store.Path = "/" + keyspace
	store.RawQuery = "create_keyspace=true"
	t.Setenv("ATRIUM_ONLINE", store.String())

	// Sessions from five days ago, so the rows are days old, not months.
	day := time.Now().UTC().Truncate(24 * time.Hour)
	start := day.AddDate(0, 0, -5)
	dir := filepath.Join(t.TempDir(), "p")
	d := func(t time.Time) string { return t.Format(time.DateOnly) }
	mustAtrium(t, ".", "init", dir, "--start", d(start))
	mustAtrium(t, dir, "apply")
	mustAtrium(t, dir, "run", "listing_profile", "--start", d(start.AddDate(0, 0, -90)), "--end", d(start.AddDate(0, 0, 4)))
	end := start.AddDate(0, 0, 4)
	out := mustAtrium(t, dir, "materialize", "listing_profile", "--end", end.Format(time.RFC3339))
	if !strings.Contains(out, "listing_profile") {
		t.Fatalf("materialize printed %q", out)
	}

	iter := raw.Query("SELECT event_ns, TTL(vals) FROM " + keyspace + ".online_rows WHERE feature_set = 'listing_profile' ALLOW FILTERING").Iter()
	now := time.Now()
	var ns int64
	var ttl, rows int
	for iter.Scan(&ns, &ttl) {
		rows++
		want := time.Unix(0, ns).Add(90 * 24 * time.Hour).Sub(now).Seconds()
		if want <= 1 && ttl <= 1 {
			continue // already past its max age: written for a second
		}
		if ttl <= 0 || float64(ttl) > want+120 || float64(ttl) < want-120 {
			t.Fatalf("row at %s: TTL %d s, want about %.0f s (event time + 90d - now)", time.Unix(0, ns).UTC(), ttl, want)
		}
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
	if rows == 0 {
		t.Fatalf("no listing_profile rows in %s.online_rows after: %s", keyspace, out)
	}
}
