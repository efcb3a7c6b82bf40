package main

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/serving"
	"github.com/atrium-ml/atrium/internal/serving/oip"
	"github.com/atrium-ml/atrium/internal/serving/predlog"
	"github.com/atrium-ml/atrium/internal/spec"
)

// The model server of `atrium serve`: registered models answer the Open
// Inference Protocol (/v2/...) through their alias, following it as it
// moves (docs/serving.md).
func modelsAPI(e *env) (server.API, error) {
	svc, err := e.Serving()
	if err != nil {
		return nil, err
	}
	p, err := e.Project()
	if err != nil {
		return nil, err
	}
	o, _, err := e.OnlineRetrieval()
	if err != nil {
		return nil, err
	}
	eopts := serving.EndpointOptions{Online: o, StoreTimeout: p.Server.StoreTimeout, MaxCandidates: p.Serving.MaxCandidates, Logger: e.log}
	for _, r := range p.Serving.Rankers {
		rc := serving.RankerConfig{Name: r.Name, Score: r.Score}
		for _, m := range r.Models {
			rc.Models = append(rc.Models, serving.RankerModel{Name: m.Name, Alias: m.Alias})
		}
		eopts.Rankers = append(eopts.Rankers, rc)
	}
	ep, err := serving.NewEndpoints(svc, eopts)
	if err != nil {
		return nil, fmt.Errorf("atrium.yaml serving.rankers: %w", err)
	}
	return modelsServer{svc: svc, endpoints: ep, logMetrics: e.predlogMetrics, oip: oip.NewAPI(serving.NewBackend(svc), oip.Options{
		ServerVersion: atriumVersion(), Logger: e.log})}, nil
}

// modelsServer is the model server as one server.API: its routes, its
// readiness (the metadata database answers) and its metrics.
type modelsServer struct {
	svc        *serving.Service
	oip        *oip.API
	endpoints  *serving.Endpoints
	logMetrics *predlog.Metrics // nil without a prediction log
}

// Routes implements server.API: OIP, then predict, rank and rankers.
func (m modelsServer) Routes() []server.Route {
	return append(m.oip.Routes(), m.endpoints.Routes()...)
}

// Ready reports whether the registry's database answers.
func (m modelsServer) Ready(ctx context.Context) error {
	if !serving.NewBackend(m.svc).ServerReady(ctx) {
		return errors.New("model server: the metadata database does not answer")
	}
	return nil
}

// Describe implements prometheus.Collector: the models', the endpoints' and
// the prediction log's metrics.
func (m modelsServer) Describe(ch chan<- *prometheus.Desc) {
	m.svc.Describe(ch)
	m.endpoints.Describe(ch)
	if m.logMetrics != nil {
		for _, c := range m.logMetrics.Collectors() {
			c.Describe(ch)
		}
	}
}

// Collect implements prometheus.Collector.
func (m modelsServer) Collect(ch chan<- prometheus.Metric) {
	m.svc.Collect(ch)
	m.endpoints.Collect(ch)
	if m.logMetrics != nil {
		for _, c := range m.logMetrics.Collectors() {
			c.Collect(ch)
		}
	}
}

// Serving returns the process's model service, started on first use and
// closed when the command ends (before the metadata database it polls). The
// OIP REST and gRPC transports, predict and rank share it.
func (e *env) Serving() (*serving.Service, error) {
	if e.serving != nil {
		return e.serving, nil
	}
	p, err := e.Project()
	if err != nil {
		return nil, err
	}
	loader, err := e.modelLoader()
	if err != nil {
		return nil, err
	}
	opts := servingOptions(p.Serving, e)
	// The prediction log is closed (flushed) after the service, whose
	// shadow worker logs too: closers run in reverse order.
	if opts.PredictionLog, err = e.predictionLog(p); err != nil {
		return nil, err
	}
	svc := serving.New(loader, opts)
	svc.Start(e.ctx)
	e.serving = svc
	e.onClose(svc.Close)
	return svc, nil
}

// modelLoader reads registered versions from the metadata database and the
// artifact store.
func (e *env) modelLoader() (*serving.Loader, error) {
	st, err := registryStores(e)
	if err != nil {
		return nil, err
	}
	return &serving.Loader{Registry: st.Registry, Artifacts: st.Artifacts}, nil
}

// servingOptions are the model service's settings from atrium.yaml's
// serving block (defaults filled by spec).
func servingOptions(s spec.Serving, e *env) serving.Options {
	opts := serving.Options{DefaultAlias: s.DefaultAlias, PollInterval: s.PollInterval, Logger: e.log}
	for _, m := range s.Models {
		c := serving.ModelConfig{Name: m.Name, Alias: m.Alias, FeatureService: m.FeatureService, LoadAtStart: m.LoadAtStart}
		if m.Canary != nil {
			c.Canary = &serving.Canary{Alias: m.Canary.Alias, Weight: m.Canary.Weight}
		}
		if m.Shadow != nil {
			c.ShadowAlias = m.Shadow.Alias
		}
		opts.Models = append(opts.Models, c)
	}
	return opts
}

// atriumVersion is the binary's module version ("(devel)" when built from a
// working tree).
func atriumVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// predictionLog opens the prediction log in the offline store's directory
// (predictionLogDir, where `atrium predictions` reads it), per
// serving.prediction_log; nil when it is disabled, or the offline store is
// not an embedded one (logged).
func (e *env) predictionLog(p *spec.Project) (serving.PredictionLog, error) {
	cfg := p.Serving.PredictionLog
	if cfg.Enabled != nil && !*cfg.Enabled {
		return nil, nil
	}
	dir, err := predictionLogDir(p)
	if err != nil {
		e.log.Warn("prediction log off", "err", err)
		return nil, nil
	}
	opts := predlog.Options{Dir: dir, FlushInterval: cfg.FlushInterval, BufferRows: cfg.BufferRows, Logger: e.log}
	if cfg.SampleRate != nil {
		if *cfg.SampleRate == 0 {
			return nil, nil // a rate of 0 logs nothing: no writer at all
		}
		opts.SampleRate = *cfg.SampleRate
	}
	opts.Metrics = predlog.NewMetrics()
	w, err := predlog.Open(e.ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("serving.prediction_log: %w", err)
	}
	e.predlogMetrics, e.predlog = opts.Metrics, w
	e.onClose(func() error {
		// Everything logged is written before the command returns; a disk
		// that does not take it within the bound gives up (logged).
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return w.Close(ctx)
	})
	return w, nil
}
