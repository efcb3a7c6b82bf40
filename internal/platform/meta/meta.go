// Package meta is Atrium's metadata database: one schema, versioned migrations,
// the same SQL on SQLite (the embedded default) and PostgreSQL (scale-out).
//
// Components (feature registry, tracking, model registry, ...) export their
// migrations as a Schema; Open applies every pending migration of the schemas
// it is given before it returns, so a *DB handed out is at the newest version
// of each.
//
// Queries are written once with '?' placeholders and the portable subset of SQL
// both engines share (TEXT, BIGINT, DOUBLE PRECISION, INSERT ... ON CONFLICT).
// DB.Rebind turns '?' into '$n' for PostgreSQL; the Exec/Query helpers do it for you.
// LIKE is case-sensitive on both engines; write LOWER(x) LIKE LOWER(?) for the
// case-insensitive match (PostgreSQL's ILIKE does not exist on SQLite).
package meta

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/atrium-ml/atrium/internal/platform/storeurl"
)

// sqliteDriver is mattn/go-sqlite3 with per-connection settings its DSN cannot
// express. wal_autocheckpoint: at the default (1,000 pages, 4 MB of WAL) a
// commit that crosses the mark copies the WAL into the database and fsyncs it;
// writes that touch many pages (a batch of 500 distinct metric keys touches
// ~500) would then checkpoint every other commit. 16,384 pages (64 MB) makes that
// pause rare and writes a page changed by many commits once. journal_size_limit
// truncates the WAL back to 64 MB after a checkpoint.
const sqliteDriver = "sqlite3_atrium"

func init() {
	sql.Register(sqliteDriver, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		_, err := c.Exec("PRAGMA wal_autocheckpoint = 16384; PRAGMA journal_size_limit = 67108864; PRAGMA cache_size = -"+
			strconv.Itoa(sqliteCacheKiB), nil)
		return err
	}})
}

// sqliteCacheKiB is each SQLite connection's page cache (SQLite's default is
// 2 MiB). A log-batch of 500 metric keys into one run dirties ~500 leaf pages
// of the history, ~2 MiB: with the default cache every batch re-reads them
// through the WAL index. The cache costs memory only as pages are used.
const sqliteCacheKiB = 64 << 10

// sqliteIdleConns is how many idle SQLite read connections are kept open:
// more than the concurrent requests a busy server answers (tens), so they
// are reused rather than reopened; sqliteIdleTime is how long one stays idle
// before it is closed.
const (
	sqliteIdleConns = 32
	sqliteIdleTime  = time.Minute
)

// sqliteBusyTimeout bounds how long a SQLite writer waits for the write lock.
const sqliteBusyTimeout = 10 * time.Second

// Dialect names the SQL engine behind a DB.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Sentinel errors. Callers check them with errors.Is.
var (
	// ErrUnsupportedURL is returned by Open for a URL whose scheme names no metadata engine.
	ErrUnsupportedURL = errors.New("unsupported metadata store URL")
	// ErrConflict reports a unique-constraint violation (the row already exists).
	ErrConflict = errors.New("already exists")
	// ErrBusy reports that a SQLite write transaction could not start in time.
	ErrBusy = errors.New("database is busy")
	// ErrInvalidData reports a value the engine refuses to store: PostgreSQL's
	// data exceptions (SQLSTATE class 22: a NUL byte in text, a number out of
	// range) and program limits (class 54: an index entry over ~2.7 kB). The
	// caller's input, not a server fault.
	ErrInvalidData = errors.New("invalid data")
)

