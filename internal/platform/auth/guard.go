package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/atrium-ml/atrium/internal/platform/server"
)

// GuardOptions configure a Guard.
type GuardOptions struct {
	// Store holds tokens, users and the audit log. Required.
	Store *Store
	// Required makes every non-public route need a credential. When false
	// (loopback without any credential configured, or --insecure), a request
	// without an Authorization header acts as an anonymous admin; one that
	// sends a credential must still send a valid one.
	Required bool
	// AllowedHosts, when not nil, is the Host allow-list: a request whose
	// Host header names another host is refused with 403 (DNS rebinding: a
	// page of rebind.attacker.example resolved to 127.0.0.1 sends its own
	// name). Host names without port; "*" allows any. Nil: no check.
	AllowedHosts []string
	// AllowedOrigins are the browser origins ("https://ui.example.com") that
	// may call the server besides its own; "*" allows any. A request with an
	// Origin header naming another origin is refused with 403 (CSRF).
	AllowedOrigins []string
	// CacheTTL is how long a verified credential is remembered, so that the
	// hot paths do not query the metadata database (nor run bcrypt) on every
	// request. A token revoked by another process stops working within
	// CacheTTL. Default 5s; negative: no cache.
	CacheTTL time.Duration
	// Logger receives authentication backend errors and lost audit entries.
	// Default: discard.
	Logger *slog.Logger
	// AuditRetention is how long audit entries are kept: the guard deletes
	// older ones when it starts and every AuditPruneEvery after. Zero: kept
	// for ever.
	AuditRetention time.Duration
	// AuditPruneEvery is the time between two prunings. Default 1h.
	AuditPruneEvery time.Duration
	// Resources, when set, finds the experiment or registered model each
	// request acts on, so that per-resource grants (Store.SetGrant) and
	// DefaultPermission apply to it. Nil: roles alone decide.
	Resources Resources
	// OIDC, when set, also accepts bearer JWTs its identity provider
	// issued (their role from its role claim). Nil: Atrium's own tokens
	// and users only.
	OIDC *OIDC
	// DefaultPermission caps what a non-admin principal may do on an
	// experiment or registered model it has no grant on (MLflow's
	// default_permission): READ makes them read-only, NO_PERMISSIONS
	// invisible. Zero: the role alone decides. A grant replaces both the
	// role and the default on its resource.
	DefaultPermission Level
}

// Guard is the access check every route of `atrium serve` goes through
// (server.Guard). In order, for every request: the Host allow-list, the
// Origin check, the content-type check of POST bodies, authentication,
// authorization against the route's permission, and, for routes that write
// (every permission but Public and the read ones), an audit entry once the
// response is written. Close flushes the audit log.
type Guard struct {
	opts GuardOptions
	// cache maps the hash of an Authorization header to its principal, and
	// grants a user name to its grants: both bounded (least recently and
	// frequently used entries go first), so no caller fills memory and a
	// full cache never starts afresh (which would re-check every password).
	cache  *otter.Cache[[32]byte, cached]
	grants *otter.Cache[string, cachedGrants]

	audit     chan AuditEntry
	auditDone chan struct{}
	closeOnce sync.Once
	// stopPrune ends the pruning goroutine; pruneDone is closed when it has.
	stopPrune chan struct{}
	pruneDone chan struct{}
}

var _ server.Guard = (*Guard)(nil)

type cached struct {
	p     Principal
	until time.Time
}

// maxCached bounds each cache (an attacker cycling invalid credentials
// never fills it: failures are not cached).
const maxCached = 10_000

