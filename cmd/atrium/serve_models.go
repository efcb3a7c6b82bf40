package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atrium-ml/atrium/internal/data/catalog"
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
	o, l, err := e.OnlineRetrieval()
	if err != nil {
		return nil, err
	}
	if err := servingFeatureProblems(p, l).Err(); err != nil {
		return nil, err
	}
	warnUnregistered(e, p)
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
		// spec compiled every score with the same evaluator when the
		// project loaded, and reported what failed at its line.
		return nil, fmt.Errorf("atrium.yaml serving.rankers: %w", err)
	}
	return modelsServer{svc: svc, endpoints: ep, logMetrics: e.predlogMetrics, oip: oip.NewAPI(serving.NewBackend(svc), oip.Options{
		ServerVersion: atriumVersion(), Logger: e.log})}, nil
}

// servingFeatureProblems are the feature services serving.models names that
// the applied feature definitions (l, nil when none are applied) do not
// define. The server reads the definitions once, at start: such a model
// could not score a single predict or rank request until a restart, so it
// is refused now rather than answered 503 on every request.
func servingFeatureProblems(p *spec.Project, l *catalog.Loaded) spec.Problems {
	var ps spec.Problems
	var defined []string
	if l != nil {
		for _, s := range l.Features.Services {
			defined = append(defined, s.Name)
		}
	}
	for i, m := range p.Serving.Models {
		if m.FeatureService == "" || (l != nil && l.Features.Service(m.FeatureService) != nil) {
			continue
		}
		path := fmt.Sprintf("serving.models[%d].feature_service", i)
		switch {
		case l == nil:
			ps = append(ps, p.Problem(path, "%q: no feature definitions are applied, expected a feature service of them (`atrium apply`, then restart)", m.FeatureService))
		case len(defined) == 0:
			ps = append(ps, p.Problem(path, "%q: the applied feature definitions define no feature service, expected one of them", m.FeatureService))
		default:
			ps = append(ps, p.Problem(path, "%q is not a feature service of the applied definitions, expected one of %s", m.FeatureService, strings.Join(defined, ", ")))
		}
	}
	return ps
}

// warnUnregistered logs a warning per model or alias the serving block
// names that the registry does not hold now: a ranker's model (the ranker
// answers 404 until it is registered), a canary's or shadow's alias (off
// until it is set). The registry changes while the server runs, so these
// are not errors; the warning names the line a typo would be at.
func warnUnregistered(e *env, p *spec.Project) {
	loader, err := e.modelLoader()
	if err != nil {
		return // the model service reports it when it opens the same stores
	}
	s := p.Serving
	own := map[string]string{} // model -> the alias its name resolves through
	for _, m := range s.Models {
		if m.Alias != "" {
			own[m.Name] = m.Alias
		}
	}
	check := func(path, name, alias, consequence string) {
		_, err := loader.Version(e.ctx, name, "@"+alias)
		if errors.Is(err, serving.ErrNotFound) {
			e.log.Warn(p.Problem(path, "%v: %s", err, consequence).String())
		}
	}
	for i, r := range s.Rankers {
		for j, m := range r.Models {
			alias := m.Alias
			if alias == "" {
				alias = cmp.Or(own[m.Name], s.DefaultAlias)
			}
			check(fmt.Sprintf("serving.rankers[%d].models[%d]", i, j), m.Name, alias,
				fmt.Sprintf("/v1/rankers/%s/rank answers 404 until it is registered", r.Name))
		}
	}
	for i, m := range s.Models {
		if m.Canary != nil {
			check(fmt.Sprintf("serving.models[%d].canary.alias", i), m.Name, m.Canary.Alias, "the canary is off until the alias is set")
		}
		if m.Shadow != nil {
			check(fmt.Sprintf("serving.models[%d].shadow.alias", i), m.Name, m.Shadow.Alias, "the shadow is off until the alias is set")
		}
	}
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

// Ready reports whether the models listed with load_at_start serve and the
// registry's database answers.
func (m modelsServer) Ready(ctx context.Context) error {
	if err := m.svc.StartupError(); err != nil {
		return fmt.Errorf("model server: %w", err)
	}
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
