// Package labels keeps the delayed labels of logged predictions: outcomes
// (a click, a booking, a price) that arrive after the prediction, through
// POST /v1/labels, and are joined to the prediction log by the model
// monitor for realized performance.
//
// # Keys
//
// A label is for one model and names what it labels in one of two ways:
//
//   - by request: the request id the prediction was logged with
//     (X-Request-Id), plus the row of a several-row request as its index
//     (Row) or as entity keys that pick the row (Entities: the listing of a
//     rank request's candidates);
//   - by entity and time: entity keys and the time of the outcome; it labels
//     the newest prediction of the model for those keys within Horizon
//     before that time.
//
// A label sent again with the same key replaces the first (the last value
// wins) and counts as a duplicate; a label whose request id matches no
// logged prediction is reported as unmatched by the monitor, never dropped
// silently.
//
// # Why the metadata database, not Parquet under data_dir
//
// Labels arrive one by one or in small batches from the product's event
// stream, duplicates must replace earlier values, and any server replica
// must read what another accepted: point upserts on a primary key, which
// the metadata database (SQLite, PostgreSQL for several replicas) does
// transactionally. The monitor reads only the labels of one window's
// request ids (an indexed lookup), so their volume (about one per request)
// stays cheap. The prediction log is Parquet because it is written in bulk
// and scanned whole; labels are neither.
package labels

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/meta"
)

// Schema is the labels' table (component "monitoring_labels").
var Schema = meta.Schema{Component: "monitoring_labels", Migrations: []meta.Migration{
	{Version: 1, Name: "create monitoring_labels", Statements: []string{
		// row_key is "" (the request's only row), "#<row>" or the canonical
		// entity keys ("listing_id=42") that pick the row; request_id is ""
		// for labels by entity and time, whose row_key is the keys and the
		// time. event_time (ms) is the outcome's time of a label by entity.
		`CREATE TABLE monitoring_labels (
				model TEXT NOT NULL,
				request_id TEXT NOT NULL,
				row_key TEXT NOT NULL,
				entities TEXT,
				event_time BIGINT,
				horizon_ms BIGINT,
				label DOUBLE PRECISION NOT NULL,
				received_at BIGINT NOT NULL,
				writes BIGINT NOT NULL,
				PRIMARY KEY (model, request_id, row_key)
			)`,
		`CREATE INDEX monitoring_labels_event ON monitoring_labels (model, request_id, event_time)`,
		`CREATE INDEX monitoring_labels_received ON monitoring_labels (model, received_at)`,
	}},
}}

// DefaultHorizon is a label by entity's horizon when it names none, and
// MaxHorizon the longest accepted (the monitor reads labels up to
// MaxHorizon past a window's end).
const (
	DefaultHorizon = 24 * time.Hour
	MaxHorizon     = 7 * 24 * time.Hour
)

// Label is one outcome.
type Label struct {
	Model     string `json:"model"`
	RequestID string `json:"request_id,omitempty"`
	// Row is the index of the labelled row in its request (nil: the row is
	// picked by Entities, or the request has one row).
	Row *int `json:"row,omitempty"`
	// Entities pick the row of a request, or, without a request id, the
	// entity whose newest prediction within Horizon before Time is labelled.
	Entities map[string]string `json:"entities,omitempty"`
	Time     time.Time         `json:"time,omitzero"`
	Horizon  time.Duration     `json:"-"`
	Value    float64           `json:"label"`
	// ReceivedAt is when the label (its last write) was accepted; Writes how
	// many times it was sent.
	ReceivedAt time.Time `json:"received_at,omitzero"`
	Writes     int       `json:"writes,omitempty"`
}

// Check reports what is wrong with a label, naming the field.
func (l *Label) Check() error {
	switch {
	case l.Model == "":
		return errors.New("model: missing, expected the registered model the prediction came from")
	case math.IsNaN(l.Value) || math.IsInf(l.Value, 0):
		return errors.New("label: expected a finite number")
	case l.RequestID == "" && len(l.Entities) == 0:
		return errors.New("expected request_id (the X-Request-Id of the prediction) or entities and time")
	case l.RequestID == "" && l.Time.IsZero():
		return errors.New("time: missing, expected the RFC 3339 time of the outcome for a label by entities")
	case l.RequestID == "" && l.Row != nil:
		return errors.New("row: only with request_id")
	case l.Row != nil && len(l.Entities) > 0:
		return errors.New("row and entities both pick the row: expected one of them")
	case l.Row != nil && *l.Row < 0:
		return errors.New("row: expected a row index from 0")
	case l.Horizon < 0 || l.Horizon > MaxHorizon:
		return errors.New("horizon: expected a positive duration up to 7d")
	}
	for k, v := range l.Entities {
		if k == "" || v == "" {
			return fmt.Errorf("entities: key %q: expected non-empty names and values", k)
		}
	}
	return nil
}

// rowKey is the label's key within its request id.
func (l *Label) rowKey() string {
	switch {
	case l.RequestID != "" && l.Row != nil:
		return "#" + strconv.Itoa(*l.Row)
	case l.RequestID != "":
		return EntityKey(l.Entities)
	}
	return EntityKey(l.Entities) + "@" + l.Time.UTC().Format(time.RFC3339Nano)
}

// EntityKey is the canonical text of entity keys: "k1=v1,k2=v2" sorted by
// key, with ',', '=' and '%' in names and values escaped.
func EntityKey(e map[string]string) string {
	esc := strings.NewReplacer("%", "%25", ",", "%2C", "=", "%3D")
	keys := slices.Sorted(maps.Keys(e))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = esc.Replace(k) + "=" + esc.Replace(e[k])
	}
	return strings.Join(parts, ",")
}

