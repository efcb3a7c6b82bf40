// Package spec reads Atrium's project files (atrium.yaml, features/*.yaml, ...) into
// typed, validated specs. Decoding is strict (unknown fields are errors) and every
// problem is reported with its file and line, all at once.
package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"

	"github.com/atrium-ml/atrium/internal/platform/storeurl"
)

// ProjectFile is the name of the project file at the root of a repository.
const ProjectFile = "atrium.yaml"

// Project is atrium.yaml: the project name, where data lives and which engines hold it.
type Project struct {
	// Name of the project. Default: the repository directory's name.
	Name string `yaml:"project"`
	// DataDir holds every embedded store, relative to the repository. Default ".atrium".
	DataDir string `yaml:"data_dir"`
	Stores  Stores `yaml:"stores"`
	Server  Server `yaml:"server"`
	// Serving configures model serving (docs/serving.md).
	Serving Serving `yaml:"serving"`
	// Monitoring configures how `atrium serve` evaluates monitors/*.yaml
	// (docs/monitoring.md).
	Monitoring Monitoring `yaml:"monitoring"`
	// Scheduler configures the job scheduler (docs/scheduling.md).
	Scheduler SchedulerConfig `yaml:"scheduler"`

	// Dir is the absolute repository directory (not read from YAML).
	Dir string `yaml:"-"`

	// file is atrium.yaml's path and lines the line of each field present
	// in it, by path ("serving.models[0].canary"); nil without a file.
	file  string
	lines map[string]int
}

