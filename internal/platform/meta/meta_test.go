package meta_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
)

// widgets is the schema of the tests' component.
var widgets = meta.Schema{Component: "metatest_widgets", Migrations: []meta.Migration{
	{Version: 1, Name: "create widgets", Statements: []string{
		`CREATE TABLE widgets (name TEXT PRIMARY KEY, size BIGINT NOT NULL, note TEXT)`,
	}},
	{Version: 2, Name: "add weight", Statements: []string{
		`ALTER TABLE widgets ADD COLUMN weight DOUBLE PRECISION`,
	}},
}}

// TestOpenRejectsBadSchemas: schemas that would corrupt the bookkeeping are
// refused before the database is touched, every problem named.
func TestOpenRejectsBadSchemas(t *testing.T) {
	gap := meta.Schema{Component: "gap", Migrations: []meta.Migration{{Version: 1, Name: "a"}, {Version: 3, Name: "c"}}}
	for _, tc := range []struct {
		name    string
		schemas []meta.Schema
		want    []string
	}{
		{"twice", []meta.Schema{widgets, widgets}, []string{`component "metatest_widgets" is passed twice`}},
		{"gap", []meta.Schema{gap}, []string{`component "gap" migration "c" has version 3, want 2`}},
		{"unnamed and gap", []meta.Schema{{}, gap}, []string{"no component name", `"gap" migration "c"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "meta.db")
			db, err := meta.Open(context.Background(), "sqlite://"+path, tc.schemas...)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if _, statErr := os.Stat(path); !errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("the database file was created (%v)", statErr)
			}
		})
	}
}

func TestRebind(t *testing.T) {
	pg := &meta.DB{Dialect: meta.Postgres}
	lite := &meta.DB{Dialect: meta.SQLite}
	tests := []struct{ in, pg, lite string }{
		{"SELECT 1", "SELECT 1", "SELECT 1"},
		{"a = ? AND b = ?", "a = $1 AND b = $2", "a = ? AND b = ?"},
		{"x = '?' AND y = ?", "x = '?' AND y = $1", "x = '?' AND y = ?"},
		{"x = 'it''s?' AND y IN (?, ?)", "x = 'it''s?' AND y IN ($1, $2)", "x = 'it''s?' AND y IN (?, ?)"},
	}
	for _, tt := range tests {
		if got := pg.Rebind(tt.in); got != tt.pg {
			t.Errorf("postgres Rebind(%q) = %q, want %q", tt.in, got, tt.pg)
		}
		if got := lite.Rebind(tt.in); got != tt.lite {
			t.Errorf("sqlite Rebind(%q) = %q, want %q", tt.in, got, tt.lite)
		}
	}
}

func TestOpenRejectsUnknownScheme(t *testing.T) {
	for _, u := range []string{"mysql://x", "redis://localhost", "sqlite://"} {
		if db, err := meta.Open(context.Background(), u); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded, want an error", u)
		}
	}
	_, err := meta.Open(context.Background(), "mysql://x")
	if !errors.Is(err, meta.ErrUnsupportedURL) {
		t.Errorf("Open(mysql://x) error = %v, want ErrUnsupportedURL", err)
	}
}

func TestConformance(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		if v, err := db.SchemaVersion(ctx, "metatest_widgets"); err != nil || v != 2 {
			t.Fatalf("SchemaVersion = %d, %v; want 2", v, err)
		}
		// Migrating again is a no-op.
		if err := db.Migrate(ctx, widgets); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		if _, err := db.Exec(ctx, `INSERT INTO widgets (name, size, weight) VALUES (?, ?, ?)`, "a", 1, 0.5); err != nil {
			t.Fatalf("insert: %v", err)
		}
		_, err := db.Exec(ctx, `INSERT INTO widgets (name, size) VALUES (?, ?)`, "a", 2)
		if !errors.Is(err, meta.ErrConflict) {
			t.Fatalf("duplicate insert error = %v, want ErrConflict", err)
		}
		// A failed transaction leaves nothing behind.
		boom := errors.New("boom")
		err = db.InTx(ctx, func(tx *meta.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO widgets (name, size) VALUES (?, ?)`, "b", 3); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx error = %v, want boom", err)
		}
		// Upsert syntax shared by both engines.
		if _, err := db.Exec(ctx, `INSERT INTO widgets (name, size) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET size = excluded.size`, "a", 7); err != nil {
			t.Fatalf("upsert: %v", err)
		}
		var n, size int
		if err := db.QueryRow(ctx, `SELECT COUNT(*), MAX(size) FROM widgets`).Scan(&n, &size); err != nil {
			t.Fatal(err)
		}
		if n != 1 || size != 7 {
			t.Fatalf("widgets: count=%d max(size)=%d, want 1 and 7", n, size)
		}
	}, widgets)
}

