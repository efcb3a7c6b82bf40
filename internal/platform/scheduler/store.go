package scheduler

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/meta"
)

// Schema is the scheduler's tables: its jobs (pause flag, how far the
// schedule was planned), one row per (job, interval) holding the interval's
// state and lease, and one row per attempt (the history).
var Schema = meta.Schema{Component: "scheduler", Migrations: []meta.Migration{
	{Version: 1, Name: "create scheduler tables", Statements: []string{
		`CREATE TABLE scheduler_jobs (
			job TEXT PRIMARY KEY,
			kind TEXT NOT NULL,
			paused BIGINT NOT NULL DEFAULT 0,
			planned_until BIGINT
		)`,
		`CREATE TABLE scheduler_intervals (
			job TEXT NOT NULL,
			start_ms BIGINT NOT NULL,
			end_ms BIGINT NOT NULL,
			state TEXT NOT NULL,
			trigger_kind TEXT NOT NULL,
			attempt BIGINT NOT NULL DEFAULT 0,
			not_before BIGINT NOT NULL,
			max_parallel BIGINT NOT NULL DEFAULT 0,
			owner TEXT,
			lease_until BIGINT,
			run_id TEXT,
			updated_ms BIGINT NOT NULL,
			PRIMARY KEY (job, start_ms)
		)`,
		`CREATE INDEX scheduler_intervals_state ON scheduler_intervals (state)`,
		`CREATE TABLE scheduler_runs (
			id TEXT PRIMARY KEY,
			job TEXT NOT NULL,
			kind TEXT NOT NULL,
			start_ms BIGINT NOT NULL,
			end_ms BIGINT NOT NULL,
			trigger_kind TEXT NOT NULL,
			attempt BIGINT NOT NULL,
			owner TEXT NOT NULL,
			started_ms BIGINT NOT NULL,
			finished_ms BIGINT,
			state TEXT NOT NULL,
			error TEXT,
			rows_written BIGINT,
			checks TEXT,
			detail TEXT
		)`,
		`CREATE INDEX scheduler_runs_job_started ON scheduler_runs (job, started_ms)`,
		`CREATE INDEX scheduler_runs_started ON scheduler_runs (started_ms)`,
	}},
}}

// ivRow is one (job, interval) row.
type ivRow struct {
	Job         string
	Start, End  time.Time
	State       string
	Trigger     string
	Attempt     int
	NotBefore   time.Time
	MaxParallel int
	Owner       string
	LeaseUntil  time.Time
	RunID       string
}

func (r *ivRow) iv() Interval { return Interval{Start: r.Start, End: r.End} }

type ivKey struct {
	job   string
	start int64
}

func (r *ivRow) key() ivKey { return ivKey{r.Job, r.Start.UnixMilli()} }

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// store is the scheduler's access to its tables.
type store struct{ db *meta.DB }

func (s store) ensureJobs(ctx context.Context, jobs []Job) error {
	return s.db.InTx(ctx, func(tx *meta.Tx) error {
		for _, j := range jobs {
			if _, err := tx.Exec(ctx, `INSERT INTO scheduler_jobs (job, kind) VALUES (?, ?) ON CONFLICT (job) DO NOTHING`, j.Name, j.Kind); err != nil {
				return fmt.Errorf("record job %s: %w", j.Name, err)
			}
		}
		return nil
	})
}

type jobState struct {
	paused       bool
	plannedUntil time.Time // zero: never planned
}

