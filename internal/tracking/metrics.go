package tracking

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/atrium-ml/atrium/internal/platform/jsonw"
	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/tracking/search"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// LogMetric appends one metric point to a run (and to its logged model when
// ModelID is set).
func (s *Store) LogMetric(ctx context.Context, runID string, m Metric) error {
	if err := validateMetric(m, ""); err != nil {
		return err
	}
	err := s.inRunTx(ctx, runID, func(tx *meta.Tx, _ int64) error {
		return insertMetrics(ctx, tx, runID, []Metric{m})
	})
	return wire.Wrap(err, "log metric %q to run %s", m.Key, runID)
}

// LogBatch logs metrics, params and tags to a run in one transaction, with
// MLflow's semantics and limits: at most 1000 metrics, 100 params, 100 tags and
// 1000 items in all; params are immutable unless logged again with the same
// value; tags are last-write-wins; metrics append (an identical point is stored
// once). Either everything is stored or nothing is.
func (s *Store) LogBatch(ctx context.Context, runID string, metrics []Metric, params, tags []KV) error {
	if err := ValidateRunID(runID, "run_id"); err != nil {
		return err
	}
	for i, m := range metrics {
		if err := validateMetric(m, fmt.Sprintf("metrics[%d]", i)); err != nil {
			return err
		}
	}
	for i := range params {
		if err := validateParam(&params[i], fmt.Sprintf("params[%d]", i)); err != nil {
			return err
		}
	}
	for i := range tags {
		if err := validateTag(&tags[i], fmt.Sprintf("tags[%d]", i)); err != nil {
			return err
		}
	}
	if err := checkBatchLimits(len(metrics), len(params), len(tags)); err != nil {
		return err
	}
	seen := make(map[string]bool, len(params))
	var dupes []string
	for _, p := range params {
		if seen[p.Key] {
			dupes = append(dupes, "'"+p.Key+"'")
		}
		seen[p.Key] = true
	}
	if len(dupes) > 0 {
		return wire.Invalidf("Duplicate parameter keys have been submitted: [%s]. Please ensure the request contains only one param value per param key.", strings.Join(dupes, ", "))
	}
	tags = dedupKV(tags)
	err := s.inRunTx(ctx, runID, func(tx *meta.Tx, _ int64) error {
		conflicts, err := insertParams(ctx, tx, runID, params)
		if err != nil {
			return err
		}
		if len(conflicts) > 0 {
			parts := make([]string, len(conflicts))
			for i, c := range conflicts {
				parts[i] = fmt.Sprintf("{'key': '%s', 'old_value': '%s', 'new_value': '%s'}", c.key, c.old, c.new)
			}
			return wire.Invalidf("Changing param values is not allowed. Params were already logged='[%s]' for run ID='%s'.", strings.Join(parts, ", "), runID)
		}
		if err := insertMetrics(ctx, tx, runID, metrics); err != nil {
			return err
		}
		plain := tags[:0:0]
		for _, t := range tags {
			if t.Key == TagRunName {
				if err := setRunName(ctx, tx, runID, t.Value); err != nil {
					return err
				}
				continue
			}
			plain = append(plain, t)
		}
		return upsertKVs(ctx, tx, "tags", runID, plain)
	})
	return wire.Wrap(err, "log batch to run %s", runID)
}

func checkBatchLimits(metrics, params, tags int) error {
	for _, c := range []struct {
		name     string
		limit, n int
	}{
		{"metrics", MaxMetricsPerBatch, metrics},
		{"params", MaxParamsTagsPerBatch, params},
		{"tags", MaxParamsTagsPerBatch, tags},
		{"metrics, params, and tags", MaxEntitiesPerBatch, metrics + params + tags},
	} {
		if c.n > c.limit {
			return wire.Invalidf("A batch logging request can contain at most %d %s. Got %d %s. Please split up %s across multiple requests and try again.",
				c.limit, c.name, c.n, c.name, c.name)
		}
	}
	return nil
}

