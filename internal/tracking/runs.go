package tracking

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/google/uuid"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/tracking/search"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

const runColumns = `run_uuid, experiment_id, name, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage`

func scanRunInfo(sc meta.Scanner) (RunInfo, error) {
	var ri RunInfo
	var exp int64
	var end sql.NullInt64
	err := sc.Scan(&ri.RunID, &exp, &ri.RunName, &ri.UserID, &ri.Status, &ri.StartTime, &end, &ri.ArtifactURI, &ri.LifecycleStage)
	ri.RunUUID = ri.RunID
	ri.ExperimentID = wire.Itoa(exp)
	if end.Valid {
		ri.EndTime = &end.Int64
	}
	return ri, err
}

// NewID returns a new 32-hex-digit id (a UUID v4 without dashes, as MLflow's).
func NewID() string { return strings.ReplaceAll(uuid.NewString(), "-", "") }

// RunCreate is a create_run request.
type RunCreate struct {
	ExperimentID string // default "0"
	UserID       string
	RunName      string // default: the mlflow.runName tag, else a random name
	StartTime    int64  // ms; default now
	Tags         []KV
}

// CreateRun creates a RUNNING run in an active experiment. Its artifact URI is
// "<experiment artifact location>/<run_id>/artifacts".
func (s *Store) CreateRun(ctx context.Context, rc RunCreate) (*Run, error) {
	if rc.ExperimentID == "" {
		rc.ExperimentID = DefaultExpID
	}
	tags := dedupKV(rc.Tags)
	nameTag := ""
	for i := range tags {
		if err := validateTag(&tags[i], fmt.Sprintf("tags[%d]", i)); err != nil {
			return nil, err
		}
		if tags[i].Key == TagRunName {
			nameTag = tags[i].Value
		}
	}
	if rc.RunName != "" && nameTag != "" && rc.RunName != nameTag {
		return nil, wire.Invalidf("Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values (run_name='%s', mlflow.runName='%s').", rc.RunName, nameTag)
	}
	name := rc.RunName
	if name == "" {
		name = nameTag
	}
	if name == "" {
		name = randomName()
	}
	if nameTag == "" {
		tags = append(tags, KV{Key: TagRunName, Value: name})
	}
	if rc.StartTime == 0 {
		rc.StartTime = s.nowMillis()
	}
	run := &Run{Info: RunInfo{
		RunID: NewID(), RunName: name, UserID: rc.UserID, Status: "RUNNING",
		StartTime: rc.StartTime, LifecycleStage: StageActive,
	}, Data: RunData{Tags: tags}}
	run.Info.RunUUID = run.Info.RunID
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		e, expID, err := s.activeExperiment(ctx, tx, rc.ExperimentID)
		if err != nil {
			return err
		}
		run.Info.ExperimentID = e.ExperimentID
		run.Info.ArtifactURI = strings.TrimRight(e.ArtifactLocation, "/") + "/" + run.Info.RunID + "/artifacts"
		if _, err := tx.Exec(ctx, `INSERT INTO runs (`+runColumns+`) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?)`,
			run.Info.RunID, expID, name, rc.UserID, "RUNNING", rc.StartTime, run.Info.ArtifactURI, StageActive); err != nil {
			return err
		}
		return upsertKVs(ctx, tx, "tags", run.Info.RunID, tags)
	})
	if err != nil {
		return nil, wire.Wrap(err, "create run in experiment %s", rc.ExperimentID)
	}
	s.maybeAnalyze(ctx, &s.created)
	sortKV(run.Data.Tags)
	return run, nil
}

func sortKV(kvs []KV) { sort.Slice(kvs, func(i, j int) bool { return kvs[i].Key < kvs[j].Key }) }

