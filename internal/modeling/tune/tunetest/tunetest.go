// Package tunetest is the conformance suite every tune.Storage passes.
package tunetest

import (
	"context"
	"errors"
	"math"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/tune"
)

// Run runs the suite; open returns an empty storage (closed by the suite).
func Run(t *testing.T, open func(t *testing.T) tune.Storage) {
	t.Run("Studies", func(t *testing.T) { testStudies(t, open(t)) })
	t.Run("TrialRoundTrip", func(t *testing.T) { testRoundTrip(t, open(t)) })
	t.Run("ConcurrentNumbers", func(t *testing.T) { testConcurrentNumbers(t, open(t)) })
	t.Run("FinishedIsFinal", func(t *testing.T) { testFinished(t, open(t)) })
	t.Run("StaleTrials", func(t *testing.T) { testStale(t, open(t)) })
}

func closeAfter(t *testing.T, s tune.Storage) {
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
}

func testStudies(t *testing.T, s tune.Storage) {
	closeAfter(t, s)
	ctx := context.Background()
	a, err := s.CreateStudy(ctx, "a", tune.Maximize)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateStudy(ctx, "b", tune.Minimize)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatalf("studies a and b share id %d", a)
	}
	again, err := s.CreateStudy(ctx, "a", tune.Maximize)
	if err != nil || again != a {
		t.Fatalf("reopen a = %d, %v; want %d", again, err, a)
	}
	if _, err := s.CreateStudy(ctx, "a", tune.Minimize); !errors.Is(err, tune.ErrDirection) {
		t.Fatalf("reopen a with the other direction: %v, want ErrDirection", err)
	}
}