// DB is a metadata database. It is safe for concurrent use. Queries go through
// its methods, which rebind '?' placeholders for the dialect and classify
// driver errors (ErrConflict, ErrInvalidData).
type DB struct {
	// sql is the pool for reads (and, on PostgreSQL, for transactions too).
	sql     *sql.DB
	Dialect Dialect
	// URL is the URL the DB was opened with, with any password redacted.
	URL string

	// writers, on SQLite, admits one transaction at a time in this process.
	// SQLite allows one writer anyway (every InTx begins IMMEDIATE); queueing
	// here wakes the next writer as soon as the previous one commits, where
	// SQLite's busy handler would have it sleep and poll (tens of milliseconds
	// of tail latency under concurrent writers). nil means no queue.
	writers chan struct{}
	// tx, on SQLite, is a pool of one connection that runs every InTx
	// transaction (on PostgreSQL it is the DB itself). SQLite empties a
	// connection's page cache whenever another connection changed the file
	// since its last transaction: with writers taking turns on the pool's
	// connections, each began cold and re-read the pages it was about to
	// change. One writing connection keeps them cached from one transaction to
	// the next (20 writers of 500-key batches: about twice the batches per second).
	tx *sql.DB

	// queueMu guards queue: SQLite transactions waiting for db.writers.
	queueMu sync.Mutex
	queue   []*txRequest
}

// Open connects to the metadata store named by rawURL and applies the pending
// migrations of schemas, in the order given.
//
//	sqlite://relative/or/absolute/path.db  (sqlite:///abs/path.db also works; parent dirs are created)
//	sqlite://:memory:                      (a private in-memory DB, for tests)
//	postgres://user:pass@host:5432/db?sslmode=disable  (postgresql:// too)
func Open(ctx context.Context, rawURL string, schemas ...Schema) (*DB, error) {
	if err := validateSchemas(schemas); err != nil {
		return nil, err
	}
	db, err := open(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, schemas...); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func open(ctx context.Context, rawURL string) (*DB, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("metadata store URL %q: %w", rawURL, err)
	}
	var db *DB
	switch u.Scheme {
	case "sqlite", "sqlite3":
		// A raw '#' would silently cut the path short: refuse it (storeurl
		// catches a fragment; a trailing '#' leaves none to see).
		if strings.HasSuffix(rawURL, "#") {
			return nil, fmt.Errorf("metadata store URL %q: '#' starts a URL fragment; write it %%23 in a path", rawURL)
		}
		path, err := storeurl.LocalPath(u)
		if err != nil {
			return nil, fmt.Errorf("metadata store URL %q: %w", rawURL, err)
		}
		// SQLite reads "file:" names as URIs, decoding %XX and stopping at '?' and
		// '#': the path is escaped again for it.
		dsn := "file:" + (&url.URL{Path: filepath.ToSlash(path)}).EscapedPath()
		if path == ":memory:" {
			// A shared cache keeps one in-memory DB across the pool's connections.
			dsn = fmt.Sprintf("file:memdb%d?mode=memory&cache=shared", time.Now().UnixNano())
		} else if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("metadata store %s: %w", path, err)
		}
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		// WAL lets readers run beside the single writer; _txlock=immediate takes the
		// write lock at BEGIN so two writers queue on busy_timeout instead of
		// deadlocking on a read->write lock upgrade. _cslike makes LIKE case-sensitive,
		// as it is on PostgreSQL, so a query means the same on both engines. The
		// statement cache keeps each connection's recent prepared statements: hot
		// queries (a 500-row insert is a long statement) are parsed once.
		dsn += sep + fmt.Sprintf("_journal_mode=WAL&_busy_timeout=%d&", sqliteBusyTimeout.Milliseconds()) + "_foreign_keys=on&_synchronous=NORMAL&_txlock=immediate&_cslike=1&_stmt_cache_size=128"
		raw, err := sql.Open(sqliteDriver, dsn)
		if err != nil {
			return nil, fmt.Errorf("open metadata store %s: %w", path, err)
		}
		w, err := sql.Open(sqliteDriver, dsn)
		if err != nil {
			raw.Close()
			return nil, fmt.Errorf("open metadata store %s: %w", path, err)
		}
		// Readers keep their connections: database/sql keeps 2 idle ones by
		// default and closes the others as queries end, so under concurrent
		// reads nearly every query opened a new connection, which parses the
		// schema again, prepares its statements again and starts with an
		// empty page cache (20 concurrent 1,000-run searches: about one
		// connection closed a search, 11% more CPU). A connection's cache
		// holds only the pages it read (at most sqliteCacheKiB); one idle for
		// sqliteIdleTime is closed, returning a burst's memory.
		raw.SetMaxIdleConns(sqliteIdleConns)
		raw.SetConnMaxIdleTime(sqliteIdleTime)
		w.SetMaxOpenConns(1)
		w.SetMaxIdleConns(1)
		db = &DB{sql: raw, Dialect: SQLite, URL: rawURL, writers: make(chan struct{}, 1), tx: w}
	case "postgres", "postgresql":
		// JIT off unless the URL says otherwise: metadata statements are
		// short, and PostgreSQL compiles a plan whose estimated cost passes
		// jit_above_cost, which the planner's guesses on small, never analyzed
		// tables reach easily: a search with 200 filter conditions spent 4.4 s
		// compiling for 16 ms of work. pgx passes unknown URL parameters to the
		// server as settings.
		if q := u.Query(); !q.Has("jit") {
			q.Set("jit", "off")
			withJIT := *u
			withJIT.RawQuery = q.Encode()
			rawURL = withJIT.String()
		}
		raw, err := sql.Open("pgx", rawURL)
		if err != nil {
			return nil, fmt.Errorf("open metadata store %s: %w", u.Redacted(), err)
		}
		raw.SetMaxOpenConns(32)
		raw.SetMaxIdleConns(32)
		db = &DB{sql: raw, Dialect: Postgres, URL: u.Redacted(), tx: raw}
	default:
		return nil, fmt.Errorf("%w %q: expected sqlite:// or postgres://", ErrUnsupportedURL, rawURL)
	}
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to metadata store %s: %w", db.URL, err)
	}
	return db, nil
}

