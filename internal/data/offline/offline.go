// Package offline is the historical feature store and its compute engine: it runs
// feature pipelines into date partitions, point-in-time joins spines against them,
// and streams the latest row per key for materialization.
//
// Engines register by URL scheme like database/sql drivers (duckdb:// is the
// embedded default, in offline/duckdb) and are blank-imported by cmd/atrium.
package offline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/profile"
	"github.com/atrium-ml/atrium/internal/data/quality"
	"github.com/atrium-ml/atrium/internal/spec"
)

// Engine is a historical store plus the compute that fills and reads it. Stored
// rows of a feature set are its entity's join keys, a timestamp (UTC) and the set's
// columns (spec.FeatureSet.Columns), partitioned by the UTC date of the timestamp.
// Implementations are safe for concurrent use.
type Engine interface {
	// Run computes a feature set over the whole UTC days req.Start..req.End and
	// replaces exactly those date partitions, each atomically, after the set's
	// checks pass. When an error-level check fails nothing is published, the
	// previous partitions stay as they were, and the error wraps ErrChecksFailed
	// (the result is returned too, with every check's outcome).
	Run(ctx context.Context, req RunRequest) (*RunResult, error)
	// PointInTime joins each row of a spine with, per feature set, the latest row
	// of the same keys with t - ttl < ts <= t (t the spine row's time), and writes
	// the spine's columns plus the features to a CSV or Parquet file.
	PointInTime(ctx context.Context, req PointInTimeRequest) (*PointInTimeResult, error)
	// ScanLatest streams, for each key of a set, its latest row with from < ts <= to
	// (a zero from or to means no bound), in batches, in no particular key order.
	// When the set has no stored partition dated on or before to (it was never
	// run, or only for later days) the error wraps ErrNoData: a caller keeping
	// a resume point must not move it past data that does not exist yet.
	// Among rows with the same key and timestamp the one written last wins. fn must
	// not keep the batch slice after it returns (the rows in it may be kept); an
	// error from fn stops the scan and is returned. The scan holds the set's read
	// lock until it returns: writes to the set wait, so fn must not write to it.
	ScanLatest(ctx context.Context, set string, from, to time.Time, fn func([]LatestRow) error) error
	// Append adds rows to a set (pushed rows): one new file per date partition
	// touched, each appearing whole or not at all. Values follow the set's column
	// order; a later Run of the same dates replaces them.
	Append(ctx context.Context, set string, rows []LatestRow) error
	// Close releases the engine. Closing twice is not an error.
	Close() error
}

// Validator is implemented by engines that can check a catalog's SQL (expressions,
// where clauses, derived features) against the sources' schemas before anything
// runs. Problems carry the file and line of the definition at fault; notes are
// remarks that are not problems (a source without files yet, say).
type Validator interface {
	ValidateSQL(ctx context.Context, f *spec.Features) (problems spec.Problems, notes []string)
}

// SourceCounter is implemented by engines that can count a source's rows in
// a time range: the scheduler's readiness check (a source's ready.min_rows).
type SourceCounter interface {
	CountSourceRows(ctx context.Context, src *spec.Source, from, to time.Time) (int64, error)
}

// LatestRow is one stored feature row.
type LatestRow struct {
	// Key holds the join-key values in the entity's join_keys order: string or int64.
	Key []any
	// TS is the row's event time (UTC).
	TS time.Time
	// Values holds the set's columns in spec.FeatureSet.Columns order: int64,
	// float64, string, bool or time.Time, nil for NULL.
	Values []any
}

// RunRequest asks for a feature set to be computed over whole UTC days.
type RunRequest struct {
	Set string
	// Start and End are dates (UTC midnight); both days are included.
	Start, End time.Time
	// Progress, when set, is called as each of the RunStages completes.
	Progress func(stage string)
	// BeforePublish, when set, is called once the checks passed, right before
	// the partitions are swapped in, with the result so far (rows, partitions,
	// checks, PublishMarkers). An error stops the run with nothing published.
	// Callers record the run as publishing there, so that a process killed
	// during or right after the swap leaves a record that says so, and the
	// markers to tell afterwards whether the swap completed.
	BeforePublish func(ctx context.Context, res *RunResult) error
	// SkipProfiles: do not profile the partitions (RunResult.Profiles stays
	// nil). Profiling is on by default; this is for measuring its cost.
	SkipProfiles bool
}

// RunStages are the stages of a run, in order, as reported to RunRequest.Progress.
var RunStages = []string{"read source", "compute features", "check", "publish"}

// RunResult is what a run did.
type RunResult struct {
	Set        string
	Start, End time.Time
	// RowsIn counts source rows read (after the set's where), RowsOut feature rows.
	RowsIn, RowsOut int64
	// Partitions lists the dates (YYYY-MM-DD) replaced, or that would have been.
	Partitions []string
	Checks     []quality.Result
	Published  bool
	Duration   time.Duration
	// PublishMarkers, set by engines on a local filesystem, are files that
	// exist once the run's partitions are all live (one in each partition
	// the run replaces), and until a later run replaces those partitions:
	// whoever finds a run's process gone mid-publish checks them instead of
	// guessing. Empty: the engine cannot tell.
	PublishMarkers []string
	// Profiles are the statistics of each partition's feature rows, by date
	// (YYYY-MM-DD), computed after the checks passed and before publishing
	// (nil when the engine does not profile or the request skipped it).
	Profiles map[string]*profile.Profile
}