func testRoundTrip(t *testing.T, s tune.Storage) {
	closeAfter(t, s)
	ctx := context.Background()
	study, err := s.CreateStudy(ctx, "rt", tune.Minimize)
	if err != nil {
		t.Fatal(err)
	}
	now := time.UnixMicro(time.Now().UnixMicro())
	ref, err := s.CreateTrial(ctx, study, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	if ref.Number != 0 || ref.State != tune.Running {
		t.Fatalf("first trial %+v, want number 0 running", ref)
	}
	dists := map[string]tune.Distribution{
		"lr":     tune.FloatDist{Low: 0.01, High: 0.3, Log: true},
		"leaves": tune.IntDist{Low: 15, High: 255, Log: true},
		"frac":   tune.FloatDist{Low: 0.5, High: 1, Step: 0.1},
		"boost":  tune.CategoricalDist{Choices: []string{"gbdt", "dart"}},
	}
	internal := map[string]float64{"lr": 0.05, "leaves": 31, "frac": 0.7, "boost": 1}
	for name, d := range dists {
		if err := s.SetParam(ctx, ref.ID, name, internal[name], d); err != nil {
			t.Fatal(err)
		}
	}
	for step, v := range []float64{0.9, 0.7, math.NaN(), 0.5} {
		if err := s.SetIntermediate(ctx, ref.ID, step, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetIntermediate(ctx, ref.ID, 0, 123); err != nil { // the first write of a step wins
		t.Fatal(err)
	}
	if err := s.SetAttr(ctx, ref.ID, tune.UserAttr, "run_id", "r1"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAttr(ctx, ref.ID, tune.SystemAttr, "run_id", "sys"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAttr(ctx, ref.ID, tune.UserAttr, "run_id", "r2"); err != nil { // attributes are overwritten
		t.Fatal(err)
	}
	end := now.Add(time.Second)
	if err := s.FinishTrial(ctx, ref.ID, tune.Pruned, 0.5, "", end); err != nil {
		t.Fatal(err)
	}
	ts, err := s.Trials(ctx, study, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 {
		t.Fatalf("%d trials, want 1", len(ts))
	}
	got := ts[0]
	wantParams := map[string]any{"lr": 0.05, "leaves": 31, "frac": 0.7, "boost": "dart"}
	if !reflect.DeepEqual(got.Params, wantParams) {
		t.Errorf("params %v, want %v", got.Params, wantParams)
	}
	for name, d := range dists {
		if !tune.DistEqual(got.Distributions[name], d) {
			t.Errorf("distribution of %s: %#v, want %#v", name, got.Distributions[name], d)
		}
	}
	if len(got.Intermediate) != 4 || got.Intermediate[0] != 0.9 || !math.IsNaN(got.Intermediate[2]) || got.Intermediate[3] != 0.5 {
		t.Errorf("intermediate %v, want 0.9, 0.7, NaN, 0.5", got.Intermediate)
	}
	if got.UserAttrs["run_id"] != "r2" || got.SystemAttrs["run_id"] != "sys" {
		t.Errorf("attrs user %v system %v", got.UserAttrs, got.SystemAttrs)
	}
	if got.State != tune.Pruned || got.Value != 0.5 || !got.Start.Equal(now) || !got.End.Equal(end) {
		t.Errorf("trial %s %v %v-%v, want PRUNED 0.5 %v-%v", got.State, got.Value, got.Start, got.End, now, end)
	}
	// A NaN value round-trips.
	ref2, err := s.CreateTrial(ctx, study, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishTrial(ctx, ref2.ID, tune.Failed, math.NaN(), "boom", now); err != nil {
		t.Fatal(err)
	}
	ts, err = s.Trials(ctx, study, []int64{ref2.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || ts[0].Number != 1 || !math.IsNaN(ts[0].Value) || ts[0].Err != "boom" {
		t.Fatalf("trial 1 read back as %+v", ts)
	}
}

func testConcurrentNumbers(t *testing.T, s tune.Storage) {
	closeAfter(t, s)
	ctx := context.Background()
	study, err := s.CreateStudy(ctx, "conc", tune.Minimize)
	if err != nil {
		t.Fatal(err)
	}
	const workers, budget = 8, 40
	var mu sync.Mutex
	seen := map[int]bool{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				ref, err := s.CreateTrial(ctx, study, budget, time.Now())
				if errors.Is(err, tune.ErrBudget) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[ref.Number] {
					t.Errorf("number %d allocated twice", ref.Number)
				}
				seen[ref.Number] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != budget {
		t.Fatalf("%d trials created, want the budget %d", len(seen), budget)
	}
	for n := range budget {
		if !seen[n] {
			t.Errorf("number %d never allocated", n)
		}
	}
}

func testFinished(t *testing.T, s tune.Storage) {
	closeAfter(t, s)
	ctx := context.Background()
	study, err := s.CreateStudy(ctx, "fin", tune.Minimize)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := s.CreateTrial(ctx, study, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishTrial(ctx, ref.ID, tune.Complete, 1, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishTrial(ctx, ref.ID, tune.Failed, math.NaN(), "late", time.Now()); !errors.Is(err, tune.ErrFinished) {
		t.Errorf("second finish: %v, want ErrFinished", err)
	}
	if err := s.Heartbeat(ctx, ref.ID, time.Now()); !errors.Is(err, tune.ErrFinished) {
		t.Errorf("heartbeat of a finished trial: %v, want ErrFinished", err)
	}
	if err := s.Heartbeat(ctx, ref.ID+1000, time.Now()); !errors.Is(err, tune.ErrNotFound) {
		t.Errorf("heartbeat of an unknown trial: %v, want ErrNotFound", err)
	}
}

func testStale(t *testing.T, s tune.Storage) {
	closeAfter(t, s)
	ctx := context.Background()
	study, err := s.CreateStudy(ctx, "stale", tune.Minimize)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	old, err := s.CreateTrial(ctx, study, 2, t0)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := s.CreateTrial(ctx, study, 2, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTrial(ctx, study, 2, t0); !errors.Is(err, tune.ErrBudget) {
		t.Fatalf("third trial of budget 2: %v, want ErrBudget", err)
	}
	if err := s.Heartbeat(ctx, fresh.ID, t0.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	failed, err := s.FailStale(ctx, study, t0.Add(5*time.Second), t0.Add(11*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(failed, []int{old.Number}) {
		t.Fatalf("failed stale %v, want [%d]", failed, old.Number)
	}
	refs, err := s.TrialRefs(ctx, study)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 2 || refs[0].State != tune.Failed || refs[1].State != tune.Running {
		t.Fatalf("refs %+v, want trial 0 failed, 1 running", refs)
	}
	ts, err := s.Trials(ctx, study, []int64{old.ID})
	if err != nil {
		t.Fatal(err)
	}
	if ts[0].SystemAttrs[tune.SystemAttrStale] == "" || ts[0].Err == "" {
		t.Errorf("stale trial %+v lacks its mark or reason", ts[0])
	}
	// The stale trial does not count towards the budget: a third trial fits.
	third, err := s.CreateTrial(ctx, study, 2, t0)
	if err != nil {
		t.Fatalf("trial after a stale one: %v", err)
	}
	if third.Number != 2 {
		t.Errorf("trial after a stale one got number %d, want 2 (numbers are never reused)", third.Number)
	}
}
