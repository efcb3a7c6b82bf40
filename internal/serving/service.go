package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/registry"
	"github.com/atrium-ml/atrium/internal/serving/predlog"
)

// Options configure a Service. Zero values are the defaults.
type Options struct {
	// DefaultAlias is the alias a model name resolves through when the
	// caller names no version and the model's config names none. Default
	// "champion".
	DefaultAlias string
	// PollInterval is how often the aliases of the models in use are read
	// from the registry (the metadata database, which replicas share).
	// Default 2s.
	PollInterval time.Duration
	// Models configures models by name; any other registered model is
	// served on first use with the defaults.
	Models []ModelConfig
	// LoadTimeout bounds loading one version (registry and artifact
	// reads, parsing). Default 2m.
	LoadTimeout time.Duration
	// RegistryTimeout bounds each poll of the registry. Default 5s.
	RegistryTimeout time.Duration
	// RetryAfter is how long a version that failed to load is left alone
	// before the watcher tries it again (the alias may point at it for
	// good, and the failure may have been the store's). Default 30s.
	RetryAfter time.Duration
	// IdleVersions: a version loaded by number (not through an alias) and
	// unused this long is dropped from memory. Default 10m.
	IdleVersions time.Duration
	// OnShadow receives every shadow scoring (see Service.Shadow), on the
	// shadow worker's goroutine: it must not block for long (the prediction
	// log buffers). Nil: results are only logged and counted.
	OnShadow func(ShadowResult)
	// ShadowQueue is how many shadow scorings may wait; past it they are
	// dropped and counted. Default 256.
	ShadowQueue int
	// PredictionLog receives every scored request (OIP infer, predict, rank,
	// rankers) and every shadow scoring. Nil: nothing is logged.
	PredictionLog PredictionLog
	// Logger receives loads, swaps, failures. Default: discard.
	Logger *slog.Logger
	// Metrics are the service's metrics. Default NewMetrics().
	Metrics *Metrics
}

// ModelConfig is how one registered model is served (atrium.yaml's
// serving.models[]).
type ModelConfig struct {
	Name string
	// Alias the model name resolves through. Default Options.DefaultAlias.
	Alias string
	// FeatureService overrides the version's atrium.feature_service tag.
	FeatureService string
	// LoadAtStart loads the model when the service starts instead of on
	// first use.
	LoadAtStart bool
	// Canary sends a share of the traffic to another alias's version.
	Canary *Canary
	// ShadowAlias, when set, names an alias whose version scores the same
	// rows off the response path (Service.Shadow).
	ShadowAlias string
}

// Canary splits a model's traffic: a request whose route key hashes below
// Weight (0 to 1) is scored by the version Alias points at. The split is
// deterministic by key: the same user always sees the same version.
type Canary struct {
	Alias  string
	Weight float64
}

// Defaults of Options.
const (
	DefaultAlias        = "champion"
	DefaultPollInterval = 2 * time.Second
)

