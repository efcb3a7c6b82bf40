// Package spark runs feature pipelines on Apache Spark through Spark Connect
// (stores.compute: sc://host:15002, or ATRIUM_COMPUTE). It is a compute, not a
// store: the offline store stays the duckdb:// layout on a filesystem that the
// Spark driver and executors share with Atrium, and the DuckDB engine keeps
// doing everything but computing a run's rows and a point-in-time join's join
// (checks, profiles, the atomic publish, scans, appends, validating a join's
// request and writing its output file; see JoinPointInTime).
//
// A run on Spark: the DuckDB engine reads the source's schema (so column types
// are the ones a local run sees) and builds the plan in Spark's dialect
// (Dialect); Stage defines the source over its files in a new Spark session,
// caches the events, and writes the feature rows as Parquet partitioned by
// date into the run's staging directory under the store. Nothing outside the
// staging directory is touched until the engine's checks pass, so a Spark
// server that dies mid-run leaves the previous partitions as they were.
//
// Invariants: one Spark session per run (temporary views and cached tables do
// not leak between runs and concurrent runs do not see each other's); every
// session runs in UTC, ANSI mode (integer overflow and bad casts fail the run,
// as in DuckDB) and double-quoted identifiers (the plans' quoting).
package spark

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/apache/spark-connect-go/spark/client/channel"
	"github.com/apache/spark-connect-go/spark/sparkerrors"
	"github.com/apache/spark-connect-go/spark/sql"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/data/pipeline"
	"github.com/atrium-ml/atrium/internal/spec"
)

func init() {
	duckdb.RegisterCompute("sc", func(ctx context.Context, u *url.URL, opts offline.Options) (duckdb.Compute, error) {
		return Open(ctx, u.String(), opts.Logger)
	})
}

// ErrUnreachable reports a Spark Connect server that could not be reached.
var ErrUnreachable = errors.New("spark connect server unreachable")

// Compute runs plans on one Spark Connect server over one gRPC connection.
type Compute struct {
	url  string
	log  *slog.Logger
	b    *sharedChannel
	once sync.Once
}

var _ duckdb.Compute = (*Compute)(nil)

// Open connects to the Spark Connect server at rawURL (sc://host:port, with
// the options of Spark Connect's connection string: ;token=...;user_id=...).
// The connection is made lazily by gRPC: an unreachable server fails the
// first run, not Open.
func Open(ctx context.Context, rawURL string, log *slog.Logger) (*Compute, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, err := channel.NewBuilder(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: compute URL %q: %v, expected sc://host:port", offline.ErrUnsupportedURL, rawURL, err)
	}
	conn, err := base.Build(ctx)
	if err != nil {
		return nil, fmt.Errorf("compute %s: %w: %w", redact(rawURL), ErrUnreachable, err)
	}
	return &Compute{url: redact(rawURL), log: log, b: &sharedChannel{BaseBuilder: base, conn: conn}}, nil
}

// sharedChannel hands every session the same gRPC connection (the client
// library would dial one per session and never close it).
type sharedChannel struct {
	*channel.BaseBuilder
	conn *grpc.ClientConn
}

func (s *sharedChannel) Build(context.Context) (*grpc.ClientConn, error) { return s.conn, nil }

// Close closes the gRPC connection. Closing twice is not an error.
func (c *Compute) Close() error {
	var err error
	c.once.Do(func() { err = c.b.conn.Close() })
	return err
}

// Dialect implements duckdb.Compute.
func (c *Compute) Dialect() *pipeline.Dialect { return Dialect }

// Dialect is Spark SQL's (3.5, ANSI mode, double-quoted identifiers).
var Dialect = &pipeline.Dialect{
	Name: "spark",
	Type: func(t spec.Type) string {
		if t == spec.String {
			return "STRING" // Spark's VARCHAR needs a length
		}
		return t.SQL()
	},
	// Source columns are already typed by the source view (sourceSQL): text
	// with an offset is converted by CAST, without one it is taken as UTC
	// (the session's time zone), as in DuckDB.
	Timestamp:   func(col, _ string) string { return "CAST(" + col + " AS TIMESTAMP)" },
	EpochMicros: func(ts string) string { return "unix_micros(" + ts + ")" },
	FromMicros:  func(us string) string { return "timestamp_micros(" + us + ")" },
	Series: func(lo, hiExcl, step string) string {
		return fmt.Sprintf("explode(sequence(%s, (%s) - %s, %s))", lo, hiExcl, step, step)
	},
	// max_by keeps a NULL x at the greatest ord; a NULL ord is skipped.
	LastBy: func(x, ord string) string {
		return fmt.Sprintf("max_by(%s, CASE WHEN %s IS NOT NULL THEN %s END)", x, x, ord)
	},
}

