package tune

import (
	"math"
	"slices"
	"strconv"
	"sync"
)

// Pruner decides whether a running trial stops at its last reported step.
// It may return system attributes to record on the trial (the successive
// halving pruner records the value each trial reached each rung with).
// Pruners must be safe for concurrent use.
type Pruner interface {
	Prune(h *History, t FrozenTrial) (prune bool, attrs map[string]string)
}

// NopPruner never prunes.
type NopPruner struct{}

// Prune implements Pruner.
func (NopPruner) Prune(*History, FrozenTrial) (bool, map[string]string) { return false, nil }

// MedianPruner is Optuna's MedianPruner (a PercentilePruner at 50): a trial
// is pruned at step s when the best of its intermediate values so far is
// worse than the median of the values completed trials reported at s.
// Nothing is pruned before StartupTrials trials completed, at steps below
// WarmupSteps, or at steps that are not the first reported in an interval
// of IntervalSteps after the warm-up.
type MedianPruner struct {
	// StartupTrials defaults to 5 (use NoStartup for 0).
	StartupTrials int
	// WarmupSteps defaults to 0.
	WarmupSteps int
	// IntervalSteps defaults to 1.
	IntervalSteps int
	// MinTrials is the fewest completed trials with a value at the step for a
	// comparison; defaults to 1.
	MinTrials int
}

// NoStartup, as MedianPruner.StartupTrials, asks for no startup trials.
const NoStartup = -1

// Prune implements Pruner.
func (p MedianPruner) Prune(h *History, t FrozenTrial) (bool, map[string]string) {
	startup := p.StartupTrials
	switch {
	case startup == 0:
		startup = 5
	case startup < 0:
		startup = 0
	}
	interval := max(p.IntervalSteps, 1)
	minTrials := max(p.MinTrials, 1)
	var completed []*FrozenTrial
	for i := range h.Trials {
		if h.Trials[i].State == Complete {
			completed = append(completed, &h.Trials[i])
		}
	}
	if len(completed) == 0 || len(completed) < startup {
		return false, nil
	}
	step, ok := t.LastStep()
	if !ok || step < p.WarmupSteps {
		return false, nil
	}
	if !firstInInterval(step, t.Intermediate, p.WarmupSteps, interval) {
		return false, nil
	}
	best := bestIntermediate(t.Intermediate, h.Direction)
	if math.IsNaN(best) {
		return true, nil
	}
	// Optuna counts the trials with a value at the step, NaN or not, then
	// takes np.nanpercentile: all-NaN values compare as NaN (no pruning).
	var vals []float64
	n := 0
	for _, c := range completed {
		if v, ok := c.Intermediate[step]; ok {
			n++
			if !math.IsNaN(v) {
				vals = append(vals, v)
			}
		}
	}
	if n < minTrials || len(vals) == 0 {
		return false, nil
	}
	med := percentile(vals, 50)
	if h.Direction == Maximize {
		return best < med, nil
	}
	return best > med, nil
}

// firstInInterval is Optuna's _is_first_in_interval_step: step is the first
// reported step at or after the last pruning point of the interval grid.
func firstInInterval(step int, reported map[int]float64, warmup, interval int) bool {
	nearestLower := (step-warmup)/interval*interval + warmup
	secondLast := -1
	for s := range reported {
		if s > secondLast && s != step {
			secondLast = s
		}
	}
	return secondLast < nearestLower
}

// bestIntermediate is the best non-NaN value over the steps (NaN if none).
func bestIntermediate(vals map[int]float64, dir Direction) float64 {
	best := math.NaN()
	for _, v := range vals {
		if math.IsNaN(v) {
			continue
		}
		if math.IsNaN(best) || (dir == Minimize && v < best) || (dir == Maximize && v > best) {
			best = v
		}
	}
	return best
}

