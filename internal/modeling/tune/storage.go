package tune

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Direction says whether the objective is minimized or maximized.
type Direction int

const (
	Minimize Direction = iota
	Maximize
)

func (d Direction) String() string {
	if d == Maximize {
		return "maximize"
	}
	return "minimize"
}

// ParseDirection reads "minimize" or "maximize".
func ParseDirection(s string) (Direction, error) {
	switch s {
	case "minimize":
		return Minimize, nil
	case "maximize":
		return Maximize, nil
	}
	return 0, fmt.Errorf("direction %q: want minimize or maximize", s)
}

// AttrKind separates the user's attributes from those of samplers and pruners.
type AttrKind int

const (
	UserAttr AttrKind = iota
	SystemAttr
)

// Storage errors.
var (
	// ErrBudget is returned by CreateTrial when the study has as many
	// finished and running trials as the budget allows.
	ErrBudget = errors.New("trial budget reached")
	// ErrDirection is returned by CreateStudy for an existing study of the other direction.
	ErrDirection = errors.New("study exists with another direction")
	// ErrFinished is returned when a finished trial is changed.
	ErrFinished = errors.New("trial already finished")
	// ErrNotFound is returned for an unknown study or trial.
	ErrNotFound = errors.New("not found")
)

// TrialRef names a trial in a storage.
type TrialRef struct {
	ID     int64
	Number int
	State  State
}

// Storage keeps studies and their trials. Implementations are safe for
// concurrent use, and the database ones for use by several processes: trial
// numbers are allocated atomically (never reused within a study), and state
// changes of a finished trial are refused (ErrFinished).
type Storage interface {
	// CreateStudy creates the study, or returns the id of the existing one of that name.
	CreateStudy(ctx context.Context, name string, dir Direction) (int64, error)
	// CreateTrial starts a Running trial with the study's next number and a
	// heartbeat at now. With budget > 0 it returns ErrBudget instead when the
	// study already has budget trials that are running or finished, not
	// counting those failed as stale (SystemAttrStale).
	CreateTrial(ctx context.Context, studyID int64, budget int, now time.Time) (TrialRef, error)
	// SetParam records a parameter's internal value and distribution.
	SetParam(ctx context.Context, trialID int64, name string, internal float64, d Distribution) error
	// SetIntermediate records the value at step (the first write of a step wins).
	SetIntermediate(ctx context.Context, trialID int64, step int, value float64) error
	// SetAttr records a user or system attribute.
	SetAttr(ctx context.Context, trialID int64, kind AttrKind, key, value string) error
	// Heartbeat records that the running trial's process is alive at now.
	Heartbeat(ctx context.Context, trialID int64, now time.Time) error
	// FinishTrial moves a Running trial to state (Complete, Pruned, Failed).
	FinishTrial(ctx context.Context, trialID int64, state State, value float64, reason string, now time.Time) error
	// FailStale fails the study's Running trials whose last heartbeat is
	// before staleBefore, marking them SystemAttrStale, and returns their numbers.
	FailStale(ctx context.Context, studyID int64, staleBefore, now time.Time) ([]int, error)
	// TrialRefs lists the study's trials in number order.
	TrialRefs(ctx context.Context, studyID int64) ([]TrialRef, error)
	// Trials returns the full trials of the given ids (all of the study's when ids is nil), in number order.
	Trials(ctx context.Context, studyID int64, ids []int64) ([]FrozenTrial, error)
	Close() error
}

// Memory is an in-process Storage. The zero value is not usable; call NewMemory.
type Memory struct {
	mu      sync.Mutex
	studies map[string]int64
	dirs    map[int64]Direction
	trials  map[int64][]*memTrial // by study, in number order
	byID    map[int64]*memTrial
	nextID  int64
}

type memTrial struct {
	study     int64
	t         FrozenTrial
	heartbeat time.Time
}

var _ Storage = (*Memory)(nil)

// NewMemory returns an empty in-memory storage.
func NewMemory() *Memory {
	return &Memory{studies: map[string]int64{}, dirs: map[int64]Direction{}, trials: map[int64][]*memTrial{}, byID: map[int64]*memTrial{}}
}

// CreateStudy implements Storage.
func (m *Memory) CreateStudy(ctx context.Context, name string, dir Direction) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.studies[name]; ok {
		if m.dirs[id] != dir {
			return 0, fmt.Errorf("study %q: %w (%s)", name, ErrDirection, m.dirs[id])
		}
		return id, nil
	}
	m.nextID++
	m.studies[name] = m.nextID
	m.dirs[m.nextID] = dir
	return m.nextID, nil
}

// CountsTowardBudget reports whether a trial uses up the study's budget:
// every trial except those failed as stale.
func CountsTowardBudget(state State, systemAttrs map[string]string) bool {
	return !(state == Failed && systemAttrs[SystemAttrStale] != "")
}