// upsertKVs writes key/values of one owner into table (tags-like: owner column
// run_uuid, last write wins) with multi-row statements.
func upsertKVs(ctx context.Context, tx *meta.Tx, table, runID string, kvs []KV) error {
	const rowsPerStmt = 200
	for start := 0; start < len(kvs); start += rowsPerStmt {
		part := kvs[start:min(start+rowsPerStmt, len(kvs))]
		args := make([]any, 0, 3*len(part))
		vals := make([]string, len(part))
		for i, kv := range part {
			vals[i] = "(?, ?, ?)"
			args = append(args, runID, kv.Key, kv.Value)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+table+` (run_uuid, key, value) VALUES `+strings.Join(vals, ", ")+
			` ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value`, args...); err != nil {
			return err
		}
	}
	return nil
}

// runState returns a run's experiment id and lifecycle stage.
func runState(ctx context.Context, q meta.Querier, runID string) (expID int64, stage string, err error) {
	err = q.QueryRow(ctx, `SELECT experiment_id, lifecycle_stage FROM runs WHERE run_uuid = ?`, runID).Scan(&expID, &stage)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", wire.NotFoundf("Run with id=%s not found", runID)
	}
	return expID, stage, err
}

// activeRun fails unless the run exists and is active.
func activeRun(ctx context.Context, q meta.Querier, runID string) (int64, error) {
	expID, stage, err := runState(ctx, q, runID)
	if err != nil {
		return 0, err
	}
	if stage != StageActive {
		return 0, wire.Invalidf("The run %s must be in the 'active' state. Current state is %s.", runID, stage)
	}
	return expID, nil
}

// inRunTx runs fn, a change to an active run's params, tags, metrics, info,
// inputs or outputs, in a write transaction, then raises the run's revision in
// that transaction: the invariant the run cache relies on (cachedRun). Every
// such change goes through it.
//
// The revision is raised last because on PostgreSQL it locks the run's row
// until the commit: concurrent writers of one run then overlap all their work
// but that, instead of queueing from their first statement (20 writers of 500
// metrics into one run, BenchmarkLogBatch500Keys20Writers: 65 batches/s with
// the row locked first, 81 to 103 with it locked last). For most writers it
// is the last row locked; those that change the row itself (update_run, a
// rename) lock it earlier, and a deadlock that order allows is detected by
// PostgreSQL and the transaction retried (meta). The update checks the run is
// still active, so a run deleted while fn ran is not written to.
func (s *Store) inRunTx(ctx context.Context, runID string, fn func(tx *meta.Tx, expID int64) error) error {
	defer s.maybeAnalyze(ctx, &s.written)
	return s.db.InTx(ctx, func(tx *meta.Tx) error {
		expID, err := activeRun(ctx, tx, runID)
		if err != nil {
			return err
		}
		if err := fn(tx, expID); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `UPDATE runs SET revision = revision + 1 WHERE run_uuid = ? AND lifecycle_stage = ?`, runID, StageActive)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err == nil && n != 1 {
			err = wire.Invalidf("The run %s must be in the 'active' state. It was deleted during this request.", runID)
		}
		return err
	})
}

