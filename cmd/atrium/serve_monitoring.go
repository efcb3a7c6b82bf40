package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/atrium-ml/atrium/internal/monitoring/alert"
	"github.com/atrium-ml/atrium/internal/monitoring/labels"
	"github.com/atrium-ml/atrium/internal/monitoring/model"
	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/spec"
)

// modelMonitor opens the model monitor on the project's registry, artifact
// store, prediction log and label store.
func modelMonitor(e *env) (*model.Monitor, *labels.Store, error) {
	p, err := e.Project()
	if err != nil {
		return nil, nil, err
	}
	st, err := registryStores(e)
	if err != nil {
		return nil, nil, err
	}
	db, err := e.Meta()
	if err != nil {
		return nil, nil, err
	}
	dir, err := predictionLogDir(p)
	if err != nil {
		e.log.Warn("model monitors have no prediction log", "err", err)
		dir = ""
	}
	lbl := labels.NewStore(db)
	return model.New(model.Options{Registry: st.Registry, Tracking: st.Tracking, Artifacts: st.Artifacts, LogDir: dir, Labels: lbl, MaxRows: p.Monitoring.MaxRows, Logger: e.log}), lbl, nil
}

// ModelMonitor is the demo's monitor step's monitor (steps.Monitoring).
func (e *env) ModelMonitor() (*model.Monitor, error) {
	m, _, err := modelMonitor(e)
	return m, err
}

// monitoringAPI serves labels, model reports and alert states, and
// evaluates the monitors of monitors/*.yaml without a schedule every
// monitoring.evaluate_every until serve ends (a ticker); those with a
// schedule are the scheduler's jobs (monitor:NAME), sharing the evaluator.
func monitoringAPI(e *env) (server.API, error) {
	p, err := e.Project()
	if err != nil {
		return nil, err
	}
	mon, lbl, err := modelMonitor(e)
	if err != nil {
		return nil, err
	}
	ev, err := alertEvaluator(e, p, mon)
	if err != nil {
		return nil, err
	}
	e.alerts = ev
	if ev.Unscheduled() > 0 {
		ctx, cancel := context.WithCancel(e.ctx)
		var wg sync.WaitGroup
		wg.Go(func() { ev.Run(ctx, p.Monitoring.EvaluateEvery) })
		e.onClose(func() error { cancel(); wg.Wait(); return nil })
	}
	return &model.API{Monitor: mon, Labels: lbl, Alerts: ev, Logger: e.log}, nil
}

// alertEvaluator builds the evaluator of monitors/*.yaml with its webhooks.
func alertEvaluator(e *env, p *spec.Project, mon *model.Monitor) (*alert.Evaluator, error) {
	ms, err := spec.LoadMonitors(p.Dir)
	if err != nil {
		return nil, err
	}
	db, err := e.Meta()
	if err != nil {
		return nil, err
	}
	notifiers := map[string]alert.Notifier{}
	for _, n := range ms.Notifiers {
		w, err := alert.NewWebhook(n)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", n.File, n.Line, err)
		}
		notifiers[n.Name] = w
	}
	return alert.New(alert.Options{Monitors: ms, Measurer: &model.Measurer{Monitor: mon, Runs: db}, Store: alert.NewStore(db), Notifiers: notifiers, Logger: e.log})
}
