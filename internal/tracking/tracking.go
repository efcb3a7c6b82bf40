// Package tracking is Atrium's experiment tracking: experiments, runs, params,
// metrics (with full history), tags, dataset inputs, MLflow 3 logged models, and
// the MLflow REST API over them (api.go), so the official mlflow client works
// unchanged against `atrium serve`.
//
// The Store keeps everything in the metadata database (internal/platform/meta,
// SQLite or PostgreSQL, the same SQL on both). It validates input the way
// MLflow's server does and returns *wire.Error values carrying MLflow's error
// codes and messages; other errors are internal (database failures).
//
// Entities below serialize to MLflow's JSON field names, so handlers return
// them as they are.
package tracking

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// Lifecycle stages of experiments, runs and logged models.
const (
	StageActive  = "active"
	StageDeleted = "deleted"
)

// Run statuses (RunStatus enum names, indexed by proto number).
var runStatuses = []string{"", "RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"}

// Reserved tag keys the store interprets.
const (
	TagRunName       = "mlflow.runName"
	TagUser          = "mlflow.user"
	TagModelVersions = "mlflow.modelVersions"
	TagDatasetCtx    = "mlflow.data.context"
	DefaultExpID     = "0"
	defaultExpName   = "Default"
)

// KV is a key/value pair: tags and params of every entity.
type KV struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Experiment groups runs.
type Experiment struct {
	ExperimentID     string `json:"experiment_id"`
	Name             string `json:"name"`
	ArtifactLocation string `json:"artifact_location"`
	LifecycleStage   string `json:"lifecycle_stage"`
	LastUpdateTime   int64  `json:"last_update_time"`
	CreationTime     int64  `json:"creation_time"`
	Tags             []KV   `json:"tags,omitempty"`
}

// Run is one execution: info, data (params, tags, latest value of each metric),
// dataset/model inputs and model outputs.
type Run struct {
	Info    RunInfo    `json:"info"`
	Data    RunData    `json:"data"`
	Inputs  RunInputs  `json:"inputs"`
	Outputs RunOutputs `json:"outputs"`
}

// RunInfo is a run's metadata.
type RunInfo struct {
	RunID          string `json:"run_id"`
	RunUUID        string `json:"run_uuid"`
	RunName        string `json:"run_name"`
	ExperimentID   string `json:"experiment_id"`
	UserID         string `json:"user_id"`
	Status         string `json:"status"`
	StartTime      int64  `json:"start_time"`
	EndTime        *int64 `json:"end_time,omitempty"` // nil while the run has not ended
	ArtifactURI    string `json:"artifact_uri"`
	LifecycleStage string `json:"lifecycle_stage"`
}

// RunData holds a run's params, tags and the latest value of each metric.
type RunData struct {
	Metrics []Metric `json:"metrics,omitempty"`
	Params  []KV     `json:"params,omitempty"`
	Tags    []KV     `json:"tags,omitempty"`
}

// Metric is one logged point. DatasetName/DatasetDigest/ModelID link it to an
// MLflow 3 logged model; RunID is set where a response mixes runs.
type Metric struct {
	Key           string     `json:"key"`
	Value         wire.Float `json:"value"`
	Timestamp     int64      `json:"timestamp"`
	Step          int64      `json:"step"`
	DatasetName   string     `json:"dataset_name,omitempty"`
	DatasetDigest string     `json:"dataset_digest,omitempty"`
	ModelID       string     `json:"model_id,omitempty"`
	RunID         string     `json:"run_id,omitempty"`
}

// RunInputs are what a run consumed.
type RunInputs struct {
	DatasetInputs []DatasetInput `json:"dataset_inputs,omitempty"`
	ModelInputs   []ModelInput   `json:"model_inputs,omitempty"`
}

// RunOutputs are what a run produced.
type RunOutputs struct {
	ModelOutputs []ModelOutput `json:"model_outputs,omitempty"`
}

// DatasetInput is a dataset a run used, with input tags (e.g. mlflow.data.context=train).
type DatasetInput struct {
	Tags    []KV    `json:"tags,omitempty"`
	Dataset Dataset `json:"dataset"`
}

// Dataset describes a dataset by name and content digest.
type Dataset struct {
	Name       string `json:"name"`
	Digest     string `json:"digest"`
	SourceType string `json:"source_type"`
	Source     string `json:"source"`
	Schema     string `json:"schema,omitempty"`
	Profile    string `json:"profile,omitempty"`
}

// ModelInput is a logged model a run used.
type ModelInput struct {
	ModelID string `json:"model_id"`
}

