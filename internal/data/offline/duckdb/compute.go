package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
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
