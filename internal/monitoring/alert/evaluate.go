package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atrium-ml/atrium/internal/spec"
)

// Measurer measures a monitor's value over its window ending at now. An
// error (an unknown model or feature, a store that failed) is reported and
// leaves the monitor's state as it was; an empty window is NoData, not an
// error.
type Measurer interface {
	Measure(ctx context.Context, m *spec.Monitor, now time.Time) (Measurement, error)
}

// MeasurerFunc adapts a function to Measurer.
type MeasurerFunc func(ctx context.Context, m *spec.Monitor, now time.Time) (Measurement, error)

// Measure calls f.
func (f MeasurerFunc) Measure(ctx context.Context, m *spec.Monitor, now time.Time) (Measurement, error) {
	return f(ctx, m, now)
}

// Options configure an Evaluator.
type Options struct {
	Monitors *spec.Monitors
	Measurer Measurer
	Store    *Store
	// Notifiers by the name monitors use in notify (a monitor without notify
	// goes to all of them).
	Notifiers map[string]Notifier
	// Logger. Default: discard.
	Logger *slog.Logger
}

// Evaluator evaluates monitors and notifies their transitions. It is a
// prometheus.Collector of the monitored values and alert states.
type Evaluator struct {
	opts Options

	value         *prometheus.GaugeVec
	firing        *prometheus.GaugeVec
	evaluations   *prometheus.CounterVec
	notifications *prometheus.CounterVec
}

// New returns an evaluator; it checks that every notifier a monitor names is
// given.
func New(opts Options) (*Evaluator, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Monitors == nil {
		opts.Monitors = &spec.Monitors{}
	}
	for _, m := range opts.Monitors.Monitors {
		for _, n := range m.Notify {
			if opts.Notifiers[n] == nil {
				return nil, fmt.Errorf("monitor %s: notifier %q is not configured", m.Name, n)
			}
		}
	}
	return &Evaluator{
		opts: opts,
		value: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "atrium_monitor_value",
			Help: "The value a monitor measured at its last evaluation (absent when its window had no data).",
		}, []string{"monitor"}),
		firing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "atrium_alert_firing",
			Help: "1 while a monitor's alert fires, 0 otherwise.",
		}, []string{"monitor", "severity"}),
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrium_monitor_evaluations_total",
			Help: "Monitor evaluations by result: ok, no_data or error.",
		}, []string{"monitor", "result"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrium_alert_notifications_total",
			Help: "Alert notifications by notifier, state (firing, resolved) and result (sent, failed).",
		}, []string{"notifier", "state", "result"}),
	}, nil
}

// Monitors is the number of monitors evaluated.
func (e *Evaluator) Monitors() int { return len(e.opts.Monitors.Monitors) }

// Describe implements prometheus.Collector.
func (e *Evaluator) Describe(ch chan<- *prometheus.Desc) {
	e.value.Describe(ch)
	e.firing.Describe(ch)
	e.evaluations.Describe(ch)
	e.notifications.Describe(ch)
}

// Collect implements prometheus.Collector.
func (e *Evaluator) Collect(ch chan<- prometheus.Metric) {
	e.value.Collect(ch)
	e.firing.Collect(ch)
	e.evaluations.Collect(ch)
	e.notifications.Collect(ch)
}

