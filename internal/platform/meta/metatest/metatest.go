// Package metatest gives tests a fresh metadata database on every engine available:
// SQLite always, PostgreSQL when ATRIUM_TEST_POSTGRES holds a server URL
// (e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable; .ci/run sets it).
// Each call creates a new, empty database and drops it when the test ends.
package metatest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/atrium-ml/atrium/internal/platform/meta"
)

// PostgresEnv names the environment variable holding the test PostgreSQL server URL.
const PostgresEnv = "ATRIUM_TEST_POSTGRES"

// ForEach runs fn as a subtest once per available engine ("sqlite", "postgres"),
// each with a fresh database migrated to schemas. Locally, without ATRIUM_TEST_POSTGRES,
// the postgres subtest is skipped with a message.
func ForEach(t *testing.T, fn func(t *testing.T, db *meta.DB), schemas ...meta.Schema) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t, schemas...)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t, schemas...)) })
}

// SQLite returns a fresh SQLite database in a temporary directory, migrated to schemas.
func SQLite(t testing.TB, schemas ...meta.Schema) *meta.DB {
	t.Helper()
	db, err := meta.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "meta.db"), schemas...)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// PostgresURL creates a fresh, empty PostgreSQL database and returns its URL; it is
// dropped when the test ends. The test is skipped when ATRIUM_TEST_POSTGRES is unset.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skipf("%s is not set: skipping the PostgreSQL run (.ci/run starts a server and sets it)", PostgresEnv)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", PostgresEnv, err)
	}
	defer admin.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "atrium_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer admin.Close()
		_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresEnv, err)
	}
	u.Path = "/" + name
	return u.String()
}

// Postgres returns a fresh PostgreSQL database migrated to schemas (see PostgresURL).
func Postgres(t testing.TB, schemas ...meta.Schema) *meta.DB {
	t.Helper()
	db, err := meta.Open(context.Background(), PostgresURL(t), schemas...)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
