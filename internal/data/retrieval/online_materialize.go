package retrieval

// Materialization: copy the latest row per key of each feature set from the
// offline store into the online store, incrementally, and record how far each
// set got in the metadata DB.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/pipeline"
	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/progress"
)

// Schema is the online materialization state's tables.
var Schema = meta.Schema{Component: "online", Migrations: []meta.Migration{{
	Version: 1,
	Name:    "create online materialization state and history",
	Statements: []string{
		// The newest end each set is materialized up to: the next run starts there.
		`CREATE TABLE online_materialized (
				set_name TEXT PRIMARY KEY,
				end_ts BIGINT NOT NULL,
				updated_at BIGINT NOT NULL)`,
		// Join-key types learned from materialized or pushed rows: feature
		// definitions do not declare them, serving checks requests against them.
		`CREATE TABLE online_key_types (
				set_name TEXT PRIMARY KEY,
				key_types TEXT NOT NULL,
				updated_at BIGINT NOT NULL)`,
		`CREATE TABLE online_materializations (
				set_name TEXT NOT NULL,
				started_at BIGINT NOT NULL,
				from_ts BIGINT NOT NULL,
				end_ts BIGINT NOT NULL,
				rows_written BIGINT NOT NULL,
				duration_ms BIGINT NOT NULL,
				PRIMARY KEY (set_name, started_at))`,
	},
}, {
	Version: 2,
	Name:    "record materializations as they start",
	Statements: []string{
		// NULL status: a row of version 1, recorded only on success.
		`ALTER TABLE online_materializations ADD COLUMN status TEXT`,
		`ALTER TABLE online_materializations ADD COLUMN error TEXT`,
		`ALTER TABLE online_materializations ADD COLUMN host TEXT`,
		`ALTER TABLE online_materializations ADD COLUMN pid BIGINT`,
	},
},
}}

// Materialization statuses in the history (online_materializations).
const (
	MaterializeRunning   = "running"
	MaterializeSucceeded = "succeeded"
	MaterializeFailed    = "failed"
	// MaterializeInterrupted: cancelled (Ctrl-C, a client gone, shutdown), or
	// reported for a running one whose process, on this host, no longer exists.
	MaterializeInterrupted = "interrupted"
	// MaterializeNoData: the offline store held nothing of the set.
	MaterializeNoData = "no_data"
)

// LatestScanner is what materialization needs of the offline engine
// (offline.Engine implements it): the latest row per key of a set with
// from < ts <= to, streamed in batches.
type LatestScanner interface {
	ScanLatest(ctx context.Context, set string, from, to time.Time, fn func([]offline.LatestRow) error) error
}

// Materializer copies offline rows into the online store.
type Materializer struct {
	Store  online.Store
	Meta   *meta.DB
	Engine LatestScanner
	// Full ignores where each set was materialized up to and reads from
	// end - ttl (everything without a ttl): to pick up late rows a backfill put
	// before the previous end. The event-time guard makes it safe to repeat.
	Full bool
	// Progress, when a terminal, shows a bar per set.
	Progress io.Writer
	Logger   *slog.Logger
}

// MaterializeResult reports what happened to one set.
type MaterializeResult struct {
	Set string
	// From and End bound the event times read (From is the previous end, or
	// End - ttl for the first run; the zero time without a ttl).
	From, End time.Time
	// Rows written to the online store; the store keeps a newer row it holds.
	Rows int64
	// Skipped is set when the set was already materialized up to End.
	Skipped bool
	// NoData is set when the offline store holds nothing of the set up to End
	// (it was never run for those days): nothing was written, and no resume
	// point recorded, so a materialization after the set is run reads it all.
	NoData   bool
	Duration time.Duration
}

// MarshalJSON writes r for `atrium materialize -o json` and the HTTP API:
// times in RFC 3339 (from is null when unbounded), the duration in seconds.
func (r MaterializeResult) MarshalJSON() ([]byte, error) {
	var from *time.Time
	if !r.From.IsZero() {
		from = &r.From
	}
	return json.Marshal(struct {
		Set      string     `json:"set"`
		From     *time.Time `json:"from"`
		End      time.Time  `json:"end"`
		Rows     int64      `json:"rows"`
		Skipped  bool       `json:"skipped"`
		NoData   bool       `json:"no_data"`
		Duration float64    `json:"duration_seconds"`
	}{r.Set, from, r.End, r.Rows, r.Skipped, r.NoData, r.Duration.Seconds()})
}