// Line returns the line of a field of atrium.yaml ("serving.grpc_addr",
// "serving.models[1].canary.weight"), or of the nearest enclosing field
// present: a required field left out is reported where it belongs. 0 when
// none is (or the project has no file).
func (p *Project) Line(path string) int {
	for path != "" {
		if l, ok := p.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
	return 0
}

// present reports whether a field is written in atrium.yaml; true when
// there is no file to tell (Validate without one).
func (p *Project) present(path string) bool {
	if p.lines == nil {
		return true
	}
	_, ok := p.lines[path]
	return ok
}

// Problem returns a problem of atrium.yaml at the line of the field at
// path, the message starting with the path: checks made where more than
// the file is at hand (the applied feature definitions, at serve) report
// as LoadProject does.
func (p *Project) Problem(path, format string, args ...any) Problem {
	file := p.file
	if file == "" {
		file = filepath.Join(p.Dir, ProjectFile)
	}
	return Problem{File: file, Line: p.Line(path), Msg: path + ": " + fmt.Sprintf(format, args...)}
}

// Stores names the engine of each store by URL. Relative paths in embedded-store URLs
// (sqlite://, duckdb://, pebble://, file://) are resolved against the repository
// directory. Paths in these URLs are URL paths: '%', '#', '?' and spaces in them are
// written escaped (%25, %23, %3F, %20), and the stores open the decoded path.
type Stores struct {
	// Offline is the historical store and compute engine. Default duckdb://<data_dir>/offline.
	// Env override: ATRIUM_OFFLINE.
	Offline string `yaml:"offline"`
	// Online is the latest-value store. Default pebble://<data_dir>/online. Env: ATRIUM_ONLINE.
	Online string `yaml:"online"`
	// Meta is the metadata database. Default sqlite://<data_dir>/atrium.db. Env: ATRIUM_META.
	Meta string `yaml:"meta"`
	// Artifacts is the artifact store. Default file://<data_dir>/artifacts. Env: ATRIUM_ARTIFACTS.
	Artifacts string `yaml:"artifacts"`
	// Compute runs feature pipelines in place of the offline engine's own
	// compute: sc://host:15002 is a Spark Connect server (see
	// docs/scale-out.md), which must see the offline store's directory and
	// the sources' files at the same paths. Default "": the offline engine
	// computes. Env: ATRIUM_COMPUTE.
	Compute string `yaml:"compute"`
}

// Server configures `atrium serve`.
type Server struct {
	// Addr is the listen address. Default 127.0.0.1:8080. Env: ATRIUM_ADDR.
	Addr string `yaml:"addr"`
	// RunCacheMiB is the memory, in MiB, of the tracking server's cache of
	// runs as search_runs answers them. Default 64; 0 turns the cache off.
	RunCacheMiB *int `yaml:"run_cache_mib"`
	// PushMaxSkew is how far past the server's clock a pushed row's event time
	// may be ("5m", "1h", "0" for none at all): a row stamped later is refused,
	// so no client can pin a key with a far-future time. Default 5m.
	PushMaxSkew string `yaml:"push_max_skew"`
	// AuditRetention is how long the audit log keeps an entry ("90d",
	// "52w", "never" for ever): `atrium serve` deletes older entries when it
	// starts and every hour. Default 90d.
	AuditRetention string `yaml:"audit_retention"`
	// Auth configures who may call the server (docs/security.md).
	Auth ServerAuth `yaml:"auth"`
	// TLS makes the server speak HTTPS when both files are set.
	TLS ServerTLS `yaml:"tls"`
	// PublicURL is the absolute URL clients reach the server at
	// ("https://atrium.example.com", or "https://example.com/atrium" behind a
	// proxy that mounts it under a path). URLs the server hands out (MLflow
	// multipart part URLs) are built from it rather than from the request's
	// Host header. Default: none, the Host header is used.
	PublicURL string `yaml:"public_url"`

	// Resilience against hostile clients and failing backends. Durations are
	// Go durations ("500ms", "30s", "2m"); a zero or missing value is the
	// default.

	// StoreTimeout bounds each online store read of a request and each
	// backend's check on /readyz: a store that does not answer in time makes
	// the request fail with 503 ("online store did not answer within
	// 500ms"). Default 500ms.
	StoreTimeout time.Duration `yaml:"store_timeout"`
	// RequestTimeout is the deadline of every read and write request; it
	// reaches the online store, the metadata DB and the artifact store.
	// Default 30s.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// LongRequestTimeout is the deadline of heavy jobs (materialization) and
	// streamed artifact uploads and downloads. Default 1h.
	LongRequestTimeout time.Duration `yaml:"long_request_timeout"`
	// BodyTimeout: a request body must deliver 64 KiB (or end) within each
	// body_timeout, else the connection is closed. Answers too: one must be
	// written within body_timeout past its request's deadline, and a streamed
	// one (artifact download) taken 64 KiB per body_timeout. Default 30s.
	BodyTimeout time.Duration `yaml:"body_timeout"`
	// ReadHeaderTimeout bounds reading a request's headers. Default 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes keep-alive connections idle that long. Default 2m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxBodyMiB bounds a request body (streamed artifact uploads excepted:
	// their own limit applies). Default 64.
	MaxBodyMiB int `yaml:"max_body_mib"`
	// InFlightBodyMiB is the budget of request bodies in flight across the
	// server; past it requests are answered 503 with Retry-After. Default 256.
	InFlightBodyMiB int `yaml:"inflight_body_mib"`
	// MaxConcurrent bounds concurrent requests per route class; past it
	// requests are answered 503 with Retry-After.
	MaxConcurrent Concurrency `yaml:"max_concurrent"`
}

// SchedulerConfig configures the scheduler that runs the feature sets'
// schedules (docs/scheduling.md).
type SchedulerConfig struct {
	// Enabled runs the scheduler inside `atrium serve`. Default: on when any
	// feature set has a schedule.
	Enabled *bool `yaml:"enabled"`
	// MaxConcurrent bounds the jobs one process runs at once. Default 4.
	MaxConcurrent int `yaml:"max_concurrent"`
	// AlertWebhook receives a JSON POST when a job's interval fails for
	// good or an error-level check fails. Default: none (logged only).
	AlertWebhook string `yaml:"alert_webhook"`
	// Notifier names a notifier of monitors/*.yaml (a Slack webhook, say)
	// that receives those alerts instead. Default: none.
	Notifier string `yaml:"notifier"`
	// Lease is how long a claimed interval is held without renewal: a
	// killed server's jobs are retried by another after it. Default 30s.
	Lease time.Duration `yaml:"lease"`
}

// Concurrency bounds concurrent requests per route class.
type Concurrency struct {
	// Read: GET routes, online feature reads, searches. Default 1024.
	Read int `yaml:"read"`
	// Write: other requests that change state. Default 256.
	Write int `yaml:"write"`
	// Heavy: materialization inside the server. Default 2.
	Heavy int `yaml:"heavy"`
	// Stream: artifact uploads and downloads. Default 32.
	Stream int `yaml:"stream"`
}

// ServerAuth configures authentication and request-origin checks. Auth is on
// whenever the server listens on a non-loopback address or any token or user
// exists; Required turns it on in every case.
type ServerAuth struct {
	// Required makes every non-public route need a credential, also on
	// loopback before any credential exists. Default false.
	Required bool `yaml:"required"`
	// AllowedHosts are host names (no port) accepted in the Host header besides
	// localhost, 127.0.0.1 and ::1 on loopback; "*" accepts any. Default: on
	// loopback only the loopback names; elsewhere any host.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// AllowedOrigins are browser origins ("https://ui.example.com") allowed to
	// call the server besides its own; "*" allows any. Default none.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// DefaultPermission caps what a non-admin may do on an experiment or
	// registered model it has no grant on (`atrium user grant`): READ,
	// EDIT, MANAGE or NO_PERMISSIONS, as MLflow's basic-auth
	// default_permission. Default: none, the role decides.
	DefaultPermission string `yaml:"default_permission"`
	// OIDC accepts bearer JWTs of an identity provider besides Atrium's own
	// tokens and users. Default: off.
	OIDC *ServerOIDC `yaml:"oidc"`
}

// ServerOIDC names the identity provider whose JWTs authenticate callers.
type ServerOIDC struct {
	// Issuer is the provider's issuer URL ("iss"; its discovery document
	// names the keys). Required.
	Issuer string `yaml:"issuer"`
	// Audience tokens must be for ("aud"). Required.
	Audience string `yaml:"audience"`
	// RoleClaim is the claim naming the caller's role (reader, editor or
	// admin; a string or a list). Default "roles".
	RoleClaim string `yaml:"role_claim"`
	// JWKSURL, when set, is where the signing keys are (no discovery).
	JWKSURL string `yaml:"jwks_url"`
}

// ServerTLS names the PEM certificate and key files (relative paths are
// resolved against the repository directory).
type ServerTLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// envOverrides maps environment variables to the fields they override.
func (p *Project) envOverrides() map[string]*string {
	return map[string]*string{
		"ATRIUM_DATA_DIR":  &p.DataDir,
		"ATRIUM_OFFLINE":   &p.Stores.Offline,
		"ATRIUM_ONLINE":    &p.Stores.Online,
		"ATRIUM_META":      &p.Stores.Meta,
		"ATRIUM_ARTIFACTS": &p.Stores.Artifacts,
		"ATRIUM_COMPUTE":   &p.Stores.Compute,
		"ATRIUM_ADDR":      &p.Server.Addr,
	}
}

// LoadProject reads <dir>/atrium.yaml. A missing file is not an error: the project
// then runs on the embedded defaults under <dir>/.atrium. Environment variables
// (ATRIUM_META, ATRIUM_ONLINE, ...) override the file.
func LoadProject(dir string) (*Project, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", dir, err)
	}
	p := &Project{}
	path := filepath.Join(abs, ProjectFile)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", path, err)
	default:
		parsed, err := parser.ParseBytes(data, 0)
		if err != nil {
			return nil, Problems{yamlProblem(path, err)}
		}
		p.file, p.lines = path, map[string]int{}
		if len(parsed.Docs) > 0 && parsed.Docs[0] != nil {
			var ps Problems
			if p.lines, ps = checkProjectYAML(path, parsed.Docs[0].Body); len(ps) > 0 {
				return nil, ps
			}
		}
		// What the check above let through decodes; the decoder's own
		// error (a value under an alias, say) is the fallback.
		// An empty file decodes as io.EOF: it is an empty project, all defaults.
		if err := yaml.NewDecoder(bytes.NewReader(data), yaml.Strict()).Decode(p); err != nil && !errors.Is(err, io.EOF) {
			return nil, Problems{yamlProblem(path, err)}
		}
	}
	p.Dir = abs
	for env, field := range p.envOverrides() {
		if v := os.Getenv(env); v != "" {
			*field = v
		}
	}
	p.ensureDefaults()
	if err := p.validate(path); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Project) ensureDefaults() {
	if p.Name == "" {
		p.Name = filepath.Base(p.Dir)
	}
	if p.DataDir == "" {
		p.DataDir = ".atrium"
	}
	dataDir := p.DataDir
	if !filepath.IsAbs(dataDir) {
		dataDir = filepath.Join(p.Dir, dataDir)
	}
	p.DataDir = dataDir
	def := func(field *string, v string) {
		if *field == "" {
			*field = v
		}
	}
	def(&p.Stores.Offline, storeurl.Format("duckdb", filepath.Join(dataDir, "offline"), ""))
	def(&p.Stores.Online, storeurl.Format("pebble", filepath.Join(dataDir, "online"), ""))
	def(&p.Stores.Meta, storeurl.Format("sqlite", filepath.Join(dataDir, "atrium.db"), ""))
	def(&p.Stores.Artifacts, storeurl.Format("file", filepath.Join(dataDir, "artifacts"), ""))
	def(&p.Server.Addr, "127.0.0.1:8080")
	for _, f := range []*string{&p.Server.TLS.CertFile, &p.Server.TLS.KeyFile} {
		if *f != "" && !filepath.IsAbs(*f) {
			*f = filepath.Join(p.Dir, *f)
		}
	}
	p.Server.ensureDefaults()
	p.Serving.ensureDefaults()
	if p.Monitoring.EvaluateEvery == 0 {
		p.Monitoring.EvaluateEvery = DefaultEvaluateEvery
	}
	if p.Monitoring.MaxRows == 0 {
		p.Monitoring.MaxRows = DefaultMaxRows
	}
	for _, field := range []*string{&p.Stores.Offline, &p.Stores.Online, &p.Stores.Meta, &p.Stores.Artifacts} {
		*field = storeurl.Resolve(*field, p.Dir)
	}
}