// sessionConf is set on every session before anything runs.
var sessionConf = [][2]string{
	{"spark.sql.session.timeZone", "UTC"},
	{"spark.sql.ansi.enabled", "true"},
	{"spark.sql.ansi.doubleQuotedIdentifiers", "true"},
}

// runConf is set on the sessions of runs: a run's output is small per day;
// one file per day and task is plenty.
var runConf = [][2]string{{"spark.sql.shuffle.partitions", "4"}}

// session opens a new Spark session with the settings of confs, in order.
func (c *Compute) session(ctx context.Context, confs ...[][2]string) (*session, error) {
	s, err := sql.NewSessionBuilder().Remote(c.url).WithChannelBuilder(c.b).Build(ctx)
	if err != nil {
		return nil, fmt.Errorf("spark %s: %w: %w", c.url, ErrUnreachable, err)
	}
	run := &session{s: s, url: c.url}
	for _, conf := range confs {
		for _, kv := range conf {
			if err := run.exec(ctx, fmt.Sprintf("SET %s=%s", kv[0], kv[1])); err != nil {
				return nil, err
			}
		}
	}
	return run, nil
}

// Stage implements duckdb.Compute.
func (c *Compute) Stage(ctx context.Context, req duckdb.StageRequest) (rowsIn int64, err error) {
	run, err := c.session(ctx, sessionConf, runConf)
	if err != nil {
		return 0, err
	}
	src, err := sourceSQL(req)
	if err != nil {
		return 0, err
	}
	// The events are a view, not a cached table: the count and the output
	// each read the source again, which costs less than caching on small runs
	// and holds no executor memory on large ones.
	src = append(src, fmt.Sprintf("CREATE OR REPLACE TEMPORARY VIEW %s AS %s", pipeline.EventsTable, req.Plan.EventsQuery))
	for _, stmt := range src {
		if err := run.exec(ctx, stmt); err != nil {
			return 0, sourceError(req.Plan.Source.Name, err)
		}
	}
	if rowsIn, err = run.count(ctx, "SELECT count(*) FROM "+pipeline.EventsTable); err != nil {
		return 0, sourceError(req.Plan.Source.Name, err)
	}
	if testHookBeforeWrite != nil {
		testHookBeforeWrite()
	}
	out := filepath.Join(req.Staging, "spark")
	table := "atrium_out_" + strings.NewReplacer("-", "_").Replace(req.ID)
	// An external table (it has a LOCATION): dropping it keeps the files.
	ctas := fmt.Sprintf("CREATE TABLE %s USING parquet PARTITIONED BY (atrium_date) LOCATION %s AS SELECT %s, date_format(%s, 'yyyy-MM-dd') AS atrium_date FROM (%s) AS atrium_o",
		table, literal(out), strings.Join(outputColumns(req.Plan), ", "), quote(spec.TimestampColumn), req.Plan.Output)
	if err := run.exec(ctx, ctas); err != nil {
		return 0, fmt.Errorf("computing features: %w", err)
	}
	if err := run.exec(ctx, "DROP TABLE IF EXISTS "+table); err != nil {
		c.log.Warn("spark: dropping the output table's catalog entry", "table", table, "err", err)
	}
	if err := adopt(out, req.Staging, req.ID); err != nil {
		return 0, fmt.Errorf("spark output in %s: %w", out, err)
	}
	return rowsIn, nil
}

// testHookBeforeWrite, set by tests only, runs once the server has read and
// counted the source and before it computes and writes the output: the
// middle of a run, where the fault test kills the server.
var testHookBeforeWrite func()

