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
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/profile"
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
	{Version: 3, Name: "record a run's publish before it happens", Statements: []string{
		`ALTER TABLE pipeline_runs ADD COLUMN publish_markers TEXT`,
	}},
}}

// Run statuses.
const (
	StatusRunning      = "running"
	StatusSucceeded    = "succeeded"
	StatusChecksFailed = "checks_failed"
	StatusFailed       = "failed"
	// StatusPublishing: the checks passed and the partitions are being swapped
	// in; rows, partitions and checks are recorded. A publishing run whose
	// process is gone is settled by the next ListRuns or Execute: succeeded
	// when all its partitions are live (its publish markers exist), failed
	// otherwise, naming the partitions it did replace.
	StatusPublishing = "publishing"
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
	// Profiles are the published partitions' profiles (offline.RunResult's),
	// returned by Execute for the caller to store (profiledb.Save); never
	// stored with the run.
	Profiles map[string]*profile.Profile `json:"-"`
}

// Execute runs a feature set on an engine and records the run: a "running" row
// first (so a run killed mid-way remains visible), "publishing" with its rows,
// partitions and checks right before the engine swaps the partitions in (so a
// run killed during or after the swap is never shown with nothing done), then
// its outcome. Runs of dead processes left publishing are settled first.
func Execute(ctx context.Context, db *meta.DB, eng offline.Engine, req offline.RunRequest, catalogVersion int) (*Run, error) {
	if err := settleRuns(ctx, db, req.Set); err != nil {
		return nil, err
	}
	r := &Run{ID: runID(), Set: req.Set, Start: req.Start.UTC().Format(time.DateOnly), End: req.End.UTC().Format(time.DateOnly),
		Status: StatusRunning, StartedAt: time.Now().UTC(), CatalogVersion: catalogVersion}
	host, _ := os.Hostname()
	if _, err := db.Exec(ctx, `INSERT INTO pipeline_runs (id, set_name, start_date, end_date, status, started_at, catalog_version, host, pid)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, r.Set, r.Start, r.End, r.Status, r.StartedAt.UnixMilli(), r.CatalogVersion,
		host, os.Getpid()); err != nil {
		return nil, fmt.Errorf("record run of %s: %w", req.Set, err)
	}
	callerHook := req.BeforePublish
	req.BeforePublish = func(ctx context.Context, res *offline.RunResult) error {
		if callerHook != nil {
			if err := callerHook(ctx, res); err != nil {
				return err
			}
		}
		rec := Run{RowsIn: res.RowsIn, RowsOut: res.RowsOut, Partitions: res.Partitions, Checks: res.Checks}
		rec.listsNotNull()
		parts, _ := json.Marshal(rec.Partitions)
		checks, _ := json.Marshal(rec.Checks)
		markers, _ := json.Marshal(res.PublishMarkers)
		if _, err := db.Exec(ctx, `UPDATE pipeline_runs SET status = ?, rows_in = ?, rows_out = ?, partitions = ?, checks = ?,
			publish_markers = ? WHERE id = ?`,
			StatusPublishing, res.RowsIn, res.RowsOut, string(parts), string(checks), string(markers), r.ID); err != nil {
			return fmt.Errorf("record run %s as publishing: %w", r.ID, err)
		}
		return nil
	}
	res, runErr := eng.Run(ctx, req)
	r.FinishedAt = time.Now().UTC()
	r.DurationMS = r.FinishedAt.Sub(r.StartedAt).Milliseconds()
	if res != nil {
		r.RowsIn, r.RowsOut, r.Partitions, r.Checks = res.RowsIn, res.RowsOut, res.Partitions, res.Checks
		if res.Published {
			r.Profiles = res.Profiles
		}
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
	// A failed publish may have replaced some partitions before failing: the
	// publishing row's rows and partitions stay (res is nil then).
	q := `UPDATE pipeline_runs SET status = ?, finished_at = ?, rows_in = ?, rows_out = ?, duration_ms = ?,
		partitions = ?, checks = ?, error = ? WHERE id = ?`
	args := []any{r.Status, r.FinishedAt.UnixMilli(), r.RowsIn, r.RowsOut, r.DurationMS, string(parts), string(checks), nullable(r.Error), r.ID}
	if res == nil {
		q = `UPDATE pipeline_runs SET status = ?, finished_at = ?, duration_ms = ?, error = ? WHERE id = ?`
		args = []any{r.Status, r.FinishedAt.UnixMilli(), r.DurationMS, nullable(r.Error), r.ID}
	}
	if _, err := db.Exec(recordCtx, q, args...); err != nil {
		return r, errors.Join(runErr, fmt.Errorf("record outcome of run %s: %w", r.ID, err))
	}
	return r, runErr
}

// settleRuns settles the runs of set ("" = all) that were publishing in a
// process of this host that no longer exists: succeeded when every publish
// marker exists (the swap completed; the process died before recording it),
// failed otherwise, naming the partitions that were replaced. Runs of other
// hosts are left alone: their processes cannot be checked from here.
func settleRuns(ctx context.Context, db *meta.DB, set string) error {
	q := `SELECT id, pid, partitions, publish_markers FROM pipeline_runs WHERE status = ? AND host = ?`
	host, _ := os.Hostname()
	args := []any{StatusPublishing, host}
	if set != "" {
		q += ` AND set_name = ?`
		args = append(args, set)
	}
	type pending struct {
		id               string
		pid              sql.NullInt64
		parts, markersJS sql.NullString
	}
	var runs []pending
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("settle interrupted runs: %w", err)
	}
	for rows.Next() {
		var p pending
		if err := rows.Scan(&p.id, &p.pid, &p.parts, &p.markersJS); err != nil {
			rows.Close()
			return fmt.Errorf("settle interrupted runs: %w", err)
		}
		runs = append(runs, p)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("settle interrupted runs: %w", err)
	}
	for _, p := range runs {
		if p.pid.Valid && ProcessAlive(int(p.pid.Int64)) {
			continue
		}
		if !p.markersJS.Valid || p.markersJS.String == "null" || p.markersJS.String == "[]" {
			continue // the engine cannot tell: ListRuns shows it interrupted, with its rows
		}
		var parts, markers []string
		if p.parts.Valid {
			_ = json.Unmarshal([]byte(p.parts.String), &parts)
		}
		if p.markersJS.Valid {
			_ = json.Unmarshal([]byte(p.markersJS.String), &markers)
		}
		var live []string
		for i, m := range markers {
			if _, err := os.Stat(m); err == nil && i < len(parts) {
				live = append(live, parts[i])
			}
		}
		status, msg := StatusFailed, ""
		switch {
		case len(markers) > 0 && len(live) == len(markers):
			status = StatusSucceeded
		case len(live) > 0:
			msg = fmt.Sprintf("interrupted while publishing: %d of %d partitions hold this run's data (%s); the others hold earlier data or a later run's",
				len(live), len(parts), strings.Join(live, ", "))
		default:
			msg = "interrupted while publishing: no partition holds this run's data (none was replaced, or later runs replaced them)"
		}
		// Only a run still publishing is settled, so two settling processes
		// agree; finished_at is when the interruption was found.
		if _, err := db.Exec(ctx, `UPDATE pipeline_runs SET status = ?, error = ?, finished_at = ? WHERE id = ? AND status = ?`,
			status, nullable(msg), time.Now().UnixMilli(), p.id, StatusPublishing); err != nil {
			return fmt.Errorf("settle interrupted run %s: %w", p.id, err)
		}
	}
	return nil
}

// RunFilter selects recorded runs.
type RunFilter struct {
	// Set restricts to one feature set ("" = all).
	Set string
	// Limit caps the number of runs returned, newest first (default 50).
	Limit int
}

// ListRuns returns recorded runs, newest first, after settling the runs of
// dead processes left publishing (see StatusPublishing).
func ListRuns(ctx context.Context, db *meta.DB, f RunFilter) ([]Run, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	if err := settleRuns(ctx, db, f.Set); err != nil {
		return nil, err
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
		if (r.Status == StatusRunning || r.Status == StatusPublishing) && host.Valid && host.String == thisHost && pid.Valid && !ProcessAlive(int(pid.Int64)) {
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
