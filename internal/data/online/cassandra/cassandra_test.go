package cassandra_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/online/cassandra"
	"github.com/atrium-ml/atrium/internal/data/online/onlinetest"
)

// testKeyspace returns a URL builder for a keyspace of this test alone
// (created by the store, dropped when the test ends): urlFor(id, params...)
// names a store whose sets carry the prefix id, so ids are independent stores.
func testKeyspace(t *testing.T) (urlFor func(id string, params ...string) string, keyspace string) {
	t.Helper()
	base := os.Getenv("ATRIUM_TEST_CASSANDRA")
	if base == "" {
		t.Skip("ATRIUM_TEST_CASSANDRA is not set: skipping the Cassandra online store tests (. .ci/cassandra.sh starts a node and sets it)")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("ATRIUM_TEST_CASSANDRA=%q: %v", base, err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	keyspace = strings.Trim(u.Path, "/") + "_" + hex.EncodeToString(b[:])
	t.Cleanup(func() { dropKeyspace(t, u.Host, keyspace) })
	return func(id string, params ...string) string {
		v := *u
		v.Path = "/" + keyspace
		q := v.Query()
		q.Set("create_keyspace", "true")
		q.Set("prefix", id+":")
		for i := 0; i+1 < len(params); i += 2 {
			q.Set(params[i], params[i+1])
		}
		v.RawQuery = q.Encode()
		return v.String()
	}, keyspace
}

func rawSession(t testing.TB, hosts string) *gocql.Session {
	t.Helper()
	c := gocql.NewCluster(strings.Split(hosts, ",")...)
	c.Consistency = gocql.One
	c.Timeout = 30 * time.Second
	s, err := c.CreateSession()
	if err != nil {
		t.Fatalf("connect to %s: %v", hosts, err)
	}
	return s
}

func dropKeyspace(t testing.TB, hosts, keyspace string) {
	s := rawSession(t, hosts)
	defer s.Close()
	if err := s.Query("DROP KEYSPACE IF EXISTS " + keyspace).Exec(); err != nil {
		t.Logf("drop keyspace %s: %v", keyspace, err)
	}
}

func TestConformance(t *testing.T) {
	urlFor, _ := testKeyspace(t)
	onlinetest.Run(t, func(t *testing.T, id string) online.Store {
		s, err := online.Open(context.Background(), urlFor(t.Name()+"/"+id), online.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestSchemaVersion: the store records its schema version when it creates
// the tables, opens a keyspace it migrated before, and refuses one a newer
// binary migrated.
func TestSchemaVersion(t *testing.T) {
	urlFor, keyspace := testKeyspace(t)
	ctx := context.Background()
	open := func() (online.Store, error) { return online.Open(ctx, urlFor("v"), online.OpenOptions{}) }
	s, err := open()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	u, _ := url.Parse(os.Getenv("ATRIUM_TEST_CASSANDRA"))
	raw := rawSession(t, u.Host)
	defer raw.Close()
	var v int
	if err := raw.Query("SELECT version FROM " + keyspace + ".atrium_schema WHERE component = 'online'").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != cassandra.SchemaVersion {
		t.Fatalf("stored schema version %d, want %d", v, cassandra.SchemaVersion)
	}
	s, err = open() // already migrated: opens as is
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	s.Close()
	if err := raw.Query("UPDATE "+keyspace+".atrium_schema SET version = ? WHERE component = 'online'", cassandra.SchemaVersion+1).Exec(); err != nil {
		t.Fatal(err)
	}
	if _, err := open(); !errors.Is(err, online.ErrFormat) || !strings.Contains(err.Error(), "upgrade atrium") {
		t.Fatalf("open of a keyspace at a newer schema version: %v, want ErrFormat asking for an upgrade", err)
	}
}

// TestMissingKeyspace: without create_keyspace the store does not create
// the keyspace (the operator chooses its replication) and says so.
func TestMissingKeyspace(t *testing.T) {
	urlFor, keyspace := testKeyspace(t)
	_, err := online.Open(context.Background(), urlFor("m", "create_keyspace", "false"), online.OpenOptions{})
	if !errors.Is(err, online.ErrInvalid) || !strings.Contains(err.Error(), keyspace+" does not exist") {
		t.Fatalf("open of a missing keyspace: %v, want ErrInvalid naming %s", err, keyspace)
	}
}

// TestRowTTL: rows get the CQL TTL of their set's ttl counted from their
// event time, of key_ttl counted from the write, the earlier of the two, or
// none; a row past its set's ttl goes within seconds.
func TestRowTTL(t *testing.T) {
	urlFor, keyspace := testKeyspace(t)
	ctx := context.Background()
	u, _ := url.Parse(os.Getenv("ATRIUM_TEST_CASSANDRA"))
	raw := rawSession(t, u.Host)
	defer raw.Close()
	sets := map[string]time.Duration{"day": 24 * time.Hour, "hour": time.Hour, "forever": 0}
	now := time.Now()
	tests := []struct {
		name     string
		keyTTL   string // URL option; "" for none
		set      string
		age      time.Duration // now - event time
		min, max int           // the TTL read back, in seconds
	}{
		{"set ttl from event time", "", "day", 6 * time.Hour, 18*3600 - 60, 18 * 3600},
		{"set ttl of a fresh row", "", "hour", 0, 3600 - 60, 3600},
		{"past its ttl: one second, not forever", "", "hour", 2 * time.Hour, 0, 1},
		{"no ttl, no key_ttl: never", "", "forever", time.Hour, 0, 0},
		{"key_ttl alone", "10m", "forever", time.Hour, 600 - 60, 600},
		{"key_ttl earlier than the set's", "10m", "day", 0, 600 - 60, 600},
		{"set's earlier than key_ttl", "48h", "hour", 30 * time.Minute, 1800 - 60, 1800},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("t%d", i)
			var params []string
			if tc.keyTTL != "" {
				params = []string{"key_ttl", tc.keyTTL}
			}
			s, err := online.Open(ctx, urlFor(id, params...), online.OpenOptions{TTL: sets})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			k := online.MustKey("k")
			if err := s.Write(ctx, tc.set, []string{"a"}, []online.Row{{Key: k, TS: now.Add(-tc.age), Values: []online.Value{online.Int64(1)}}}); err != nil {
				t.Fatal(err)
			}
			var ttl int
			err = raw.Query("SELECT TTL(vals) FROM "+keyspace+".online_rows WHERE feature_set = ? AND entity_key = ? LIMIT 1", id+":"+tc.set, []byte(k)).Scan(&ttl)
			if errors.Is(err, gocql.ErrNotFound) && tc.max == 1 {
				return // its second has already run out
			}
			if err != nil {
				t.Fatal(err)
			}
			if ttl < tc.min || ttl > tc.max {
				t.Fatalf("TTL %d s, want %d..%d", ttl, tc.min, tc.max)
			}
		})
	}
	t.Run("expired rows read as not found", func(t *testing.T) {
		s, err := online.Open(ctx, urlFor("exp"), online.OpenOptions{TTL: sets})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		old, fresh := online.MustKey("old"), online.MustKey("fresh")
		rows := []online.Row{
			{Key: old, TS: now.Add(-2 * time.Hour), Values: []online.Value{online.Int64(1)}},
			{Key: fresh, TS: now, Values: []online.Value{online.Int64(2)}},
		}
		if err := s.Write(ctx, "hour", []string{"a"}, rows); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2500 * time.Millisecond) // the old row's 1 s TTL runs out
		res := make([]online.Result, 1)
		if err := s.Read(ctx, []online.Query{{Set: "hour", Features: []string{"a"}, Keys: []online.Key{old, fresh}}}, res); err != nil {
			t.Fatal(err)
		}
		if res[0].Found[0] || !res[0].Found[1] {
			t.Fatalf("found %v, want the expired key gone and the fresh one there", res[0].Found)
		}
	})
	if _, err := online.Open(ctx, urlFor("neg"), online.OpenOptions{TTL: map[string]time.Duration{"s": -time.Second}}); !errors.Is(err, online.ErrInvalid) {
		t.Errorf("a negative ttl: %v, want ErrInvalid", err)
	}
}

func TestBadURL(t *testing.T) {
	tests := []struct {
		url  string
		want []string
	}{
		{"cassandra://127.0.0.1/", []string{`keyspace ""`}},
		{"cassandra://127.0.0.1/ks-1", []string{`keyspace "ks-1"`}},
		{"cassandra://127.0.0.1/ks?consistency=MOST", []string{`consistency="MOST"`}},
		{"cassandra://127.0.0.1/ks?timeout=soon&key_ttl=-1s", []string{`timeout="soon"`, `key_ttl="-1s"`}},
		{"cassandra://127.0.0.1/ks?replication=3", []string{`unknown option "replication"`}},
		{"cassandra://a,,b/ks?create_keyspace=maybe&replication_factor=0", []string{"an empty host", `create_keyspace="maybe"`, `replication_factor="0"`}},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, err := online.Open(context.Background(), tt.url, online.OpenOptions{})
			if !errors.Is(err, online.ErrInvalid) {
				t.Fatalf("Open(%s): %v, want ErrInvalid", tt.url, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open(%s): %v, want it to name %s", tt.url, err, w)
				}
			}
		})
	}
}