// TestLikeIsCaseSensitive: LIKE means the same on both engines (SQLite's is
// case-insensitive unless told otherwise).
func TestLikeIsCaseSensitive(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		var plain, lower int
		if err := db.QueryRow(ctx, `SELECT CASE WHEN 'Abc' LIKE 'a%' THEN 1 ELSE 0 END, CASE WHEN LOWER('Abc') LIKE LOWER('a%') THEN 1 ELSE 0 END`).Scan(&plain, &lower); err != nil {
			t.Fatal(err)
		}
		if plain != 0 || lower != 1 {
			t.Fatalf("'Abc' LIKE 'a%%' = %d (want 0), lower-cased = %d (want 1)", plain, lower)
		}
	}, widgets)
}

func TestSchemaTooNewIsRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := meta.Open(ctx, "sqlite://"+path, widgets)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO schema_migrations (component, version, name, applied_at) VALUES ('metatest_widgets', 99, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err := meta.Open(ctx, "sqlite://"+path, widgets); !errors.Is(err, meta.ErrSchemaTooNew) {
		if db != nil {
			db.Close()
		}
		t.Fatalf("reopen error = %v, want ErrSchemaTooNew", err)
	}
}

// TestConcurrentTransactions: many concurrent writers all commit (SQLite queues
// them in-process, PostgreSQL runs them side by side), and a writer whose
// context ends while it waits gives up with the context's error.
func TestConcurrentTransactions(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		const writers = 16
		errs := make(chan error, writers)
		for i := 0; i < writers; i++ {
			go func(i int) {
				errs <- db.InTx(ctx, func(tx *meta.Tx) error {
					_, err := tx.Exec(ctx, `INSERT INTO widgets (name, size) VALUES (?, ?)`, fmt.Sprintf("c%d", i), i)
					return err
				})
			}(i)
		}
		for i := 0; i < writers; i++ {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM widgets WHERE name LIKE 'c%'`).Scan(&n); err != nil || n != writers {
			t.Fatalf("committed rows = %d, %v; want %d", n, err, writers)
		}
		if db.Dialect != meta.SQLite {
			return
		}
		hold := make(chan struct{})
		held := make(chan struct{})
		go func() {
			_ = db.InTx(ctx, func(tx *meta.Tx) error {
				close(held)
				<-hold
				return nil
			})
		}()
		<-held
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		err := db.InTx(short, func(tx *meta.Tx) error { return nil })
		close(hold)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("waiting writer error = %v, want context.DeadlineExceeded", err)
		}
	}, widgets)
}

// TestSQLiteKeepsReadConnections: read connections that were in use at the
// same time stay open for the next queries instead of being closed as they
// are released (each reopened connection parses the schema again and starts
// with an empty page cache).
func TestSQLiteKeepsReadConnections(t *testing.T) {
	ctx := context.Background()
	db, err := meta.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "m.db"), widgets)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const concurrent = 20
	// Open rows hold their connection: 20 of them need 20 connections.
	var held []interface{ Close() error }
	for range concurrent {
		rows, err := db.Query(ctx, `SELECT name FROM widgets`)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, rows)
	}
	for _, r := range held {
		r.Close()
	}
	st := db.Stats()
	if st.Idle != concurrent || st.MaxIdleClosed != 0 {
		t.Fatalf("after %d concurrent reads: %d idle connections, %d closed as surplus; want %d and 0", concurrent, st.Idle, st.MaxIdleClosed, concurrent)
	}
}

// TestPostgresJITOffByDefault: connections run with jit=off unless the URL
// sets jit itself.
func TestPostgresJITOffByDefault(t *testing.T) {
	base := metatest.PostgresURL(t)
	for _, tc := range []struct{ query, want string }{{"", "off"}, {"jit=on", "on"}, {"jit=off", "off"}} {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if tc.query != "" {
			q.Set("jit", strings.TrimPrefix(tc.query, "jit="))
		}
		u.RawQuery = q.Encode()
		db, err := meta.Open(context.Background(), u.String())
		if err != nil {
			t.Fatal(err)
		}
		var got string
		err = db.QueryRow(context.Background(), `SHOW jit`).Scan(&got)
		db.Close()
		if err != nil || got != tc.want {
			t.Errorf("URL query %q: jit = %q (%v), want %q", tc.query, got, err, tc.want)
		}
	}
}

// TestPostgresConcurrentMigrations: processes starting at once on a fresh
// database (each its own connection pool here) all migrate it without an
// error. Before the bookkeeping table was created under the migrators' lock,
// one opener in a few dozen failed with "relation schema_migrations already
// exists" (42P07) or "type schema_migrations already exists" (42710); eight
// openers a round over ten rounds made that all but certain.
func TestPostgresConcurrentMigrations(t *testing.T) {
	const openers, rounds = 8, 10
	for round := range rounds {
		url := metatest.PostgresURL(t)
		errs := make(chan error, openers)
		start := make(chan struct{})
		for range openers {
			go func() {
				<-start
				db, err := meta.Open(context.Background(), url, widgets)
				if err == nil {
					db.Close()
				}
				errs <- err
			}()
		}
		close(start)
		for range openers {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}
