// Package server is the one HTTP server of `atrium serve`: it composes every API
// (online features, tracking, registry, inference, ...) on one net/http ServeMux
// and adds what all of them share: /healthz, /readyz, /metrics, request metrics,
// access logs, panic recovery and graceful shutdown.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// API is one group of routes. Routes lists them, each with the permission it
// needs (see Route); the server mounts them behind Options.Guard.
type API interface {
	Routes() []Route
}

// An API that is also a prometheus.Collector has its metrics registered on the
// server's registry by New, and served on /metrics.

// Readier is an optional interface of an API: Ready reports whether it can serve
// (its stores answer). /readyz fails while any API is not ready.
type Readier interface {
	Ready(ctx context.Context) error
}

// Options configure a Server.
type Options struct {
	// Addr to listen on. Default "127.0.0.1:8080".
	Addr string
	// Logger for access and error logs. Default: discard.
	Logger *slog.Logger
	// Registry receives the server's metrics and is served on /metrics.
	// Default: a new registry with Go and process collectors.
	Registry *prometheus.Registry
	// ShutdownTimeout bounds how long Run waits for in-flight requests. Default 10s.
	ShutdownTimeout time.Duration
	// Limits bound what clients can make the server hold (body sizes, bodies
	// and requests in flight, timeouts). Zero fields take DefaultLimits.
	Limits Limits
	// StoreTimeout bounds each Readier's check on /readyz, so a backend that
	// does not answer is reported down in that time. Default 500ms.
	StoreTimeout time.Duration
	// AccessLog logs every request at debug level when true (off by default: the hot
	// paths serve thousands of requests a second).
	AccessLog bool
	// Guard wraps every route, the server's own included, with its access
	// check. Default nil: routes are served unchecked (tests, the in-process
	// demo); `atrium serve` always sets one.
	Guard Guard
	// TLSCertFile and TLSKeyFile, when both set, make Serve speak HTTPS with
	// that certificate and key (PEM files).
	TLSCertFile, TLSKeyFile string
}

func (o *Options) ensureDefaults() {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:8080"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = NewRegistry()
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	if o.StoreTimeout == 0 {
		o.StoreTimeout = 500 * time.Millisecond
	}
	o.Limits.ensureDefaults()
}

// NewRegistry returns the default Options.Registry: a new registry with the
// Go and process collectors. A caller that registers metrics of its own
// beside the server's (a gRPC listener's) makes it and passes it in.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Server serves a set of APIs.
type Server struct {
	opts     Options
	apis     []API
	routes   []Route
	mux      *http.ServeMux
	handler  http.Handler
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	ids      *requestIDs
	limits   *limiter
}

// New builds a server for apis. It registers the request metrics on opts.Registry.
// It panics when a route declares no valid permission (see Route).
func New(opts Options, apis ...API) *Server {
	opts.ensureDefaults()
	s := &Server{opts: opts, apis: apis, mux: http.NewServeMux(), ids: newRequestIDs()}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "atrium_http_requests_total",
		Help: "HTTP requests by route pattern and status code.",
	}, []string{"route", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "atrium_http_request_duration_seconds",
		Help:    "HTTP request latency by route pattern.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"route"})
	opts.Registry.MustRegister(s.requests, s.latency)

	s.routes = []Route{
		{Pattern: "GET /healthz", Permission: Public, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		})},
		// /readyz says only ready or not (the cause goes to the log), so
		// probes reach it without a credential.
		{Pattern: "GET /readyz", Permission: Public, Handler: http.HandlerFunc(s.readyz)},
		{Pattern: "GET /metrics", Permission: ReadMetrics, Handler: promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{Registry: opts.Registry})},
	}
	for _, api := range apis {
		s.routes = append(s.routes, api.Routes()...)
		if c, ok := api.(prometheus.Collector); ok {
			opts.Registry.MustRegister(c)
		}
	}
	if err := checkRoutes(s.routes); err != nil {
		panic(err)
	}
	for _, rt := range s.routes {
		h := rt.Handler
		if opts.Guard != nil {
			h = opts.Guard.Wrap(rt)
		}
		s.mux.Handle(rt.Pattern, h)
	}
	// What no route matches is answered in the error shape of the API the
	// path is under (WriteError), not with ServeMux's plain text: OIP
	// clients read {"error"}. Its pattern is unmatchedPattern.
	s.mux.HandleFunc(unmatchedPattern, s.unmatched)
	s.limits = newLimiter(opts.Limits, s.mux)
	s.handler = s.instrument(s.mux)
	return s
}

// unmatchedPattern is the catch-all route: the path matches no route for
// any method, or not for the request's.
const unmatchedPattern = "/"

// probeMethods are the methods unmatched tries when it tells a path no route
// has (404) from a method the path's routes do not take (405).
var probeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// unmatched answers a request no route matches: 405 with Allow when the path
// has routes for other methods, 404 otherwise.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request) {
	var allow []string
	probe := r.Clone(r.Context())
	for _, m := range probeMethods {
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != unmatchedPattern && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		WriteError(w, r, http.StatusMethodNotAllowed, "BAD_REQUEST",
			fmt.Sprintf("method %s is not allowed on %s; use %s", r.Method, Quote(r.URL.Path), strings.Join(allow, " or ")))
		return
	}
	WriteError(w, r, http.StatusNotFound, "ENDPOINT_NOT_FOUND", "no route for "+r.Method+" "+Quote(r.URL.Path))
}

// Handler returns the composed handler (for httptest servers).
func (s *Server) Handler() http.Handler { return s.handler }