// percentile is numpy's percentile with linear interpolation (q in [0, 100]).
func percentile(vals []float64, q float64) float64 {
	s := slices.Clone(vals)
	slices.Sort(s)
	pos := q / 100 * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(s)-1)
	return s[lo] + (s[hi]-s[lo])*(pos-float64(lo))
}

// SuccessiveHalvingPruner is Optuna's SuccessiveHalvingPruner, the
// asynchronous successive halving (ASHA) rule. Rung r is reached at step
// MinResource * ReductionFactor^(MinEarlyStoppingRate + r); a trial reaching
// a rung records its value there and continues only if that value is in the
// top 1/ReductionFactor of all values recorded at the rung so far
// (including its own; at least the best one is promoted).
type SuccessiveHalvingPruner struct {
	// MinResource is the steps before the first rung; 0 means "auto", as in
	// Optuna: once a trial completed, max(last step // 100, 1) of the longest
	// completed trial, and no pruning before.
	MinResource int
	// ReductionFactor defaults to 4.
	ReductionFactor int
	// MinEarlyStoppingRate defaults to 0.
	MinEarlyStoppingRate int
	// BootstrapCount is the fewest trials at a rung before any is pruned there; default 0.
	BootstrapCount int

	mu   sync.Mutex
	auto int // the estimated MinResource, once known
}

// RungAttr is the system attribute a trial's value at rung r is recorded in.
func RungAttr(r int) string { return "completed_rung_" + strconv.Itoa(r) }

// Prune implements Pruner.
func (p *SuccessiveHalvingPruner) Prune(h *History, t FrozenTrial) (bool, map[string]string) {
	step, ok := t.LastStep()
	if !ok {
		return false, nil
	}
	rf := p.ReductionFactor
	if rf <= 0 {
		rf = 4
	}
	minRes := p.minResource(h)
	if minRes == 0 {
		return false, nil
	}
	rung := 0
	for {
		if _, done := t.SystemAttrs[RungAttr(rung)]; !done {
			break
		}
		rung++
	}
	value := t.Intermediate[step]
	attrs := map[string]string{}
	for {
		promotionStep := minRes * intPow(rf, p.MinEarlyStoppingRate+rung)
		if step < promotionStep {
			return false, attrs
		}
		if math.IsNaN(value) {
			return true, attrs
		}
		key := RungAttr(rung)
		attrs[key] = strconv.FormatFloat(value, 'g', -1, 64)
		competing := []float64{value}
		for _, o := range h.Trials {
			if o.ID == t.ID {
				continue
			}
			if s, ok := o.SystemAttrs[key]; ok {
				if v, err := strconv.ParseFloat(s, 64); err == nil {
					competing = append(competing, v)
				}
			}
		}
		if len(competing) <= p.BootstrapCount {
			return true, attrs
		}
		if !promotable(value, competing, rf, h.Direction) {
			return true, attrs
		}
		rung++
	}
}

func (p *SuccessiveHalvingPruner) minResource(h *History) int {
	if p.MinResource > 0 {
		return p.MinResource
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.auto > 0 {
		return p.auto
	}
	last := -1
	for _, t := range h.Trials {
		if t.State == Complete {
			if s, ok := t.LastStep(); ok && s > last {
				last = s
			}
		}
	}
	if last < 0 {
		return 0
	}
	p.auto = max(last/100, 1)
	return p.auto
}

// promotable is Optuna's _is_trial_promotable_to_next_rung: the value ranks
// within the first len/rf of the rung's values (at least the first).
func promotable(value float64, competing []float64, rf int, dir Direction) bool {
	idx := len(competing)/rf - 1
	if idx < 0 {
		idx = 0
	}
	s := slices.Clone(competing)
	slices.Sort(s)
	if dir == Maximize {
		return value >= s[len(s)-1-idx]
	}
	return value <= s[idx]
}

func intPow(b, e int) int {
	out := 1
	for range e {
		out *= b
	}
	return out
}
