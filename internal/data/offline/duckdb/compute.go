package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/pipeline"
	"github.com/atrium-ml/atrium/internal/data/quality"
	"github.com/atrium-ml/atrium/internal/spec"
)

// Compute runs a run's plan outside the engine's DuckDB (on a Spark cluster,
// say) and writes the feature rows as Parquet into the run's staging
// directory; the engine then checks, profiles and publishes them exactly as
// it does its own (offline.Options.Compute selects one by URL scheme).
// Implementations are safe for concurrent use.
type Compute interface {
	// Dialect is the SQL dialect plans are built in for this compute.
	Dialect() *pipeline.Dialect
	// Stage defines req.Relation over the source files, runs the plan and
	// writes its output rows as Parquet files under req.Staging, one
	// directory atrium_date=YYYY-MM-DD per day that has rows (the UTC date of
	// the timestamp), files named req.ID + "-run-<n>.parquet" and nothing
	// else; timestamps are stored without a time zone (UTC wall time). It
	// returns the number of source rows the plan read. On error, what it
	// wrote is discarded by the caller with the staging directory.
	Stage(ctx context.Context, req StageRequest) (rowsIn int64, err error)
	// Close releases the compute's connections. Closing twice is not an error.
	Close() error
}

// StageRequest is one run's work for a Compute.
type StageRequest struct {
	Plan *pipeline.Plan
	// Relation is the name the plan reads the source by: Stage defines it
	// (a temporary view, say) with the columns of Schema.
	Relation string
	// Schema is the source's columns as the engine reads them (DuckDB's type
	// names), the union of its files' columns by name.
	Schema []pipeline.SourceColumn
	// Files are the source's files (absolute paths), each with its own
	// columns in file order; a column of Schema missing from a file is NULL
	// in that file's rows.
	Files []SourceFile
	// Staging is the directory to write into (it exists and is empty); ID
	// names the files.
	Staging, ID string
}

// SourceFile is a source file and its columns, in file order.
type SourceFile struct {
	Path    string
	Columns []pipeline.SourceColumn
}

// PointInTimeCompute is implemented by a Compute that can also run a
// point-in-time join's join (on a Spark cluster, say). When the engine's
// compute implements it, PointInTime does everything but the join itself: it
// validates the request against the spine's schema and the stored sets
// exactly as a local join does (so bad requests fail with the same errors),
// finds the spine's time range with one streaming pass over its time column,
// lists the stored files that can match, hands the join to JoinPointInTime,
// and then writes the output file from the staged rows: spine order, the
// exact column types of a local join, on-demand columns, and the atomic
// rename. A compute without it leaves point-in-time joins to DuckDB.
type PointInTimeCompute interface {
	Compute
	// JoinPointInTime joins every row of req.Spine with, per set, the stored
	// row of the same keys with the greatest (timestamp, write order) not
	// after the row's time t, kept only when its timestamp is after t - TTL
	// (no bound when TTL is 0); a spine row with a NULL time or key matches
	// nothing. It writes one output row per spine row as Parquet files
	// (any names ending in .parquet) under req.Staging, with the columns
	// atrium_sid (BIGINT: increasing in spine file order), atrium_c<i> (the
	// spine's Columns[i], a naive TIMESTAMP stored without a time zone) and
	// atrium_f<j> (Features[j] of the sets, NULL when nothing matched,
	// timestamps without a time zone), and returns the number of rows
	// written. On error, what it wrote is discarded with the staging
	// directory by the caller.
	JoinPointInTime(ctx context.Context, req PointInTimeJob) (rows int64, err error)
}

// PointInTimeJob is one point-in-time join's work for a PointInTimeCompute.
type PointInTimeJob struct {
	// Spine is the spine file (absolute path); Format is "csv" (with a
	// header row, comma-separated) or "parquet".
	Spine, Format string
	// Columns are the spine's columns as DuckDB reads them (DuckDB's type
	// names), in file order.
	Columns []pipeline.SourceColumn
	// Time is the index in Columns of the time column: a timestamp, a date
	// or ISO-8601 text (naive text is UTC).
	Time int
	Sets []PointInTimeSet
	// Staging is the directory to write into (it exists and is empty); ID
	// is unique to the join.
	Staging, ID string
}

