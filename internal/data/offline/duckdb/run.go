package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/pipeline"
	"github.com/atrium-ml/atrium/internal/data/quality"
)

// Run implements offline.Engine.
func (e *Engine) Run(ctx context.Context, req offline.RunRequest) (*offline.RunResult, error) {
	began := time.Now()
	if req.Start.IsZero() || req.End.IsZero() {
		return nil, fmt.Errorf("run %s: %w: start and end dates are required", req.Set, offline.ErrInvalid)
	}
	// Checked here, not left to pipeline.Build, whose errors are the source's.
	if req.End.Before(req.Start) {
		return nil, fmt.Errorf("run %s: %w: end %s is before start %s", req.Set, offline.ErrInvalid, req.End.Format(time.DateOnly), req.Start.Format(time.DateOnly))
	}
	fs, _, err := e.set(req.Set)
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	if err := pipeline.ParseSet(ctx, e, fs); err != nil {
		return nil, fmt.Errorf("run %s: %w: %v", req.Set, offline.ErrInvalid, err)
	}
	src := e.feats.Source(fs.Source)
	files, err := e.sourceFiles(src)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", req.Set, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("run %s: %w: source %s: no file matches %s (relative to %s)", req.Set, offline.ErrSource, src.Name, src.Path, e.baseDir)
	}
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", req.Set, err)
	}
	defer conn.Close()
	rel, err := sourceRelation(src, files)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", req.Set, err)
	}
	schema, err := e.sourceSchema(ctx, conn, src, files, rel)
	if err != nil {
		return nil, fmt.Errorf("run %s: source %s: %w", req.Set, src.Name, err)
	}
	var plan *pipeline.Plan
	if e.elsewhere != nil {
		plan, err = pipeline.BuildDialect(e.feats, req.Set, req.Start, req.End, computeRelation, schema, e.elsewhere.Dialect())
	} else {
		plan, err = pipeline.Build(e.feats, req.Set, req.Start, req.End, rel, schema)
	}
	if err != nil {
		return nil, fmt.Errorf("run %s: %w: %v", req.Set, offline.ErrSource, err)
	}
	res := &offline.RunResult{Set: req.Set, Start: plan.Start, End: plan.End, Partitions: plan.Dates}
	// Temp tables and views are private to this connection; drop them so a
	// pooled connection does not hold the data after the run.
	defer func() {
		_, _ = conn.ExecContext(context.Background(), "DROP VIEW IF EXISTS "+outputView)
		_, _ = conn.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+pipeline.EventsTable)
	}()
	progress := func(stage int) {
		if req.Progress != nil {
			req.Progress(offline.RunStages[stage])
		}
	}
	if e.elsewhere != nil {
		return e.runElsewhere(ctx, conn, req, plan, res, src, files, schema, began)
	}
	stage := time.Now()
	if _, err := conn.ExecContext(ctx, plan.Events); err != nil {
		return nil, fmt.Errorf("run %s: reading source %s: %w", req.Set, src.Name, e.readError(ctx, conn, "source "+src.Name, src.Format, files, src.Timestamp, offline.ErrSource, err))
	}
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM "+pipeline.EventsTable).Scan(&res.RowsIn); err != nil {
		return nil, fmt.Errorf("run %s: %w", req.Set, err)
	}
	progress(0)
	e.log.Debug("run: read source", "set", req.Set, "from", plan.ReadFrom, "to", plan.ReadTo, "files", len(files), "rows", res.RowsIn, "took", time.Since(stage))

	// The features are computed straight into Parquet files in a staging
	// directory, one sub-directory per day of the run; checks then read them
	// there, and only a passing run moves them into the store.
	stage = time.Now()
	staging, id, err := e.newStaging()
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", req.Set, err)
	}
	defer os.RemoveAll(staging)
	staged, err := e.stage(ctx, conn, plan, staging, id)
	if err != nil {
		return nil, fmt.Errorf("run %s: compute features: %w", req.Set, err)
	}
	progress(1)
	e.log.Debug("run: computed features", "set", req.Set, "took", time.Since(stage))

	return e.finishRun(ctx, conn, req, plan, res, staging, id, staged, began)
}