func (o *Options) ensureDefaults() {
	if o.DefaultAlias == "" {
		o.DefaultAlias = DefaultAlias
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.LoadTimeout <= 0 {
		o.LoadTimeout = 2 * time.Minute
	}
	if o.RegistryTimeout <= 0 {
		o.RegistryTimeout = 5 * time.Second
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = 30 * time.Second
	}
	if o.IdleVersions <= 0 {
		o.IdleVersions = 10 * time.Minute
	}
	if o.ShadowQueue <= 0 {
		o.ShadowQueue = 256
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
}

// Service keeps the served versions of registered models in memory and
// follows their aliases. Requests never query the registry once a model is
// loaded: the watcher does, every PollInterval, for all models in use at
// once. It is safe for concurrent use.
type Service struct {
	loader *Loader
	opts   Options
	log    *slog.Logger
	m      *Metrics
	config map[string]ModelConfig

	mu       sync.RWMutex
	models   map[string]*model
	versions map[versionKey]*versionEntry
	// broken holds versions whose files cannot be served (ErrModelFormat,
	// ErrUnsupportedFlavor), so that requests naming one do not reload it
	// for RetryAfter.
	broken map[versionKey]*loadFailure
	// vet, once set (vetWith), checks every loaded version before it is
	// served; refused are the versions vetWith refused after they loaded
	// (a few, once), which a load in flight then must not install.
	vet     func(*Deployed) (vetResult, error)
	refused map[*Deployed]error

	// startMu guards startErr: the last error of each model listed with
	// LoadAtStart that no version serves yet (StartupError).
	startMu  sync.Mutex
	startErr map[string]error
	// failMu guards lastFail: each version's last load error, so that a
	// version failing again the same way is not logged as an error anew.
	// Deleted versions of the models polled leave it at each poll, and it
	// holds at most maxLastFail entries (versions named by requests while
	// the registry fails are not bounded otherwise).
	failMu   sync.Mutex
	lastFail map[versionKey]string

	loads   singleflight.Group
	shadows chan shadowJob
	// spread draws route fractions for requests without a route key.
	spread atomic.Uint64

	// base is cancelled by Close: loads and the workers end with it.
	base   context.Context
	stop   context.CancelFunc
	kicked chan struct{}
	closed atomic.Bool
	// closeMu orders Close's wg.Wait after every wg.Add of a load started
	// by a request (track).
	closeMu sync.Mutex
	wg      sync.WaitGroup
}

type versionKey struct{ name, version string }

// versionEntry is a version loaded by number, with its last use (unix ns).
type versionEntry struct {
	d        *Deployed
	lastUsed atomic.Int64
}

// model is a registered model in use: the slots of the aliases it follows.
type model struct {
	name    string
	cfg     ModelConfig
	primary *slot
	canary  *slot // nil without a canary
	shadow  *slot // nil without a shadow
	// extra are the slots of other aliases requests follow (a ranker's
	// model alias; ResolveAlias), copied on write under Service.mu.
	extra atomic.Pointer[[]*slot]
}

// slot follows one alias of a model: the version it serves (swapped
// atomically) and the state of the last load.
type slot struct {
	alias string
	cur   atomic.Pointer[Deployed]

	mu      sync.Mutex
	want    string // the version the alias pointed at when last read
	loading bool
	failed  *loadFailure
	missing bool // the alias was removed while a version served
	// removed: a canary's or shadow's alias was removed (the slot was
	// emptied); a request's first load installs nothing until the alias
	// points at a version again.
	removed bool
}

type loadFailure struct {
	version string
	err     error
	at      time.Time
}

// New returns a service loading versions through loader. Start it to load
// the models marked LoadAtStart and to follow aliases; Close it when done.
func New(loader *Loader, opts Options) *Service {
	opts.ensureDefaults()
	s := &Service{loader: loader, opts: opts, log: opts.Logger, m: opts.Metrics,
		config: make(map[string]ModelConfig, len(opts.Models)), models: map[string]*model{},
		versions: map[versionKey]*versionEntry{}, broken: map[versionKey]*loadFailure{}, refused: map[*Deployed]error{}, startErr: map[string]error{},
		lastFail: map[versionKey]string{},
		shadows:  make(chan shadowJob, opts.ShadowQueue), kicked: make(chan struct{}, 1)}
	s.base, s.stop = context.WithCancel(context.Background())
	for _, c := range opts.Models {
		s.config[c.Name] = c
	}
	return s
}

// Start loads the models marked LoadAtStart (a failure is logged, shown by
// StartupError, and the load tried again until a version serves) and
// starts the alias watcher, the shadow worker and those retries, which run
// until Close.
func (s *Service) Start(ctx context.Context) {
	s.loadAtStart(ctx)
	s.wg.Add(3)
	go s.watch()
	go s.shadowWorker()
	go s.retryStartLoads()
}

// loadAtStart loads each model marked LoadAtStart that no version serves,
// recording its error for StartupError. An error is logged when it differs
// from the model's previous one: a registry down for an hour logs once, not
// at every try.
func (s *Service) loadAtStart(ctx context.Context) {
	for _, c := range s.opts.Models {
		if !c.LoadAtStart || s.serves(c.Name) {
			continue
		}
		_, err := s.Resolve(ctx, c.Name, "", "")
		s.startMu.Lock()
		prev := s.startErr[c.Name]
		if err == nil {
			delete(s.startErr, c.Name)
		} else {
			s.startErr[c.Name] = err
		}
		s.startMu.Unlock()
		switch {
		case err != nil && (prev == nil || prev.Error() != err.Error()):
			s.log.Error("serving: load at start", "model", c.Name, "err", err)
		case err == nil && prev != nil:
			s.log.Info("serving: loaded at last", "model", c.Name)
		}
	}
}

// retryStartLoads tries again, every PollInterval, the models marked
// LoadAtStart that no version serves (the registry did not answer at start,
// the alias was not set yet, its version failed to load, or the version
// was deleted since); a version that failed to load is tried again only
// after RetryAfter (first). Without it such a model would wait for a
// request, and a load balancer sends none to a server that StartupError
// keeps unready.
func (s *Service) retryStartLoads() {
	s.everyPoll(nil, func() {
		ctx, cancel := context.WithTimeout(s.base, s.opts.LoadTimeout)
		defer cancel()
		s.loadAtStart(ctx)
	})
}

// everyPoll calls fn every PollInterval and whenever kicked receives,
// until Close; it is a goroutine's body, counted in s.wg.
func (s *Service) everyPoll(kicked <-chan struct{}, fn func()) {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-s.base.Done():
			return
		case <-t.C:
			fn()
		case <-kicked:
			fn()
		}
	}
}

// serves reports whether a version serves name through its alias.
func (s *Service) serves(name string) bool {
	m := s.lookup(name)
	return m != nil && m.primary.cur.Load() != nil
}

