package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/monitoring/model"
	"github.com/atrium-ml/atrium/internal/platform/artifact/proxy"
	"github.com/atrium-ml/atrium/internal/platform/auth"
	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/serving"
	"github.com/atrium-ml/atrium/internal/spec"
	"github.com/atrium-ml/atrium/internal/tracking"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// serveAPIs builds the APIs `atrium serve` composes, one per layer (each in
// its serve_*.go file). A builder opens what its API needs through env
// (closed when serve returns) and must not start goroutines that outlive it.
var serveAPIs = []func(e *env) (server.API, error){
	featureAPI,    // online features: Feast's wire format
	mlflowAPI,     // MLflow tracking and model registry
	artifactAPI,   // MLflow's artifact proxy
	grantsAPI,     // MLflow 3's permission endpoints (AuthServiceClient)
	modelsAPI,     // registered models: Open Inference Protocol
	monitoringAPI, // labels, model reports, alerts (and their evaluation)
}

// grantsAPI serves MLflow 3's users/permissions endpoints over the
// metadata database's grants.
func grantsAPI(e *env) (server.API, error) {
	p, err := e.Project()
	if err != nil {
		return nil, err
	}
	store, err := authStore(e)
	if err != nil {
		return nil, err
	}
	def, err := defaultPermission(p)
	if err != nil {
		return nil, err
	}
	return auth.NewGrantsAPI(store, wire.Decode, def, e.log), nil
}

// defaultPermission is server.auth.default_permission (0 when unset).
func defaultPermission(p *spec.Project) (auth.Level, error) {
	d := p.Server.Auth.DefaultPermission
	if d == "" {
		return 0, nil
	}
	l, err := auth.ParseLevel(d) // validated when the project loaded
	if err != nil {
		return 0, fmt.Errorf("server.auth.default_permission: %w", err)
	}
	return l, nil
}

func newServeCmd(e *env) *cobra.Command {
	var addr, certFile, keyFile string
	var insecure bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve every API (online features, MLflow tracking and registry, inference) on one address",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := e.Project()
			if err != nil {
				return err
			}
			if addr != "" {
				p.Server.Addr = addr
				// The project checked serving.grpc_addr against server.addr
				// when it loaded; --addr replaces the latter.
				if g := p.Serving.GRPCAddr; g != "" && spec.ListenersCollide(addr, g) {
					return spec.Problems{p.Problem("serving.grpc_addr", "%q collides with the HTTP address %q (--addr): the gRPC and HTTP listeners need different ports", g, addr)}
				}
			}
			if certFile != "" || keyFile != "" {
				if certFile == "" || keyFile == "" {
					return usagef("--tls-cert and --tls-key go together")
				}
				p.Server.TLS = spec.ServerTLS{CertFile: certFile, KeyFile: keyFile}
			}
			guard, err := serveGuard(e, p, insecure)
			if err != nil {
				return err
			}
			// Closed after Run returns (every request has ended) and before
			// the metadata database (env closes it later): the audit log's
			// last entries are written.
			defer guard.Close()
			apis, err := e.ServeAPIs()
			if err != nil {
				return err
			}
			sched, schedAPI, runSched, err := serveScheduler(e, p)
			if err != nil {
				return err
			}
			if schedAPI != nil {
				apis = append(apis, schedAPI)
			}
			opts := serverOptions(p, e)
			opts.Guard, opts.TLSCertFile, opts.TLSKeyFile = guard, p.Server.TLS.CertFile, p.Server.TLS.KeyFile
			opts.Registry = server.NewRegistry() // shared with the gRPC listener's metrics
			// The online store's own metrics (the Pebble store's caches),
			// from the store as opened: the APIs hold it behind their own
			// types.
			if c, ok := e.online.(prometheus.Collector); ok {
				opts.Registry.MustRegister(c)
			}
			srv := server.New(opts, apis...)
			scheme := "http"
			if p.Server.TLS.CertFile != "" {
				scheme = "https"
			}
			return serveWithGRPC(e, p, guard, insecure, opts.Registry, func(ctx context.Context) error {
				if runSched {
					// Stopped with the server: attempts in flight are
					// cancelled, recorded interrupted, and retried by the
					// next scheduler.
					done := make(chan struct{})
					go func() {
						defer close(done)
						fmt.Fprintf(e.stderr, "atrium scheduler: %d jobs\n", len(sched.JobNames()))
						if err := sched.Run(ctx); err != nil {
							e.log.Error("scheduler stopped", "err", err)
						}
					}()
					defer func() { <-done }()
				}
				return srv.Run(ctx, func(a net.Addr) {
					fmt.Fprintf(e.stderr, "atrium serving on %s://%s\n", scheme, a)
				})
			})
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "listen address (default: server.addr of atrium.yaml, or 127.0.0.1:8080)")
	cmd.Flags().BoolVar(&insecure, "insecure", false, "serve without authentication, also on a non-loopback address (anyone who reaches the port can read, write and delete)")
	cmd.Flags().StringVar(&certFile, "tls-cert", "", "PEM certificate file: serve HTTPS (default: server.tls.cert_file of atrium.yaml)")
	cmd.Flags().StringVar(&keyFile, "tls-key", "", "PEM private key file of --tls-cert")
	return cmd
}

