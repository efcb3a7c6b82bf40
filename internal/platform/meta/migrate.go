package meta

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Migration is one versioned schema change of a component.
type Migration struct {
	// Version orders the component's migrations; it starts at 1 and never changes once released.
	Version int
	// Name describes the change ("create runs").
	Name string
	// Statements run in order inside one transaction, with the bookkeeping row.
	Statements []string
	// Postgres, when set, replaces Statements on PostgreSQL (for the rare DDL the
	// two engines spell differently, such as BLOB vs BYTEA).
	Postgres []string
}

var (
	registryMu sync.Mutex
	registry   = map[string][]Migration{}
)

// Register adds the migrations of a component (e.g. "tracking"). Call it from an init
// function. It panics on a duplicate or non-increasing version, a programming error.
func Register(component string, migrations ...Migration) {
	registryMu.Lock()
	defer registryMu.Unlock()
	list := append(registry[component], migrations...)
	for i := range list {
		if list[i].Version != i+1 {
			panic(fmt.Sprintf("meta: component %q migration %q has version %d, want %d", component, list[i].Name, list[i].Version, i+1))
		}
	}
	registry[component] = list
}

// ErrSchemaTooNew is returned when the database holds migrations this binary does not know.
var ErrSchemaTooNew = fmt.Errorf("metadata schema is newer than this atrium binary")

// Migrate applies every registered migration the database has not seen yet.
// Each migration commits atomically with its bookkeeping row; concurrent callers
// (two processes starting at once) serialize on a lock and skip applied versions.
func (db *DB) Migrate(ctx context.Context) error {
	if _, err := db.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		component TEXT NOT NULL,
		version BIGINT NOT NULL,
		name TEXT NOT NULL,
		applied_at BIGINT NOT NULL,
		PRIMARY KEY (component, version))`); err != nil {
		// Two PostgreSQL sessions racing on CREATE TABLE IF NOT EXISTS can collide on the
		// catalog's unique index; the table exists afterwards either way.
		if !IsConflict(err) {
			return fmt.Errorf("migrate %s: create schema_migrations: %w", db.URL, err)
		}
	}
	registryMu.Lock()
	components := make([]string, 0, len(registry))
	for c := range registry {
		components = append(components, c)
	}
	sort.Strings(components)
	plan := make(map[string][]Migration, len(registry))
	for _, c := range components {
		plan[c] = append([]Migration(nil), registry[c]...)
	}
	registryMu.Unlock()

	for _, c := range components {
		if err := db.migrateComponent(ctx, c, plan[c]); err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) migrateComponent(ctx context.Context, component string, migrations []Migration) error {
	var newest int
	if err := db.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE component = ?`, component).Scan(&newest); err != nil {
		return fmt.Errorf("migrate %s: read %s schema version: %w", db.URL, component, err)
	}
	if newest > len(migrations) {
		return fmt.Errorf("migrate %s: %w: component %q is at version %d, this binary knows %d", db.URL, ErrSchemaTooNew, component, newest, len(migrations))
	}
	for _, m := range migrations[newest:] {
		err := db.InTx(ctx, func(tx *Tx) error {
			if db.Dialect == Postgres {
				// Serialize concurrent migrators; the lock is released at commit.
				if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(4242)`); err != nil {
					return err
				}
			}
			var done int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE component = ? AND version = ?`, component, m.Version).Scan(&done); err != nil {
				return err
			}
			if done > 0 {
				return nil // another process applied it while we waited for the lock
			}
			stmts := m.Statements
			if db.Dialect == Postgres && m.Postgres != nil {
				stmts = m.Postgres
			}
			for _, s := range stmts {
				if _, err := tx.Exec(ctx, s); err != nil {
					return fmt.Errorf("%q: %w", firstLine(s), err)
				}
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (component, version, name, applied_at) VALUES (?, ?, ?, ?)`,
				component, m.Version, m.Name, time.Now().UnixMilli())
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate %s: %s v%d (%s): %w", db.URL, component, m.Version, m.Name, err)
		}
	}
	return nil
}

// SchemaVersion returns the newest applied migration version of a component (0 if none).
func (db *DB) SchemaVersion(ctx context.Context, component string) (int, error) {
	var v int
	err := db.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE component = ?`, component).Scan(&v)
	return v, err
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}