// StartupError is nil when every model marked LoadAtStart has a version
// serving, else an error naming those that do not and why: a server is
// not ready to take traffic before the models it was told to load are (as
// Triton's strict readiness).
func (s *Service) StartupError() error {
	var missing []string
	for _, c := range s.opts.Models {
		if !c.LoadAtStart || s.serves(c.Name) {
			continue
		}
		s.startMu.Lock()
		err := s.startErr[c.Name]
		s.startMu.Unlock()
		if err == nil {
			missing = append(missing, fmt.Sprintf("%s (not loaded yet)", c.Name))
		} else {
			missing = append(missing, fmt.Sprintf("%s (%v)", c.Name, err))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("models listed with load_at_start serve no version: %s", strings.Join(missing, "; "))
}

// Close stops the watcher, the shadow worker and the load_at_start retries
// and waits for them and for loads in flight. Resolve fails with
// ErrNotReady afterwards. Close is idempotent.
func (s *Service) Close() error {
	s.closeMu.Lock()
	already := s.closed.Swap(true)
	s.closeMu.Unlock()
	if already {
		return nil
	}
	s.stop()
	s.wg.Wait()
	return nil
}

// Describe implements prometheus.Collector.
func (s *Service) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range s.m.Collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (s *Service) Collect(ch chan<- prometheus.Metric) {
	for _, c := range s.m.Collectors() {
		c.Collect(ch)
	}
}

// Resolve returns the version of name that scores a request. version is a
// version number, or "" for the model's alias (ModelConfig.Alias, default
// "champion"), or its canary alias for requests whose routeKey (a user id,
// say) falls in the canary's share. The first request of a model loads it
// (concurrent first requests load it once); later ones read memory only.
//
// Errors: ErrNotFound for an unknown model or version or a missing alias;
// ErrModelFormat / ErrUnsupportedFlavor for a version that cannot be served;
// ErrNotReady after Close.
func (s *Service) Resolve(ctx context.Context, name, version, routeKey string) (*Deployed, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("%w: the model server is shutting down", ErrNotReady)
	}
	if version != "" {
		return s.version(ctx, name, version)
	}
	if m := s.lookup(name); m != nil {
		if m.canary != nil {
			if d := m.canary.cur.Load(); d != nil && routeFraction(routeKey, &s.spread) < m.cfg.Canary.Weight {
				return d, nil
			}
		}
		if d := m.primary.cur.Load(); d != nil {
			return d, nil
		}
	}
	return s.first(ctx, name)
}

func (s *Service) lookup(name string) *model {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.models[name]
}

// configOf is a model's configuration with its defaults.
func (s *Service) configOf(name string) ModelConfig {
	cfg, ok := s.config[name]
	if !ok {
		cfg = ModelConfig{Name: name}
	}
	if cfg.Alias == "" {
		cfg.Alias = s.opts.DefaultAlias
	}
	return cfg
}

// model returns the entry of a model, creating it: only once the model and
// its alias are known to exist, so that requests naming unknown models
// leave nothing behind.
func (s *Service) model(name string) *model {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.models[name]; m != nil {
		return m
	}
	cfg := s.configOf(name)
	m := &model{name: name, cfg: cfg, primary: &slot{alias: cfg.Alias}}
	if cfg.Canary != nil && cfg.Canary.Alias != "" && cfg.Canary.Weight > 0 {
		m.canary = &slot{alias: cfg.Canary.Alias}
	}
	if cfg.ShadowAlias != "" {
		m.shadow = &slot{alias: cfg.ShadowAlias}
	}
	s.models[name] = m
	return m
}

// first loads the version a model's alias points at synchronously: the
// first request of a model waits for it, and concurrent first requests
// share one load. A version that failed to load less than RetryAfter ago is
// not tried again here (the watcher retries it, or loads the version the
// alias moves to): its error is returned at once.
func (s *Service) first(ctx context.Context, name string) (*Deployed, error) {
	return s.once(ctx, "alias\x00"+name, "model "+name, func() (*Deployed, error) {
		if m := s.lookup(name); m != nil {
			if d := m.primary.cur.Load(); d != nil {
				return d, nil
			}
			if f := m.primary.failure(); f != nil && time.Since(f.at) < s.opts.RetryAfter {
				return nil, f.err
			}
		}
		v, err := s.readAlias(ctx, name, s.configOf(name).Alias)
		if err != nil {
			return nil, err
		}
		lctx, cancel := s.loadContext(ctx)
		defer cancel()
		m := s.model(name)
		d, err := s.version(lctx, name, v.Version)
		if err == nil {
			err = s.install(m, m.primary, d)
		}
		if err != nil {
			m.primary.fail(v.Version, err)
			return nil, err
		}
		s.kick() // the canary and shadow aliases load in the background
		return d, nil
	})
}

// once runs load once for concurrent callers of the same key. A caller
// whose ctx ends stops waiting (the load goes on for the others, bounded by
// LoadTimeout: loadContext detaches it).
func (s *Service) once(ctx context.Context, key, what string, load func() (*Deployed, error)) (*Deployed, error) {
	// A request that has already given up starts nothing.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("loading %s: %w", what, err)
	}
	ch := s.loads.DoChan(key, func() (any, error) {
		if err := s.track(); err != nil {
			return nil, err
		}
		defer s.wg.Done()
		return load()
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Deployed), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for %s to load: %w", what, ctx.Err())
	}
}

// track counts a load started by a request among the goroutines Close waits
// for (a load outlives its request: it goes on for the others sharing it),
// so that no load uses the registry's database or the artifact store after
// Close returns and the caller closes them. The caller calls s.wg.Done when
// the load ends. After Close, track refuses with ErrNotReady.
func (s *Service) track() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed.Load() {
		return fmt.Errorf("%w: the model server is shutting down", ErrNotReady)
	}
	s.wg.Add(1)
	return nil
}

// readAlias reads the version alias points at for a load shared by
// concurrent requests. The read is detached from the request that started
// the load (its caller giving up must not fail the others waiting on it)
// and bounded by RegistryTimeout: a registry that does not answer fails the
// load within that time, and each waiting request still ends at its own
// deadline (once).
func (s *Service) readAlias(ctx context.Context, name, alias string) (*registry.ModelVersion, error) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.RegistryTimeout)
	defer cancel()
	stop := context.AfterFunc(s.base, cancel)
	defer stop()
	return s.loader.Version(actx, name, "@"+alias)
}

