package predlog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/duckvec"
)

// FormatVersion is the version of the files' schema, stored in their
// key-value metadata under FormatKey.
const (
	FormatVersion = "1"
	FormatKey     = "atrium_prediction_log"
)

// stageTable is the in-memory table a group of rows is appended to before
// COPY writes it as Parquet.
const stageTable = "predlog_stage"

// sink writes groups of records to Parquet through a private in-memory
// DuckDB, reached through duckdb-go's C-API bindings (its mapping package):
// rows are appended by data chunk (chunk.go), which database/sql cannot do.
// mu serialises flushes: the connection and its stage table are one at a time.
type sink struct {
	mu   sync.Mutex
	dir  string
	rate float64
	db   *duckvec.DB
	conn *duckvec.Conn
}

func openSink(ctx context.Context, dir string, rate float64) (*sink, error) {
	db, err := duckvec.Open()
	if err != nil {
		return nil, err
	}
	conn, err := db.Connect()
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &sink{dir: dir, rate: rate, db: db, conn: conn}
	// One thread: a flush is small, and must not take the request path's
	// cores. Timestamps are appended and written as UTC wall time (TIMESTAMP).
	if err := conn.Exec(ctx, "SET threads = 1"); err != nil {
		s.close()
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	return s, nil
}

func (s *sink) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conn.Close()
	s.db.Close()
	return nil
}

// failure is a group of rows that could not be written.
type failure struct {
	model, reason string
	rows          int
	err           error
}

// result is what a flush did.
type result struct {
	written map[string]int // rows by model
	files   int
	failed  []failure
}

func (r *result) err() error {
	var errs []error
	for _, f := range r.failed {
		errs = append(errs, fmt.Errorf("model %s: %d rows %s: %w", f.model, f.rows, f.reason, f.err))
	}
	return errors.Join(errs...)
}

// groupKey is one output file of a flush: a model and an hour.
type groupKey struct {
	model string
	hour  int64 // Unix seconds of the hour's start, UTC
}