// serveGuard builds the access check of every route from the settings and
// the credentials the metadata database holds.
func serveGuard(e *env, p *spec.Project, insecure bool) (*auth.Guard, error) {
	db, err := e.Meta()
	if err != nil {
		return nil, err
	}
	store := auth.NewStore(db)
	has, err := store.HasCredentials(e.ctx)
	if err != nil {
		return nil, err
	}
	// An identity provider is a source of credentials too.
	opts, err := guardOptions(p.Server, has || p.Server.Auth.OIDC != nil, insecure)
	if err != nil {
		return nil, err
	}
	opts.Store, opts.Logger = store, e.log
	if o := p.Server.Auth.OIDC; o != nil {
		if opts.OIDC, err = auth.NewOIDC(e.ctx, auth.OIDCOptions{Issuer: o.Issuer, Audience: o.Audience, RoleClaim: o.RoleClaim, JWKSURL: o.JWKSURL}); err != nil {
			return nil, fmt.Errorf("server.auth.oidc: %w", err)
		}
	}
	if opts.AuditRetention, err = p.Server.AuditRetentionDuration(); err != nil {
		return nil, fmt.Errorf("server.audit_retention: %w", err) // validated when the project loaded
	}
	if opts.DefaultPermission, err = defaultPermission(p); err != nil {
		return nil, err
	}
	if opts.Resources, err = mlflowResources(e); err != nil {
		return nil, err
	}
	switch {
	case insecure:
		e.log.Warn("serving without authentication (--insecure): anyone who reaches " + p.Server.Addr + " can read, write and delete")
	case opts.Required:
		fmt.Fprintln(e.stderr, "atrium: authentication required (docs/security.md)")
	default:
		fmt.Fprintln(e.stderr, "atrium: no credential configured, serving loopback callers without authentication; restart after `atrium token create` to require it")
	}
	return auth.NewGuard(opts), nil
}

// loopbackHosts are the Host names a loopback server answers to by default.
var loopbackHosts = []string{"localhost", "127.0.0.1", "::1"}

// guardOptions decides the safe defaults (docs/security.md, "Safe defaults"):
// authentication is on whenever the server listens beyond loopback or any
// credential exists (or server.auth.required says so), and starting where it
// would be on with no credential to pass it is refused, unless insecure. On
// loopback, the Host header must name a loopback host (DNS rebinding).
func guardOptions(s spec.Server, hasCredentials, insecure bool) (auth.GuardOptions, error) {
	loopback := isLoopback(s.Addr)
	opts := auth.GuardOptions{
		Required:       !insecure && (!loopback || hasCredentials || s.Auth.Required),
		AllowedOrigins: s.Auth.AllowedOrigins,
	}
	if opts.Required && !hasCredentials {
		where := "on " + s.Addr + ", which is not a loopback address"
		if loopback {
			where = "with server.auth.required"
		}
		return opts, fmt.Errorf("refusing to serve %s without any credential: anyone could call it. "+
			"Create one first with `atrium token create --name admin --role admin` (or `atrium user add NAME --role admin --password-stdin`), "+
			"or pass --insecure to serve without authentication", where)
	}
	switch {
	case loopback:
		opts.AllowedHosts = append(slices.Clone(loopbackHosts), s.Auth.AllowedHosts...)
	case len(s.Auth.AllowedHosts) > 0:
		opts.AllowedHosts = s.Auth.AllowedHosts
	}
	return opts, nil
}