// loadContext detaches a load from the request that started it (other
// requests share the load; one caller giving up must not fail theirs),
// bounded by LoadTimeout and ended by Close.
func (s *Service) loadContext(ctx context.Context) (context.Context, context.CancelFunc) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.LoadTimeout)
	stop := context.AfterFunc(s.base, cancel)
	return lctx, func() { stop(); cancel() }
}

// version returns a version by number, loading it once. Only a decimal
// number is taken: the loaded versions are cached by the string asked for,
// so an "@alias" here would pin whatever the alias pointed at first for as
// long as the cache holds it.
func (s *Service) version(ctx context.Context, name, version string) (*Deployed, error) {
	if !versionNumber(version) {
		return nil, fmt.Errorf("%w: model %q version %q: want a version number (1, 2, ...)", ErrNotFound, name, clipName(version))
	}
	k := versionKey{name, version}
	s.mu.RLock()
	e := s.versions[k]
	s.mu.RUnlock()
	if e != nil {
		e.lastUsed.Store(time.Now().UnixNano())
		return e.d, nil
	}
	s.mu.RLock()
	f := s.broken[k]
	s.mu.RUnlock()
	if f != nil && time.Since(f.at) < s.opts.RetryAfter {
		return nil, f.err
	}
	return s.once(ctx, "version\x00"+name+"\x00"+version, "model "+name+" version "+version, func() (*Deployed, error) {
		s.mu.RLock()
		e := s.versions[k]
		s.mu.RUnlock()
		if e != nil {
			return e.d, nil
		}
		lctx, cancel := s.loadContext(ctx)
		defer cancel()
		start := time.Now()
		d, err := s.loader.Load(lctx, name, version)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				s.loadFailed(name, version, err)
			}
			if permanent(err) {
				s.mu.Lock()
				s.broken[k] = &loadFailure{version: version, err: err, at: time.Now()}
				s.mu.Unlock()
			}
			return nil, err
		}
		if c, ok := s.config[name]; ok && c.FeatureService != "" {
			d.FeatureService = c.FeatureService
		}
		d.obs = s.m.forVersion(name, d.Version)
		e = &versionEntry{d: d}
		e.lastUsed.Store(time.Now().UnixNano())
		// Vetted under mu, where vetWith sets the check and vets the
		// versions already loaded: every version is vetted once the check
		// is set, by one or the other.
		s.mu.Lock()
		vetted, err := s.vetLocked(d)
		if err != nil {
			s.broken[k] = &loadFailure{version: version, err: err, at: time.Now()}
		} else {
			s.versions[k] = e
		}
		s.mu.Unlock()
		if err != nil {
			s.loadFailed(name, version, err)
			return nil, err
		}
		s.failMu.Lock()
		delete(s.lastFail, k)
		s.failMu.Unlock()
		s.m.loads.WithLabelValues(name).Inc()
		s.m.loadTime.WithLabelValues(name).Observe(time.Since(start).Seconds())
		s.log.Info("serving: loaded", "model", name, "version", d.Version, "platform", d.Platform,
			"inputs", len(d.Inputs), "seconds", time.Since(start).Seconds())
		s.warnVetted(d, vetted)
		return d, nil
	})
}

// permanent reports whether a load error is of the version itself (its
// files, its flavor, its feature service), which no retry fixes until the
// alias moves, rather than of a store that did not answer.
func permanent(err error) bool {
	return errors.Is(err, ErrModelFormat) || errors.Is(err, ErrUnsupportedFlavor)
}

// maxLastFail bounds Service.lastFail.
const maxLastFail = 4096

// loadFailed logs and counts a version that could not be loaded. A version
// failing as it failed last time (the watcher tries a broken alias target
// every RetryAfter) is counted and logged at DEBUG: an alias left on a
// corrupt version for a day would otherwise log an error twice a minute.
func (s *Service) loadFailed(name, version string, err error) {
	s.m.failures.WithLabelValues(name).Inc()
	k := versionKey{name, version}
	s.failMu.Lock()
	again := s.lastFail[k] == err.Error()
	if !again && len(s.lastFail) >= maxLastFail {
		clear(s.lastFail) // at worst, one more error line per failing version
	}
	s.lastFail[k] = err.Error()
	s.failMu.Unlock()
	level := slog.LevelError
	if again {
		level = slog.LevelDebug
	}
	s.log.Log(s.base, level, "serving: load failed", "model", name, "version", version, "err", err)
}

// unservableError refuses a version that loaded but that its feature
// service cannot serve. Callers see an ErrModelFormat, as for a corrupt
// file: the version is not served, and no retry helps until its alias
// moves (503 without Retry-After, FAILED_PRECONDITION); the message is its
// own, since the files are fine. It is also the request-time error of a
// version served unchecked (vetResult.unchecked).
type unservableError struct{ err error }

func (e unservableError) Error() string   { return e.err.Error() }
func (e unservableError) Unwrap() []error { return []error{ErrModelFormat, e.err} }