// Defaults of the server block (documented on its fields).
const (
	DefaultStoreTimeout       = 500 * time.Millisecond
	DefaultRequestTimeout     = 30 * time.Second
	DefaultLongRequestTimeout = time.Hour
	DefaultBodyTimeout        = 30 * time.Second
	DefaultReadHeaderTimeout  = 10 * time.Second
	DefaultIdleTimeout        = 2 * time.Minute
	DefaultMaxBodyMiB         = 64
	DefaultInFlightBodyMiB    = 256
)

// DefaultConcurrency is the default of server.max_concurrent.
var DefaultConcurrency = Concurrency{Read: 1024, Write: 256, Heavy: 2, Stream: 32}

// DefaultAuditRetention is the default of server.audit_retention.
const DefaultAuditRetention = "90d"

// AuditRetentionDuration returns server.audit_retention as a duration, 0 for
// "never".
func (s *Server) AuditRetentionDuration() (time.Duration, error) {
	if s.AuditRetention == "never" {
		return 0, nil
	}
	d, err := ParseDuration(s.AuditRetention)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q, expected a positive duration such as 90d or 52w, or never", s.AuditRetention)
	}
	return d.D(), nil
}

func (s *Server) ensureDefaults() {
	if s.AuditRetention == "" {
		s.AuditRetention = DefaultAuditRetention
	}
	for _, d := range []struct {
		v  *time.Duration
		dv time.Duration
	}{{&s.StoreTimeout, DefaultStoreTimeout}, {&s.RequestTimeout, DefaultRequestTimeout},
		{&s.LongRequestTimeout, DefaultLongRequestTimeout}, {&s.BodyTimeout, DefaultBodyTimeout},
		{&s.ReadHeaderTimeout, DefaultReadHeaderTimeout}, {&s.IdleTimeout, DefaultIdleTimeout}} {
		if *d.v == 0 {
			*d.v = d.dv
		}
	}
	for _, n := range []struct {
		v  *int
		dv int
	}{{&s.MaxBodyMiB, DefaultMaxBodyMiB}, {&s.InFlightBodyMiB, DefaultInFlightBodyMiB},
		{&s.MaxConcurrent.Read, DefaultConcurrency.Read}, {&s.MaxConcurrent.Write, DefaultConcurrency.Write},
		{&s.MaxConcurrent.Heavy, DefaultConcurrency.Heavy}, {&s.MaxConcurrent.Stream, DefaultConcurrency.Stream}} {
		if *n.v == 0 {
			*n.v = n.dv
		}
	}
}

