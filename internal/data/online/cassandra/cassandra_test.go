package cassandra_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
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

// TestKeyTTL: key_ttl becomes the rows' CQL TTL.
func TestKeyTTL(t *testing.T) {
	urlFor, keyspace := testKeyspace(t)
	ctx := context.Background()
	s, err := online.Open(ctx, urlFor("ttl", "key_ttl", "1h"), online.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := online.MustKey("k")
	if err := s.Write(ctx, "s", []string{"a"}, []online.Row{{Key: k, TS: time.Now(), Values: []online.Value{online.Int64(1)}}}); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(os.Getenv("ATRIUM_TEST_CASSANDRA"))
	raw := rawSession(t, u.Host)
	defer raw.Close()
	var ttl int
	if err := raw.Query("SELECT TTL(vals) FROM "+keyspace+".online_rows WHERE feature_set = ? AND entity_key = ? LIMIT 1", "ttl:s", []byte(k)).Scan(&ttl); err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > 3600 {
		t.Fatalf("TTL of a row written with key_ttl=1h: %d s", ttl)
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