// vetWith makes vet check every version before it is served: the
// endpoints' check of a version against its feature service (known once
// the endpoints exist, which may be after Start loaded versions). An error
// refuses the version as one whose files cannot be served; what else vet
// finds is logged. The versions loaded already are vetted now: a refused
// one stops serving, and the alias that served it reports why.
func (s *Service) vetWith(vet func(*Deployed) (vetResult, error)) {
	type verdict struct {
		d   *Deployed
		r   vetResult
		err error
	}
	var vetted []verdict
	s.mu.Lock()
	s.vet = vet
	for k, e := range s.versions {
		r, err := s.vetLocked(e.d)
		if err != nil {
			delete(s.versions, k)
			s.broken[k] = &loadFailure{version: k.version, err: err, at: time.Now()}
			s.refused[e.d] = err
		}
		vetted = append(vetted, verdict{e.d, r, err})
	}
	models := make([]*model, 0, len(s.models))
	for _, m := range s.models {
		models = append(models, m)
	}
	s.mu.Unlock()
	for _, r := range vetted {
		if r.err == nil {
			s.warnVetted(r.d, r.r)
			continue
		}
		s.loadFailed(r.d.Name, r.d.Version, r.err)
		for _, m := range models {
			if m.name != r.d.Name {
				continue
			}
			for _, sl := range m.slots() {
				if s.drop(m, sl, r.d, "serving: the version an alias served cannot be served with its feature service; no longer served") {
					sl.fail(r.d.Version, r.err)
				}
			}
		}
	}
}

// vetLocked vets a loaded version (s.mu held). A refusal names the model,
// the version and where its feature service comes from.
func (s *Service) vetLocked(d *Deployed) (vetResult, error) {
	if s.vet == nil {
		return vetResult{}, nil
	}
	r, err := s.vet(d)
	if err != nil {
		from := "the version's " + FeatureServiceTag + " tag"
		if c, ok := s.config[d.Name]; ok && c.FeatureService != "" {
			from = "serving.models[].feature_service in atrium.yaml"
		}
		return vetResult{}, unservableError{fmt.Errorf("model %q version %s cannot be served with its feature service %q (from %s): %w",
			d.Name, d.Version, d.FeatureService, from, err)}
	}
	return r, nil
}

// warnVetted logs what vet found in a version it let serve: the inputs its
// feature service does not provide (requests must send them, or they are
// missing), or a service it could not check.
func (s *Service) warnVetted(d *Deployed, r vetResult) {
	if r.unchecked {
		s.log.Warn("serving: no feature service is defined (atrium apply, then restart the server): the version's predict and rank fail until then; OIP infer serves it",
			"model", d.Name, "version", d.Version, "feature_service", d.FeatureService)
	}
	if len(r.unprovided) > 0 {
		s.log.Warn("serving: inputs the feature service does not provide; predict and rank requests must send them (features), else they are missing",
			"model", d.Name, "version", d.Version, "feature_service", d.FeatureService, "inputs", strings.Join(r.unprovided, ", "))
	}
}

// versionNumber reports whether v is a registry version number: decimal
// digits without a leading zero, as the registry numbers versions.
func versionNumber(v string) bool {
	if v == "" || len(v) > 18 || v[0] == '0' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// clipName shortens a client-sent name echoed in an error.
func clipName(v string) string {
	if len(v) > 40 {
		return v[:40] + "..."
	}
	return v
}

// install is a request's first load of an alias (first, ResolveAlias): d,
// the version the alias pointed at when the request read it, fills the
// slot if it is still empty and its alias was not removed since. A poll
// during the load may have installed a version or emptied a canary's or
// shadow's slot, and a request must not undo either (until the next poll
// it would serve a version the alias no longer points at); d still
// answers the request that loaded it. The error is vetWith's refusal of d
// since it loaded.
func (s *Service) install(m *model, sl *slot, d *Deployed) error {
	if !s.installIf(m, sl, d, firstLoad) {
		return s.refusal(d)
	}
	return nil
}

// firstLoad is installIf's want for install.
const firstLoad = "\x00first load"

// installIf installs d when the slot's alias still points at want (checked
// under sl.mu, so a poll moving the alias meanwhile cannot interleave), or,
// with want firstLoad, when the slot is empty and not removed (install);
// otherwise d is discarded and installIf reports false. A version vetWith
// refused is not installed either (checked under sl.mu too: vetWith marks
// it refused before it looks at the slots), and the slot fails with the
// refusal.
func (s *Service) installIf(m *model, sl *slot, d *Deployed, want string) bool {
	sl.mu.Lock()
	if want == firstLoad && (sl.cur.Load() != nil || sl.removed) || want != firstLoad && sl.want != want {
		sl.mu.Unlock()
		return false
	}
	if err := s.refusal(d); err != nil {
		sl.want, sl.failed = d.Version, &loadFailure{version: d.Version, err: err, at: time.Now()}
		sl.mu.Unlock()
		return false
	}
	// The metrics change before the version does, under sl.mu: whoever
	// sees the new version sees them, and two changes of the slot apply
	// them in their order.
	old := sl.cur.Load()
	moved := old != nil && old.Version != d.Version
	if moved {
		s.m.info.DeleteLabelValues(m.name, sl.alias, old.Version)
		s.m.swaps.WithLabelValues(m.name, sl.alias).Inc()
	}
	s.m.info.WithLabelValues(m.name, sl.alias, d.Version).Set(1)
	sl.cur.Store(d)
	sl.want, sl.failed, sl.missing, sl.removed = d.Version, nil, false, false
	sl.mu.Unlock()
	if moved {
		s.log.Info("serving: alias moved, new version swapped in", "model", m.name, "alias", sl.alias, "from", old.Version, "to", d.Version)
	}
	return true
}

// refusal is why vetWith refused d after it loaded, or nil.
func (s *Service) refusal(d *Deployed) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.refused[d]
}

