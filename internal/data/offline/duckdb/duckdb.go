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
// reader or a killed writer always sees the old or the new partition, never a mix
// (where the exchange is two renames, readers read a partition moved aside by a
// killed writer until the next writer restores it).
// Files are never modified; file names sort in write order, which breaks ties
// between rows with the same key and timestamp (the last written wins). Staging
// directories start with "." and are ignored by readers; leftovers of a killed
// run are removed by the next writer of the set.
package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
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
	"github.com/atrium-ml/atrium/internal/platform/storeurl"
	"github.com/atrium-ml/atrium/internal/spec"
)

func init() {
	offline.Register("duckdb", func(ctx context.Context, u *url.URL, opts offline.Options) (offline.Engine, error) {
		dir, err := storeurl.LocalPath(u)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %w", offline.ErrUnsupportedURL, u.Redacted(), err)
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
	// elsewhere, when set, runs pipelines in place of DuckDB (offline.Options.Compute).
	elsewhere Compute

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
	if strings.ContainsRune(root, '\\') {
		return nil, fmt.Errorf("%w: offline store %s: %v", offline.ErrUnsupportedURL, root, errBackslash)
	}
	tmp := filepath.Join(root, ".tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("offline store %s: %w", root, err)
	}
	if opts.Features == nil {
		opts.Features = &spec.Features{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	base := opts.BaseDir
	if base == "" {
		base, _ = os.Getwd()
	}
	connector, err := duckdb.NewConnector("", func(execer driver.ExecerContext) error {
		for _, s := range []string{
			// All times are UTC: TIMESTAMPTZ values convert to UTC wall time.
			`SET TimeZone = 'UTC'`,
			`SET temp_directory = ` + sqlQuote(tmp),
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
	var compute Compute
	if opts.Compute != "" {
		if compute, err = openCompute(ctx, opts.Compute, opts); err != nil {
			db.Close()
			connector.Close()
			return nil, err
		}
	}
	return &Engine{root: root, feats: opts.Features, baseDir: base, log: opts.Logger, connector: connector, db: db, elsewhere: compute, setLocks: map[string]*sync.RWMutex{}}, nil
}

// Close releases DuckDB. Closing twice is not an error.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	var cerr error
	if e.elsewhere != nil {
		cerr = e.elsewhere.Close()
	}
	return errors.Join(e.db.Close(), e.connector.Close(), cerr)
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
	// The directory read for each date: date=D, or else date=D.old, a partition
	// the portable swap moved aside before a writer was killed, which stays the
	// last good data until the next writer restores it (recoverSet). When both
	// exist the swap had put the new partition in place: date=D is read.
	dirs := map[string]string{}
	for _, ent := range entries {
		name, ok := strings.CutPrefix(ent.Name(), "date=")
		if !ok || !ent.IsDir() {
			continue
		}
		date, movedAside := strings.CutSuffix(name, oldSuffix)
		if _, err := time.Parse(time.DateOnly, date); err != nil || date < lo || date > hi {
			continue
		}
		if _, seen := dirs[date]; !seen || !movedAside {
			dirs[date] = ent.Name()
		}
	}
	var files []string
	for _, dir := range dirs {
		fs, err := parquetFiles(filepath.Join(e.setDir(set), dir))
		if err != nil {
			return nil, fmt.Errorf("list set %s: %w", set, err)
		}
		files = append(files, fs...)
	}
	sort.Strings(files)
	return files, nil
}

// parquetFiles lists the Parquet files of a directory by name (never by glob:
// the store's own path may hold glob characters), sorted.
func parquetFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, ent := range entries {
		if !ent.IsDir() && strings.HasSuffix(ent.Name(), ".parquet") {
			files = append(files, filepath.Join(dir, ent.Name()))
		}
	}
	return files, nil
}

// sourceFiles expands a source's path or glob (relative to the repository).
// Only the source's path is a pattern: the repository directory, and the
// leading directories of the path that hold no glob character, are taken
// literally, so a repository in "/work/p[3]" reads its own files.
func (e *Engine) sourceFiles(src *spec.Source) ([]string, error) {
	pattern := filepath.Clean(src.Path)
	base := e.baseDir
	if filepath.IsAbs(pattern) {
		base = ""
	}
	fixed, rest := splitPattern(pattern)
	dir := filepath.Join(base, fixed)
	if base == "" && fixed == "" {
		dir = string(filepath.Separator)
	}
	names, err := fs.Glob(os.DirFS(dir), filepath.ToSlash(rest))
	if err != nil {
		return nil, fmt.Errorf("%w: source %s: bad path pattern %q: %v", offline.ErrSource, src.Name, src.Path, err)
	}
	files := make([]string, 0, len(names))
	for _, n := range names {
		files = append(files, filepath.Join(dir, filepath.FromSlash(n)))
	}
	sort.Strings(files)
	return files, nil
}

// splitPattern splits a clean path pattern into its leading directories free of
// glob characters and the rest, which holds at least the last element.
func splitPattern(pattern string) (fixed, rest string) {
	elems := strings.Split(pattern, string(filepath.Separator))
	i := 0
	for i < len(elems)-1 && !strings.ContainsAny(elems[i], globChars) {
		i++
	}
	return strings.Join(elems[:i], string(filepath.Separator)), strings.Join(elems[i:], "/")
}

// globChars are the characters path/filepath.Match (and DuckDB) treat as
// pattern syntax.
const globChars = `*?[\`

// sourceRelation is the table function reading a source's files.
func sourceRelation(src *spec.Source, files []string) (string, error) {
	list, err := fileList(files)
	if err != nil {
		return "", fmt.Errorf("%w: source %s: %v", offline.ErrSource, src.Name, err)
	}
	switch src.Format {
	case spec.FormatParquet:
		return fmt.Sprintf("read_parquet(%s, union_by_name = true)", list), nil
	case spec.FormatJSON:
		return fmt.Sprintf("read_json(%s, format = 'auto', union_by_name = true)", list), nil
	default:
		return fmt.Sprintf("read_csv(%s, union_by_name = true)", list), nil
	}
}

// errBackslash explains why a path with a backslash cannot be read.
var errBackslash = errors.New(`its path contains '\', which DuckDB reads as a path separator and cannot escape; expected a path without '\'`)

// fileLiteral is the SQL string literal naming exactly one file for DuckDB's
// readers, which expand glob characters in every path they are given: '*', '?'
// and '[' become one-character classes ("[*]"), so "/data/p[3]/a.csv" cannot
// read "/data/p3/a.csv" instead. A path with a backslash is refused (errBackslash).
func fileLiteral(path string) (string, error) {
	if strings.ContainsRune(path, '\\') {
		return "", fmt.Errorf("file %s: %w", path, errBackslash)
	}
	var b strings.Builder
	for _, c := range path {
		switch c {
		case '*', '?', '[':
			b.WriteByte('[')
			b.WriteRune(c)
			b.WriteByte(']')
		default:
			b.WriteRune(c)
		}
	}
	return sqlQuote(b.String()), nil
}

// fileList is a DuckDB list literal of file paths (see fileLiteral).
func fileList(files []string) (string, error) {
	q := make([]string, len(files))
	for i, f := range files {
		lit, err := fileLiteral(f)
		if err != nil {
			return "", err
		}
		q[i] = lit
	}
	return "[" + strings.Join(q, ", ") + "]", nil
}

// sqlQuote is s as an SQL string literal (DuckDB's strings have no backslash
// escapes: doubling quotes is the whole quoting).
func sqlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

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
	rel, err := sourceRelation(src, files)
	if err != nil {
		return nil, true, err
	}
	cols, err := e.sourceSchema(ctx, e.db, src, files, rel)
	if err != nil {
		return nil, true, err
	}
	return cols, true, nil
}

// Describe implements pipeline.Binder.
func (e *Engine) Describe(ctx context.Context, query string) ([]pipeline.SourceColumn, error) {
	return describe(ctx, e.db, query)
}

// ValidateSQL implements offline.Validator.
func (e *Engine) ValidateSQL(ctx context.Context, f *spec.Features) (spec.Problems, []string) {
	return pipeline.Validate(ctx, e, f)
}
