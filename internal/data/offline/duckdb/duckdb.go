// Package duckdb is the embedded offline engine (duckdb://dir): feature rows are
// Parquet files under dir, one directory per set and UTC date,
//
//	dir/set=<name>/date=YYYY-MM-DD/<unix-nanos>-<run|push>-<id>.parquet
//
// and DuckDB (in process, in memory, spilling to dir/.tmp) computes pipelines,
// point-in-time joins and latest-row scans over them.
//
// Invariants: a date directory is only ever replaced whole, by exchanging it with
// a fully written staging directory (renameat2 RENAME_EXCHANGE on Linux), so a
// reader or a killed writer always sees the old or the new partition, never a mix.
// Files are never modified; file names sort in write order, which breaks ties
// between rows with the same key and timestamp (the last written wins). Staging
// directories start with "." and are ignored by readers; leftovers of a killed
// run are removed by the next writer of the set.
package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/pipeline"
	"github.com/atrium-ml/atrium/internal/spec"
)

func init() {
	offline.Register("duckdb", func(ctx context.Context, u *url.URL, opts offline.Options) (offline.Engine, error) {
		dir := strings.TrimPrefix(u.String(), "duckdb://")
		if i := strings.IndexByte(dir, '?'); i >= 0 {
			dir = dir[:i]
		}
		return Open(ctx, dir, opts)
	})
}

// Engine is the DuckDB offline engine.
type Engine struct {
	root      string
	feats     *spec.Features
	baseDir   string
	log       *slog.Logger
	connector *duckdb.Connector
	db        *sql.DB

	mu       sync.Mutex
	setLocks map[string]*sync.RWMutex
	closed   bool
}

var (
	_ offline.Engine    = (*Engine)(nil)
	_ offline.Validator = (*Engine)(nil)
)

// Open opens (creating it if needed) the store rooted at dir.
func Open(ctx context.Context, dir string, opts offline.Options) (*Engine, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: duckdb:// needs a directory (duckdb:///abs/path or duckdb://rel/path)", offline.ErrUnsupportedURL)
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("offline store %s: %w", dir, err)
	}
	tmp := filepath.Join(root, ".tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("offline store %s: %w", root, err)
	}
	if opts.Features == nil {
		opts.Features = &spec.Features{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	base := opts.BaseDir
	if base == "" {
		base, _ = os.Getwd()
	}
	connector, err := duckdb.NewConnector("", func(execer driver.ExecerContext) error {
		for _, s := range []string{
			// All times are UTC: TIMESTAMPTZ values convert to UTC wall time.
			`SET TimeZone = 'UTC'`,
			`SET temp_directory = '` + sqlString(tmp) + `'`,
			`SET enable_progress_bar = false`,
		} {
			if _, err := execer.ExecContext(context.Background(), s, nil); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	db := sql.OpenDB(connector)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		connector.Close()
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	cleanStaging(root)
	return &Engine{root: root, feats: opts.Features, baseDir: base, log: opts.Logger, connector: connector, db: db, setLocks: map[string]*sync.RWMutex{}}, nil
}

// Close releases DuckDB. Closing twice is not an error.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	return errors.Join(e.db.Close(), e.connector.Close())
}

// Root returns the directory holding the store.
func (e *Engine) Root() string { return e.root }

// set returns the spec of a set known to the catalog.
func (e *Engine) set(name string) (*spec.FeatureSet, []string, error) {
	fs := e.feats.Set(name)
	if fs == nil {
		return nil, nil, fmt.Errorf("%w %q", offline.ErrUnknownSet, name)
	}
	return fs, e.feats.JoinKeys(name), nil
}

func (e *Engine) setDir(set string) string { return filepath.Join(e.root, "set="+set) }

// lockSet locks a set: exclusive for writers (publishing partitions, appending
// files), shared for readers (scans and joins, from listing the files until the
// query is done, so that no file they listed is swapped away under them). It
// holds an in-process RWMutex and an advisory lock on <set>/.lock, which
// serialises other processes too. The returned function releases both.
func (e *Engine) lockSet(set string, exclusive bool) (func(), error) {
	e.mu.Lock()
	m := e.setLocks[set]
	if m == nil {
		m = &sync.RWMutex{}
		e.setLocks[set] = m
	}
	e.mu.Unlock()
	lock, unlockMu := m.RLock, m.RUnlock
	if exclusive {
		lock, unlockMu = m.Lock, m.Unlock
	}
	lock()
	dir := e.setDir(set)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		unlockMu()
		return nil, err
	}
	unlock, err := lockFile(filepath.Join(dir, ".lock"), exclusive)
	if err != nil {
		unlockMu()
		return nil, fmt.Errorf("lock set %s: %w", set, err)
	}
	return func() { unlock(); unlockMu() }, nil
}

// lockSets takes shared locks on several sets, in name order (writers hold one
// set at a time, so readers of several cannot deadlock with them).
func (e *Engine) lockSets(sets []string) (func(), error) {
	sorted := append([]string(nil), sets...)
	sort.Strings(sorted)
	var unlocks []func()
	release := func() {
		for i := len(unlocks) - 1; i >= 0; i-- {
			unlocks[i]()
		}
	}
	for i, s := range sorted {
		if i > 0 && s == sorted[i-1] {
			continue
		}
		u, err := e.lockSet(s, false)
		if err != nil {
			release()
			return nil, err
		}
		unlocks = append(unlocks, u)
	}
	return release, nil
}

// partitions lists the date partitions of a set in [from, to] (inclusive dates;
// zero bounds are open) that hold at least one Parquet file, and those files.
func (e *Engine) partitions(set string, from, to time.Time) ([]string, error) {
	entries, err := os.ReadDir(e.setDir(set))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list set %s: %w", set, err)
	}
	lo, hi := "", "9999-12-31"
	if !from.IsZero() {
		lo = from.UTC().Format(time.DateOnly)
	}
	if !to.IsZero() {
		hi = to.UTC().Format(time.DateOnly)
	}
	var files []string
	for _, ent := range entries {
		date, ok := strings.CutPrefix(ent.Name(), "date=")
		if !ok || !ent.IsDir() || date < lo || date > hi {
			continue
		}
		if _, err := time.Parse(time.DateOnly, date); err != nil {
			continue // a partition moved aside by an interrupted swap ("date=...old")
		}
		fs, err := filepath.Glob(filepath.Join(e.setDir(set), ent.Name(), "*.parquet"))
		if err != nil {
			return nil, err
		}
		files = append(files, fs...)
	}
	sort.Strings(files)
	return files, nil
}

// sourceFiles expands a source's path or glob (relative to the repository).
func (e *Engine) sourceFiles(src *spec.Source) ([]string, error) {
	pattern := src.Path
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(e.baseDir, pattern)
	}
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("%w: source %s: bad path pattern %q: %v", offline.ErrSource, src.Name, src.Path, err)
	}
	sort.Strings(files)
	return files, nil
}