// failure is the slot's last load failure, if it is of the version the
// alias points at.
func (sl *slot) failure() *loadFailure {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if f := sl.failed; f != nil && f.version == sl.want {
		return f
	}
	return nil
}

// fail records that version, which the slot's alias points at, did not
// load: it is not tried again for RetryAfter. A version not found is not
// recorded: it was deleted between the alias's read and the load (the next
// poll reads the alias again), and a model deleted and registered again
// under the same name may bring a version of the same number at once.
//
// again reports whether the slot's previous failure was the same version
// failing the same way (a retry every RetryAfter, logged once).
func (sl *slot) fail(version string, err error) (again bool) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	prev := sl.failed
	again = prev != nil && prev.version == version && prev.err.Error() == err.Error()
	sl.want = version
	sl.failed = nil
	if !errors.Is(err, ErrNotFound) {
		sl.failed = &loadFailure{version: version, err: err, at: time.Now()}
	}
	return again
}

// watch polls the registry for the aliases of the models in use until
// Close, and loads the versions they moved to.
func (s *Service) watch() {
	s.everyPoll(s.kicked, s.poll)
}

// kick asks the watcher to poll now (a model came into use: its canary and
// shadow aliases are loaded without waiting for the next tick).
func (s *Service) kick() {
	select {
	case s.kicked <- struct{}{}:
	default:
	}
}

// poll reads every model's aliases in one query and starts background
// loads for the slots whose alias moved. A registry that does not answer
// leaves everything as it is (logged).
func (s *Service) poll() {
	s.mu.RLock()
	models := make([]*model, 0, len(s.models))
	names := make([]string, 0, len(s.models))
	for _, m := range s.models {
		models = append(models, m)
		names = append(names, m.name)
	}
	for k := range s.versions {
		if s.models[k.name] == nil && !slices.Contains(names, k.name) {
			names = append(names, k.name)
		}
	}
	s.mu.RUnlock()
	if len(names) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(s.base, s.opts.RegistryTimeout)
	aliases, err := s.loader.Registry.AliasVersions(ctx, names)
	var live map[string]map[string]registry.VersionStamp
	if err == nil {
		live, err = s.loader.Registry.LiveVersions(ctx, names)
	}
	cancel()
	if err != nil {
		s.log.Warn("serving: poll the registry for moved aliases", "err", err)
		return
	}
	s.dropGone(models, live)
	held := map[versionKey]bool{}
	for _, m := range models {
		for _, sl := range m.slots() {
			if d := sl.cur.Load(); d != nil {
				held[versionKey{m.name, d.Version}] = true
			}
			s.follow(m, sl, aliases[m.name][sl.alias])
		}
	}
	s.evict(held)
}

// dropGone stops serving the loaded versions the registry no longer has
// (live, LiveVersions' answer): a deleted version, or one of a model
// deleted since, even when a model of the same name was registered again
// (its version of the same number is another model). Every replica then
// answers as one started after the deletion: 404, or the version the
// alias points at now, loaded afresh.
func (s *Service) dropGone(models []*model, live map[string]map[string]registry.VersionStamp) {
	gone := func(d *Deployed) bool {
		st, ok := live[d.Name][d.Version]
		return !ok || st != d.Stamp
	}
	s.mu.Lock()
	for k, e := range s.versions {
		if gone(e.d) {
			delete(s.versions, k)
		}
	}
	for k := range s.broken {
		if _, ok := live[k.name][k.version]; !ok {
			delete(s.broken, k)
		}
	}
	s.mu.Unlock()
	s.failMu.Lock()
	for k := range s.lastFail {
		// Only models the poll asked about: another's absence says nothing.
		if vs, polled := live[k.name]; polled {
			if _, ok := vs[k.version]; !ok {
				delete(s.lastFail, k)
			}
		}
	}
	s.failMu.Unlock()
	for _, m := range models {
		for _, sl := range m.slots() {
			if d := sl.cur.Load(); d != nil && gone(d) {
				s.drop(m, sl, d, "serving: the version an alias served was deleted from the registry; no longer served")
			}
		}
	}
}

// drop empties a slot that serves d (and only d: a swap meanwhile wins),
// reporting whether it did.
func (s *Service) drop(m *model, sl *slot, d *Deployed, msg string) bool {
	sl.mu.Lock()
	ok := sl.cur.CompareAndSwap(d, nil)
	if ok {
		sl.want, sl.missing = "", false
		s.m.info.DeleteLabelValues(m.name, sl.alias, d.Version)
	}
	sl.mu.Unlock()
	if ok {
		s.log.Warn(msg, "model", m.name, "alias", sl.alias, "version", d.Version)
	}
	return ok
}

func (m *model) slots() []*slot {
	out := []*slot{m.primary}
	if m.canary != nil {
		out = append(out, m.canary)
	}
	if m.shadow != nil {
		out = append(out, m.shadow)
	}
	if ex := m.extra.Load(); ex != nil {
		out = append(out, *ex...)
	}
	return out
}