// PointInTimeRequest is a point-in-time join. Features come from spec.Resolve.
type PointInTimeRequest struct {
	// Spine is a CSV or Parquet file holding the join keys of every set involved,
	// the time column and any other columns (labels), which pass through.
	Spine string
	// TimeColumn names the spine's time column; "" picks the only timestamp or
	// date column, or else a column named timestamp, event_timestamp or ts.
	TimeColumn string
	Features   []spec.ResolvedFeature
	// Names are the output column names of Features (same length and order).
	Names []string
	// Out is the output file; .csv or .parquet.
	Out string
	// Computed, when set, adds columns computed in Go from each joined row
	// (request-time features) after the join.
	Computed *Computed
}

// Computed are columns computed row by row from a point-in-time join's
// output, written after its columns. Engines stream the joined rows through
// Compute in batches, so memory stays bounded whatever the spine's size.
type Computed struct {
	// Inputs are the joined columns Compute reads (spine columns or Names of
	// Features), in order, with the type each is read as.
	Inputs []ComputedColumn
	// Hidden are Names of Features joined only as inputs: the written file
	// leaves them out.
	Hidden []string
	// Columns are the computed columns, in order.
	Columns []ComputedColumn
	// Compute fills out (rows x len(Columns) values, row-major) from in
	// (in[i][r] is Inputs[i] at row r; a SQL NULL is online.Null). An error
	// stops the join.
	Compute func(in [][]online.Value, rows int, out []online.Value) error
}

// ComputedColumn is a column name and type.
type ComputedColumn struct {
	Name string
	Type spec.Type
}

// PointInTimeResult describes the written file.
type PointInTimeResult struct {
	Rows    int64
	Columns []string
}

// Sentinel errors.
var (
	ErrUnsupportedURL = errors.New("unsupported offline store URL")
	// ErrChecksFailed reports a run stopped by an error-level data-quality check.
	ErrChecksFailed = errors.New("data-quality checks failed")
	// ErrUnknownSet reports a feature set the engine's catalog does not define.
	ErrUnknownSet = errors.New("unknown feature set")
	// ErrInvalid reports a bad request (bad dates, malformed rows, a bad spine).
	ErrInvalid = errors.New("invalid request")
	// ErrNoData reports a set with no stored rows up to the time asked for.
	ErrNoData = errors.New("no offline data")
	// ErrSource reports source files that are missing or do not match the definition.
	ErrSource = errors.New("bad source data")
	// ErrNoTimeColumn reports a spine whose time column is not named and cannot be
	// told from its columns, or is named but missing. Errors wrapping it wrap
	// ErrInvalid too.
	ErrNoTimeColumn = errors.New("no time column")
)

// Options configure an engine.
type Options struct {
	// Features is the catalog the engine computes and reads (required).
	Features *spec.Features
	// BaseDir resolves relative source paths (the repository). Default: the
	// working directory.
	BaseDir string
	// Logger receives progress and warnings. Default: discard.
	Logger *slog.Logger
	// Compute, when set, is the URL of a compute engine that runs pipelines in
	// place of the engine's own (sc://host:15002: Spark Connect); the store,
	// checks, publishing and reads stay the engine's. Default "": the engine
	// computes. An engine that cannot hand its runs over refuses the option.
	Compute string
}

// OpenFunc opens an engine from its URL.
type OpenFunc func(ctx context.Context, u *url.URL, opts Options) (Engine, error)

var (
	mu      sync.Mutex
	engines = map[string]OpenFunc{}
)

// Register makes an engine available under a URL scheme. It panics when the scheme
// is registered twice (a programming error).
func Register(scheme string, open OpenFunc) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := engines[scheme]; dup {
		panic("offline: Register called twice for scheme " + scheme)
	}
	engines[scheme] = open
}

// Open opens the engine named by rawURL's scheme.
func Open(ctx context.Context, rawURL string, opts Options) (Engine, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("offline store URL %q: %w", rawURL, err)
	}
	mu.Lock()
	open, ok := engines[u.Scheme]
	schemes := make([]string, 0, len(engines))
	for s := range engines {
		schemes = append(schemes, s+"://")
	}
	mu.Unlock()
	if !ok {
		sort.Strings(schemes)
		return nil, fmt.Errorf("%w %q: expected one of %v", ErrUnsupportedURL, rawURL, schemes)
	}
	if opts.Features == nil {
		opts.Features = &spec.Features{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return open(ctx, u, opts)
}

// ParseDate parses a YYYY-MM-DD date as UTC midnight.
func ParseDate(s string) (time.Time, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: date %q: expected YYYY-MM-DD", ErrInvalid, s)
	}
	return t, nil
}

// Schema returns what LatestRow holds for a set of the catalog: the join keys (the
// order of LatestRow.Key) and the feature columns with their types (the order of
// LatestRow.Values).
func Schema(f *spec.Features, set string) (keys []string, cols []spec.Column, err error) {
	fs := f.Set(set)
	if fs == nil {
		return nil, nil, fmt.Errorf("%w %q", ErrUnknownSet, set)
	}
	return f.JoinKeys(set), fs.Columns(), nil
}