// sourceRelation is the table function reading a source's files.
func sourceRelation(src *spec.Source, files []string) string {
	list := fileList(files)
	switch src.Format {
	case spec.FormatParquet:
		return fmt.Sprintf("read_parquet(%s, union_by_name = true)", list)
	case spec.FormatJSON:
		return fmt.Sprintf("read_json(%s, format = 'auto', union_by_name = true)", list)
	default:
		return fmt.Sprintf("read_csv(%s, union_by_name = true)", list)
	}
}

// fileList is a DuckDB list literal of file paths.
func fileList(files []string) string {
	q := make([]string, len(files))
	for i, f := range files {
		q[i] = "'" + sqlString(f) + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func sqlString(s string) string { return strings.ReplaceAll(s, "'", "''") }

// describe returns the columns of a query without running it.
func describe(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string) ([]pipeline.SourceColumn, error) {
	rows, err := q.QueryContext(ctx, "DESCRIBE "+query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []pipeline.SourceColumn
	for rows.Next() {
		var c pipeline.SourceColumn
		var null, key, def, extra sql.NullString
		if err := rows.Scan(&c.Name, &c.Type, &null, &key, &def, &extra); err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

// SourceSchema implements pipeline.Binder.
func (e *Engine) SourceSchema(ctx context.Context, src *spec.Source) ([]pipeline.SourceColumn, bool, error) {
	files, err := e.sourceFiles(src)
	if err != nil || len(files) == 0 {
		return nil, false, err
	}
	cols, err := describe(ctx, e.db, "SELECT * FROM "+sourceRelation(src, files))
	if err != nil {
		return nil, true, err
	}
	return cols, true, nil
}

// Describe implements pipeline.Binder.
func (e *Engine) Describe(ctx context.Context, query string) ([]pipeline.SourceColumn, error) {
	return describe(ctx, e.db, query)
}

// Parse implements pipeline.Binder with DuckDB's json_serialize_sql, which parses
// without binding (no tables needed) and accepts exactly one SELECT.
func (e *Engine) Parse(ctx context.Context, query string) error {
	var out string
	if err := e.db.QueryRowContext(ctx, "SELECT CAST(json_serialize_sql('"+sqlString(query)+"') AS VARCHAR)").Scan(&out); err != nil {
		return err
	}
	if strings.Contains(out, `"error":true`) {
		var msg struct {
			Message string `json:"error_message"`
		}
		if err := json.Unmarshal([]byte(out), &msg); err == nil && msg.Message != "" {
			return errors.New(msg.Message)
		}
		return errors.New(out)
	}
	return nil
}

// ValidateSQL implements offline.Validator.
func (e *Engine) ValidateSQL(ctx context.Context, f *spec.Features) (spec.Problems, []string) {
	return pipeline.Validate(ctx, e, f)
}