// follow starts loading the version an alias points at when the slot does
// not serve it yet, unless a load is in flight or that version failed less
// than RetryAfter ago.
func (s *Service) follow(m *model, sl *slot, version string) {
	cur := sl.cur.Load()
	if version == "" && (sl == m.canary || sl == m.shadow) {
		// A canary or shadow whose alias is removed gets no more traffic,
		// as on a server started after the removal; only the model's own
		// alias keeps its last version serving. One critical section with
		// installIf: a load of the removed target in flight either installed
		// before it (emptied here) or finds the slot wanting nothing and
		// installs nothing.
		sl.mu.Lock()
		sl.want, sl.missing, sl.removed = "", false, true
		old := sl.cur.Swap(nil)
		if old != nil {
			s.m.info.DeleteLabelValues(m.name, sl.alias, old.Version)
		}
		sl.mu.Unlock()
		if old != nil {
			s.log.Warn("serving: alias removed; its version gets no more requests", "model", m.name, "alias", sl.alias, "version", old.Version)
		}
		return
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if version == "" {
		if cur != nil && !sl.missing {
			sl.missing = true
			s.log.Warn("serving: alias removed; the version it pointed at keeps serving", "model", m.name, "alias", sl.alias, "version", cur.Version)
		}
		return
	}
	sl.missing, sl.removed = false, false
	sl.want = version
	if (cur != nil && cur.Version == version) || sl.loading {
		return
	}
	if f := sl.failed; f != nil && f.version == version && time.Since(f.at) < s.opts.RetryAfter {
		return
	}
	sl.loading = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		d, err := s.version(s.base, m.name, version)
		sl.mu.Lock()
		sl.loading = false
		sl.mu.Unlock()
		if err != nil {
			level := slog.LevelError
			if sl.fail(version, err) {
				level = slog.LevelDebug // the same failure, tried again after RetryAfter
			}
			s.log.Log(s.base, level, "serving: the version an alias moved to failed to load; the previous version keeps serving",
				"model", m.name, "alias", sl.alias, "version", version, "serving", servedVersion(cur), "err", err)
			return
		}
		// The alias may have moved on (a rollback) while this version
		// loaded: install it only if the alias still points at it.
		if !s.installIf(m, sl, d, version) {
			if err := s.refusal(d); err != nil {
				s.log.Error("serving: the version an alias moved to failed to load; the previous version keeps serving",
					"model", m.name, "alias", sl.alias, "version", version, "serving", servedVersion(cur), "err", err)
				return
			}
			s.log.Info("serving: the alias moved while a version loaded; not swapping it in", "model", m.name, "alias", sl.alias, "version", version)
			s.kick()
		}
	}()
}

// servedVersion names the version a slot serves, for a log line.
func servedVersion(cur *Deployed) string {
	if cur == nil {
		return "none"
	}
	return cur.Version
}

// evict drops versions loaded by number that no slot serves and that were
// not used for IdleVersions.
func (s *Service) evict(held map[versionKey]bool) {
	cutoff := time.Now().Add(-s.opts.IdleVersions).UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.versions {
		if !held[k] && e.lastUsed.Load() < cutoff {
			delete(s.versions, k)
			s.log.Info("serving: unloaded an idle version", "model", k.name, "version", k.version)
		}
	}
	for k, f := range s.broken {
		if time.Since(f.at) >= s.opts.RetryAfter {
			delete(s.broken, k)
		}
	}
}

// routeFraction maps a route key to [0, 1) with a stable hash (FNV-1a, then
// a SplitMix64 finalizer for uniform high bits), so every replica sends the
// same key to the same version. A request without a key gets a fresh draw.
func routeFraction(key string, spread *atomic.Uint64) float64 {
	var x uint64
	if key == "" {
		x = spread.Add(0x9e3779b97f4a7c15)
	} else {
		// FNV-1a, inline: no allocation on the request path.
		x = 14695981039346656037
		for i := 0; i < len(key); i++ {
			x ^= uint64(key[i])
			x *= 1099511628211
		}
	}
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}

// AliasStatus is the state of one followed alias of a model.
type AliasStatus struct {
	Alias string
	// Role is "primary", "canary", "shadow", or "alias" for another alias
	// requests follow (ResolveAlias).
	Role string
	// Serving is the version answering for the alias ("" when none loaded).
	Serving string
	// Target is the version the alias pointed at when last read.
	Target string
	// Error is why Target failed to load ("" when it did not fail).
	Error string
}

// Status reports the aliases a model in use follows; ok is false for a
// model no request has used yet.
func (s *Service) Status(name string) (st []AliasStatus, ok bool) {
	s.mu.RLock()
	m := s.models[name]
	s.mu.RUnlock()
	if m == nil {
		return nil, false
	}
	for _, sl := range m.slots() {
		role := "alias"
		switch sl {
		case m.primary:
			role = "primary"
		case m.canary:
			role = "canary"
		case m.shadow:
			role = "shadow"
		}
		a := AliasStatus{Alias: sl.alias, Role: role}
		if d := sl.cur.Load(); d != nil {
			a.Serving = d.Version
		}
		sl.mu.Lock()
		a.Target = sl.want
		if f := sl.failed; f != nil && f.version == sl.want {
			a.Error = f.err.Error()
		}
		sl.mu.Unlock()
		st = append(st, a)
	}
	return st, true
}