// PointInTimeSet is one feature set of a PointInTimeJob.
type PointInTimeSet struct {
	Name string
	// Keys are the join keys: spine columns and stored columns of the same
	// names, integer or text, matched by equality.
	Keys []string
	// Files are the set's stored Parquet files that can hold a matching row,
	// in write order (a later file's row wins a tie on keys and timestamp;
	// within a file, a later row), with the columns of offline.Engine's
	// stored rows (keys, "timestamp" without a time zone, the set's columns).
	// Rows outside (From, To] (a zero From: no lower bound) cannot match.
	Files    []string
	From, To time.Time
	TTL      time.Duration
	Features []PointInTimeFeature
}

// PointInTimeFeature is a stored column joined as output column atrium_f<Out>.
type PointInTimeFeature struct {
	Column string
	Type   spec.Type
	// Stored is false when none of the set's Files has the column (it was
	// added after they were written): the feature is NULL.
	Stored bool
	Out    int
}

// ComputeFunc opens a Compute from its URL.
type ComputeFunc func(ctx context.Context, u *url.URL, opts offline.Options) (Compute, error)

var (
	computeMu sync.Mutex
	computes  = map[string]ComputeFunc{}
)

// RegisterCompute makes a compute available under a URL scheme for
// offline.Options.Compute. It panics when the scheme is registered twice.
func RegisterCompute(scheme string, open ComputeFunc) {
	computeMu.Lock()
	defer computeMu.Unlock()
	if _, dup := computes[scheme]; dup {
		panic("duckdb: RegisterCompute called twice for scheme " + scheme)
	}
	computes[scheme] = open
}

// openCompute opens the compute named by rawURL's scheme.
func openCompute(ctx context.Context, rawURL string, opts offline.Options) (Compute, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: compute URL %q: %v", offline.ErrUnsupportedURL, rawURL, err)
	}
	computeMu.Lock()
	open, ok := computes[u.Scheme]
	schemes := make([]string, 0, len(computes))
	for s := range computes {
		schemes = append(schemes, s+"://")
	}
	computeMu.Unlock()
	if !ok {
		sort.Strings(schemes)
		return nil, fmt.Errorf("%w: compute URL %q: expected one of %v (is its package linked in?)", offline.ErrUnsupportedURL, u.Redacted(), schemes)
	}
	return open(ctx, u, opts)
}

// computeRelation is the name plans read the source by when a Compute runs them.
const computeRelation = "atrium_source_files"

// runElsewhere is Run's compute step handed to e.elsewhere: the source's
// schema is read here (so types are DuckDB's, as in a local run), the rows are
// computed and staged by the Compute, and checks and publishing are the
// engine's own (finishRun), so both paths publish under the same rules.
func (e *Engine) runElsewhere(ctx context.Context, conn *sql.Conn, req offline.RunRequest, plan *pipeline.Plan, res *offline.RunResult, src *spec.Source, files []string, schema []pipeline.SourceColumn, began time.Time) (*offline.RunResult, error) {
	srcFiles := make([]SourceFile, len(files))
	for i, f := range files {
		rel, err := sourceRelation(src, []string{f})
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", req.Set, err)
		}
		cols, err := e.sourceSchema(ctx, conn, src, []string{f}, rel)
		if err != nil {
			return nil, fmt.Errorf("run %s: source %s: %w", req.Set, src.Name, err)
		}
		srcFiles[i] = SourceFile{Path: f, Columns: cols}
	}
	staging, id, err := e.newStaging()
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", req.Set, err)
	}
	defer os.RemoveAll(staging)
	stage := time.Now()
	res.RowsIn, err = e.elsewhere.Stage(ctx, StageRequest{Plan: plan, Relation: computeRelation, Schema: schema, Files: srcFiles, Staging: staging, ID: id})
	if err != nil {
		return nil, fmt.Errorf("run %s: compute features: %w", req.Set, err)
	}
	if req.Progress != nil {
		req.Progress(offline.RunStages[0])
		req.Progress(offline.RunStages[1])
	}
	e.log.Debug("run: computed features elsewhere", "set", req.Set, "rows_in", res.RowsIn, "took", time.Since(stage))
	staged, err := e.adoptStaged(ctx, conn, plan, staging, id, emptyOutput(plan, schema))
	if err != nil {
		return nil, fmt.Errorf("run %s: staged features: %w", req.Set, err)
	}
	return e.finishRun(ctx, conn, req, plan, res, staging, id, staged, began)
}

