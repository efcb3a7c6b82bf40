// Package monitorjob schedules monitors: a monitor of monitors/*.yaml with
// a schedule is the scheduler job "monitor:NAME", whose kind evaluates the
// monitor (alert.Evaluator.EvaluateMonitor: the measure `atrium monitor
// model` computes, or the feature set's pipeline runs) at the end of each
// period, storing its alert state and notifying its transitions through
// the monitoring layer's notifiers.
//
// A model monitor's period is due no earlier than the prediction log's
// flush interval after it closes: by then every prediction served before
// the period's end is in the log. Monitors wait for no other job: a
// feature-set monitor exists to see failed runs, which a dependency would
// wait on forever.
package monitorjob

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/atrium-ml/atrium/internal/data/jobs"
	"github.com/atrium-ml/atrium/internal/monitoring/alert"
	"github.com/atrium-ml/atrium/internal/platform/scheduler"
	"github.com/atrium-ml/atrium/internal/spec"
)

// Kind is the monitor job kind's name.
const Kind = "monitor"

// Jobs returns the job of each monitor with a schedule ("monitor:NAME").
// flush is the prediction log's flush interval
// (serving.prediction_log.flush_interval): a model monitor's delay is at
// least that.
func Jobs(ms *spec.Monitors, flush time.Duration) ([]scheduler.Job, error) {
	var out []scheduler.Job
	for _, m := range ms.Monitors {
		if m.Schedule == nil {
			continue
		}
		s := *m.Schedule
		if m.Measure.IsModel() && s.Delay.D() < flush {
			s.Delay = spec.Duration(flush)
		}
		j, err := jobs.ScheduledJob(Kind, m.Name, &s)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", m.File, m.Line, err)
		}
		out = append(out, j)
	}
	return out, nil
}

// Kinds returns the monitor kind, to register in scheduler.Options.Kinds:
// ev gives the evaluator of the monitors (the server's, so that its
// metrics and GET /v1/monitoring/alerts show the scheduled evaluations
// too). It is called when a job runs, not before, and must be safe for
// concurrent use.
func Kinds(ev func() (*alert.Evaluator, error)) map[string]scheduler.Factory {
	return map[string]scheduler.Factory{
		Kind: func(j scheduler.Job) (scheduler.Kind, error) {
			return scheduler.KindFunc(func(ctx context.Context, iv scheduler.Interval) (scheduler.Result, error) {
				e, err := ev()
				if err != nil {
					return scheduler.Result{}, fmt.Errorf("monitor %s: %w", j.Target, err)
				}
				return evaluate(ctx, e, j.Target, iv)
			}), nil
		},
	}
}

// evaluate evaluates the monitor at its period's end. A firing monitor is
// a job that succeeded with a failed check: the alert goes through the
// notifiers, and nothing downstream is blocked.
func evaluate(ctx context.Context, ev *alert.Evaluator, name string, iv scheduler.Interval) (scheduler.Result, error) {
	st, err := ev.EvaluateMonitor(ctx, name, iv.End)
	if err != nil {
		return scheduler.Result{}, err
	}
	value := "no data"
	if !math.IsNaN(st.Value) {
		value = strconv.FormatFloat(st.Value, 'g', 6, 64)
	}
	detail := fmt.Sprintf("%s at %s: %s", st.Status, iv.End.UTC().Format(time.RFC3339), value)
	return scheduler.Result{Detail: detail, Checks: []scheduler.Check{
		{Name: "monitor " + name, Level: "warn", Passed: st.Status != alert.StatusFiring, Detail: detail}}}, nil
}