// Materialize brings each set up to end: the latest row per key with
// ts <= end and within the set's ttl of end is in the online store afterwards.
// Sets run one after the other; on an error the sets done so far are recorded
// and returned with it.
func (m *Materializer) Materialize(ctx context.Context, sets []SetDef, end time.Time) ([]MaterializeResult, error) {
	var out []MaterializeResult
	for _, s := range sets {
		r, err := m.materializeSet(ctx, s, end.UTC())
		if err != nil {
			return out, fmt.Errorf("materialize %s: %w", s.Name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func (m *Materializer) logger() *slog.Logger {
	if m.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Logger
}

// LastMaterialized returns the end the set was last materialized up to (the
// zero time if never).
func LastMaterialized(ctx context.Context, db *meta.DB, set string) (time.Time, error) {
	var end int64
	err := db.QueryRow(ctx, `SELECT end_ts FROM online_materialized WHERE set_name = ?`, set).Scan(&end)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read materialization state of %s: %w", set, err)
	}
	return time.Unix(0, end).UTC(), nil
}

func (m *Materializer) materializeSet(ctx context.Context, s SetDef, end time.Time) (MaterializeResult, error) {
	started := time.Now()
	res := MaterializeResult{Set: s.Name, End: end}
	last, err := LastMaterialized(ctx, m.Meta, s.Name)
	if err != nil {
		return res, err
	}
	// Rows older than end - ttl are expired at end: never read them. Feast's
	// incremental window starts at the previous end, else at end - ttl.
	if s.TTL > 0 {
		res.From = end.Add(-s.TTL)
	}
	if m.Full {
		last = time.Time{}
	}
	if last.After(res.From) {
		res.From = last
	}
	if !last.IsZero() && !end.After(last) {
		res.Skipped = true
		m.logger().Info("materialize: already up to date", "set", s.Name, "materialized_until", last, "end", end)
		return res, nil
	}

	// The history row is written first, so an interrupted or failed
	// materialization is on record; the resume point (online_materialized)
	// moves only when every row was written, so the next materialization
	// starts again from the previous end and skips nothing (rewriting a row
	// already written is harmless: the event-time guard keeps the newest).
	host, _ := os.Hostname()
	if _, err := m.Meta.Exec(ctx, `INSERT INTO online_materializations
		(set_name, started_at, from_ts, end_ts, rows_written, duration_ms, status, host, pid) VALUES (?, ?, ?, ?, 0, 0, ?, ?, ?)`,
		s.Name, started.UnixNano(), unixNanoOrZero(res.From), end.UnixNano(), MaterializeRunning, host, os.Getpid()); err != nil {
		return res, fmt.Errorf("record materialization start: %w", err)
	}
	res, err = m.copySet(ctx, s, res, started)
	if err == nil || res.NoData {
		return res, err
	}
	status := MaterializeFailed
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		status = MaterializeInterrupted
	}
	// Recorded even when ctx was cancelled.
	if _, rerr := m.Meta.Exec(context.WithoutCancel(ctx), `UPDATE online_materializations SET status = ?, error = ?, rows_written = ?, duration_ms = ?
		WHERE set_name = ? AND started_at = ?`,
		status, err.Error(), res.Rows, time.Since(started).Milliseconds(), s.Name, started.UnixNano()); rerr != nil {
		return res, errors.Join(err, fmt.Errorf("record materialization outcome: %w", rerr))
	}
	return res, err
}

// copySet copies the rows of s with res.From < ts <= res.End and records the
// outcome in the history row of started (recorded by materializeSet).
func (m *Materializer) copySet(ctx context.Context, s SetDef, res MaterializeResult, started time.Time) (MaterializeResult, error) {
	end := res.End
	var keyTypes []KeyType
	features := make([]string, len(s.Features))
	for i, f := range s.Features {
		features[i] = f.Name
	}
	bar := progress.New(m.Progress, -1, "materialize "+s.Name, "keys")
	defer bar.Finish()

	// The scan and the writes overlap: one batch is written while the engine
	// produces and converts the next. Batches are handed over, never
	// accumulated, so memory holds at most three whatever the number of keys.
	batches := make(chan []online.Row, 1)
	failed := make(chan struct{}) // closed when a write fails
	done := make(chan struct{})
	var werr error
	go func() {
		defer close(done)
		for rows := range batches {
			if werr != nil {
				continue // drain: the scan stops at its next batch
			}
			if werr = m.Store.Write(ctx, s.Name, features, rows); werr != nil {
				close(failed)
				continue
			}
			res.Rows += int64(len(rows))
			bar.Add(int64(len(rows)))
		}
	}()
	errStopped := errors.New("stopped: an online write failed")
	scanErr := m.Engine.ScanLatest(ctx, s.Name, res.From, end, func(batch []offline.LatestRow) error {
		rows, err := convertLatest(s, batch)
		if err != nil {
			return err
		}
		if keyTypes == nil && len(batch) > 0 {
			keyTypes = keyTypesOf(batch[0].Key)
		}
		select {
		case batches <- rows:
			return nil
		case <-failed:
			return errStopped
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(batches)
	<-done
	if werr != nil {
		return res, fmt.Errorf("write online store: %w", werr)
	}
	if errors.Is(scanErr, offline.ErrNoData) {
		res.NoData = true
		res.Duration = time.Since(started)
		if _, err := m.Meta.Exec(ctx, `UPDATE online_materializations SET status = ?, duration_ms = ? WHERE set_name = ? AND started_at = ?`,
			MaterializeNoData, res.Duration.Milliseconds(), s.Name, started.UnixNano()); err != nil {
			return res, fmt.Errorf("record materialization: %w", err)
		}
		m.logger().Warn("materialize: the offline store has no data of this set up to the end; nothing written or recorded (run the set first)",
			"set", s.Name, "end", end)
		return res, nil
	}
	if scanErr != nil {
		return res, fmt.Errorf("scan offline store: %w", scanErr)
	}
	res.Duration = time.Since(started)

	err := m.Meta.InTx(ctx, func(tx *meta.Tx) error {
		// The recorded end only moves forward, even if runs race.
		if _, err := tx.Exec(ctx, `INSERT INTO online_materialized (set_name, end_ts, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (set_name) DO UPDATE SET
				end_ts = CASE WHEN excluded.end_ts > online_materialized.end_ts THEN excluded.end_ts ELSE online_materialized.end_ts END,
				updated_at = excluded.updated_at`,
			s.Name, end.UnixNano(), time.Now().UnixMilli()); err != nil {
			return err
		}
		if keyTypes != nil {
			if err := saveKeyTypes(ctx, tx, s.Name, keyTypes); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `UPDATE online_materializations SET status = ?, rows_written = ?, duration_ms = ?
			WHERE set_name = ? AND started_at = ?`,
			MaterializeSucceeded, res.Rows, res.Duration.Milliseconds(), s.Name, started.UnixNano())
		return err
	})
	if err != nil {
		return res, fmt.Errorf("record materialization: %w", err)
	}
	return res, nil
}

func unixNanoOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// convertLatest turns offline rows into online rows of s, checking that they
// have the set's shape: an engine that disagrees with the catalog is a bug
// worth stopping for, not data to store.
func convertLatest(s SetDef, batch []offline.LatestRow) ([]online.Row, error) {
	rows := make([]online.Row, len(batch))
	vals := make([]online.Value, len(batch)*len(s.Features))
	var kb []byte
	for i := range batch {
		lr := &batch[i]
		if len(lr.Key) != len(s.JoinKeys) || len(lr.Values) != len(s.Features) {
			return nil, fmt.Errorf("offline row with %d keys and %d values, want %d join keys and %d features",
				len(lr.Key), len(lr.Values), len(s.JoinKeys), len(s.Features))
		}
		kb = kb[:0]
		for k, part := range lr.Key {
			switch v := part.(type) {
			case string:
				kb = online.AppendStringKey(kb, v)
			case int64:
				kb = online.AppendIntKey(kb, v)
			default:
				return nil, fmt.Errorf("join key %s is %T (%v), want string or int64", s.JoinKeys[k].Name, part, part)
			}
		}
		rv := vals[i*len(s.Features) : (i+1)*len(s.Features)]
		for f, x := range lr.Values {
			v, err := online.ValueOf(x)
			if err != nil {
				return nil, fmt.Errorf("key %v: feature %s: %w", lr.Key, s.Features[f].Name, err)
			}
			rv[f] = v
		}
		rows[i] = online.Row{Key: online.Key(kb), TS: lr.TS, Values: rv}
	}
	return rows, nil
}

func keyTypesOf(key []any) []KeyType {
	out := make([]KeyType, len(key))
	for i, k := range key {
		if _, ok := k.(int64); ok {
			out[i] = KeyInt64
		} else {
			out[i] = KeyString
		}
	}
	return out
}

func saveKeyTypes(ctx context.Context, tx *meta.Tx, set string, types []KeyType) error {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = t.String()
	}
	_, err := tx.Exec(ctx, `INSERT INTO online_key_types (set_name, key_types, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (set_name) DO UPDATE SET key_types = excluded.key_types, updated_at = excluded.updated_at`,
		set, strings.Join(names, ","), time.Now().UnixMilli())
	return err
}

// SaveKeyTypes records the join-key types of a set (see LoadKeyTypes).
func SaveKeyTypes(ctx context.Context, db *meta.DB, set string, types []KeyType) error {
	return db.InTx(ctx, func(tx *meta.Tx) error { return saveKeyTypes(ctx, tx, set, types) })
}

// LoadKeyTypes returns the join-key types learned per set, in join_keys order.
func LoadKeyTypes(ctx context.Context, db *meta.DB) (map[string][]KeyType, error) {
	rows, err := db.Query(ctx, `SELECT set_name, key_types FROM online_key_types`)
	if err != nil {
		return nil, fmt.Errorf("load join-key types: %w", err)
	}
	defer rows.Close()
	out := map[string][]KeyType{}
	for rows.Next() {
		var set, list string
		if err := rows.Scan(&set, &list); err != nil {
			return nil, err
		}
		var types []KeyType
		for _, name := range strings.Split(list, ",") {
			switch name {
			case "int64":
				types = append(types, KeyInt64)
			case "string":
				types = append(types, KeyString)
			default:
				types = append(types, KeyAny)
			}
		}
		out[set] = types
	}
	return out, rows.Err()
}

// Materialization is one entry of the materialization history.
type Materialization struct {
	Set       string    `json:"set"`
	StartedAt time.Time `json:"started_at"`
	// From (zero when unbounded) and End bound the event times read.
	From time.Time `json:"from,omitzero"`
	End  time.Time `json:"end"`
	// Status is one of the Materialize* statuses.
	Status string `json:"status"`
	// Rows written to the online store (so far, for one that did not finish).
	Rows       int64  `json:"rows"`
	DurationMS int64  `json:"duration_ms"`
	Error      string `json:"error,omitempty"`
}

// MaterializationHistory returns the materializations of set ("" = all
// sets), newest first, at most limit (default 50). One recorded as running
// whose process, on this host, is gone is reported interrupted.
func MaterializationHistory(ctx context.Context, db *meta.DB, set string, limit int) ([]Materialization, error) {
	if limit <= 0 {
		limit = 50
	}
	q := `SELECT set_name, started_at, from_ts, end_ts, rows_written, duration_ms, status, error, host, pid FROM online_materializations`
	var args []any
	if set != "" {
		q += ` WHERE set_name = ?`
		args = append(args, set)
	}
	q += ` ORDER BY started_at DESC LIMIT ?`
	args = append(args, limit)
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("materialization history: %w", err)
	}
	defer rows.Close()
	thisHost, _ := os.Hostname()
	var out []Materialization
	for rows.Next() {
		var h Materialization
		var started, from, end int64
		var status, errText, host sql.NullString
		var pid sql.NullInt64
		if err := rows.Scan(&h.Set, &started, &from, &end, &h.Rows, &h.DurationMS, &status, &errText, &host, &pid); err != nil {
			return nil, fmt.Errorf("materialization history: %w", err)
		}
		h.StartedAt, h.End = time.Unix(0, started).UTC(), time.Unix(0, end).UTC()
		if from != 0 {
			h.From = time.Unix(0, from).UTC()
		}
		h.Status, h.Error = status.String, errText.String
		if !status.Valid {
			h.Status = MaterializeSucceeded // recorded before statuses were: only successes were
		}
		if h.Status == MaterializeRunning && host.String == thisHost && pid.Valid && !pipeline.ProcessAlive(int(pid.Int64)) {
			h.Status = MaterializeInterrupted
		}
		out = append(out, h)
	}
	return out, rows.Err()
}