// NewGuard returns a guard; it starts the audit writer, stopped by Close.
func NewGuard(opts GuardOptions) *Guard {
	if opts.CacheTTL == 0 {
		opts.CacheTTL = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.AuditPruneEvery <= 0 {
		opts.AuditPruneEvery = time.Hour
	}
	g := &Guard{opts: opts, audit: make(chan AuditEntry, 4096), auditDone: make(chan struct{}),
		stopPrune: make(chan struct{}), pruneDone: make(chan struct{}),
		cache:  otter.Must(&otter.Options[[32]byte, cached]{MaximumSize: maxCached}),
		grants: otter.Must(&otter.Options[string, cachedGrants]{MaximumSize: maxCached}),
	}
	go g.writeAudit()
	if opts.AuditRetention > 0 {
		go g.pruneAudit()
	} else {
		close(g.pruneDone)
	}
	return g
}

// Close writes the audit entries still queued and stops the writer and the
// pruning. Requests must have ended (the server shut down) before Close is
// called.
func (g *Guard) Close() error {
	g.closeOnce.Do(func() {
		close(g.audit)
		close(g.stopPrune)
	})
	<-g.auditDone
	<-g.pruneDone
	return nil
}

// pruneAudit deletes the entries older than AuditRetention now and every
// AuditPruneEvery, until Close. Several servers on one database prune the
// same entries; a delete is idempotent, so that costs only the repeat.
func (g *Guard) pruneAudit() {
	defer close(g.pruneDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-g.stopPrune
		cancel() // a pruning under way stops after its batch
	}()
	tick := time.NewTicker(g.opts.AuditPruneEvery)
	defer tick.Stop()
	for {
		cutoff := time.Now().Add(-g.opts.AuditRetention)
		n, err := g.opts.Store.PruneAudit(ctx, cutoff)
		switch {
		case err != nil && ctx.Err() == nil:
			g.opts.Logger.Error("audit log not pruned", "before", cutoff, "err", err)
		case n > 0:
			g.opts.Logger.Info("audit log pruned", "deleted", n, "before", cutoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// writeAudit records queued entries in batches: one transaction per batch
// keeps the metadata database's write load flat under a burst of pushes.
func (g *Guard) writeAudit() {
	defer close(g.auditDone)
	batch := make([]AuditEntry, 0, 256)
	for e := range g.audit {
		batch = append(batch[:0], e)
	drain:
		for len(batch) < cap(batch) {
			select {
			case e, ok := <-g.audit:
				if !ok {
					break drain
				}
				batch = append(batch, e)
			default:
				break drain
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := g.opts.Store.Record(ctx, batch); err != nil {
			// The entries are not lost: the log has them.
			for _, e := range batch {
				g.opts.Logger.Error("audit entry not recorded", "err", err, "principal", e.Principal, "method", e.Method,
					"path", e.Path, "remote", e.Remote, "status", e.Status, "request_id", e.RequestID)
			}
		}
		cancel()
	}
}

type principalKey struct{}

// PrincipalFrom returns who made the request of ctx (set by Guard).
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// mutating reports whether a route's permission lets it change state: its
// calls are audited. The route's permission decides, not the method: reads
// such as /get-online-features and runs/search are POSTs, and auditing them
// would write a row per feature read.
func mutating(p server.Permission) bool {
	switch p {
	case server.Public, server.Read, server.ReadFeatures, server.ReadMetrics, server.Infer:
		return false
	}
	return true
}

// Wrap implements server.Guard.
func (g *Guard) Wrap(rt server.Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var sw *statusWriter
		if mutating(rt.Permission) {
			// Set up before the checks that need no credential, so that a
			// write refused by them (a cross-site or DNS-rebinding attempt)
			// is audited too, as the caller it was before authentication:
			// anonymous.
			sw = &statusWriter{StatusWriter: server.StatusWriter{ResponseWriter: w}}
			w = sw
			start := time.Now()
			defer func() { g.record(r, rt, sw, start) }()
		}
		if status, code, msg := g.checkRequest(r); status != 0 {
			server.WriteError(w, r, status, code, msg)
			return
		}
		if rt.Permission == server.Public {
			rt.Handler.ServeHTTP(w, r)
			return
		}
		p, err := g.authenticate(r)
		switch {
		case errors.Is(err, ErrUnauthenticated):
			w.Header().Set("WWW-Authenticate", `Basic realm="atrium"`)
			server.WriteError(w, r, http.StatusUnauthorized, "UNAUTHENTICATED",
				"authentication required: send Authorization: Bearer <token> or HTTP basic auth (user name and password, or any user name and a token)")
			return
		case err != nil:
			g.opts.Logger.Error("authentication backend", "request_id", server.RequestID(r.Context()), "err", err)
			server.WriteError(w, r, http.StatusServiceUnavailable, "TEMPORARILY_UNAVAILABLE",
				"credentials cannot be checked now (request id "+server.RequestID(r.Context())+"); the server log has the cause")
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
		if sw != nil {
			sw.principal = p
		}
		denied, err := g.authorize(r, rt, p)
		if err != nil {
			g.opts.Logger.Error("authorization backend", "request_id", server.RequestID(r.Context()), "err", err)
			server.WriteError(w, r, http.StatusServiceUnavailable, "TEMPORARILY_UNAVAILABLE",
				"permissions cannot be checked now (request id "+server.RequestID(r.Context())+"); the server log has the cause")
			return
		}
		if denied != "" {
			server.WriteError(w, r, http.StatusForbidden, "PERMISSION_DENIED", "permission denied: "+denied)
			return
		}
		if rt.Permission == server.Read {
			v, err := g.visibility(r.Context(), p)
			if err != nil {
				g.opts.Logger.Error("authorization backend", "request_id", server.RequestID(r.Context()), "err", err)
				server.WriteError(w, r, http.StatusServiceUnavailable, "TEMPORARILY_UNAVAILABLE",
					"permissions cannot be checked now (request id "+server.RequestID(r.Context())+"); the server log has the cause")
				return
			}
			if v != nil {
				r = r.WithContext(server.WithVisible(r.Context(), v))
			}
		}
		if cr, ok := g.opts.Resources.(Creations); ok && p.Kind == "user" && p.Role != Admin && cr.Creates(rt.Pattern) {
			g.serveCreation(w, r, rt, p, cr)
			return
		}
		rt.Handler.ServeHTTP(w, r)
	})
}

// checkRequest applies the checks that need no credential: Host allow-list,
// Origin, and the content type of POST bodies. It returns 0 when r passes.
func (g *Guard) checkRequest(r *http.Request) (status int, code, msg string) {
	if g.opts.AllowedHosts != nil && !hostAllowed(r.Host, g.opts.AllowedHosts) {
		return http.StatusForbidden, "PERMISSION_DENIED", "invalid Host header: possible DNS rebinding; add the host to server.auth.allowed_hosts of atrium.yaml to allow it"
	}
	if origin := r.Header.Get("Origin"); origin != "" && !g.originAllowed(origin, r.Host) {
		return http.StatusForbidden, "PERMISSION_DENIED", "cross-origin request refused; add the origin to server.auth.allowed_origins of atrium.yaml to allow it"
	}
	// A POST with a text or form body is what a web page can send to any
	// address without a CORS preflight. No route here takes one, so refusing
	// them closes the cross-site path even for a browser that sends no Origin.
	// curl -d labels its bodies application/x-www-form-urlencoded, and the
	// documented curl examples send JSON that way: that type is refused only
	// when the request comes from a browser (Sec-Fetch-Site, sent by every
	// current browser; "none" is a user typing a URL, which cannot POST).
	if r.Method == http.MethodPost {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			mt, _, err := mime.ParseMediaType(ct)
			site := r.Header.Get("Sec-Fetch-Site")
			fromBrowser := site != "" && site != "none"
			if err != nil || mt == "text/plain" || mt == "multipart/form-data" || (mt == "application/x-www-form-urlencoded" && fromBrowser) {
				return http.StatusUnsupportedMediaType, "BAD_REQUEST", "request bodies are JSON: send Content-Type: application/json"
			}
		}
	}
	return 0, "", ""
}

// hostAllowed reports whether the host of a Host header is in allowed.
func hostAllowed(hostport string, allowed []string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	for _, a := range allowed {
		if a == "*" || strings.EqualFold(a, host) {
			return true
		}
	}
	return false
}

// originAllowed: the request's own origin (the Origin's host and port equal
// the Host header, a page of the server itself) or a configured one.
func (g *Guard) originAllowed(origin, host string) bool {
	if slices.Contains(g.opts.AllowedOrigins, "*") || slices.Contains(g.opts.AllowedOrigins, strings.TrimSuffix(origin, "/")) {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false // "null" (sandboxed frames, file://) and garbage
	}
	if strings.EqualFold(u.Host, host) {
		return true
	}
	// Host may omit the default port the Origin spells, or the reverse.
	defaultPort := map[string]string{"http": "80", "https": "443"}[u.Scheme]
	return defaultPort != "" && (strings.EqualFold(u.Host+":"+defaultPort, host) || strings.EqualFold(u.Host, host+":"+defaultPort))
}

// authenticate returns the caller's principal, ErrUnauthenticated, or
// another error when the credential could not be checked.
func (g *Guard) authenticate(r *http.Request) (Principal, error) {
	header := r.Header.Get("Authorization")
	if header == "" {
		if g.opts.Required {
			return Principal{}, ErrUnauthenticated
		}
		return Principal{Kind: "anonymous", Name: "-", Role: Admin}, nil
	}
	key := sha256.Sum256([]byte(header))
	now := time.Now()
	if g.opts.CacheTTL > 0 {
		if c, ok := g.cache.GetIfPresent(key); ok {
			if now.Before(c.until) {
				return c.p, nil
			}
			g.cache.Invalidate(key)
		}
	}
	p, err := g.verify(r.Context(), header)
	if err != nil {
		return Principal{}, err
	}
	if g.opts.CacheTTL > 0 {
		until := now.Add(g.opts.CacheTTL)
		if !p.expires.IsZero() && p.expires.Before(until) {
			until = p.expires
		}
		g.cache.Set(key, cached{p: p, until: until})
	}
	return p, nil
}

// Forget drops every cached credential and grant (after a revocation in
// this process).
func (g *Guard) Forget() {
	g.cache.InvalidateAll()
	g.grants.InvalidateAll()
}

type cachedGrants struct {
	m     map[Resource]Level
	until time.Time
	gen   int64 // grantsChanged when loaded
}

// authorize decides whether p may make request r of route rt. It returns
// "" when p may, else why not (for the 403), or an error when the metadata
// database cannot tell.
//
// The role decides, except on an experiment or registered model (routes
// whose permission is READ, EDIT, deploy or MANAGE, and that act on one)
// when p is not an admin: there a user's grant on the resource decides
// alone (it may give more or less than the role), and without a grant the
// role decides, capped by DefaultPermission. A request on several
// experiments (a search naming them) needs the level on each.
func (g *Guard) authorize(r *http.Request, rt server.Route, p Principal) (string, error) {
	roleDenied := func() string {
		if p.Role.Allows(rt.Permission) {
			return ""
		}
		return p.String() + " (role " + string(p.Role) + ") lacks " + string(rt.Permission)
	}
	need := levelFor(rt.Permission)
	if need == 0 || p.Role == Admin || g.opts.Resources == nil {
		return roleDenied(), nil
	}
	var grants map[Resource]Level
	if p.Kind == "user" {
		var err error
		if grants, err = g.grantsOf(r.Context(), p.Name); err != nil {
			return "", err
		}
	}
	if len(grants) == 0 && g.opts.DefaultPermission == 0 {
		return roleDenied(), nil // the common case: no resource to find
	}
	res, about, err := g.opts.Resources.Resolve(r, rt)
	if err != nil {
		return "", err
	}
	if !about {
		return roleDenied(), nil
	}
	if len(res) == 0 {
		res = []Resource{{}} // unknown: no grant names it
	}
	roleOK := roleDenied() == ""
	for _, rs := range res {
		if g.mayOn(grants, rs, need, roleOK) {
			continue
		}
		if l, ok := grants[rs]; ok {
			return fmt.Sprintf("%s has %s on %s, the request needs %s", p, l, rs, need), nil
		}
		if !roleOK {
			return roleDenied(), nil
		}
		what := "this " + string(rs.Kind)
		if rs.ID == "" {
			what = "a resource it names"
		}
		return fmt.Sprintf("%s has no grant on %s, and the default permission is %s; the request needs %s", p, what, g.opts.DefaultPermission, need), nil
	}
	return "", nil
}

// mayOn is the rule of authorize on one resource, for a non-admin holding
// grants whose role does (roleOK) or does not hold the route's permission:
// a grant on rs decides alone; without one, the role decides, capped by
// DefaultPermission.
func (g *Guard) mayOn(grants map[Resource]Level, rs Resource, need Level, roleOK bool) bool {
	if l, ok := grants[rs]; ok {
		return l >= need
	}
	d := g.opts.DefaultPermission
	return roleOK && (d == 0 || d >= need)
}

// visibility returns which experiments and registered models p may read,
// by authorize's rule (mayOn at READ), for the searches across all of them
// to keep only those (MLflow's basic-auth app filters the same answers);
// nil when p may read every one: admins, guards without Resources, and
// principals with no grant under a default that lets them read.
func (g *Guard) visibility(ctx context.Context, p Principal) (server.Visible, error) {
	if p.Role == Admin || g.opts.Resources == nil {
		return nil, nil
	}
	var grants map[Resource]Level
	if p.Kind == "user" {
		var err error
		if grants, err = g.grantsOf(ctx, p.Name); err != nil {
			return nil, err
		}
	}
	roleOK := p.Role.Allows(server.Read)
	if d := g.opts.DefaultPermission; roleOK && len(grants) == 0 && (d == 0 || d >= LevelRead) {
		return nil, nil
	}
	return func(kind, id string) bool {
		return g.mayOn(grants, Resource{Kind(kind), id}, LevelRead, roleOK)
	}, nil
}

// serveCreation serves a request that creates an experiment or registered
// model and, when it succeeds, grants its creator MANAGE on it (MLflow's
// basic-auth app does the same). The answer is small (an id); it is kept,
// up to maxCreatedAnswer, to read the id from.
func (g *Guard) serveCreation(w http.ResponseWriter, r *http.Request, rt server.Route, p Principal, cr Creations) {
	cw := &captureWriter{StatusWriter: server.StatusWriter{ResponseWriter: w}}
	rt.Handler.ServeHTTP(cw, r)
	if cw.Code != 0 && cw.Code != http.StatusOK {
		return
	}
	res, ok := cr.Created(rt.Pattern, cw.body)
	if !ok {
		return
	}
	if err := g.opts.Store.SetGrant(r.Context(), p.Name, res, LevelManage); err != nil {
		// The creation stands; an admin can grant it (`atrium user grant`).
		g.opts.Logger.Error("creator's MANAGE grant not recorded", "user", p.Name, "resource", res.String(),
			"request_id", server.RequestID(r.Context()), "err", err)
	}
}

// maxCreatedAnswer bounds what captureWriter keeps.
const maxCreatedAnswer = 64 << 10

// captureWriter keeps the start of an answer while passing it through.
type captureWriter struct {
	server.StatusWriter
	body []byte
}

func (c *captureWriter) Write(b []byte) (int, error) {
	if room := maxCreatedAnswer - len(c.body); room > 0 {
		c.body = append(c.body, b[:min(len(b), room)]...)
	}
	return c.StatusWriter.Write(b)
}

// grantsOf returns user's grants, cached for CacheTTL like credentials.
func (g *Guard) grantsOf(ctx context.Context, user string) (map[Resource]Level, error) {
	now := time.Now()
	gen := grantsChanged.Load()
	if g.opts.CacheTTL > 0 {
		if c, ok := g.grants.GetIfPresent(user); ok && now.Before(c.until) && c.gen == gen {
			return c.m, nil
		}
	}
	m, err := g.opts.Store.userGrants(ctx, user)
	if err != nil {
		return nil, err
	}
	if g.opts.CacheTTL > 0 {
		g.grants.Set(user, cachedGrants{m: m, until: now.Add(g.opts.CacheTTL), gen: gen})
	}
	return m, nil
}

// verify checks an Authorization header against the store.
func (g *Guard) verify(ctx context.Context, header string) (Principal, error) {
	scheme, cred, _ := strings.Cut(header, " ")
	cred = strings.TrimSpace(cred)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		if g.opts.OIDC != nil && looksLikeJWT(cred) {
			return g.opts.OIDC.Verify(ctx, cred)
		}
		return g.opts.Store.AuthenticateToken(ctx, cred)
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return Principal{}, ErrUnauthenticated
		}
		user, password, ok := strings.Cut(string(raw), ":")
		if !ok {
			return Principal{}, ErrUnauthenticated
		}
		// A token as the password: clients that only speak basic auth
		// (MLFLOW_TRACKING_USERNAME/PASSWORD) can use tokens; the user name
		// is then not checked.
		if strings.HasPrefix(password, tokenPrefix) {
			return g.opts.Store.AuthenticateToken(ctx, password)
		}
		return g.opts.Store.AuthenticatePassword(ctx, user, password)
	}
	return Principal{}, ErrUnauthenticated
}

// maxAuditPath bounds the path an audit entry keeps.
const maxAuditPath = 1024

func (g *Guard) record(r *http.Request, rt server.Route, sw *statusWriter, start time.Time) {
	p := sw.principal
	if p.Kind == "" {
		p = Principal{Kind: "anonymous", Name: "-"}
	}
	path := r.URL.Path
	if len(path) > maxAuditPath {
		path = path[:maxAuditPath] + "..."
	}
	code := sw.Code
	if code == 0 {
		code = http.StatusOK
	}
	e := AuditEntry{At: start.UTC(), Principal: p.String(), Method: r.Method, Path: path, Route: rt.Pattern,
		Remote: r.RemoteAddr, Status: code, RequestID: server.RequestID(r.Context())}
	// Queued whenever the queue has room, also for a request whose client
	// has gone: select picks at random among ready cases, so one select
	// over both would drop half the entries of requests cut short (a
	// prober that hangs up at once). Only a full queue makes the request
	// wait, and only while it lasts; then the entry goes to the log.
	select {
	case g.audit <- e:
		return
	default:
	}
	select {
	case g.audit <- e:
	case <-r.Context().Done():
		g.opts.Logger.Error("audit entry not recorded", "err", r.Context().Err(), "principal", e.Principal, "method", e.Method,
			"path", e.Path, "remote", e.Remote, "status", e.Status, "request_id", e.RequestID)
	}
}

// statusWriter records the status and principal of an audited request.
type statusWriter struct {
	server.StatusWriter
	principal Principal
}
