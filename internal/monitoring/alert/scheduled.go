package alert

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/atrium-ml/atrium/internal/spec"
)

// EvaluateMonitor evaluates the monitor named name at now as Evaluate does
// each (measure, store the new state, send the notification due) and
// returns its stored state. It is what the scheduler's monitor job calls
// at the end of each period of a monitor's schedule.
func (e *Evaluator) EvaluateMonitor(ctx context.Context, name string, now time.Time) (State, error) {
	m := e.opts.Monitors.Monitor(name)
	if m == nil {
		return State{}, fmt.Errorf("monitor %q is not defined in %s/*.yaml", name, spec.MonitorsDir)
	}
	if err := e.evaluate(ctx, m, now); err != nil {
		return State{}, fmt.Errorf("monitor %s: %w", name, err)
	}
	return e.opts.Store.Get(ctx, name)
}

// EvaluateUnscheduled evaluates, like Evaluate, the monitors without a
// schedule: a scheduler evaluates the others (job monitor:NAME), once per
// period, wherever it runs.
func (e *Evaluator) EvaluateUnscheduled(ctx context.Context, now time.Time) error {
	var errs []error
	for _, m := range e.opts.Monitors.Monitors {
		if m.Schedule != nil {
			continue
		}
		if err := e.evaluate(ctx, m, now); err != nil {
			errs = append(errs, fmt.Errorf("monitor %s: %w", m.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Unscheduled is the number of monitors without a schedule (those Run
// evaluates).
func (e *Evaluator) Unscheduled() int {
	n := 0
	for _, m := range e.opts.Monitors.Monitors {
		if m.Schedule == nil {
			n++
		}
	}
	return n
}