// finishRun checks, profiles and publishes a run's staged partitions
// (outputView reads them).
func (e *Engine) finishRun(ctx context.Context, conn *sql.Conn, req offline.RunRequest, plan *pipeline.Plan, res *offline.RunResult, staging, id string, staged map[string][]string, began time.Time) (*offline.RunResult, error) {
	fs, keys := plan.Set, plan.Keys
	var err error
	progress := func(stage int) {
		if req.Progress != nil {
			req.Progress(offline.RunStages[stage])
		}
	}
	stage := time.Now()
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM "+outputView).Scan(&res.RowsOut); err != nil {
		return nil, fmt.Errorf("run %s: %w", req.Set, err)
	}
	res.Checks, err = quality.Run(ctx, conn, quality.Target{Set: fs, Keys: keys, Relation: outputView, AsOf: plan.AsOf})
	if err != nil {
		return nil, fmt.Errorf("run %s: checks: %w", req.Set, err)
	}
	progress(2)
	e.log.Debug("run: checks", "set", req.Set, "checks", len(res.Checks), "took", time.Since(stage))
	if failed := quality.Blocking(res.Checks); len(failed) > 0 {
		res.Duration = time.Since(began)
		msgs := make([]string, len(failed))
		for i, f := range failed {
			msgs[i] = f.Check + ": " + f.Message
		}
		return res, fmt.Errorf("run %s: %w, nothing published: %s", req.Set, offline.ErrChecksFailed, strings.Join(msgs, "; "))
	}
	if !req.SkipProfiles {
		stage = time.Now()
		// A profile is an observation of the data, not part of it: failing
		// to compute one is logged and the run publishes without profiles.
		if res.Profiles, err = e.profile(ctx, conn, plan, keys, staged); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("run %s: %w", req.Set, ctx.Err())
			}
			e.log.Warn("run: partitions not profiled", "set", req.Set, "err", err)
			res.Profiles = nil
		}
		e.log.Debug("run: profiled partitions", "set", req.Set, "partitions", len(plan.Dates), "took", time.Since(stage))
	}
	// Each staged partition carries a marker named after the run's files: once
	// it is in the store, that partition is this run's.
	for _, d := range plan.Dates {
		res.PublishMarkers = append(res.PublishMarkers, filepath.Join(e.setDir(req.Set), "date="+d, publishMarkerPrefix+id))
	}
	if req.BeforePublish != nil {
		if err := req.BeforePublish(ctx, res); err != nil {
			return nil, fmt.Errorf("run %s: before publishing: %w", req.Set, err)
		}
	}
	stage = time.Now()
	if err := e.publish(ctx, req.Set, staging, plan.Dates); err != nil {
		return nil, fmt.Errorf("run %s: publish: %w", req.Set, err)
	}
	progress(3)
	e.log.Debug("run: published", "set", req.Set, "partitions", len(plan.Dates), "took", time.Since(stage))
	res.Published = true
	res.Duration = time.Since(began)
	return res, nil
}

// publishMarkerPrefix starts the name of the empty file each partition a run
// writes holds (see offline.RunResult.PublishMarkers). Readers list Parquet
// files by suffix, so it is never read as data.
const publishMarkerPrefix = ".published-"

// outputView is the temp view of a run's staged feature rows.
const outputView = "atrium_output"

// stage writes the plan's output into staging/date=YYYY-MM-DD/ directories, one
// per day of the run (empty when a day has no rows), fsynced, and defines
// outputView over them. It returns the Parquet files of each day.
func (e *Engine) stage(ctx context.Context, conn *sql.Conn, plan *pipeline.Plan, staging, id string) (map[string][]string, error) {
	// DuckDB names hive partitions column=value; the column is atrium_date and the
	// directories are renamed to date=... below.
	copySQL := fmt.Sprintf(`COPY (SELECT *, strftime("timestamp", '%%Y-%%m-%%d') AS atrium_date FROM (%s))
		TO %s (FORMAT parquet, PARTITION_BY (atrium_date), FILENAME_PATTERN '%s-run-{i}')`,
		plan.Output, sqlQuote(staging), id)
	if _, err := conn.ExecContext(ctx, copySQL); err != nil {
		return nil, err
	}
	return e.adoptStaged(ctx, conn, plan, staging, id, "(SELECT * FROM ("+plan.Output+") LIMIT 0)")
}