// Close closes the database's connections.
func (db *DB) Close() error {
	err := db.sql.Close()
	if db.tx != nil && db.tx != db.sql {
		err = errors.Join(err, db.tx.Close())
	}
	return err
}

// Ping checks that the database answers within ctx.
func (db *DB) Ping(ctx context.Context) error {
	return db.sql.PingContext(ctx)
}

// Stats reports the read pool's connection statistics.
func (db *DB) Stats() sql.DBStats { return db.sql.Stats() }

// Rebind rewrites '?' placeholders for the DB's dialect ('$1', '$2', ... on PostgreSQL).
// Question marks inside single-quoted string literals are left alone.
func (db *DB) Rebind(query string) string {
	if db.Dialect != Postgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n, inQuote := 0, false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			inQuote = !inQuote
			b.WriteByte(c)
		case c == '?' && !inQuote:
			n++
			fmt.Fprintf(&b, "$%d", n)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Exec runs a statement written with '?' placeholders.
func (db *DB) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := db.sql.ExecContext(ctx, db.Rebind(query), args...)
	return res, db.mapErr(err)
}

// Query runs a query written with '?' placeholders.
func (db *DB) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return db.sql.QueryContext(ctx, db.Rebind(query), args...)
}

// QueryRow runs a query written with '?' placeholders that returns at most one row.
func (db *DB) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return db.sql.QueryRowContext(ctx, db.Rebind(query), args...)
}

// Tx is a transaction whose helpers rebind placeholders like DB's. It is
// valid only inside the function InTx runs.
type Tx struct {
	tx *sql.Tx
	db *DB
}

// Exec runs a statement written with '?' placeholders inside the transaction.
func (tx *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := tx.tx.ExecContext(ctx, tx.db.Rebind(query), args...)
	return res, tx.db.mapErr(err)
}

// Query runs a query written with '?' placeholders inside the transaction.
func (tx *Tx) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.tx.QueryContext(ctx, tx.db.Rebind(query), args...)
}

// QueryRow runs a single-row query written with '?' placeholders inside the transaction.
func (tx *Tx) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return tx.tx.QueryRowContext(ctx, tx.db.Rebind(query), args...)
}

// Prepare prepares a statement written with '?' placeholders inside the transaction.
func (tx *Tx) Prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	return tx.tx.PrepareContext(ctx, tx.db.Rebind(query))
}

// Dialect is the dialect of the DB the transaction runs on.
func (tx *Tx) Dialect() Dialect { return tx.db.Dialect }