// metricRowsPerStmt bounds SQLite's multi-row INSERTs (6 bound values a row)
// well under its parameter limit.
const metricRowsPerStmt = 500

// metricPoint is one sanitized metric point as stored: NaN is value 0 with
// isNaN 1, +/-Inf is +/-MaxFloat64 (see sanitize).
type metricPoint struct {
	key      string
	step, ts int64
	v        float64
	isNaN    int32
}

// latestUpsertTail ends both engines' latest_metrics upserts: a row only moves
// forward by (step, timestamp, value), MLflow's rule (see newer).
const latestUpsertTail = ` ON CONFLICT (run_uuid, key) DO UPDATE SET
		step = excluded.step, timestamp = excluded.timestamp, value = excluded.value, is_nan = excluded.is_nan
	WHERE excluded.step > latest_metrics.step
		OR (excluded.step = latest_metrics.step AND (excluded.timestamp > latest_metrics.timestamp
			OR (excluded.timestamp = latest_metrics.timestamp AND excluded.value > latest_metrics.value)))`

// insertMetrics appends metric points to the history, keeps latest_metrics up to
// date, and copies points carrying a model_id to that logged model's metrics.
func insertMetrics(ctx context.Context, tx *meta.Tx, runID string, metrics []Metric) error {
	if len(metrics) == 0 {
		return nil
	}
	points := make([]metricPoint, len(metrics))
	latest := make(map[string]metricPoint)
	for i, m := range metrics {
		v, isNaN := sanitize(float64(m.Value))
		p := metricPoint{key: m.Key, step: m.Step, ts: m.Timestamp, v: v}
		if isNaN {
			p.isNaN = 1
		}
		points[i] = p
		if old, ok := latest[m.Key]; !ok || newer(p.step, p.ts, p.v, old.step, old.ts, old.v) {
			latest[m.Key] = p
		}
	}
	// Keys in sorted order: concurrent batches lock latest_metrics rows in the
	// same order, so they queue instead of deadlocking on PostgreSQL.
	keys := make([]string, 0, len(latest))
	for k := range latest {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tops := make([]metricPoint, len(keys))
	for i, k := range keys {
		tops[i] = latest[k]
	}
	write := insertMetricRows
	if tx.Dialect() == meta.Postgres {
		write = insertMetricArrays
	}
	if err := write(ctx, tx, runID, points, tops); err != nil {
		return err
	}
	return insertModelMetrics(ctx, tx, runID, metrics)
}

// metricStmt is one of the two writes of a metrics batch: rows, and the text
// around the engine's VALUES list or unnest.
type metricStmt struct {
	rows       []metricPoint
	head, tail string
}

// metricStmts: points append to the history (an identical point is stored
// once); tops, one per key, upsert latest_metrics.
func metricStmts(points, tops []metricPoint) [2]metricStmt {
	return [2]metricStmt{
		{points, `INSERT INTO metrics`, ` ON CONFLICT DO NOTHING`},
		{tops, `INSERT INTO latest_metrics`, latestUpsertTail},
	}
}

// insertMetricRows writes points to the history and tops (one per key, in key
// order) to latest_metrics with multi-row VALUES statements: SQLite's
// statement cache keeps their few distinct texts prepared.
func insertMetricRows(ctx context.Context, tx *meta.Tx, runID string, points, tops []metricPoint) error {
	for _, stmt := range metricStmts(points, tops) {
		for start := 0; start < len(stmt.rows); start += metricRowsPerStmt {
			part := stmt.rows[start:min(start+metricRowsPerStmt, len(stmt.rows))]
			vals := make([]string, len(part))
			args := make([]any, 0, 6*len(part))
			for i, p := range part {
				vals[i] = "(?, ?, ?, ?, ?, ?)"
				args = append(args, runID, p.key, p.step, p.ts, p.v, p.isNaN)
			}
			if _, err := tx.Exec(ctx, stmt.head+` (run_uuid, key, step, timestamp, value, is_nan) VALUES `+
				strings.Join(vals, ", ")+stmt.tail, args...); err != nil {
				return err
			}
		}
	}
	return nil
}

// insertMetricArrays is insertMetricRows for PostgreSQL: each statement has a
// fixed text and takes its rows as one array per column, unnested in order (so
// latest_metrics rows are still locked in key order). PostgreSQL plans a
// 500-row VALUES list of 3,000 parameters on every execution (2.5-5.7 ms, kept
// as a custom plan), the unnest form in about 0.6 ms; with the latest_metrics
// rows of a run's keys locked meanwhile, that time was serialized across the
// run's writers.
func insertMetricArrays(ctx context.Context, tx *meta.Tx, runID string, points, tops []metricPoint) error {
	for _, stmt := range metricStmts(points, tops) {
		n := len(stmt.rows)
		keys, steps, tss, vals, nans := make([]string, n), make([]int64, n), make([]int64, n), make([]float64, n), make([]int32, n)
		for i, p := range stmt.rows {
			keys[i], steps[i], tss[i], vals[i], nans[i] = p.key, p.step, p.ts, p.v, p.isNaN
		}
		if _, err := tx.Exec(ctx, stmt.head+` (run_uuid, key, step, timestamp, value, is_nan)
			SELECT ?::text, * FROM unnest(?::text[], ?::bigint[], ?::bigint[], ?::double precision[], ?::integer[])`+stmt.tail,
			runID, keys, steps, tss, vals, nans); err != nil {
			return err
		}
	}
	return nil
}

// newer orders metric points by (step, timestamp, value), MLflow's rule for
// which point is a run's latest.
func newer(step, ts int64, v float64, oStep, oTS int64, oV float64) bool {
	if step != oStep {
		return step > oStep
	}
	if ts != oTS {
		return ts > oTS
	}
	return v > oV
}

func insertModelMetrics(ctx context.Context, tx *meta.Tx, runID string, metrics []Metric) error {
	for _, m := range metrics {
		if m.ModelID == "" {
			continue
		}
		v, isNaN := sanitize(float64(m.Value))
		nan := 0
		if isNaN {
			nan = 1
		}
		if _, err := tx.Exec(ctx, `INSERT INTO logged_model_metrics (model_id, key, step, timestamp, value, is_nan, run_uuid, dataset_name, dataset_digest)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			m.ModelID, m.Key, m.Step, m.Timestamp, v, nan, runID, m.DatasetName, m.DatasetDigest); err != nil {
			return err
		}
	}
	return nil
}

// GetMetricHistory returns the points of one metric of a run ordered by step,
// timestamp and value. With maxResults nil every point is returned; otherwise a
// page and the next page token.
func (s *Store) GetMetricHistory(ctx context.Context, runID, key string, maxResults *int64, pageToken string) ([]Metric, string, error) {
	var out []Metric
	next, err := s.scanHistory(ctx, runID, key, maxResults, pageToken, func(n int) { out = make([]Metric, 0, n) },
		func(v float64, nan int, ts, step int64) {
			out = append(out, Metric{Key: key, Value: restore(v, nan != 0), Timestamp: ts, Step: step})
		})
	if err != nil {
		return nil, "", err
	}
	if out == nil {
		out = []Metric{}
	}
	return out, next, nil
}

// AppendMetricHistoryJSON is GetMetricHistory writing the points straight into
// a JSON array appended to b (the bytes appendMetrics would write), with no
// Metric values in between: a 100,000-point history is the API's largest answer.
func (s *Store) AppendMetricHistoryJSON(ctx context.Context, b []byte, runID, key string, maxResults *int64, pageToken string) ([]byte, string, error) {
	start := len(b)
	qkey := jsonw.AppendString(nil, key)
	first := true
	b = append(b, '[')
	next, err := s.scanHistory(ctx, runID, key, maxResults, pageToken, func(n int) { b = slices.Grow(b, 80*n) },
		func(v float64, nan int, ts, step int64) {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, `{"key":`...)
			b = append(b, qkey...)
			b = append(b, `,"value":`...)
			b = jsonw.AppendProtoFloat(b, float64(restore(v, nan != 0)))
			b = append(b, `,"timestamp":`...)
			b = jsonw.AppendInt(b, ts)
			b = append(b, `,"step":`...)
			b = jsonw.AppendInt(b, step)
			b = append(b, '}')
		})
	if err != nil {
		return b[:start], "", err
	}
	return append(b, ']'), next, nil
}

// scanHistory runs a history query: size is called once with the expected
// number of points, point for each point in order (at most maxResults).
func (s *Store) scanHistory(ctx context.Context, runID, key string, maxResults *int64, pageToken string,
	size func(n int), point func(v float64, nan int, ts, step int64)) (string, error) {
	if _, _, err := runState(ctx, s.db, runID); err != nil {
		return "", wire.Wrap(err, "metric history of run %s", runID)
	}
	offset, err := wire.DecodeOffset(pageToken)
	if err != nil {
		return "", err
	}
	query := `SELECT value, is_nan, timestamp, step FROM metrics WHERE run_uuid = ? AND key = ? ORDER BY step, timestamp, value`
	args := []any{runID, key}
	var limit int64 = -1
	if maxResults != nil {
		if *maxResults <= 0 {
			return "", wire.Invalidf("Invalid value %d for parameter 'max_results' supplied. It must be a positive integer.", *maxResults)
		}
		limit = *maxResults
		query += ` LIMIT ? OFFSET ?`
		args = append(args, limit+1, offset)
		size(int(min(limit, 100_000)))
	} else {
		// Size the result once: a whole history can be 100,000s of points.
		var n int
		if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM metrics WHERE run_uuid = ? AND key = ?`, runID, key).Scan(&n); err != nil {
			return "", fmt.Errorf("metric history of run %s: %w", runID, err)
		}
		size(max(0, n-offset))
		if offset > 0 {
			// SQLite needs a LIMIT before OFFSET; the largest int64 means none.
			query += ` LIMIT ? OFFSET ?`
			args = append(args, int64(math.MaxInt64), offset)
		}
	}
	var n int64
	more := false
	err = meta.EachRow(ctx, s.db, query, args, func(rows *sql.Rows) error {
		var v float64
		var nan int
		var ts, step int64
		if err := rows.Scan(&v, &nan, &ts, &step); err != nil {
			return err
		}
		if limit >= 0 && n == limit {
			more = true // the one row past the page
			return nil
		}
		n++
		point(v, nan, ts, step)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("metric history of run %s: %w", runID, err)
	}
	if more {
		return wire.EncodeOffset(offset + int(limit)), nil
	}
	return "", nil
}

// MetricHistoryBulk returns the history of one metric for several runs, ordered
// by run id, then timestamp, step and value, at most maxResults points in all
// (the UI's get-history-bulk).
func (s *Store) MetricHistoryBulk(ctx context.Context, runIDs []string, key string, maxResults int) ([]Metric, error) {
	if len(runIDs) == 0 {
		return nil, nil
	}
	var out []Metric
	err := meta.EachRow(ctx, s.db, `SELECT run_uuid, value, is_nan, timestamp, step FROM metrics WHERE key = ? AND run_uuid IN (`+
		search.Placeholders(len(runIDs))+`) ORDER BY run_uuid, timestamp, step, value LIMIT ?`,
		append(append([]any{key}, anys(runIDs)...), maxResults), func(rows *sql.Rows) error {
			m := Metric{Key: key}
			var v float64
			var nan int
			if err := rows.Scan(&m.RunID, &v, &nan, &m.Timestamp, &m.Step); err != nil {
				return err
			}
			m.Value = restore(v, nan != 0)
			out = append(out, m)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("bulk metric history: %w", err)
	}
	return out, nil
}

// MetricHistoryBulkInterval samples the history of one metric for each run:
// at most maxResults points per run, evenly spread over the points in
// [startStep, endStep] (all steps when both are nil), always keeping the last
// point. The sampling runs in SQL (NTILE buckets, first row of each), so the
// server reads at most about maxResults rows per run whatever the history length.
func (s *Store) MetricHistoryBulkInterval(ctx context.Context, runIDs []string, key string, startStep, endStep *int64, maxResults int) ([]Metric, error) {
	if (startStep == nil) != (endStep == nil) {
		return nil, wire.Invalidf("If either start step or end step are specified, both must be specified.")
	}
	if startStep != nil && *startStep > *endStep {
		return nil, wire.Invalidf("end_step must be greater than start_step. Found start_step=%d and end_step=%d.", *startStep, *endStep)
	}
	maxResults = max(1, maxResults)
	if len(runIDs) == 0 {
		return nil, nil
	}
	in := "(" + search.Placeholders(len(runIDs)) + ")"
	found := map[string]bool{}
	err := meta.EachRow(ctx, s.db, `SELECT run_uuid FROM runs WHERE run_uuid IN `+in, anys(runIDs), func(rows *sql.Rows) error {
		var id string
		err := rows.Scan(&id)
		found[id] = true
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sample metric %q: %w", key, err)
	}
	for _, id := range runIDs {
		if !found[id] {
			return nil, wire.NotFoundf("Run with id=%s not found", id)
		}
	}
	filter := `key = ? AND run_uuid IN ` + in
	args := append([]any{key}, anys(runIDs)...)
	if startStep != nil {
		filter += ` AND step >= ? AND step <= ?`
		args = append(args, *startStep, *endStep)
	}
	// One query for every run: NTILE splits each run's points into maxResults
	// buckets and the first point of each bucket is kept (rn = 1), plus each
	// run's last point (from_end = 1), which NTILE alone would drop.
	type sampled struct {
		m    Metric
		rn   int64
		last bool
	}
	byRun := map[string][]sampled{}
	err = meta.EachRow(ctx, s.db, `WITH b AS (
			SELECT run_uuid, step, timestamp, value, is_nan,
				NTILE(?) OVER (PARTITION BY run_uuid ORDER BY step, timestamp, value, is_nan) AS bucket,
				ROW_NUMBER() OVER (PARTITION BY run_uuid ORDER BY step DESC, timestamp DESC, value DESC, is_nan DESC) AS from_end
			FROM metrics WHERE `+filter+`
		), r AS (
			SELECT run_uuid, step, timestamp, value, is_nan, from_end,
				ROW_NUMBER() OVER (PARTITION BY run_uuid, bucket ORDER BY step, timestamp, value, is_nan) AS rn
			FROM b
		)
		SELECT run_uuid, step, timestamp, value, is_nan, rn, from_end FROM r WHERE rn = 1 OR from_end = 1
		ORDER BY run_uuid, step, timestamp, value, is_nan`,
		append([]any{maxResults}, args...), func(rows *sql.Rows) error {
			var p sampled
			var v float64
			var nan int
			var fromEnd int64
			if err := rows.Scan(&p.m.RunID, &p.m.Step, &p.m.Timestamp, &v, &nan, &p.rn, &fromEnd); err != nil {
				return err
			}
			p.m.Key, p.m.Value, p.last = key, restore(v, nan != 0), fromEnd == 1
			byRun[p.m.RunID] = append(byRun[p.m.RunID], p)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("sample metric %q: %w", key, err)
	}
	var out []Metric
	for _, id := range runIDs {
		points := byRun[id]
		var keep []Metric
		var last *Metric
		for i := range points {
			if points[i].rn == 1 {
				keep = append(keep, points[i].m)
			}
			if points[i].last && points[i].rn != 1 {
				last = &points[i].m
			}
		}
		if last != nil {
			if len(keep) >= maxResults {
				keep[len(keep)-1] = *last
			} else {
				keep = append(keep, *last)
			}
		}
		out = append(out, keep...)
	}
	return out, nil
}