// emptyOutput is a DuckDB relation with a plan's output columns and no rows
// (the plan's own Output is in another dialect).
func emptyOutput(plan *pipeline.Plan, schema []pipeline.SourceColumn) string {
	types := map[string]string{}
	for _, c := range schema {
		types[c.Name] = c.Type
	}
	var sel []string
	for _, k := range plan.Keys {
		t := "VARCHAR"
		if pipeline.IntegerType(types[k]) {
			t = "BIGINT"
		}
		sel = append(sel, fmt.Sprintf("CAST(NULL AS %s) AS %s", t, quality.Quote(k)))
	}
	sel = append(sel, "CAST(NULL AS TIMESTAMP) AS "+quality.Quote(spec.TimestampColumn))
	for _, c := range plan.Set.Columns() {
		sel = append(sel, fmt.Sprintf("CAST(NULL AS %s) AS %s", c.Type.SQL(), quality.Quote(c.Name)))
	}
	return "(SELECT " + strings.Join(sel, ", ") + " LIMIT 0)"
}

// joinElsewhere runs a point-in-time join's join on pc and returns the query
// of the output over the staged files: the spine's columns and the features
// (names: the output names of the job's features by Out) under their names,
// cast back to the types of a local join (a compute may hold some in other
// types: Spark has no unsigned integers), in spine order, plus atrium_row
// (1..n in spine order) when withRow, the input compute expects.
func (e *Engine) joinElsewhere(ctx context.Context, pc PointInTimeCompute, job PointInTimeJob, n int64, names []string, withRow bool) (string, error) {
	began := time.Now()
	rows, err := pc.JoinPointInTime(ctx, job)
	if err != nil {
		return "", fmt.Errorf("join: %w", err)
	}
	if rows != n {
		return "", fmt.Errorf("join: %d rows joined for a spine of %d rows", rows, n)
	}
	e.log.Debug("point-in-time join: joined elsewhere", "rows", rows, "sets", len(job.Sets), "took", time.Since(began))
	var files []string
	err = filepath.WalkDir(job.Staging, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if !d.IsDir() && strings.HasSuffix(name, ".parquet") && !strings.HasPrefix(name, ".") && !strings.HasPrefix(name, "_") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("joined rows: %w", err)
	}
	if len(files) == 0 {
		return "", fmt.Errorf("joined rows: no Parquet file in %s", job.Staging)
	}
	list, err := fileList(files)
	if err != nil {
		return "", fmt.Errorf("joined rows: %w", err)
	}
	types := make([]spec.Type, len(names))
	for _, s := range job.Sets {
		for _, f := range s.Features {
			types[f.Out] = f.Type
		}
	}
	sel := make([]string, 0, len(job.Columns)+len(names)+1)
	for i, c := range job.Columns {
		sel = append(sel, fmt.Sprintf("CAST(atrium_c%d AS %s) AS %s", i, c.Type, quality.Quote(c.Name)))
	}
	for j, name := range names {
		sel = append(sel, fmt.Sprintf("CAST(atrium_f%d AS %s) AS %s", j, types[j].SQL(), quality.Quote(name)))
	}
	if withRow {
		sel = append(sel, "row_number() OVER (ORDER BY atrium_sid) AS atrium_row")
	}
	return fmt.Sprintf("SELECT %s FROM read_parquet(%s, hive_partitioning = false) ORDER BY atrium_sid", strings.Join(sel, ", "), list), nil
}