// outputColumns selects a plan's output columns, timestamps as TIMESTAMP_NTZ
// so Parquet stores them as UTC wall time, the type DuckDB reads as TIMESTAMP
// (Spark's TIMESTAMP would be stored as an instant, read as TIMESTAMPTZ).
func outputColumns(p *pipeline.Plan) []string {
	var cols []string
	for _, k := range p.Keys {
		cols = append(cols, quote(k))
	}
	cols = append(cols, fmt.Sprintf("CAST(%s AS TIMESTAMP_NTZ) AS %s", quote(spec.TimestampColumn), quote(spec.TimestampColumn)))
	for _, c := range p.Set.Columns() {
		if c.Type == spec.Timestamp {
			cols = append(cols, fmt.Sprintf("CAST(%s AS TIMESTAMP_NTZ) AS %s", quote(c.Name), quote(c.Name)))
		} else {
			cols = append(cols, quote(c.Name))
		}
	}
	return cols
}

// adopt moves Spark's part files from out/atrium_date=D/ to
// staging/atrium_date=D/<id>-run-<n>.parquet, the names duckdb.Compute asks
// for, and removes out (Spark's _SUCCESS and checksum files with it).
func adopt(out, staging, id string) error {
	dirs, err := os.ReadDir(out)
	if errors.Is(err, os.ErrNotExist) {
		return nil // no rows: Spark wrote nothing
	}
	if err != nil {
		return err
	}
	n := 0
	for _, d := range dirs {
		if !d.IsDir() || !strings.HasPrefix(d.Name(), "atrium_date=") {
			continue
		}
		files, err := os.ReadDir(filepath.Join(out, d.Name()))
		if err != nil {
			return err
		}
		names := make([]string, 0, len(files))
		for _, f := range files {
			if strings.HasSuffix(f.Name(), ".parquet") && !strings.HasPrefix(f.Name(), ".") {
				names = append(names, f.Name())
			}
		}
		sort.Strings(names)
		if len(names) == 0 {
			continue
		}
		dst := filepath.Join(staging, d.Name())
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		for _, name := range names {
			if err := os.Rename(filepath.Join(out, d.Name(), name), filepath.Join(dst, fmt.Sprintf("%s-run-%d.parquet", id, n))); err != nil {
				return err
			}
			n++
		}
	}
	return os.RemoveAll(out)
}

// sourceError classifies an error reading a source: one that Spark raised
// running the query (a value that does not parse, a file it cannot read) is
// the source's (offline.ErrSource); one that kept the query from running (the
// server unreachable, the call cancelled) is not.
func sourceError(source string, err error) error {
	code := codes.Unknown
	var p *sparkerrors.SparkError
	var v sparkerrors.SparkError
	switch {
	case errors.As(err, &p):
		code = p.Code
	case errors.As(err, &v):
		code = v.Code
	}
	switch code {
	case codes.Unknown, codes.Unavailable, codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.ResourceExhausted:
		return fmt.Errorf("reading source %s: %w", source, err)
	}
	return fmt.Errorf("%w: reading source %s: %w", offline.ErrSource, source, err)
}

// session is one run's Spark session.
type session struct {
	s   sql.SparkSession
	url string
}

func (r *session) exec(ctx context.Context, stmt string) error {
	if _, err := r.s.Sql(ctx, stmt); err != nil {
		return fmt.Errorf("spark %s: %w", r.url, err)
	}
	return nil
}

// count runs a query returning one integer.
func (r *session) count(ctx context.Context, query string) (int64, error) {
	df, err := r.s.Sql(ctx, query)
	if err != nil {
		return 0, fmt.Errorf("spark %s: %w", r.url, err)
	}
	rows, err := df.Collect(ctx)
	if err != nil {
		return 0, fmt.Errorf("spark %s: %s: %w", r.url, query, err)
	}
	if len(rows) != 1 || rows[0].Len() != 1 {
		return 0, fmt.Errorf("spark %s: %s: expected one row of one value, got %d rows", r.url, query, len(rows))
	}
	n, ok := rows[0].At(0).(int64)
	if !ok {
		return 0, fmt.Errorf("spark %s: %s: expected a BIGINT, got %T", r.url, query, rows[0].At(0))
	}
	return n, nil
}

// quote quotes a Spark identifier with backticks (valid whatever the
// double-quote setting).
func quote(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

// literal quotes a Spark string literal. Spark reads backslash escapes in
// literals, so backslashes are doubled too.
func literal(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// redact drops a connection string's parameters (a token) from messages.
func redact(rawURL string) string {
	if i := strings.IndexByte(rawURL, ';'); i >= 0 {
		return rawURL[:i]
	}
	return rawURL
}