// InTx runs fn in a transaction, committing if fn returns nil and rolling back otherwise.
// A transaction that fails on a serialization conflict or a busy database is retried
// (fn must therefore be safe to run more than once); other errors are returned as is.
//
// On SQLite, transactions of this process that wait for the write lock at the
// same time commit together (see commitGroup): fn then runs inside a savepoint
// of a shared transaction, sees the writes of the transactions before it in the
// group, and its error rolls back its own writes only. Each caller still gets
// its own outcome, as if its transaction had run alone after the others.
func (db *DB) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	if db.writers != nil {
		return db.inGroup(ctx, fn)
	}
	return rethrow(db.retry(ctx, func() error { return db.inTxOnce(ctx, fn) }))
}

// retry runs attempt until it succeeds, fails for good, or 8 attempts failed
// on a retryable error (with exponential backoff from 5 ms).
func (db *DB) retry(ctx context.Context, attempt func() error) error {
	const maxAttempts = 8
	backoff := 5 * time.Millisecond
	for n := 1; ; n++ {
		err := attempt()
		if err == nil || n == maxAttempts || !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// inTxOnce runs fn in a transaction of its own. On SQLite the caller holds
// db.writers.
func (db *DB) inTxOnce(ctx context.Context, fn func(tx *Tx) error) (err error) {
	raw, err := db.tx.BeginTx(ctx, nil)
	if err != nil {
		return db.mapErr(err)
	}
	defer func() {
		if err != nil {
			_ = raw.Rollback()
		}
	}()
	// A panic is returned as an error (and raised again by InTx): the
	// transaction is rolled back now, not left holding the connection.
	if err = call(fn, &Tx{tx: raw, db: db}); err != nil {
		return err
	}
	return db.mapErr(raw.Commit())
}

// retryable reports errors that a fresh attempt of the same transaction may not hit.
func retryable(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// serialization_failure, deadlock_detected
		return pe.Code == "40001" || pe.Code == "40P01"
	}
	return false
}

// IsConflict reports whether err is a unique-constraint violation.
func IsConflict(err error) bool {
	if errors.Is(err, ErrConflict) {
		return true
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	return false
}

// IsUnavailable reports whether err says the database did not answer: the
// caller's deadline passed, or the connection could not be made or broke. A
// server answers these as "try again later" (503), not as its own fault.
func IsUnavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne)
}

// IsInvalidData reports whether err is ErrInvalidData or a PostgreSQL error of
// SQLSTATE class 22 or 54, whether or not it went through mapErr.
func IsInvalidData(err error) bool {
	if errors.Is(err, ErrInvalidData) {
		return true
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "54"))
}

// mapErr wraps unique-constraint violations and data exceptions so
// errors.Is(err, ErrConflict) and errors.Is(err, ErrInvalidData) hold, keeping
// the driver error in the chain.
func (db *DB) mapErr(err error) error {
	if err == nil || errors.Is(err, ErrConflict) || errors.Is(err, ErrInvalidData) {
		return err
	}
	if IsConflict(err) {
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	if IsInvalidData(err) {
		return fmt.Errorf("%w: %w", ErrInvalidData, err)
	}
	return err
}

// Querier is what *DB and *Tx share, so one helper serves plain reads and
// reads inside a write transaction.
type Querier interface {
	Exec(ctx context.Context, query string, args ...any) (sql.Result, error)
	Query(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) *sql.Row
}

var (
	_ Querier = (*DB)(nil)
	_ Querier = (*Tx)(nil)
)

// EachRow runs a query written with '?' placeholders and calls fn for each row
// (fn scans it). It stops at fn's first error and reports iteration errors.
func EachRow(ctx context.Context, q Querier, query string, args []any, fn func(rows *sql.Rows) error) error {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Scanner is a row: *sql.Row or *sql.Rows.
type Scanner interface {
	Scan(dest ...any) error
}

// Collect runs a query and returns one value per row, made by scan.
func Collect[T any](ctx context.Context, q Querier, query string, args []any, scan func(row Scanner) (T, error)) ([]T, error) {
	var out []T
	err := EachRow(ctx, q, query, args, func(rows *sql.Rows) error {
		v, err := scan(rows)
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	return out, err
}
