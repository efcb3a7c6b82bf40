package pipeline

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/quality"
	"github.com/atrium-ml/atrium/internal/platform/meta"
)

// Schema is the pipeline run history's tables.
var Schema = meta.Schema{Component: "pipelines", Migrations: []meta.Migration{
	{Version: 1, Name: "create pipeline_runs", Statements: []string{
		`CREATE TABLE pipeline_runs (
				id TEXT PRIMARY KEY,
				set_name TEXT NOT NULL,
				start_date TEXT NOT NULL,
				end_date TEXT NOT NULL,
				status TEXT NOT NULL,
				started_at BIGINT NOT NULL,
				finished_at BIGINT,
				rows_in BIGINT,
				rows_out BIGINT,
				duration_ms BIGINT,
				partitions TEXT,
				checks TEXT,
				error TEXT,
				catalog_version BIGINT NOT NULL
			)`,
		`CREATE INDEX pipeline_runs_set_started ON pipeline_runs (set_name, started_at)`,
		`CREATE INDEX pipeline_runs_started ON pipeline_runs (started_at)`,
	}},
	{Version: 2, Name: "record the process of a run", Statements: []string{
		`ALTER TABLE pipeline_runs ADD COLUMN host TEXT`,
		`ALTER TABLE pipeline_runs ADD COLUMN pid BIGINT`,
	}},
}}

// Run statuses.
const (
	StatusRunning      = "running"
	StatusSucceeded    = "succeeded"
	StatusChecksFailed = "checks_failed"
	StatusFailed       = "failed"
	// StatusInterrupted is never stored: ListRuns reports it for a "running" run
	// whose process, on this host, no longer exists (it was killed).
	StatusInterrupted = "interrupted"
)

// Run is a recorded pipeline run.
type Run struct {
	ID         string    `json:"id"`
	Set        string    `json:"set"`
	Start      string    `json:"start"`
	End        string    `json:"end"`
	Status     string    `json:"status"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	RowsIn     int64     `json:"rows_in"`
	RowsOut    int64     `json:"rows_out"`
	// DurationMS is the run's wall time in milliseconds.
	DurationMS     int64            `json:"duration_ms"`
	Partitions     []string         `json:"partitions"`
	Checks         []quality.Result `json:"checks"`
	Error          string           `json:"error,omitempty"`
	CatalogVersion int              `json:"catalog_version"`
}

// Execute runs a feature set on an engine and records the run: a "running" row
// first (so a run killed mid-way remains visible), then its outcome.
func Execute(ctx context.Context, db *meta.DB, eng offline.Engine, req offline.RunRequest, catalogVersion int) (*Run, error) {
	r := &Run{ID: runID(), Set: req.Set, Start: req.Start.UTC().Format(time.DateOnly), End: req.End.UTC().Format(time.DateOnly),
		Status: StatusRunning, StartedAt: time.Now().UTC(), CatalogVersion: catalogVersion}
	host, _ := os.Hostname()
	if _, err := db.Exec(ctx, `INSERT INTO pipeline_runs (id, set_name, start_date, end_date, status, started_at, catalog_version, host, pid)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, r.Set, r.Start, r.End, r.Status, r.StartedAt.UnixMilli(), r.CatalogVersion,
		host, os.Getpid()); err != nil {
		return nil, fmt.Errorf("record run of %s: %w", req.Set, err)
	}
	res, runErr := eng.Run(ctx, req)
	r.FinishedAt = time.Now().UTC()
	r.DurationMS = r.FinishedAt.Sub(r.StartedAt).Milliseconds()
	if res != nil {
		r.RowsIn, r.RowsOut, r.Partitions, r.Checks = res.RowsIn, res.RowsOut, res.Partitions, res.Checks
	}
	switch {
	case runErr == nil:
		r.Status = StatusSucceeded
	case errors.Is(runErr, offline.ErrChecksFailed):
		r.Status, r.Error = StatusChecksFailed, runErr.Error()
	default:
		r.Status, r.Error = StatusFailed, runErr.Error()
	}
	r.listsNotNull()
	parts, _ := json.Marshal(r.Partitions)
	checks, _ := json.Marshal(r.Checks)
	// Record the outcome even when ctx was cancelled (an interrupted run).
	recordCtx := context.WithoutCancel(ctx)
	if _, err := db.Exec(recordCtx, `UPDATE pipeline_runs SET status = ?, finished_at = ?, rows_in = ?, rows_out = ?, duration_ms = ?,
		partitions = ?, checks = ?, error = ? WHERE id = ?`,
		r.Status, r.FinishedAt.UnixMilli(), r.RowsIn, r.RowsOut, r.DurationMS, string(parts), string(checks), nullable(r.Error), r.ID); err != nil {
		return r, errors.Join(runErr, fmt.Errorf("record outcome of run %s: %w", r.ID, err))
	}
	return r, runErr
}

// RunFilter selects recorded runs.
type RunFilter struct {
	// Set restricts to one feature set ("" = all).
	Set string
	// Limit caps the number of runs returned, newest first (default 50).
	Limit int
}

// ListRuns returns recorded runs, newest first.
func ListRuns(ctx context.Context, db *meta.DB, f RunFilter) ([]Run, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	q := `SELECT id, set_name, start_date, end_date, status, started_at, finished_at, rows_in, rows_out, duration_ms,
		partitions, checks, error, catalog_version, host, pid FROM pipeline_runs`
	var args []any
	if f.Set != "" {
		q += ` WHERE set_name = ?`
		args = append(args, f.Set)
	}
	q += ` ORDER BY started_at DESC, id DESC LIMIT ?`
	args = append(args, f.Limit)
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	var out []Run
	thisHost, _ := os.Hostname()
	for rows.Next() {
		var r Run
		var started int64
		var finished, in, outRows, dur, pid sql.NullInt64
		var parts, checks, errText, host sql.NullString
		if err := rows.Scan(&r.ID, &r.Set, &r.Start, &r.End, &r.Status, &started, &finished, &in, &outRows, &dur,
			&parts, &checks, &errText, &r.CatalogVersion, &host, &pid); err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		if r.Status == StatusRunning && host.Valid && host.String == thisHost && pid.Valid && !processAlive(int(pid.Int64)) {
			r.Status = StatusInterrupted
		}
		r.StartedAt = time.UnixMilli(started).UTC()
		if finished.Valid {
			r.FinishedAt = time.UnixMilli(finished.Int64).UTC()
		}
		r.RowsIn, r.RowsOut, r.DurationMS, r.Error = in.Int64, outRows.Int64, dur.Int64, errText.String
		if parts.Valid {
			_ = json.Unmarshal([]byte(parts.String), &r.Partitions)
		}
		if checks.Valid {
			_ = json.Unmarshal([]byte(checks.String), &r.Checks)
		}
		r.listsNotNull()
		out = append(out, r)
	}
	return out, rows.Err()
}

// listsNotNull makes the run's lists empty rather than nil, so that JSON shows
// [] where a list is meant (a failed run replaced no partitions and ran no
// checks), never null.
func (r *Run) listsNotNull() {
	if r.Partitions == nil {
		r.Partitions = []string{}
	}
	if r.Checks == nil {
		r.Checks = []quality.Result{}
	}
}

// runID is unique and sorts by creation time.
func runID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405.000000Z") + "-" + hex.EncodeToString(b[:])
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