// Store keeps labels in the metadata database.
type Store struct {
	db  *meta.DB
	now func() time.Time
}

// NewStore returns the store of db (migrated with Schema).
func NewStore(db *meta.DB) *Store { return &Store{db: db, now: time.Now} }

// PutResult counts what Put did.
type PutResult struct {
	Accepted int `json:"accepted"`
	// Duplicates replaced a label sent before with the same key.
	Duplicates int `json:"duplicates"`
}

// Put stores labels (checked with Check) in one transaction.
func (s *Store) Put(ctx context.Context, labels []Label) (PutResult, error) {
	var res PutResult
	now := s.now().UnixMilli()
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		res = PutResult{}
		for i := range labels {
			l := &labels[i]
			var ents, evt, hor any
			if len(l.Entities) > 0 {
				b, _ := json.Marshal(l.Entities)
				ents = string(b)
			}
			if !l.Time.IsZero() {
				evt = l.Time.UnixMilli()
			}
			if l.RequestID == "" {
				h := l.Horizon
				if h == 0 {
					h = DefaultHorizon
				}
				hor = h.Milliseconds()
			}
			key := l.rowKey()
			// One upsert: concurrent writers of one key serialize on its row.
			var writes int64
			err := tx.QueryRow(ctx, `INSERT INTO monitoring_labels (model, request_id, row_key, entities, event_time, horizon_ms, label, received_at, writes)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)
				ON CONFLICT (model, request_id, row_key) DO UPDATE SET label = excluded.label, received_at = excluded.received_at,
					horizon_ms = excluded.horizon_ms, writes = monitoring_labels.writes + 1
				RETURNING writes`, l.Model, l.RequestID, key, ents, evt, hor, l.Value, now).Scan(&writes)
			if writes > 1 {
				res.Duplicates++
			}
			if err != nil {
				return fmt.Errorf("store label %d: %w", i, err)
			}
			res.Accepted++
		}
		return nil
	})
	return res, err
}

const labelColumns = `model, request_id, row_key, entities, event_time, horizon_ms, label, received_at, writes`

func scanLabel(row meta.Scanner) (Label, error) {
	var l Label
	var key string
	var ents sql.NullString
	var evt, hor sql.NullInt64
	var received int64
	if err := row.Scan(&l.Model, &l.RequestID, &key, &ents, &evt, &hor, &l.Value, &received, &l.Writes); err != nil {
		return l, err
	}
	if ents.Valid {
		if err := json.Unmarshal([]byte(ents.String), &l.Entities); err != nil {
			return l, fmt.Errorf("label %s %s: entities: %w", l.RequestID, key, err)
		}
	}
	if r, ok := strings.CutPrefix(key, "#"); ok && l.RequestID != "" {
		n, err := strconv.Atoi(r)
		if err != nil {
			return l, fmt.Errorf("label %s: row key %q", l.RequestID, key)
		}
		l.Row = &n
	}
	if evt.Valid {
		l.Time = time.UnixMilli(evt.Int64).UTC()
	}
	if hor.Valid {
		l.Horizon = time.Duration(hor.Int64) * time.Millisecond
	}
	l.ReceivedAt = time.UnixMilli(received).UTC()
	return l, nil
}

// idChunk bounds the request ids of one query (SQLite allows 32,766
// parameters; smaller statements plan faster on both engines).
const idChunk = 500

// ByRequest returns the labels of model for the given request ids.
func (s *Store) ByRequest(ctx context.Context, model string, ids []string) ([]Label, error) {
	var out []Label
	for chunk := range slices.Chunk(ids, idChunk) {
		args := make([]any, 0, len(chunk)+1)
		args = append(args, model)
		for _, id := range chunk {
			args = append(args, id)
		}
		ls, err := meta.Collect(ctx, s.db, `SELECT `+labelColumns+` FROM monitoring_labels WHERE model = ? AND request_id IN (?`+strings.Repeat(", ?", len(chunk)-1)+`)`, args, scanLabel)
		if err != nil {
			return nil, fmt.Errorf("read labels of %s: %w", model, err)
		}
		out = append(out, ls...)
	}
	return out, nil
}

// ByEntity returns the labels of model by entity and time whose time is in
// [from, to).
func (s *Store) ByEntity(ctx context.Context, model string, from, to time.Time) ([]Label, error) {
	out, err := meta.Collect(ctx, s.db, `SELECT `+labelColumns+` FROM monitoring_labels WHERE model = ? AND request_id = '' AND event_time >= ? AND event_time < ?`,
		[]any{model, from.UnixMilli(), to.UnixMilli()}, scanLabel)
	if err != nil {
		return nil, fmt.Errorf("read labels of %s: %w", model, err)
	}
	return out, nil
}

// Received returns the labels of model by request id received in [from, to).
func (s *Store) Received(ctx context.Context, model string, from, to time.Time) ([]Label, error) {
	out, err := meta.Collect(ctx, s.db, `SELECT `+labelColumns+` FROM monitoring_labels WHERE model = ? AND request_id <> '' AND received_at >= ? AND received_at < ?`,
		[]any{model, from.UnixMilli(), to.UnixMilli()}, scanLabel)
	if err != nil {
		return nil, fmt.Errorf("read labels of %s: %w", model, err)
	}
	return out, nil
}