// isLoopback reports whether a listen address only accepts connections from
// this machine. An empty host (all interfaces) and names other than
// localhost are not loopback.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serverOptions are the server's settings from atrium.yaml's server block.
func serverOptions(p *spec.Project, e *env) server.Options {
	s := p.Server
	return server.Options{
		Addr:         s.Addr,
		Logger:       e.log,
		StoreTimeout: s.StoreTimeout,
		Limits: server.Limits{
			MaxBodyBytes:       int64(s.MaxBodyMiB) << 20,
			InFlightBodyBytes:  int64(s.InFlightBodyMiB) << 20,
			Concurrency:        server.Concurrency(s.MaxConcurrent.Read, s.MaxConcurrent.Write, s.MaxConcurrent.Heavy, s.MaxConcurrent.Stream),
			RequestTimeout:     s.RequestTimeout,
			LongRequestTimeout: s.LongRequestTimeout,
			BodyTimeout:        s.BodyTimeout,
			ReadHeaderTimeout:  s.ReadHeaderTimeout,
			IdleTimeout:        s.IdleTimeout,
			Classes:            routeClasses(),
		},
	}
}

// routeClasses names the routes whose class is not the default (GET and HEAD
// read, the rest write): POSTs that only read, the heavy materialization, and
// the artifact transfers streamed to and from the store (exempt from the body
// size limit, which their API enforces itself, and with the long deadline).
// The server refuses to start if a pattern here is not registered.
func routeClasses() map[string]server.Class {
	c := map[string]server.Class{
		"POST /get-online-features":     server.ClassRead,
		"POST /materialize-incremental": server.ClassHeavy,
		// Scoring reads: it shares the read class's (larger) bound.
		"POST /v2/models/{name}/infer":                    server.ClassRead,
		"POST /v2/models/{name}/versions/{version}/infer": server.ClassRead,
		// A model report reads a window of the prediction log.
		model.RouteModel: server.ClassHeavy,
	}
	for _, p := range serving.RoutePatterns {
		c[p] = server.ClassRead // predict and rank read features and score
	}
	for _, p := range wire.Prefixes {
		for _, path := range []string{"/experiments/search", "/runs/search", "/experiments/search-datasets", "/logged-models/search"} {
			c["POST "+p+path] = server.ClassRead
		}
	}
	for _, p := range proxy.Prefixes {
		c["PUT "+p+"/artifacts/{path...}"] = server.ClassStream
		c["GET "+p+"/artifacts/{path...}"] = server.ClassStream
		c["PUT "+p+"/mpu/parts/{upload_id}/{part_number}"] = server.ClassStream
	}
	return c
}

// mlflowResources finds the experiment or registered model of each MLflow
// request, for per-resource grants: the run, logged model or experiment
// name a request gives is looked up in the tracking store.
func mlflowResources(e *env) (auth.Resources, error) {
	db, err := e.Meta()
	if err != nil {
		return nil, err
	}
	ts, err := tracking.New(e.ctx, db, tracking.Options{Logger: e.log, RunCacheBytes: -1})
	if err != nil {
		return nil, err
	}
	return auth.MLflowResources(trackingLookup{ts}, wire.Decode), nil
}

// trackingLookup finds the experiments of runs, logged models and
// experiment names for the guard (auth.MLflowLookup).
type trackingLookup struct{ s *tracking.Store }

// notFound maps the tracking store's RESOURCE_DOES_NOT_EXIST to "no such
// object" (an empty id), and keeps other errors.
func notFound(id string, err error) (string, error) {
	if errors.Is(err, wire.ErrNotFound) {
		return "", nil
	}
	return id, err
}

func (l trackingLookup) RunExperiment(ctx context.Context, runID string) (string, error) {
	ri, err := l.s.RunInfoOf(ctx, runID)
	if err != nil {
		return notFound("", err)
	}
	return ri.ExperimentID, nil
}

func (l trackingLookup) LoggedModelExperiment(ctx context.Context, id string) (string, error) {
	m, err := l.s.GetLoggedModel(ctx, id, true)
	if err != nil {
		return notFound("", err)
	}
	return m.Info.ExperimentID, nil
}

func (l trackingLookup) ExperimentByName(ctx context.Context, name string) (string, error) {
	e, err := l.s.GetExperimentByName(ctx, name)
	if err != nil {
		return notFound("", err)
	}
	return e.ExperimentID, nil
}
