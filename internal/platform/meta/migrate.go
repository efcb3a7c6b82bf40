package meta

import (
	"context"
	"fmt"
	"strings"
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

// Schema is the migrations of one component ("tracking", "features", ...):
// the tables it owns. Components export theirs (tracking.Schema, ...) and the
// program that opens the database passes every schema it uses to Open.
type Schema struct {
	// Component names the schema in schema_migrations; it never changes once released.
	Component string
	// Migrations in order: Migrations[i].Version is i+1.
	Migrations []Migration
}

// validate reports schemas that would break the bookkeeping: a missing or
// repeated component name, versions out of order.
func validateSchemas(schemas []Schema) error {
	var problems []string
	seen := make(map[string]bool, len(schemas))
	for _, s := range schemas {
		if s.Component == "" {
			problems = append(problems, "a schema has no component name")
			continue
		}
		if seen[s.Component] {
			problems = append(problems, fmt.Sprintf("component %q is passed twice", s.Component))
		}
		seen[s.Component] = true
		for i, m := range s.Migrations {
			if m.Version != i+1 {
				problems = append(problems, fmt.Sprintf("component %q migration %q has version %d, want %d", s.Component, m.Name, m.Version, i+1))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("meta: invalid schemas:\n%s", strings.Join(problems, "\n"))
	}
	return nil
}

// ErrSchemaTooNew is returned when the database holds migrations this binary does not know.
var ErrSchemaTooNew = fmt.Errorf("metadata schema is newer than this atrium binary")

// Migrate applies every migration of schemas the database has not seen yet,
// schema by schema in the order given.
// Each migration commits atomically with its bookkeeping row; concurrent callers
// (two processes starting at once) serialize on a lock and skip applied versions.
func (db *DB) Migrate(ctx context.Context, schemas ...Schema) error {
	if err := validateSchemas(schemas); err != nil {
		return err
	}
	// On PostgreSQL the table is created under the migrators' lock: two
	// sessions running CREATE TABLE IF NOT EXISTS at once can both pass the
	// existence check, and the later one then fails with duplicate_table
	// (42P07), duplicate_object (42710) or a unique violation in the
	// catalog (23505).
	err := db.InTx(ctx, func(tx *Tx) error {
		if err := lockMigrations(ctx, db, tx); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		component TEXT NOT NULL,
		version BIGINT NOT NULL,
		name TEXT NOT NULL,
		applied_at BIGINT NOT NULL,
		PRIMARY KEY (component, version))`)
		return err
	})
	if err != nil {
		return fmt.Errorf("migrate %s: create schema_migrations: %w", db.URL, err)
	}
	for _, sc := range schemas {
		if err := db.migrateComponent(ctx, sc.Component, sc.Migrations); err != nil {
			return err
		}
	}
	return nil
}

// lockMigrations serializes concurrent migrators on PostgreSQL for the rest
// of tx: the lock is released at commit or rollback. SQLite transactions
// that write are serialized already.
func lockMigrations(ctx context.Context, db *DB, tx *Tx) error {
	if db.Dialect != Postgres {
		return nil
	}
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(4242)`)
	return err
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
			if err := lockMigrations(ctx, db, tx); err != nil {
				return err
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