func (s store) loadJobs(ctx context.Context) (map[string]jobState, error) {
	out := map[string]jobState{}
	err := meta.EachRow(ctx, s.db, `SELECT job, paused, planned_until FROM scheduler_jobs`, nil, func(rows *sql.Rows) error {
		var name string
		var paused int64
		var planned sql.NullInt64
		if err := rows.Scan(&name, &paused, &planned); err != nil {
			return err
		}
		st := jobState{paused: paused != 0}
		if planned.Valid {
			st.plannedUntil = fromMS(planned.Int64)
		}
		out[name] = st
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load scheduler jobs: %w", err)
	}
	return out, nil
}

// plan records the intervals a job's schedule made due (state pending, or
// skipped under catchup: latest) and moves the job's planned_until to until.
// Two processes planning at once insert the same rows: the second insert
// does nothing.
func (s store) plan(ctx context.Context, job string, rows []ivRow, until time.Time, now time.Time) error {
	return s.db.InTx(ctx, func(tx *meta.Tx) error {
		for _, r := range rows {
			if _, err := tx.Exec(ctx, `INSERT INTO scheduler_intervals (job, start_ms, end_ms, state, trigger_kind, not_before, updated_ms)
				VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job, start_ms) DO NOTHING`,
				r.Job, ms(r.Start), ms(r.End), r.State, r.Trigger, ms(r.NotBefore), ms(now)); err != nil {
				return fmt.Errorf("plan %s %s: %w", job, r.iv(), err)
			}
		}
		_, err := tx.Exec(ctx, `UPDATE scheduler_jobs SET planned_until = ? WHERE job = ? AND (planned_until IS NULL OR planned_until < ?)`,
			ms(until), job, ms(until))
		return err
	})
}

// enqueue makes intervals of a job pending again for a manual trigger or a
// backfill (attempts start over). Running intervals are left alone: they
// are returned in busy.
func (s store) enqueue(ctx context.Context, job string, ivs []Interval, trigger string, parallel int, now time.Time) (busy []Interval, err error) {
	err = s.db.InTx(ctx, func(tx *meta.Tx) error {
		busy = busy[:0]
		for _, iv := range ivs {
			res, err := tx.Exec(ctx, `INSERT INTO scheduler_intervals (job, start_ms, end_ms, state, trigger_kind, not_before, max_parallel, updated_ms)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (job, start_ms) DO UPDATE SET state = excluded.state, trigger_kind = excluded.trigger_kind, attempt = 0,
					not_before = excluded.not_before, max_parallel = excluded.max_parallel, end_ms = excluded.end_ms, updated_ms = excluded.updated_ms
				WHERE scheduler_intervals.state <> ?`,
				job, ms(iv.Start), ms(iv.End), StatePending, trigger, ms(now), parallel, ms(now), StateRunning)
			if err != nil {
				return fmt.Errorf("enqueue %s %s: %w", job, iv, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				busy = append(busy, iv)
			}
		}
		return nil
	})
	return busy, err
}

// loadIntervals returns the rows of every interval not yet terminal, plus
// every row starting at or after since (the recent past that dependencies
// look at).
func (s store) loadIntervals(ctx context.Context, since time.Time) ([]ivRow, error) {
	rows, err := meta.Collect(ctx, s.db, `SELECT job, start_ms, end_ms, state, trigger_kind, attempt, not_before, max_parallel, owner, lease_until, run_id
		FROM scheduler_intervals WHERE state IN (?, ?) OR start_ms >= ?`, []any{StatePending, StateRunning, ms(since)}, scanIv)
	if err != nil {
		return nil, fmt.Errorf("load scheduler intervals: %w", err)
	}
	return rows, nil
}

func scanIv(row meta.Scanner) (ivRow, error) {
	var r ivRow
	var start, end, nb int64
	var owner, runID sql.NullString
	var lease sql.NullInt64
	if err := row.Scan(&r.Job, &start, &end, &r.State, &r.Trigger, &r.Attempt, &nb, &r.MaxParallel, &owner, &lease, &runID); err != nil {
		return r, err
	}
	r.Start, r.End, r.NotBefore = fromMS(start), fromMS(end), fromMS(nb)
	r.Owner, r.RunID = owner.String, runID.String
	if lease.Valid {
		r.LeaseUntil = fromMS(lease.Int64)
	}
	return r, nil
}

// claimed is an interval this process won, with its attempt's history row.
type claimed struct {
	row  ivRow
	kind string
}

// claim tries to take each candidate's lease in one transaction. A candidate
// is won only if, in the database, it is still pending and past its backoff,
// or running under a lease that expired (its process died: that attempt is
// recorded as interrupted). The conditional UPDATE is the exactly-once
// guarantee: of two processes claiming the same interval, one updates the
// row and the other finds it changed and updates nothing.
func (s store) claim(ctx context.Context, owner string, now time.Time, lease time.Duration, cands []ivRow, kindOf func(job string) string) ([]claimed, error) {
	var won []claimed
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		won = won[:0]
		for _, c := range cands {
			runID := newRunID(now)
			res, err := tx.Exec(ctx, `UPDATE scheduler_intervals SET state = ?, owner = ?, lease_until = ?, attempt = attempt + 1, run_id = ?, updated_ms = ?
				WHERE job = ? AND start_ms = ? AND ((state = ? AND not_before <= ?) OR (state = ? AND lease_until < ?))
				AND COALESCE(run_id, '') = ?`,
				StateRunning, owner, ms(now.Add(lease)), runID, ms(now),
				c.Job, ms(c.Start), StatePending, ms(now), StateRunning, ms(now), c.RunID)
			if err != nil {
				return fmt.Errorf("claim %s %s: %w", c.Job, c.iv(), err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue // another process got there first, or the row changed
			}
			if c.State == StateRunning && c.RunID != "" {
				if _, err := tx.Exec(ctx, `UPDATE scheduler_runs SET state = ?, finished_ms = ?, error = ? WHERE id = ? AND state = ?`,
					StateInterrupted, ms(now), fmt.Sprintf("lease expired at %s: %s stopped renewing it (killed or cut off)", c.LeaseUntil.Format(time.RFC3339), c.Owner),
					c.RunID, StateRunning); err != nil {
					return fmt.Errorf("record interrupted run %s: %w", c.RunID, err)
				}
			}
			r := c
			r.State, r.Owner, r.LeaseUntil, r.RunID, r.Attempt = StateRunning, owner, now.Add(lease), runID, c.Attempt+1
			if _, err := tx.Exec(ctx, `INSERT INTO scheduler_runs (id, job, kind, start_ms, end_ms, trigger_kind, attempt, owner, started_ms, state)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				runID, r.Job, kindOf(r.Job), ms(r.Start), ms(r.End), r.Trigger, r.Attempt, owner, ms(now), StateRunning); err != nil {
				return fmt.Errorf("record run of %s %s: %w", r.Job, r.iv(), err)
			}
			won = append(won, claimed{row: r, kind: kindOf(r.Job)})
		}
		return nil
	})
	return won, err
}

// renew extends a lease; false means the lease is no longer this attempt's.
func (s store) renew(ctx context.Context, r ivRow, until time.Time) (bool, error) {
	res, err := s.db.Exec(ctx, `UPDATE scheduler_intervals SET lease_until = ? WHERE job = ? AND start_ms = ? AND run_id = ? AND state = ?`,
		ms(until), r.Job, ms(r.Start), r.RunID, StateRunning)
	if err != nil {
		return true, err // unknown: keep running, the next renewal tells
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// outcome is how an attempt ended.
type outcome struct {
	runState      string // history state
	intervalState string // StatePending (retry), or terminal
	notBefore     time.Time
	err           string
	res           Result
}

// finish records an attempt's outcome and releases the lease. lost is true
// when the lease was no longer the attempt's (another process took the
// interval over): the history row is written, the interval left alone.
func (s store) finish(ctx context.Context, r ivRow, o outcome, now time.Time) (lost bool, err error) {
	checks, _ := json.Marshal(o.res.Checks)
	err = s.db.InTx(ctx, func(tx *meta.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE scheduler_intervals SET state = ?, not_before = ?, owner = NULL, lease_until = NULL, updated_ms = ?
			WHERE job = ? AND start_ms = ? AND run_id = ? AND state = ?`,
			o.intervalState, ms(o.notBefore), ms(now), r.Job, ms(r.Start), r.RunID, StateRunning)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		lost = n == 0
		state, msg := o.runState, o.err
		if lost && state == StateSucceeded {
			msg = "finished after its lease was lost; another attempt took over"
		}
		_, err = tx.Exec(ctx, `UPDATE scheduler_runs SET state = ?, finished_ms = ?, error = ?, rows_written = ?, checks = ?, detail = ? WHERE id = ?`,
			state, ms(now), nullable(msg), o.res.Rows, string(checks), nullable(o.res.Detail), r.RunID)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record outcome of %s %s: %w", r.Job, r.iv(), err)
	}
	return lost, nil
}

func (s store) setPaused(ctx context.Context, job string, paused bool) error {
	v := 0
	if paused {
		v = 1
	}
	res, err := s.db.Exec(ctx, `UPDATE scheduler_jobs SET paused = ? WHERE job = ?`, v, job)
	if err != nil {
		return fmt.Errorf("pause %s: %w", job, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w %q", ErrUnknownJob, job)
	}
	return nil
}

// Run is one recorded attempt of a job's interval.
type Run struct {
	ID         string    `json:"id"`
	Job        string    `json:"job"`
	Kind       string    `json:"kind"`
	Start      time.Time `json:"interval_start"`
	End        time.Time `json:"interval_end"`
	Trigger    string    `json:"trigger"`
	Attempt    int       `json:"attempt"`
	Owner      string    `json:"owner"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	State      string    `json:"state"`
	Error      string    `json:"error,omitempty"`
	Rows       int64     `json:"rows"`
	Checks     []Check   `json:"checks"`
	Detail     string    `json:"detail,omitempty"`
}

// Interval returns the run's interval.
func (r Run) Interval() Interval { return Interval{Start: r.Start, End: r.End} }

// RunFilter selects recorded runs; zero fields select all.
type RunFilter struct {
	Job     string
	Kind    string
	State   string
	Trigger string
	// Since and Until bound the runs' start times.
	Since, Until time.Time
	// Limit caps the runs returned, newest first (default 50).
	Limit int
	// Oldest first instead of newest first.
	Ascending bool
}

// ListRuns returns recorded runs matching f, newest first.
func ListRuns(ctx context.Context, db *meta.DB, f RunFilter) ([]Run, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	var where []string
	var args []any
	for _, c := range []struct{ col, v string }{{"job", f.Job}, {"kind", f.Kind}, {"state", f.State}, {"trigger_kind", f.Trigger}} {
		if c.v != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	if !f.Since.IsZero() {
		where = append(where, "started_ms >= ?")
		args = append(args, ms(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "started_ms < ?")
		args = append(args, ms(f.Until))
	}
	q := `SELECT id, job, kind, start_ms, end_ms, trigger_kind, attempt, owner, started_ms, finished_ms, state, error, rows_written, checks, detail FROM scheduler_runs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	order := "DESC"
	if f.Ascending {
		order = "ASC"
	}
	q += fmt.Sprintf(" ORDER BY started_ms %s, id %s LIMIT ?", order, order)
	args = append(args, f.Limit)
	runs, err := meta.Collect(ctx, db, q, args, func(row meta.Scanner) (Run, error) {
		var r Run
		var start, end, started int64
		var finished, rows sql.NullInt64
		var errText, checks, detail sql.NullString
		if err := row.Scan(&r.ID, &r.Job, &r.Kind, &start, &end, &r.Trigger, &r.Attempt, &r.Owner, &started, &finished, &r.State,
			&errText, &rows, &checks, &detail); err != nil {
			return r, err
		}
		r.Start, r.End, r.StartedAt = fromMS(start), fromMS(end), fromMS(started)
		if finished.Valid {
			r.FinishedAt = fromMS(finished.Int64)
		}
		r.Error, r.Rows, r.Detail = errText.String, rows.Int64, detail.String
		if checks.Valid && checks.String != "" && checks.String != "null" {
			_ = json.Unmarshal([]byte(checks.String), &r.Checks)
		}
		if r.Checks == nil {
			r.Checks = []Check{}
		}
		return r, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list job runs: %w", err)
	}
	return runs, nil
}

// runSeq orders the runs a process starts within one millisecond of its
// clock (a fake clock's ticks all start at the same time).
var runSeq atomic.Uint64

// newRunID is unique and sorts by the scheduler's clock, then by the order
// this process started the runs.
func newRunID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%08d-%s", now.UTC().Format("20060102T150405.000Z"), runSeq.Add(1)%1e8, hex.EncodeToString(b[:]))
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