// validate adds the server block's problems to ps, at the lines of their
// fields.
func (s *Server) validate(ps *Problems, file string, line func(path string) int) {
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"store_timeout", s.StoreTimeout}, {"request_timeout", s.RequestTimeout}, {"long_request_timeout", s.LongRequestTimeout},
		{"body_timeout", s.BodyTimeout}, {"read_header_timeout", s.ReadHeaderTimeout}, {"idle_timeout", s.IdleTimeout}} {
		if d.v < 0 {
			ps.Add(file, line("server."+d.field), "server.%s: %s, expected a positive duration such as 500ms or 30s", d.field, d.v)
		}
	}
	if s.StoreTimeout > s.RequestTimeout && s.RequestTimeout > 0 {
		ps.Add(file, line("server.store_timeout"), "server.store_timeout: %s is longer than server.request_timeout (%s): a request would end before its store call", s.StoreTimeout, s.RequestTimeout)
	}
	if s.MaxBodyMiB < 0 || s.MaxBodyMiB > 1<<20 {
		ps.Add(file, line("server.max_body_mib"), "server.max_body_mib: %d, expected a size in MiB from 1 to 1048576", s.MaxBodyMiB)
	}
	if s.InFlightBodyMiB < s.MaxBodyMiB || s.InFlightBodyMiB > 1<<20 {
		ps.Add(file, line("server.inflight_body_mib"), "server.inflight_body_mib: %d, expected a size in MiB from server.max_body_mib (%d) to 1048576: a body of the largest size must fit", s.InFlightBodyMiB, s.MaxBodyMiB)
	}
	for _, c := range []struct {
		field string
		v     int
	}{{"read", s.MaxConcurrent.Read}, {"write", s.MaxConcurrent.Write}, {"heavy", s.MaxConcurrent.Heavy}, {"stream", s.MaxConcurrent.Stream}} {
		if c.v < 0 {
			ps.Add(file, line("server.max_concurrent."+c.field), "server.max_concurrent.%s: %d, expected a positive number of requests", c.field, c.v)
		}
	}
}

