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
	fs, keys, err := e.set(req.Set)
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
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
	rel := sourceRelation(src, files)
	schema, err := describe(ctx, conn, "SELECT * FROM "+rel)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w: source %s (%s): %v", req.Set, offline.ErrSource, src.Name, src.Path, err)
	}
	plan, err := pipeline.Build(e.feats, req.Set, req.Start, req.End, rel, schema)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w: %v", req.Set, offline.ErrSource, err)
	}
	res := &offline.RunResult{Set: req.Set, Start: plan.Start, End: plan.End, Partitions: plan.Dates}
	// Temp tables are private to this connection; drop them so a pooled
	// connection does not hold the data after the run.
	defer func() {
		for _, t := range []string{pipeline.EventsTable, pipeline.OutputTable} {
			_, _ = conn.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+t)
		}
	}()
	progress := func(stage int) {
		if req.Progress != nil {
			req.Progress(offline.RunStages[stage])
		}
	}
	stage := time.Now()
	if _, err := conn.ExecContext(ctx, plan.Events); err != nil {
		return nil, fmt.Errorf("run %s: %w: reading source %s: %v", req.Set, offline.ErrSource, src.Name, err)
	}
	progress(0)
	e.log.Debug("run: read source", "set", req.Set, "from", plan.ReadFrom, "to", plan.ReadTo, "files", len(files), "took", time.Since(stage))
	stage = time.Now()
	if _, err := conn.ExecContext(ctx, plan.Output); err != nil {
		return nil, fmt.Errorf("run %s: compute features: %w", req.Set, err)
	}
	progress(1)
	e.log.Debug("run: computed features", "set", req.Set, "took", time.Since(stage))
	stage = time.Now()
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM "+pipeline.EventsTable).Scan(&res.RowsIn); err != nil {
		return nil, fmt.Errorf("run %s: %w", req.Set, err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM "+pipeline.OutputTable).Scan(&res.RowsOut); err != nil {
		return nil, fmt.Errorf("run %s: %w", req.Set, err)
	}
	res.Checks, err = quality.Run(ctx, conn, quality.Target{Set: fs, Keys: keys, Relation: pipeline.OutputTable, AsOf: plan.AsOf})
	if err != nil {
		return nil, fmt.Errorf("run %s: checks: %w", req.Set, err)
	}
	progress(2)
	e.log.Debug("run: checks", "set", req.Set, "checks", len(res.Checks), "took", time.Since(stage))
	stage = time.Now()
	if failed := quality.Blocking(res.Checks); len(failed) > 0 {
		res.Duration = time.Since(began)
		msgs := make([]string, len(failed))
		for i, f := range failed {
			msgs[i] = f.Check + ": " + f.Message
		}
		return res, fmt.Errorf("run %s: %w, nothing published: %s", req.Set, offline.ErrChecksFailed, strings.Join(msgs, "; "))
	}
	if err := e.publish(ctx, conn, req.Set, plan.Dates); err != nil {
		return nil, fmt.Errorf("run %s: publish: %w", req.Set, err)
	}
	progress(3)
	e.log.Debug("run: published", "set", req.Set, "partitions", len(plan.Dates), "took", time.Since(stage))
	res.Published = true
	res.Duration = time.Since(began)
	return res, nil
}

// publish writes the output table into a staging directory, one sub-directory
// per date of the run (empty when the run produced no row that day), and then
// exchanges each into place.
func (e *Engine) publish(ctx context.Context, conn *sql.Conn, set string, dates []string) error {
	unlock, err := e.lockSet(set)
	if err != nil {
		return err
	}
	defer unlock()
	dir := e.setDir(set)
	if err := recoverSet(dir); err != nil {
		return fmt.Errorf("recover %s: %w", dir, err)
	}
	id := newID()
	staging := filepath.Join(dir, stagingPrefix+id)
	if err := os.MkdirAll(staging, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(staging)
	// DuckDB names hive partitions column=value; the column is atrium_date and the
	// directories are renamed to date=... below.
	copySQL := fmt.Sprintf(`COPY (SELECT *, strftime("timestamp", '%%Y-%%m-%%d') AS atrium_date FROM %s)
		TO '%s' (FORMAT parquet, PARTITION_BY (atrium_date), FILENAME_PATTERN '%s-run-{i}')`,
		pipeline.OutputTable, sqlString(staging), id)
	if _, err := conn.ExecContext(ctx, copySQL); err != nil {
		return fmt.Errorf("write parquet: %w", err)
	}
	want := map[string]bool{}
	for _, d := range dates {
		want[d] = true
	}
	written, err := os.ReadDir(staging)
	if err != nil {
		return err
	}
	for _, ent := range written {
		date, ok := strings.CutPrefix(ent.Name(), "atrium_date=")
		if !ok || !want[date] {
			// Every output row lies on a day of the run: anything else is a bug.
			return fmt.Errorf("unexpected output partition %s", ent.Name())
		}
		if err := os.Rename(filepath.Join(staging, ent.Name()), filepath.Join(staging, "date="+date)); err != nil {
			return err
		}
	}
	for _, d := range dates {
		p := filepath.Join(staging, "date="+d)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		if err := syncTree(p); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Each exchange is atomic; a run killed half-way has replaced some of its days
	// with complete new partitions and left the others as they were.
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