// GetRun returns a run with its params, tags, latest metrics, inputs and outputs.
func (s *Store) GetRun(ctx context.Context, runID string) (*Run, error) {
	ri, err := scanRunInfo(s.db.QueryRow(ctx, `SELECT `+runColumns+` FROM runs WHERE run_uuid = ?`, runID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wire.NotFoundf("Run with id=%s not found", runID)
	}
	if err != nil {
		return nil, fmt.Errorf("get run %s: %w", runID, err)
	}
	runs := []Run{{Info: ri}}
	if err := s.loadRunData(ctx, runs); err != nil {
		return nil, err
	}
	return &runs[0], nil
}

// RunInfoOf returns a run's info only (no data): what lineage checks need.
func (s *Store) RunInfoOf(ctx context.Context, runID string) (*RunInfo, error) {
	ri, err := scanRunInfo(s.db.QueryRow(ctx, `SELECT `+runColumns+` FROM runs WHERE run_uuid = ?`, runID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wire.NotFoundf("Run with id=%s not found", runID)
	}
	if err != nil {
		return nil, fmt.Errorf("get run %s: %w", runID, err)
	}
	return &ri, nil
}

// indexRuns returns the ids of runs, in order, and each id's index in runs.
func indexRuns(runs []Run) (map[string]int, []string) {
	idx := make(map[string]int, len(runs))
	ids := make([]string, len(runs))
	for i, r := range runs {
		idx[r.Info.RunID] = i
		ids[i] = r.Info.RunID
	}
	return idx, ids
}

// loadRunData fills Data, Inputs and Outputs of runs in a fixed number of
// queries per 1,000 runs (never one query per run).
func (s *Store) loadRunData(ctx context.Context, runs []Run) error {
	if len(runs) == 0 {
		return nil
	}
	idx, ids := indexRuns(runs)
	// One statement per 1,000 runs: the page's ids are materialized once and
	// joined to each per-run table (measured on SQLite: 3x faster than one
	// IN-list query per table, which builds the IN index each time).
	for chunk := range slices.Chunk(ids, 1000) {
		q := pageCTE(len(chunk)) + `
			SELECT 0, run_uuid, key, value, 0, 0, 0, 0 FROM page JOIN params ON run_uuid = id
			UNION ALL SELECT 1, run_uuid, key, value, 0, 0, 0, 0 FROM page JOIN tags ON run_uuid = id
			UNION ALL SELECT 2, run_uuid, key, '', value, is_nan, timestamp, step FROM page JOIN latest_metrics ON run_uuid = id`
		err := meta.EachRow(ctx, s.db, q, anys(chunk), func(rows *sql.Rows) error {
			var kind, isNaN int64
			var id, key, text string
			var num float64
			var ts, step int64
			if err := rows.Scan(&kind, &id, &key, &text, &num, &isNaN, &ts, &step); err != nil {
				return err
			}
			r := &runs[idx[id]]
			switch kind {
			case 0:
				r.Data.Params = append(r.Data.Params, KV{Key: key, Value: text})
			case 1:
				r.Data.Tags = append(r.Data.Tags, KV{Key: key, Value: text})
			case 2:
				r.Data.Metrics = append(r.Data.Metrics, Metric{Key: key, Value: restore(num, isNaN != 0), Timestamp: ts, Step: step})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("load run data: %w", err)
		}
	}
	// The joins' row order is the engine's business: sort each run's lists.
	for i := range runs {
		r := &runs[i]
		sortKV(r.Data.Params)
		sortKV(r.Data.Tags)
		slices.SortFunc(r.Data.Metrics, func(a, b Metric) int { return strings.Compare(a.Key, b.Key) })
	}
	return s.loadRunIO(ctx, runs, idx, ids)
}

// pageCTE is a WITH clause naming n bound run ids page(id).
func pageCTE(n int) string {
	return `WITH page(id) AS MATERIALIZED (VALUES ` + strings.TrimSuffix(strings.Repeat("(?), ", n), ", ") + `)`
}

// loadRunIO fills Inputs and Outputs of runs (idx maps ids[i], runs[i]'s id, to
// i). Few runs have any: the query returns rows only for those that do.
func (s *Store) loadRunIO(ctx context.Context, runs []Run, idx map[string]int, ids []string) error {
	var withInputs []runDataset
	for chunk := range slices.Chunk(ids, 1000) {
		q := pageCTE(len(chunk)) + `
			SELECT 3, run_uuid, dataset_uuid, 0 FROM page JOIN run_inputs ON run_uuid = id
			UNION ALL SELECT 4, run_uuid, model_id, 0 FROM page JOIN run_model_inputs ON run_uuid = id
			UNION ALL SELECT 5, run_uuid, model_id, step FROM page JOIN run_model_outputs ON run_uuid = id`
		err := meta.EachRow(ctx, s.db, q, anys(chunk), func(rows *sql.Rows) error {
			var kind, step int64
			var id, key string
			if err := rows.Scan(&kind, &id, &key, &step); err != nil {
				return err
			}
			r := &runs[idx[id]]
			switch kind {
			case 3:
				withInputs = append(withInputs, runDataset{run: id, dataset: key})
			case 4:
				r.Inputs.ModelInputs = append(r.Inputs.ModelInputs, ModelInput{ModelID: key})
			case 5:
				r.Outputs.ModelOutputs = append(r.Outputs.ModelOutputs, ModelOutput{ModelID: key, Step: step})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("load run inputs and outputs: %w", err)
		}
	}
	if err := s.loadDatasetInputs(ctx, runs, idx, withInputs); err != nil {
		return err
	}
	for i := range runs {
		r := &runs[i]
		slices.SortFunc(r.Inputs.ModelInputs, func(a, b ModelInput) int { return strings.Compare(a.ModelID, b.ModelID) })
		slices.SortFunc(r.Outputs.ModelOutputs, func(a, b ModelOutput) int {
			if c := strings.Compare(a.ModelID, b.ModelID); c != 0 {
				return c
			}
			return cmp.Compare(a.Step, b.Step)
		})
	}
	return nil
}

// RunUpdate is an update_run request; nil fields are left as they are.
type RunUpdate struct {
	Status  *string // RUNNING, SCHEDULED, FINISHED, FAILED, KILLED
	EndTime *int64
	RunName *string
}

// ParseRunStatus resolves a RunStatus enum (name or number).
func ParseRunStatus(v wire.Enum) (string, error) {
	name, ok := v.Name(runStatuses)
	if !ok {
		return "", wire.Invalidf("Invalid value %q for parameter 'status': expected one of RUNNING, SCHEDULED, FINISHED, FAILED, KILLED", string(v))
	}
	return name, nil
}

// UpdateRun changes an active run's status, end time or name and returns its info.
func (s *Store) UpdateRun(ctx context.Context, runID string, u RunUpdate) (*RunInfo, error) {
	var ri RunInfo
	err := s.inRunTx(ctx, runID, func(tx *meta.Tx, _ int64) error {
		if u.Status != nil {
			if _, err := tx.Exec(ctx, `UPDATE runs SET status = ? WHERE run_uuid = ?`, *u.Status, runID); err != nil {
				return err
			}
		}
		if u.EndTime != nil {
			if _, err := tx.Exec(ctx, `UPDATE runs SET end_time = ? WHERE run_uuid = ?`, *u.EndTime, runID); err != nil {
				return err
			}
		}
		if u.RunName != nil && *u.RunName != "" {
			if err := setRunName(ctx, tx, runID, *u.RunName); err != nil {
				return err
			}
		}
		var err error
		ri, err = scanRunInfo(tx.QueryRow(ctx, `SELECT `+runColumns+` FROM runs WHERE run_uuid = ?`, runID))
		return err
	})
	if err != nil {
		return nil, wire.Wrap(err, "update run %s", runID)
	}
	return &ri, nil
}

// setRunName keeps the runs.name column and the mlflow.runName tag in step.
func setRunName(ctx context.Context, tx *meta.Tx, runID, name string) error {
	if _, err := tx.Exec(ctx, `UPDATE runs SET name = ? WHERE run_uuid = ?`, name, runID); err != nil {
		return err
	}
	return upsertKVs(ctx, tx, "tags", runID, []KV{{Key: TagRunName, Value: name}})
}

// DeleteRun marks a run deleted.
func (s *Store) DeleteRun(ctx context.Context, runID string) error {
	return s.setRunStage(ctx, runID, StageDeleted)
}

// RestoreRun marks a deleted run active again.
func (s *Store) RestoreRun(ctx context.Context, runID string) error {
	return s.setRunStage(ctx, runID, StageActive)
}

func (s *Store) setRunStage(ctx context.Context, runID, stage string) error {
	var deletedTime any
	if stage == StageDeleted {
		deletedTime = s.nowMillis()
	}
	res, err := s.db.Exec(ctx, `UPDATE runs SET lifecycle_stage = ?, deleted_time = ?, revision = revision + 1 WHERE run_uuid = ?`, stage, deletedTime, runID)
	if err != nil {
		return fmt.Errorf("set run %s %s: %w", runID, stage, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return wire.NotFoundf("Run with id=%s not found", runID)
	}
	return nil
}

// LogParam logs a param. Logging the same value again is a no-op; a different
// value is an error (params are immutable).
func (s *Store) LogParam(ctx context.Context, runID string, p KV) error {
	if err := validateParam(&p, ""); err != nil {
		return err
	}
	err := s.inRunTx(ctx, runID, func(tx *meta.Tx, _ int64) error {
		conflicts, err := insertParams(ctx, tx, runID, []KV{p})
		if err != nil {
			return err
		}
		if len(conflicts) > 0 {
			return wire.Invalidf("Changing param values is not allowed. Param with key='%s' was already logged with value='%s' for run ID='%s'. Attempted logging new value '%s'.",
				p.Key, conflicts[0].old, runID, p.Value)
		}
		return nil
	})
	return wire.Wrap(err, "log param %q to run %s", p.Key, runID)
}

type paramConflict struct{ key, old, new string }

// insertParams inserts params that are not there yet and reports those already
// logged with a different value. It reads back after inserting, so a concurrent
// writer of the same key is caught too (its committed row is visible then).
func insertParams(ctx context.Context, tx *meta.Tx, runID string, params []KV) ([]paramConflict, error) {
	if len(params) == 0 {
		return nil, nil
	}
	args := make([]any, 0, 3*len(params))
	vals := make([]string, len(params))
	keys := make([]any, len(params))
	want := make(map[string]string, len(params))
	for i, p := range params {
		vals[i] = "(?, ?, ?)"
		args = append(args, runID, p.Key, p.Value)
		keys[i] = p.Key
		want[p.Key] = p.Value
	}
	if _, err := tx.Exec(ctx, `INSERT INTO params (run_uuid, key, value) VALUES `+strings.Join(vals, ", ")+
		` ON CONFLICT (run_uuid, key) DO NOTHING`, args...); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT key, value FROM params WHERE run_uuid = ? AND key IN (`+search.Placeholders(len(keys))+`)`, append([]any{runID}, keys...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var conflicts []paramConflict
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		if want[k] != v {
			conflicts = append(conflicts, paramConflict{key: k, old: v, new: want[k]})
		}
	}
	sort.Slice(conflicts, func(i, j int) bool { return conflicts[i].key < conflicts[j].key })
	return conflicts, rows.Err()
}

// SetTag sets (overwrites) a run tag. Setting mlflow.runName renames the run.
func (s *Store) SetTag(ctx context.Context, runID string, t KV) error {
	if err := validateTag(&t, ""); err != nil {
		return err
	}
	err := s.inRunTx(ctx, runID, func(tx *meta.Tx, _ int64) error {
		if t.Key == TagRunName {
			return setRunName(ctx, tx, runID, t.Value)
		}
		return upsertKVs(ctx, tx, "tags", runID, []KV{t})
	})
	return wire.Wrap(err, "set tag %q on run %s", t.Key, runID)
}

// DeleteTag removes a run tag.
func (s *Store) DeleteTag(ctx context.Context, runID, key string) error {
	err := s.inRunTx(ctx, runID, func(tx *meta.Tx, _ int64) error {
		res, err := tx.Exec(ctx, `DELETE FROM tags WHERE run_uuid = ? AND key = ?`, runID, key)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return wire.NotFoundf("No tag with name: %s in run with id %s", key, runID)
		}
		return nil
	})
	return wire.Wrap(err, "delete tag %q of run %s", key, runID)
}