// ModelOutput is a logged model a run produced at a step.
type ModelOutput struct {
	ModelID string `json:"model_id"`
	Step    int64  `json:"step"`
}

// Options configure a Store.
type Options struct {
	// ArtifactRoot is the URI new experiments' artifact locations default to,
	// as "<ArtifactRoot>/<experiment_id>". Default "mlflow-artifacts:" (served by
	// the artifact proxy), giving "mlflow-artifacts:/1".
	ArtifactRoot string
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// RunCacheBytes bounds the memory of search_runs' cache of runs' JSON
	// (cachedRun). Default DefaultRunCacheBytes; negative turns the cache off
	// (each search writes its whole page: pageJSON on SQLite).
	RunCacheBytes int64
	// Logger receives what the store does not return to a caller (a failed
	// refresh of PostgreSQL's statistics). Default: discard.
	Logger *slog.Logger
}

// Store is the tracking store. It is safe for concurrent use.
type Store struct {
	db   *meta.DB
	root string
	now  func() time.Time
	log  *slog.Logger
	// runCache holds runs' search_runs JSON by run id (nil when off).
	runCache *otter.Cache[string, cachedRun]
	// created and written count the runs this process created and the write
	// transactions it made on runs, to refresh PostgreSQL's planner
	// statistics as a fresh database grows (see maybeAnalyze).
	created, written atomic.Int64
}

// maybeAnalyze refreshes PostgreSQL's planner statistics when counter (the
// runs this process created, or its writes to runs) reaches 1,000, 10,000,
// 100,000, ... Autovacuum does it too, but only after its nap: a database
// filled in the last minute would otherwise be planned as if empty, and
// search_runs sorts every match instead of walking an index (80 ms instead
// of 1 ms over 10,000 runs). Runs are counted for the runs table, writes for
// params, tags and metrics, which runs get after they are created: statistics
// taken at the 10,000th run saw no params yet, and a filtered search over
// them took 8 to 21 ms instead of 2 until autovacuum caught up. It runs once
// per decade of each counter, inline.
func (s *Store) maybeAnalyze(ctx context.Context, counter *atomic.Int64) {
	if s.db.Dialect != meta.Postgres {
		return
	}
	n := counter.Add(1)
	for d := int64(1000); d <= n; d *= 10 {
		if d == n {
			if _, err := s.db.Exec(ctx, `ANALYZE runs, params, tags, latest_metrics, experiments`); err != nil {
				s.log.Warn("tracking: refresh planner statistics", "err", err)
			}
			return
		}
	}
}

// New returns a store on db (already migrated by meta.Open) and makes sure the
// Default experiment "0" exists.
func New(ctx context.Context, db *meta.DB, opts Options) (*Store, error) {
	if opts.ArtifactRoot == "" {
		opts.ArtifactRoot = "mlflow-artifacts:"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{db: db, root: strings.TrimRight(opts.ArtifactRoot, "/"), now: opts.Now, log: opts.Logger}
	if opts.RunCacheBytes == 0 {
		opts.RunCacheBytes = DefaultRunCacheBytes
	}
	s.runCache = newRunCache(opts.RunCacheBytes)
	now := s.nowMillis()
	_, err := db.Exec(ctx, `INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
		VALUES (0, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, defaultExpName, s.root+"/0", StageActive, now, now)
	if err != nil {
		return nil, fmt.Errorf("tracking store: create the Default experiment: %w", err)
	}
	return s, nil
}

// DB is the store's database (the registry shares it).
func (s *Store) DB() *meta.DB { return s.db }

// ArtifactRoot is the root URI of default experiment artifact locations.
func (s *Store) ArtifactRoot() string { return s.root }

// Ready reports whether the database answers.
func (s *Store) Ready(ctx context.Context) error { return s.db.Ping(ctx) }

func (s *Store) nowMillis() int64 { return s.now().UnixMilli() }

// sanitize maps a metric value to what is stored: NaN as (0, true), infinities
// as the largest finite doubles (SQL engines do not round-trip them portably).
func sanitize(v float64) (float64, bool) {
	switch {
	case math.IsNaN(v):
		return 0, true
	case math.IsInf(v, 1):
		return math.MaxFloat64, false
	case math.IsInf(v, -1):
		return -math.MaxFloat64, false
	}
	return v, false
}

func restore(v float64, isNaN bool) wire.Float {
	if isNaN {
		return wire.Float(math.NaN())
	}
	return wire.Float(v)
}