// Routes returns every mounted route, the server's own first. The caller must
// not modify the slice.
func (s *Server) Routes() []Route { return s.routes }

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	for _, api := range s.apis {
		if rd, ok := api.(Readier); ok {
			// A backend that does not answer within StoreTimeout is down.
			ctx, cancel := context.WithTimeout(r.Context(), s.opts.StoreTimeout)
			err := rd.Ready(ctx)
			cancel()
			if err != nil {
				// The cause (a backend's address, its driver's words) is for
				// the log, not for whoever can reach the port.
				s.opts.Logger.Warn("not ready", "request_id", RequestID(r.Context()), "err", err)
				WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready",
					"error": "a backend is not ready (request id " + RequestID(r.Context()) + "); the server log has the cause"})
				return
			}
		}
	}
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// StatusWriter records the status code a handler writes (Code is 0 until it
// writes one; a body without a header means 200). The server's metrics and
// the audit log read it.
type StatusWriter struct {
	http.ResponseWriter
	Code int
}

func (w *StatusWriter) WriteHeader(code int) {
	if w.Code == 0 {
		w.Code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *StatusWriter) Write(b []byte) (int, error) {
	if w.Code == 0 {
		w.Code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (Flush, deadlines).
func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		r = s.ids.withRequestID(w, r, s.opts.Logger)
		s.limits.startWrite(w)
		sw := &StatusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.opts.Logger.Error("handler panic", "method", r.Method, "path", r.URL.Path, "request_id", RequestID(r.Context()), "panic", fmt.Sprint(p),
					"stack", string(debug.Stack()))
				if sw.Code == 0 {
					WriteJSON(sw, http.StatusInternalServerError, map[string]string{"error": InternalErrorMessage(r.Context())})
				}
			}
			// The mux stores the matched pattern on the request; unmatched requests
			// share one label so scanners cannot blow up the metric's cardinality.
			route := r.Pattern
			if route == "" || route == unmatchedPattern {
				route = "unmatched"
			}
			code := sw.Code
			if code == 0 {
				code = http.StatusOK
			}
			s.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
			s.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
			if s.opts.AccessLog {
				s.opts.Logger.Debug("request", "method", r.Method, "path", r.URL.Path, "code", code, "duration", time.Since(start))
			}
		}()
		if !canonicalPath(r.URL.Path) {
			// ServeMux would answer 307 to the cleaned path; a path with "."/".."
			// segments or empty segments is never legitimate here, and callers such
			// as MLflow's artifact client must see a plain client error, not a redirect.
			WriteError(sw, r, http.StatusBadRequest, "INVALID_PARAMETER_VALUE",
				"invalid request path "+Quote(r.URL.Path)+": '.', '..' and empty path segments are not allowed")
			return
		}
		lr, lw, release, ok := s.limits.admit(sw, r)
		if !ok {
			return
		}
		defer release()
		r = lr // the deferred metrics read the pattern the mux sets on this request
		next.ServeHTTP(lw, r)
	})
}

// canonicalPath reports whether p (already percent-decoded) is its own cleaned form,
// allowing one trailing slash.
func canonicalPath(p string) bool {
	if p == "" || p == "/" {
		return true
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") {
		c += "/"
	}
	return c == p
}

// Run listens on opts.Addr and serves until ctx is cancelled, then shuts down
// gracefully (in-flight requests get ShutdownTimeout to finish). ready, if not nil,
// receives the bound address once the listener is open (useful with port 0).
func (s *Server) Run(ctx context.Context, ready func(addr net.Addr)) error {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.opts.Addr, err)
	}
	if ready != nil {
		ready(ln.Addr())
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln, which the caller opened (opts.Addr is not used), until ctx
// is cancelled, then shuts down gracefully like Run. Serve closes ln. A caller
// that opens the listener itself knows the address before any request is made,
// which is how an in-process server (the demo, tests) is reached without
// reading the address back from a log line.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := s.opts.Limits.Validate(); err != nil {
		ln.Close()
		return err
	}
	if bad := s.limits.unroutedClasses(); len(bad) > 0 {
		ln.Close()
		return fmt.Errorf("server limits: route classes for patterns no API registers: %s", strings.Join(bad, ", "))
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.opts.Limits.ReadHeaderTimeout,
		// No ReadTimeout: bodies get their deadline per request (Limits.BodyTimeout,
		// moved ahead as they make progress), so a large upload at a fair rate
		// is not cut while a trickle is.
		IdleTimeout:    s.opts.Limits.IdleTimeout,
		MaxHeaderBytes: maxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() {
		if s.opts.TLSCertFile != "" || s.opts.TLSKeyFile != "" {
			errc <- srv.ServeTLS(ln, s.opts.TLSCertFile, s.opts.TLSKeyFile)
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// maxHeaderBytes bounds a request's headers (net/http's default is 1 MiB):
// no client of these APIs sends more than a few KiB.
const maxHeaderBytes = 64 << 10

// WriteError answers an error the platform raises itself, before a layer's
// handler runs (a path, a limit, authentication), in the error shape of the
// API the request is for: MLflow's {"error_code", "message"} under /api/ and
// /ajax-api/, where the MLflow client reads it, and everywhere else the
// {"error": "..."} of the handlers of serving (OIP's error shape, and /v1),
// the feature server, the scheduler and monitoring, with the code beside it
// in "error_code" for programs (UNAUTHENTICATED, PERMISSION_DENIED, ...).
func WriteError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if p := r.URL.Path; strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/ajax-api/") {
		WriteJSON(w, status, map[string]string{"error_code": code, "message": msg})
		return
	}
	WriteJSON(w, status, map[string]string{"error": msg, "error_code": code})
}

// WriteJSON writes v as a JSON response with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