// adoptStaged turns the atrium_date=YYYY-MM-DD directories written into
// staging into the date=YYYY-MM-DD partitions of the run (one per day, empty
// when a day has no rows), each with its publish marker, fsynced, and defines
// outputView over them (as empty, a relation with the output's columns and no
// rows). It returns the Parquet files of each day.
func (e *Engine) adoptStaged(ctx context.Context, conn *sql.Conn, plan *pipeline.Plan, staging, id, empty string) (map[string][]string, error) {
	want := map[string]bool{}
	for _, d := range plan.Dates {
		want[d] = true
	}
	written, err := os.ReadDir(staging)
	if err != nil {
		return nil, err
	}
	for _, ent := range written {
		date, ok := strings.CutPrefix(ent.Name(), "atrium_date=")
		if !ok || !want[date] {
			// Every output row lies on a day of the run: anything else is a bug.
			return nil, fmt.Errorf("unexpected output partition %s", ent.Name())
		}
		if err := os.Rename(filepath.Join(staging, ent.Name()), filepath.Join(staging, "date="+date)); err != nil {
			return nil, err
		}
	}
	// The staged files are listed by name, never globbed: the store's path may
	// hold glob characters, and a glob matching nothing would let the checks
	// pass on no rows.
	var files []string
	byDate := make(map[string][]string, len(plan.Dates))
	for _, d := range plan.Dates {
		p := filepath.Join(staging, "date="+d)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(p, publishMarkerPrefix+id), nil, 0o644); err != nil {
			return nil, err
		}
		if err := syncTree(p); err != nil {
			return nil, err
		}
		fs, err := parquetFiles(p)
		if err != nil {
			return nil, err
		}
		files = append(files, fs...)
		byDate[d] = fs
	}
	list, err := fileList(files)
	if err != nil {
		return nil, err
	}
	rel := fmt.Sprintf("read_parquet(%s, hive_partitioning = false)", list)
	if len(files) == 0 {
		// No rows at all: an empty relation with the output's columns.
		rel = empty
	}
	_, err = conn.ExecContext(ctx, fmt.Sprintf("CREATE OR REPLACE TEMP VIEW %s AS SELECT * FROM %s", outputView, rel))
	return byDate, err
}

// publish exchanges each staged day into place, under the set's lock.
func (e *Engine) publish(ctx context.Context, set, staging string, dates []string) error {
	unlock, err := e.lockSet(set, true)
	if err != nil {
		return err
	}
	defer unlock()
	dir := e.setDir(set)
	if err := recoverSet(dir); err != nil {
		return fmt.Errorf("recover %s: %w", dir, err)
	}
	cleanStaging(e.root)
	if err := ctx.Err(); err != nil {
		return err
	}
	// Each exchange is atomic; a run killed half-way has replaced some of its days
	// with complete new partitions and left the others as they were. The old
	// partitions end up in the staging directory, which the caller removes.
	for _, d := range dates {
		staged, target := filepath.Join(staging, "date="+d), filepath.Join(dir, "date="+d)
		if err := exchange(staged, target); err != nil {
			return fmt.Errorf("replace partition %s: %w", d, err)
		}
	}
	return syncDir(dir)
}

// syncTree fsyncs the files of a directory and the directory itself, so a
// partition is on disk before it becomes visible.
func syncTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, ent := range entries {
		f, err := os.Open(filepath.Join(dir, ent.Name()))
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil && !errors.Is(err, os.ErrInvalid) {
			return err
		}
	}
	return syncDir(dir)
}