// Ready reports whether a model can serve through its alias: nil when the
// version its alias points at is loaded. When that version failed to load,
// the error says so, and which version still serves; it wraps the load's
// error, so that a version that cannot be served (ErrModelFormat,
// ErrUnsupportedFlavor) is answered as the same version asked for by
// number is (no retry helps until the alias moves), and is ErrNotReady
// when the failure may pass (a store that did not answer).
func (s *Service) Ready(ctx context.Context, name string) error {
	d, err := s.Resolve(ctx, name, "", "")
	if err != nil {
		return err
	}
	m := s.lookup(name)
	if m == nil {
		return nil // not reached: Resolve made the model's entry
	}
	f := m.primary.failure()
	if f == nil {
		return nil
	}
	serving := d.Version
	if cur := m.primary.cur.Load(); cur != nil {
		serving = cur.Version
	}
	err = fmt.Errorf("model %q alias %q points at version %s, which failed to load (version %s still serves): %w",
		name, m.primary.alias, f.version, serving, f.err)
	if !permanent(f.err) {
		err = fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	return err
}

// Models lists the names of the models in use, sorted.
func (s *Service) Models() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.models))
	for n := range s.models {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ShadowResult is one shadow scoring: the rows of a request scored by the
// version the model's shadow alias points at, next to the primary's scores.
type ShadowResult struct {
	RequestID string
	// Primary scored the request; PrimaryPred is what it answered.
	Primary     *Deployed
	PrimaryPred []float64
	// Shadow is the shadow version; ShadowPred its scores of the same
	// rows (nil when Err is set).
	Shadow     *Deployed
	ShadowPred []float64
	Err        error
}

type shadowJob struct {
	res  ShadowResult
	rows *ml.Dataset
	// rec is the prediction log's record of the shadowed request (its id,
	// time and entity keys); the worker adds the shadow's rows and scores.
	rec predlog.Record
}

// ShadowOf returns the version that scores, in shadow, the requests primary
// (resolved through its model's alias) answers: nil when the model has no
// shadow, its version is not loaded yet (it loads in the background once the
// model is in use) or is primary itself.
func (s *Service) ShadowOf(primary *Deployed) *Deployed {
	m := s.lookup(primary.Name)
	if m == nil || m.shadow == nil || s.closed.Load() {
		return nil
	}
	sh := m.shadow.cur.Load()
	if sh == nil || sh.Version == primary.Version {
		return nil
	}
	return sh
}

// Shadow scores rows with shadow (ShadowOf's answer) off the response path:
// it returns at once, and the result goes to Options.OnShadow next to
// primary's predictions. rows are the request's rows built for shadow's
// inputs (which may differ from primary's); neither they nor preds may be
// changed after the call. When the queue is full the scoring is dropped and
// counted.
func (s *Service) Shadow(primary *Deployed, preds []float64, shadow *Deployed, rows *ml.Dataset, requestID string) {
	s.shadowLogged(primary, preds, shadow, rows, predlog.Record{RequestID: requestID})
}

// shadowLogged is Shadow with the prediction log's record of the request:
// the shadow's rows are logged with its request id, time and entity keys.
func (s *Service) shadowLogged(primary *Deployed, preds []float64, shadow *Deployed, rows *ml.Dataset, rec predlog.Record) {
	if shadow == nil || s.closed.Load() {
		return
	}
	job := shadowJob{res: ShadowResult{RequestID: rec.RequestID, Primary: primary, PrimaryPred: preds, Shadow: shadow}, rows: rows, rec: rec}
	select {
	case s.shadows <- job:
	default:
		s.m.shadow.WithLabelValues(primary.Name, "dropped").Inc()
	}
}

// shadowWorker scores queued shadow jobs until Close; jobs still queued
// then are dropped.
func (s *Service) shadowWorker() {
	defer s.wg.Done()
	for {
		select {
		case <-s.base.Done():
			return
		case j := <-s.shadows:
			s.runShadow(j)
		}
	}
}

func (s *Service) runShadow(j shadowJob) {
	r := j.res
	ctx, cancel := context.WithTimeout(s.base, s.opts.LoadTimeout)
	var err error
	start := time.Now()
	r.ShadowPred, err = r.Shadow.Predict(ctx, j.rows)
	cancel()
	if err == nil {
		rec := j.rec
		rec.Route, rec.Latency = predlog.RouteShadow, predlog.Latency{Total: time.Since(start), Model: time.Since(start)}
		s.logPredictions(r.Shadow, j.rows, r.ShadowPred, rec)
	}
	r.Err = err
	result := "scored"
	if err != nil {
		result = "failed"
		s.log.Warn("serving: shadow scoring failed", "model", r.Primary.Name, "shadow_version", r.Shadow.Version, "request_id", r.RequestID, "err", err)
	} else {
		s.log.Debug("serving: shadow scored", "model", r.Primary.Name, "primary_version", r.Primary.Version,
			"shadow_version", r.Shadow.Version, "request_id", r.RequestID, "rows", j.rows.NumRows())
	}
	s.m.shadow.WithLabelValues(r.Primary.Name, result).Inc()
	if s.opts.OnShadow != nil {
		s.opts.OnShadow(r)
	}
}
