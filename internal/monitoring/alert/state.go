package alert

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/spec"
)

// Schema is the alert states' table. Its component name is its own
// ("monitoring_alerts"): the profiles of branch monfeat own "monitoring".
var Schema = meta.Schema{Component: "monitoring_alerts", Migrations: []meta.Migration{
	{Version: 1, Name: "create monitor_states", Statements: []string{
		// One row per monitor. notified is the last transition delivered
		// (or being delivered): a row whose status is firing while notified
		// is not, or the reverse, owes a notification. seq guards every
		// update (compare and set), so that two servers evaluating the same
		// rules cannot both claim one transition.
		`CREATE TABLE monitor_states (
				monitor TEXT PRIMARY KEY,
				status TEXT NOT NULL,
				active_since BIGINT,
				value DOUBLE PRECISION,
				evaluated_at BIGINT NOT NULL,
				notified TEXT NOT NULL,
				changed_at BIGINT NOT NULL,
				seq BIGINT NOT NULL
			)`,
	}},
}}

// Monitor statuses. A monitor whose condition holds is pending until it has
// held for the monitor's For, then firing; one whose condition does not hold
// is inactive.
const (
	StatusInactive = "inactive"
	StatusPending  = "pending"
	StatusFiring   = "firing"
)

// State is a monitor's alert state as stored.
type State struct {
	Monitor string `json:"monitor"`
	Status  string `json:"status"`
	// ActiveSince is when the condition started to hold (pending, firing).
	ActiveSince time.Time `json:"active_since,omitzero"`
	// Value is the last measured value (NaN: no data).
	Value       float64   `json:"-"`
	EvaluatedAt time.Time `json:"evaluated_at"`
	// Notified is the last transition notified: "", StateFiring or StateResolved.
	Notified string `json:"notified"`
	// ChangedAt is when Status last changed.
	ChangedAt time.Time `json:"changed_at"`
	seq       int64
	stored    bool
}

// Due returns the notification the state owes ("" when none): firing when it
// fires and that was not notified, resolved when it stopped firing after
// firing was notified. A pending monitor that recovers owes nothing.
func (s State) Due() string {
	switch {
	case s.Status == StatusFiring && s.Notified != StateFiring:
		return StateFiring
	case s.Status != StatusFiring && s.Notified == StateFiring:
		return StateResolved
	}
	return ""
}

// Measurement is what a Measurer found for a monitor at one evaluation.
type Measurement struct {
	Value float64
	// NoData: the window held nothing to measure (no predictions, no labels
	// yet, no runs); Value is then meaningless and the monitor's no_data
	// setting decides.
	NoData bool
	// Detail says what was measured ("version 3, 1,204 rows"), for the
	// notification's summary.
	Detail string
}

// Next is the state after a measurement at now: the state machine of the
// package doc.
func Next(s State, m *spec.Monitor, meas Measurement, now time.Time) State {
	s.Monitor = m.Name
	if s.Status == "" {
		s.Status = StatusInactive
	}
	s.EvaluatedAt = now
	breached := false
	if meas.NoData {
		s.Value = math.NaN()
		switch m.NoData {
		case spec.NoDataAlerting:
			breached = true
		case spec.NoDataOK:
		default:
			return s
		}
	} else {
		s.Value = meas.Value
		breached = m.Breached(meas.Value)
	}
	prev := s.Status
	switch {
	case !breached:
		s.Status, s.ActiveSince = StatusInactive, time.Time{}
	case s.Status == StatusInactive:
		s.Status, s.ActiveSince = StatusPending, now
		fallthrough
	case s.Status == StatusPending:
		if now.Sub(s.ActiveSince) >= m.For.D() {
			s.Status = StatusFiring
		}
	}
	if s.Status != prev {
		s.ChangedAt = now
	}
	return s
}

// Store keeps the states in the metadata database.
type Store struct{ db *meta.DB }

// NewStore returns the store of db (migrated with Schema).
func NewStore(db *meta.DB) *Store { return &Store{db: db} }

// errRace: another evaluator changed the row since it was read.
var errRace = errors.New("alert state changed concurrently")

func ms(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func fromMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

const stateColumns = `monitor, status, active_since, value, evaluated_at, notified, changed_at, seq`

func scanState(row meta.Scanner) (State, error) {
	var s State
	var since, changed sql.NullInt64
	var value sql.NullFloat64
	var evaluated int64
	if err := row.Scan(&s.Monitor, &s.Status, &since, &value, &evaluated, &s.Notified, &changed, &s.seq); err != nil {
		return s, err
	}
	s.ActiveSince, s.ChangedAt = fromMS(since), fromMS(changed)
	s.EvaluatedAt = time.UnixMilli(evaluated).UTC()
	s.Value = math.NaN()
	if value.Valid {
		s.Value = value.Float64
	}
	s.stored = true
	return s, nil
}

// Get returns the stored state of a monitor (a new inactive state if none).
func (st *Store) Get(ctx context.Context, monitor string) (State, error) {
	s, err := scanState(st.db.QueryRow(ctx, `SELECT `+stateColumns+` FROM monitor_states WHERE monitor = ?`, monitor))
	if errors.Is(err, sql.ErrNoRows) {
		return State{Monitor: monitor, Status: StatusInactive, Value: math.NaN()}, nil
	}
	if err != nil {
		return s, fmt.Errorf("read alert state of %s: %w", monitor, err)
	}
	return s, nil
}

// List returns every stored state, by monitor name.
func (st *Store) List(ctx context.Context) ([]State, error) {
	out, err := meta.Collect(ctx, st.db, `SELECT `+stateColumns+` FROM monitor_states ORDER BY monitor`, nil, scanState)
	if err != nil {
		return nil, fmt.Errorf("list alert states: %w", err)
	}
	return out, nil
}

// put writes s if the row is still the one s was read from; it returns
// errRace otherwise. s's seq moves on.
func (st *Store) put(ctx context.Context, s *State) error {
	var value any
	if !math.IsNaN(s.Value) && !math.IsInf(s.Value, 0) {
		value = s.Value
	}
	args := []any{s.Status, ms(s.ActiveSince), value, s.EvaluatedAt.UnixMilli(), s.Notified, s.ChangedAt.UnixMilli()}
	if !s.stored {
		_, err := st.db.Exec(ctx, `INSERT INTO monitor_states (status, active_since, value, evaluated_at, notified, changed_at, monitor, seq)
			VALUES (?, ?, ?, ?, ?, ?, ?, 1)`, append(args, s.Monitor)...)
		if meta.IsConflict(err) {
			return errRace
		}
		if err != nil {
			return fmt.Errorf("write alert state of %s: %w", s.Monitor, err)
		}
		s.stored, s.seq = true, 1
		return nil
	}
	res, err := st.db.Exec(ctx, `UPDATE monitor_states SET status = ?, active_since = ?, value = ?, evaluated_at = ?, notified = ?, changed_at = ?, seq = seq + 1
		WHERE monitor = ? AND seq = ?`, append(args, s.Monitor, s.seq)...)
	if err != nil {
		return fmt.Errorf("write alert state of %s: %w", s.Monitor, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return errRace
	}
	s.seq++
	return nil
}

// Delete forgets the states of monitors no longer defined.
func (st *Store) Delete(ctx context.Context, monitor string) error {
	if _, err := st.db.Exec(ctx, `DELETE FROM monitor_states WHERE monitor = ?`, monitor); err != nil {
		return fmt.Errorf("delete alert state of %s: %w", monitor, err)
	}
	return nil
}