// Validate reports every problem of the project settings at once.
func (p *Project) Validate(file string) error {
	return p.validate(file)
}

// validate is Validate, at the lines of the fields when LoadProject read
// them from a file.
func (p *Project) validate(file string) error {
	var ps Problems
	line := p.Line
	for _, s := range []struct{ field, val string }{
		{"stores.offline", p.Stores.Offline}, {"stores.online", p.Stores.Online},
		{"stores.meta", p.Stores.Meta}, {"stores.artifacts", p.Stores.Artifacts},
	} {
		if !strings.Contains(s.val, "://") {
			ps.Add(file, 0, "%s: %q is not a URL, expected scheme://... (e.g. sqlite://, postgres://, pebble://, redis://)", s.field, s.val)
		}
	}
	if c := p.Stores.Compute; c != "" && !strings.HasPrefix(c, "sc://") {
		ps.Add(file, line("stores.compute"), "stores.compute: %q, expected a Spark Connect URL sc://host:port, or nothing for the offline engine's own compute", c)
	}
	if e := p.Monitoring.EvaluateEvery; e < time.Second {
		ps.Add(file, line("monitoring.evaluate_every"), "monitoring.evaluate_every: %s, expected a duration of at least 1s such as 1m", e)
	}
	if n := p.Monitoring.MaxRows; n < 1000 {
		ps.Add(file, line("monitoring.max_rows"), "monitoring.max_rows: %d, expected at least 1000 rows (default %d)", n, DefaultMaxRows)
	}
	if !strings.Contains(p.Server.Addr, ":") {
		ps.Add(file, 0, "server.addr: %q, expected host:port", p.Server.Addr)
	}
	if c := p.Server.RunCacheMiB; c != nil && (*c < 0 || *c > 1<<20) {
		ps.Add(file, line("server.run_cache_mib"), "server.run_cache_mib: %d, expected a size in MiB from 0 (no cache) to 1048576", *c)
	}
	if s := p.Server.PushMaxSkew; s != "" {
		if _, err := ParseDuration(s); err != nil {
			ps.Add(file, line("server.push_max_skew"), "server.push_max_skew: %v", err)
		}
	}
	if _, err := p.Server.AuditRetentionDuration(); err != nil {
		ps.Add(file, line("server.audit_retention"), "server.audit_retention: %v", err)
	}
	switch p.Server.Auth.DefaultPermission {
	case "", "READ", "EDIT", "MANAGE", "NO_PERMISSIONS":
	default:
		ps.Add(file, line("server.auth.default_permission"), "server.auth.default_permission: %q, expected READ, EDIT, MANAGE or NO_PERMISSIONS", p.Server.Auth.DefaultPermission)
	}
	if o := p.Server.Auth.OIDC; o != nil {
		for _, f := range []struct{ field, v string }{{"issuer", o.Issuer}, {"jwks_url", o.JWKSURL}} {
			if f.v == "" && f.field == "jwks_url" {
				continue
			}
			if msg := checkPublicURL(f.v); msg != "" {
				ps.Add(file, line("server.auth.oidc."+f.field), "server.auth.oidc.%s: %q: %s, expected an absolute http or https URL", f.field, f.v, msg)
			}
		}
		if o.Audience == "" {
			ps.Add(file, line("server.auth.oidc.audience"), "server.auth.oidc.audience: missing, expected the audience (aud) the provider issues tokens for")
		}
	}
	if u := p.Server.PublicURL; u != "" {
		if msg := checkPublicURL(u); msg != "" {
			ps.Add(file, line("server.public_url"), "server.public_url: %q: %s, expected an absolute http or https URL such as https://atrium.example.com", u, msg)
		}
	}
	if (p.Server.TLS.CertFile == "") != (p.Server.TLS.KeyFile == "") {
		ps.Add(file, line("server.tls"), "server.tls: cert_file and key_file go together, got only one")
	}
	p.Server.validate(&ps, file, line)
	p.Serving.validate(&ps, file, line, p.present)
	if g := p.Serving.GRPCAddr; g != "" && ListenersCollide(p.Server.Addr, g) {
		ps.Add(file, line("serving.grpc_addr"), "serving.grpc_addr: %q collides with the HTTP address %q (server.addr): the gRPC and HTTP listeners need different ports", g, p.Server.Addr)
	}
	if u := p.Scheduler.AlertWebhook; u != "" {
		if msg := checkPublicURL(u); msg != "" && !strings.Contains(msg, "query") {
			ps.Add(file, line("scheduler.alert_webhook"), "scheduler.alert_webhook: %q: %s, expected an absolute http or https URL", u, msg)
		}
	}
	if p.Scheduler.MaxConcurrent < 0 || p.Scheduler.MaxConcurrent > 1000 {
		ps.Add(file, line("scheduler.max_concurrent"), "scheduler.max_concurrent: %d, expected 1 to 1000", p.Scheduler.MaxConcurrent)
	}
	if p.Scheduler.Lease < 0 || (p.Scheduler.Lease > 0 && p.Scheduler.Lease < 3*time.Second) {
		ps.Add(file, line("scheduler.lease"), "scheduler.lease: %s, expected at least 3s", p.Scheduler.Lease)
	}
	return ps.Err()
}

// checkPublicURL returns what is wrong with server.public_url, or "".
func checkPublicURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "not a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return "the scheme is not http or https"
	case u.Host == "" || u.Hostname() == "":
		return "no host"
	case u.User != nil:
		return "it holds a user name"
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "it holds a query or fragment"
	}
	return ""
}