// Evaluate measures every monitor at now, stores its new state and sends
// the notifications due, one monitor after the other. A monitor whose
// measure fails keeps its state; the errors of all monitors are returned
// together. The scheduler evaluates one monitor at a time
// (EvaluateMonitor); Run, the unscheduled ones (EvaluateUnscheduled).
func (e *Evaluator) Evaluate(ctx context.Context, now time.Time) error {
	var errs []error
	for _, m := range e.opts.Monitors.Monitors {
		if err := e.evaluate(ctx, m, now); err != nil {
			errs = append(errs, fmt.Errorf("monitor %s: %w", m.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (e *Evaluator) evaluate(ctx context.Context, m *spec.Monitor, now time.Time) error {
	meas, err := e.opts.Measurer.Measure(ctx, m, now)
	if err != nil {
		e.evaluations.WithLabelValues(m.Name, "error").Inc()
		return err
	}
	if meas.NoData {
		e.evaluations.WithLabelValues(m.Name, "no_data").Inc()
		e.value.DeleteLabelValues(m.Name)
	} else {
		e.evaluations.WithLabelValues(m.Name, "ok").Inc()
		e.value.WithLabelValues(m.Name).Set(meas.Value)
	}
	old, err := e.opts.Store.Get(ctx, m.Name)
	if err != nil {
		return err
	}
	s := Next(old, m, meas, now)
	if err := e.opts.Store.put(ctx, &s); err != nil {
		if errors.Is(err, errRace) {
			// Another server evaluated the monitor meanwhile: its state
			// stands, and so does its duty to notify.
			return nil
		}
		return err
	}
	firing := 0.0
	if s.Status == StatusFiring {
		firing = 1
	}
	e.firing.WithLabelValues(m.Name, m.Severity).Set(firing)
	if s.Status != old.Status {
		e.opts.Logger.Info("monitor state", "monitor", m.Name, "from", old.Status, "to", s.Status, "value", s.Value)
	}
	return e.notify(ctx, m, s, meas)
}

// notify sends the notification s owes, if any. It claims the transition
// first (notified is written with the compare-and-set of put), so that of
// several servers only one sends it, and gives the claim back when every
// notifier failed, so that the next evaluation retries. A process that
// dies between the claim and the delivery loses that one notification:
// at most once, rather than a duplicate after every restart.
func (e *Evaluator) notify(ctx context.Context, m *spec.Monitor, s State, meas Measurement) error {
	due := s.Due()
	if due == "" {
		return nil
	}
	claimed := s
	claimed.Notified = due
	if err := e.opts.Store.put(ctx, &claimed); err != nil {
		if errors.Is(err, errRace) {
			return nil
		}
		return err
	}
	n := Notification{
		Rule: m.Name, Severity: m.Severity, State: due, Value: s.Value, Threshold: m.Threshold,
		Summary: Summary(m, s.Value, meas.Detail, due), Labels: labels(m), At: s.EvaluatedAt,
	}
	names := m.Notify
	if len(names) == 0 {
		for name := range e.opts.Notifiers {
			names = append(names, name)
		}
	}
	var errs []error
	sent := 0
	for _, name := range names {
		if err := e.opts.Notifiers[name].Notify(ctx, n); err != nil {
			e.notifications.WithLabelValues(name, due, "failed").Inc()
			errs = append(errs, err)
			continue
		}
		sent++
		e.notifications.WithLabelValues(name, due, "sent").Inc()
	}
	if sent == 0 && len(errs) > 0 {
		claimed.Notified = s.Notified
		if err := e.opts.Store.put(ctx, &claimed); err != nil && !errors.Is(err, errRace) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("notify %s: %w", due, errors.Join(errs...))
	}
	e.opts.Logger.Info("alert notified", "monitor", m.Name, "state", due, "notifiers", len(names))
	return nil
}

func labels(m *spec.Monitor) map[string]string {
	l := map[string]string{"measure": string(m.Measure)}
	switch {
	case m.Model != "":
		l["model"] = m.Model
	case m.FeatureSet != "":
		l["feature_set"] = m.FeatureSet
	}
	if m.Feature != "" {
		l["feature"] = m.Feature
	}
	for k, v := range m.Labels {
		l[k] = v
	}
	return l
}

// Summary is the sentence of a notification: "model ranker: feature_drift_share
// over 24h = 0.42 (>= 0.3) [version 3, 1204 rows]".
func Summary(m *spec.Monitor, value float64, detail, state string) string {
	what := string(m.Measure)
	switch {
	case m.Feature != "":
		what += " of " + m.Feature
	case m.Metric != "":
		what += " " + m.Metric
	}
	v := "no data"
	if !math.IsNaN(value) {
		v = "= " + strconv.FormatFloat(value, 'g', 4, 64)
	}
	cond := m.Comparison + " " + strconv.FormatFloat(m.Threshold, 'g', -1, 64)
	s := fmt.Sprintf("%s: %s over %s %s", m.Subject(), what, m.Window, v)
	if state == StateResolved {
		s += ", no longer " + cond
	} else {
		s += " (" + cond
		if m.For > 0 {
			s += " for " + m.For.String()
		}
		s += ")"
	}
	if detail != "" {
		s += " [" + detail + "]"
	}
	return s
}

// States returns the stored state of every monitor defined, in definition
// order (inactive for one never evaluated).
func (e *Evaluator) States(ctx context.Context) ([]State, error) {
	var out []State
	for _, m := range e.opts.Monitors.Monitors {
		s, err := e.opts.Store.Get(ctx, m.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Run evaluates the monitors without a schedule every interval until ctx
// is done, logging failures. Monitors with a schedule are the scheduler's
// (EvaluateMonitor).
func (e *Evaluator) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := e.EvaluateUnscheduled(ctx, time.Now()); err != nil && ctx.Err() == nil {
			e.opts.Logger.Warn("monitor evaluation", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