// write publishes recs as one file per model and hour. Rows of a group that
// fails are reported, other groups are still written.
func (s *sink) write(ctx context.Context, recs []*Record) result {
	res := result{written: map[string]int{}}
	var order []groupKey
	groups := map[groupKey][]*Record{}
	for _, r := range recs {
		k := groupKey{r.Model, r.Time.Truncate(time.Hour).Unix()}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	for _, k := range order {
		g := groups[k]
		l, invalid := layOut(g)
		for _, bad := range invalid {
			res.failed = append(res.failed, failure{model: k.model, reason: "invalid", rows: bad.rec.Rows, err: bad.err})
		}
		if len(l.recs) == 0 {
			continue
		}
		if err := s.writeGroup(ctx, k, l); err != nil {
			res.failed = append(res.failed, failure{model: k.model, reason: "write_error", rows: l.rows, err: err})
			continue
		}
		res.written[k.model] += l.rows
		res.files++
	}
	return res
}

// column kinds in a group's layout.
const (
	kindNumeric = iota
	kindString
)

// layout maps a group's names to stage columns.
type layout struct {
	recs     []*Record
	rows     int
	entities []string       // entity key names, in first-seen order
	entityAt map[string]int // lower-cased name -> index in entities
	features []string       // feature names, in first-seen order
	kinds    []int          // per feature: kindNumeric or kindString
	featAt   map[string]int // lower-cased name -> index in features
	score    bool           // some row has one output
	scores   bool           // some row has several
}

type invalidRecord struct {
	rec *Record
	err error
}

// layOut builds the columns of a group. A feature that is numeric in one
// record and categorical in another is a string column (numbers formatted).
// DuckDB's struct field names ignore case: names that differ only in case are
// one column, spelled as first seen, and a record naming a key or feature
// twice (in any case) is refused.
func layOut(recs []*Record) (*layout, []invalidRecord) {
	l := &layout{entityAt: map[string]int{}, featAt: map[string]int{}}
	var invalid []invalidRecord
	seen := map[string]bool{}
	for _, r := range recs {
		clear(seen)
		dup := ""
		for _, f := range r.Context {
			dup = firstDup(seen, "entity key ", f.Name, dup)
		}
		for _, c := range r.Entities {
			dup = firstDup(seen, "entity key ", c.Name, dup)
		}
		for _, f := range r.Features {
			dup = firstDup(seen, "feature ", f, dup)
		}
		for _, f := range r.Categorical {
			dup = firstDup(seen, "feature ", f, dup)
		}
		if dup != "" {
			invalid = append(invalid, invalidRecord{r, fmt.Errorf("%w (model %q, request %q): %s named twice", errRecord, r.Model, r.RequestID, dup)})
			continue
		}
		l.recs = append(l.recs, r)
		l.rows += r.Rows
		for _, f := range r.Context {
			l.addEntity(f.Name)
		}
		for _, c := range r.Entities {
			l.addEntity(c.Name)
		}
		for _, f := range r.Features {
			l.addFeature(f, kindNumeric)
		}
		for _, f := range r.Categorical {
			l.addFeature(f, kindString)
		}
		if r.outputs() == 1 {
			l.score = true
		} else {
			l.scores = true
		}
	}
	return l, invalid
}

// firstDup records name (prefixed by its kind, so that an entity key and a
// feature may share a name) and returns dup, or the name if it was seen.
func firstDup(seen map[string]bool, kind, name, dup string) string {
	key := kind + strings.ToLower(name)
	if seen[key] && dup == "" {
		return kind + strconv.Quote(name)
	}
	seen[key] = true
	return dup
}

func (l *layout) addEntity(name string) {
	if _, ok := l.entityAt[strings.ToLower(name)]; !ok {
		l.entityAt[strings.ToLower(name)] = len(l.entities)
		l.entities = append(l.entities, name)
	}
}

func (l *layout) addFeature(name string, kind int) {
	i, ok := l.featAt[strings.ToLower(name)]
	if !ok {
		l.featAt[strings.ToLower(name)] = len(l.features)
		l.features = append(l.features, name)
		l.kinds = append(l.kinds, kind)
		return
	}
	if kind == kindString {
		l.kinds[i] = kindString
	}
}

// fixedColumns are the stage columns every file has, in file order.
var fixedColumns = []struct{ name, typ string }{
	{"request_id", "VARCHAR"},
	{"row", "INTEGER"},
	{"n_rows", "INTEGER"},
	{"timestamp", "TIMESTAMP"},
	{"model", "VARCHAR"},
	{"model_version", "VARCHAR"},
	{"route", "VARCHAR"},
	{"routing_key", "VARCHAR"},
	{"sample_rate", "DOUBLE"},
	{"latency_ms", "DOUBLE"},
	{"fetch_ms", "DOUBLE"},
	{"model_ms", "DOUBLE"},
}

// writeGroup appends a group's rows to the stage table and copies them to a
// temporary file, which it syncs and renames into the group's partition.
func (s *sink) writeGroup(ctx context.Context, k groupKey, l *layout) error {
	hour := time.Unix(k.hour, 0).UTC()
	dir := filepath.Join(s.dir, modelDir(k.model), "date="+hour.Format("2006-01-02"), "hour="+hour.Format("15"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	id := newID()
	tmp := filepath.Join(dir, "."+id+tempSuffix)
	final := filepath.Join(dir, id+".parquet")

	defs := make([]string, 0, len(fixedColumns)+len(l.entities)+len(l.features)+2)
	for _, c := range fixedColumns {
		defs = append(defs, quoteIdent(c.name)+" "+c.typ)
	}
	for i := range l.entities {
		defs = append(defs, fmt.Sprintf("e%d VARCHAR", i))
	}
	for i, kind := range l.kinds {
		typ := "DOUBLE"
		if kind == kindString {
			typ = "VARCHAR"
		}
		defs = append(defs, fmt.Sprintf("f%d %s", i, typ))
	}
	defs = append(defs, "score DOUBLE", "scores DOUBLE[]")
	if err := s.conn.Exec(ctx, fmt.Sprintf("CREATE OR REPLACE TABLE %s (%s)", stageTable, strings.Join(defs, ", "))); err != nil {
		return fmt.Errorf("stage table: %w", err)
	}
	defer s.conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+stageTable) //nolint:errcheck // best effort: replaced by the next flush anyway
	if err := s.appendRows(l); err != nil {
		return fmt.Errorf("append: %w", err)
	}
	if testHookCopy != nil {
		testHookCopy(tmp)
	}
	// No dictionary pages: DuckDB's writer otherwise hashes every value of
	// every column to try one, which for the features' doubles (distinct
	// on nearly every row) is wasted; zstd already packs repeated values,
	// so files are no bigger (BenchmarkFlushRank: 0.85x the flush time,
	// 6.85 against 6.87 MB for 100,000 rank rows). Parquet 2.0 pages:
	// doubles split into byte streams (BYTE_STREAM_SPLIT), integers delta
	// encoded, which zstd packs tighter and faster (0.81-0.86x the flush
	// time again, 5.45 MB against 6.85). A reader needs those encodings
	// of the Parquet 2.0 format (doc.go).
	if err := s.conn.Exec(ctx, fmt.Sprintf("COPY (%s) TO %s (FORMAT parquet, COMPRESSION zstd, DICTIONARY_SIZE_LIMIT 0, PARQUET_VERSION V2, KV_METADATA {%s: %s})",
		l.selectSQL(), sqlQuote(tmp), FormatKey, sqlQuote(FormatVersion))); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write parquet: %w", err)
	}
	if testHookPublish != nil {
		testHookPublish(tmp)
	}
	if err := publish(tmp, final); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// appendRows appends the rows of l's records to the stage table.
func (s *sink) appendRows(l *layout) error {
	a, err := newChunkAppender(s.conn.Raw(), l)
	if err != nil {
		return err
	}
	return errors.Join(a.appendRecords(l, s.rate), a.close())
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// selectSQL is the query COPY writes: the stage's flat columns, with keys and
// features packed into their structs.
func (l *layout) selectSQL() string {
	cols := make([]string, 0, len(fixedColumns)+4)
	for _, c := range fixedColumns {
		cols = append(cols, quoteIdent(c.name))
	}
	pack := func(names []string, prefix string) string {
		fields := make([]string, len(names))
		for i, n := range names {
			fields[i] = fmt.Sprintf("%s := %s%d", quoteIdent(n), prefix, i)
		}
		return "struct_pack(" + strings.Join(fields, ", ") + ")"
	}
	if len(l.entities) > 0 {
		cols = append(cols, pack(l.entities, "e")+" AS entities")
	}
	if len(l.features) > 0 {
		cols = append(cols, pack(l.features, "f")+" AS features")
	}
	if l.score {
		cols = append(cols, "score")
	}
	if l.scores {
		cols = append(cols, "scores")
	}
	return "SELECT " + strings.Join(cols, ", ") + " FROM " + stageTable
}

// Test hooks, called with the temporary file's path before COPY writes it and
// before it is published: the crash tests kill the process there.
var testHookCopy, testHookPublish func(tmp string)

// tempSuffix ends the names of files being written; with their leading dot,
// neither "*.parquet" globs nor Files see them.
const tempSuffix = ".parquet.tmp"

// newID returns a unique, time-ordered file name part:
// <19 digits of Unix nanoseconds>-<pid>-<8 random hex digits>.
func newID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%019d-%d-%s", time.Now().UnixNano(), os.Getpid(), hex.EncodeToString(b[:]))
}

// publish makes a written temporary file durable and visible under its final
// name: sync the file, rename it, sync the directory.
func publish(tmp, final string) error {
	f, err := os.Open(tmp)
	if err != nil {
		return err
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(final))
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func sqlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