// CreateTrial implements Storage.
func (m *Memory) CreateTrial(ctx context.Context, studyID int64, budget int, now time.Time) (TrialRef, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.dirs[studyID]; !ok {
		return TrialRef{}, fmt.Errorf("study %d: %w", studyID, ErrNotFound)
	}
	ts := m.trials[studyID]
	if budget > 0 {
		n := 0
		for _, t := range ts {
			if CountsTowardBudget(t.t.State, t.t.SystemAttrs) {
				n++
			}
		}
		if n >= budget {
			return TrialRef{}, ErrBudget
		}
	}
	m.nextID++
	t := &memTrial{study: studyID, heartbeat: now, t: FrozenTrial{
		ID: m.nextID, Number: len(ts), State: Running, Value: math.NaN(), Start: now,
		Params: map[string]any{}, Distributions: map[string]Distribution{}, Intermediate: map[int]float64{},
		UserAttrs: map[string]string{}, SystemAttrs: map[string]string{},
	}}
	m.trials[studyID] = append(ts, t)
	m.byID[t.t.ID] = t
	return TrialRef{ID: t.t.ID, Number: t.t.Number, State: Running}, nil
}

func (m *Memory) running(trialID int64) (*memTrial, error) {
	t, ok := m.byID[trialID]
	if !ok {
		return nil, fmt.Errorf("trial id %d: %w", trialID, ErrNotFound)
	}
	if t.t.State.Finished() {
		return nil, fmt.Errorf("trial %d: %w", t.t.Number, ErrFinished)
	}
	return t, nil
}

// SetParam implements Storage.
func (m *Memory) SetParam(ctx context.Context, trialID int64, name string, internal float64, d Distribution) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, err := m.running(trialID)
	if err != nil {
		return err
	}
	t.t.Params[name] = d.ToExternal(internal)
	t.t.Distributions[name] = d
	return nil
}

// SetIntermediate implements Storage.
func (m *Memory) SetIntermediate(ctx context.Context, trialID int64, step int, value float64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, err := m.running(trialID)
	if err != nil {
		return err
	}
	if _, ok := t.t.Intermediate[step]; !ok {
		t.t.Intermediate[step] = value
	}
	return nil
}

// SetAttr implements Storage.
func (m *Memory) SetAttr(ctx context.Context, trialID int64, kind AttrKind, key, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.byID[trialID]
	if !ok {
		return fmt.Errorf("trial id %d: %w", trialID, ErrNotFound)
	}
	if kind == SystemAttr {
		t.t.SystemAttrs[key] = value
	} else {
		t.t.UserAttrs[key] = value
	}
	return nil
}

// Heartbeat implements Storage.
func (m *Memory) Heartbeat(ctx context.Context, trialID int64, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, err := m.running(trialID)
	if err != nil {
		return err
	}
	t.heartbeat = now
	return nil
}

// FinishTrial implements Storage.
func (m *Memory) FinishTrial(ctx context.Context, trialID int64, state State, value float64, reason string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, err := m.running(trialID)
	if err != nil {
		return err
	}
	t.t.State, t.t.Value, t.t.Err, t.t.End = state, value, reason, now
	return nil
}

// FailStale implements Storage.
func (m *Memory) FailStale(ctx context.Context, studyID int64, staleBefore, now time.Time) ([]int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int
	for _, t := range m.trials[studyID] {
		if t.t.State == Running && t.heartbeat.Before(staleBefore) {
			t.t.State, t.t.Err, t.t.End = Failed, staleReason(t.heartbeat), now
			t.t.SystemAttrs[SystemAttrStale] = "true"
			out = append(out, t.t.Number)
		}
	}
	return out, nil
}

func staleReason(last time.Time) string {
	return "stale: no heartbeat since " + last.UTC().Format(time.RFC3339Nano) + " (its process died)"
}

// StaleReason is the Err of a trial failed by FailStale whose last heartbeat was at last.
func StaleReason(last time.Time) string { return staleReason(last) }

// TrialRefs implements Storage.
func (m *Memory) TrialRefs(ctx context.Context, studyID int64) ([]TrialRef, error) {
	return m.appendTrialRefs(ctx, studyID, nil)
}

// refsAppender is an optional Storage capability: TrialRefs appended to
// dst, so a study reading them once per trial reuses one buffer.
type refsAppender interface {
	appendTrialRefs(ctx context.Context, studyID int64, dst []TrialRef) ([]TrialRef, error)
}

var _ refsAppender = (*Memory)(nil)

func (m *Memory) appendTrialRefs(ctx context.Context, studyID int64, dst []TrialRef) ([]TrialRef, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ts := m.trials[studyID]
	dst = slices.Grow(dst, len(ts))
	for _, t := range ts {
		dst = append(dst, TrialRef{ID: t.t.ID, Number: t.t.Number, State: t.t.State})
	}
	return dst, nil
}

// Trials implements Storage.
func (m *Memory) Trials(ctx context.Context, studyID int64, ids []int64) ([]FrozenTrial, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []FrozenTrial
	for _, t := range m.trials[studyID] {
		if ids == nil || slices.Contains(ids, t.t.ID) {
			out = append(out, t.t.clone())
		}
	}
	return out, nil
}

// Close implements Storage.
func (m *Memory) Close() error { return nil }
