package main

import (
	"sync"

	"github.com/atrium-ml/atrium/internal/data/catalog"
	"github.com/atrium-ml/atrium/internal/modeling/train"
	"github.com/atrium-ml/atrium/internal/modeling/trainjob"
	"github.com/atrium-ml/atrium/internal/monitoring/alert"
	"github.com/atrium-ml/atrium/internal/monitoring/monitorjob"
	"github.com/atrium-ml/atrium/internal/platform/scheduler"
	"github.com/atrium-ml/atrium/internal/spec"
)

// The training specs' and the monitors' schedules are sources of jobs
// besides the feature sets'.
func init() { schedulerJobs = append(schedulerJobs, trainingJobs, monitorJobs) }

// trainingJobs are the jobs "train:NAME" of the training specs with a
// schedule. The orchestrator's stores are opened when a job first runs.
func trainingJobs(e *env) ([]scheduler.Job, map[string]scheduler.Factory, error) {
	p, err := e.Project()
	if err != nil {
		return nil, nil, err
	}
	specs, err := spec.LoadTrainings(p.Dir)
	if err != nil {
		return nil, nil, err
	}
	l, err := loadCatalog(e)
	if err != nil {
		return nil, nil, err
	}
	js, err := trainjob.Jobs(specs, l.Features)
	if err != nil || len(js) == 0 {
		return nil, nil, err
	}
	// The same stores as `atrium train` (trainSpec) opens; built once, on
	// the first run, by whichever attempt gets there first.
	base := sync.OnceValues(func() (train.Options, error) {
		o := train.Options{Dir: p.Dir, Features: l.Features, CatalogVersion: l.Version, Logger: e.log}
		var err error
		if o.DB, err = e.Meta(); err != nil {
			return o, err
		}
		if o.SetVersions, err = catalog.SetVersions(e.ctx, o.DB, l.Version); err != nil {
			return o, err
		}
		if o.Engine, err = e.Offline(l.Features); err != nil {
			return o, err
		}
		o.Tracker, err = registryStores(e)
		return o, err
	})
	return js, trainjob.Kinds(base, specs), nil
}

// monitorJobs are the jobs "monitor:NAME" of the monitors with a schedule,
// evaluated by the process's evaluator (serve's, shared with its
// monitoring API).
func monitorJobs(e *env) ([]scheduler.Job, map[string]scheduler.Factory, error) {
	p, err := e.Project()
	if err != nil {
		return nil, nil, err
	}
	ms, err := spec.LoadMonitors(p.Dir)
	if err != nil {
		return nil, nil, err
	}
	js, err := monitorjob.Jobs(ms, p.Serving.PredictionLog.FlushInterval)
	if err != nil || len(js) == 0 {
		return nil, nil, err
	}
	return js, monitorjob.Kinds(sync.OnceValues(e.Alerts)), nil
}

// Alerts is the process's evaluator of monitors/*.yaml, built once: serve's
// monitoring API and the scheduler's monitor jobs share its states and
// metrics. Not safe for concurrent first calls (monitorJobs wraps it).
func (e *env) Alerts() (*alert.Evaluator, error) {
	if e.alerts != nil {
		return e.alerts, nil
	}
	p, err := e.Project()
	if err != nil {
		return nil, err
	}
	mon, _, err := modelMonitor(e)
	if err != nil {
		return nil, err
	}
	if e.alerts, err = alertEvaluator(e, p, mon); err != nil {
		return nil, err
	}
	return e.alerts, nil
}
