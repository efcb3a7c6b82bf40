package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/auth"
	"github.com/atrium-ml/atrium/internal/platform/auth/authtest"
	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/spec"
)

// publicRoutes are the routes of `atrium serve` anyone may call. Adding one
// is a deliberate edit here, reviewed with the route.
var publicRoutes = []string{
	"GET /healthz", "GET /readyz", "GET /health",
	"GET /api/3.0/mlflow/server-info", "GET /ajax-api/3.0/mlflow/server-info",
	"/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/",
	// The Open Inference Protocol's health probes (load balancers carry no
	// credential); model metadata and inference need models:infer.
	"GET /v2/health/live", "GET /v2/health/ready",
	// Authorized by the upload id in the URL, handed out by an EDIT caller's
	// create: MLflow's client PUTs parts without a credential.
	"PUT /api/2.0/mlflow-artifacts/mpu/parts/{upload_id}/{part_number}",
	"PUT /ajax-api/2.0/mlflow-artifacts/mpu/parts/{upload_id}/{part_number}",
}

// guardedServe builds every API of `atrium serve` for dir behind a guard
// over the project's credential store (cache off: revocations take effect on
// the next request), as serve does, and returns the server and the store.
func guardedServe(t *testing.T, dir string, opts auth.GuardOptions) (*server.Server, *auth.Store) {
	t.Helper()
	apis, store := serveAPIsOf(t, dir)
	return guarded(t, apis, store, opts), store
}

// guarded serves apis behind a guard over store, with the credential cache
// off.
func guarded(t *testing.T, apis []server.API, store *auth.Store, opts auth.GuardOptions) *server.Server {
	opts.CacheTTL = -1
	return guardedCaching(t, apis, store, opts)
}

// guardedCaching serves apis behind a guard over store with opts' cache
// (the default, 5 s, as in serve): tests of many calls by users do not pay
// bcrypt on each, which the race detector makes seconds long.
func guardedCaching(t *testing.T, apis []server.API, store *auth.Store, opts auth.GuardOptions) *server.Server {
	opts.Store = store
	g := auth.NewGuard(opts)
	t.Cleanup(func() { g.Close() })
	return server.New(server.Options{Guard: g}, apis...)
}

// serveAPIsOf builds every API of `atrium serve` for dir.
func serveAPIsOf(t *testing.T, dir string) ([]server.API, *auth.Store) {
	t.Helper()
	apis, store, _ := serveEnvAPIs(t, dir)
	return apis, store
}

// serveEnvAPIs builds every API of `atrium serve` for dir, and returns the
// env they were built in too.
func serveEnvAPIs(t *testing.T, dir string) ([]server.API, *auth.Store, *env) {
	t.Helper()
	var stderr bytes.Buffer
	e := &env{ctx: context.Background(), stdout: io.Discard, stderr: &stderr, repo: dir, log: slog.New(slog.NewTextHandler(&stderr, nil))}
	t.Cleanup(func() { e.close() })
	store, err := authStore(e)
	if err != nil {
		t.Fatal(err)
	}
	var apis []server.API
	for _, build := range serveAPIs {
		api, err := build(e)
		if err != nil {
			t.Fatal(err)
		}
		apis = append(apis, api)
	}
	return apis, store, e
}

// concrete turns a route pattern into a method and a path it matches.
func concrete(pattern string) (string, string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "GET", pattern
	}
	path = regexp.MustCompile(`\{[a-z_]+\.\.\.\}`).ReplaceAllString(path, "a/b")
	path = regexp.MustCompile(`\{[a-z_]+\}`).ReplaceAllString(path, "1")
	if strings.HasSuffix(path, "/") {
		path += "nope"
	}
	return method, path
}

// TestEveryServeRouteIsGuarded walks every route `atrium serve` mounts: each
// declares a permission (the server refuses otherwise), an anonymous call of
// every non-public route is refused with 401 before its handler runs, and
// the public routes are exactly publicRoutes.
func TestEveryServeRouteIsGuarded(t *testing.T) {
	dir := exampleRepo(t)
	if code, _, errOut := atrium(t, "--repo", dir, "apply"); code != exitOK {
		t.Fatalf("apply: %s", errOut)
	}
	srv, _ := guardedServe(t, dir, auth.GuardOptions{Required: true})
	h := srv.Handler()
	var public []string
	routes := srv.Routes()
	if len(routes) < 100 {
		t.Fatalf("serve mounts %d routes, expected every API's (over 100)", len(routes))
	}
	for _, rt := range routes {
		if rt.Permission == server.Public {
			public = append(public, rt.Pattern)
			continue
		}
		method, path := concrete(rt.Pattern)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(`{}`)))
		if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "UNAUTHENTICATED") {
			t.Errorf("anonymous %s %s (route %q, permission %s) = %d %s, want 401", method, path, rt.Pattern, rt.Permission, rec.Code, rec.Body)
		}
	}
	slices.Sort(public)
	want := slices.Clone(publicRoutes)
	slices.Sort(want)
	if !slices.Equal(public, want) {
		t.Errorf("public routes = %q, want %q", public, want)
	}
}

// TestServerRefusesUndeclaredPermission: a route without a permission is not
// mounted; the server refuses to start.
func TestServerRefusesUndeclaredPermission(t *testing.T) {
	defer func() {
		if p := recover(); p == nil || !strings.Contains(p.(error).Error(), `route "POST /open-door" declares no valid permission`) {
			t.Errorf("server.New with an undeclared permission: recovered %v", p)
		}
	}()
	server.New(server.Options{}, undeclared{})
}

type undeclared struct{}

func (undeclared) Routes() []server.Route {
	return []server.Route{{Pattern: "POST /open-door", Handler: http.NotFoundHandler()}}
}

type call struct {
	method, path, body, auth string
	header                   map[string]string
}

func (c call) do(t *testing.T, h http.Handler) (int, string) {
	t.Helper()
	r := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	r.Host = "127.0.0.1:8080"
	if c.body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if c.auth != "" {
		r.Header.Set("Authorization", "Bearer "+c.auth)
	}
	for k, v := range c.header {
		if k == "Host" {
			r.Host = v
			continue
		}
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec.Code, rec.Body.String()
}

func mustCall(t *testing.T, h http.Handler, c call) map[string]any {
	t.Helper()
	code, body := c.do(t, h)
	if code != 200 {
		t.Fatalf("%s %s = %d %s", c.method, c.path, code, body)
	}
	var out map[string]any
	_ = json.Unmarshal([]byte(body), &out)
	return out
}

const mlflow = "/api/2.0/mlflow"

// TestIssueProbes replays the issue's probes against every API of `atrium
// serve`: anonymous overwrites, deletions, alias moves, pushes and
// materializations are refused; a reader cannot write; an expired or revoked
// token is refused; on loopback without authentication, the cross-site and
// DNS-rebinding delete of a run is refused and the run survives.
func TestIssueProbes(t *testing.T) {
	dir := exampleRepo(t)
	if code, _, errOut := atrium(t, "--repo", dir, "apply"); code != exitOK {
		t.Fatalf("apply: %s", errOut)
	}
	apis, store := serveAPIsOf(t, dir)
	h := guarded(t, apis, store, auth.GuardOptions{Required: true}).Handler()
	ctx := context.Background()
	token := func(role auth.Role, ttl time.Duration) string {
		secret, _, err := store.CreateToken(ctx, string(role), role, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	admin, editor, reader := token(auth.Admin, 0), token(auth.Editor, 0), token(auth.Reader, 0)

	// What the probes aim at, made by the editor.
	exp := mustCall(t, h, call{method: "POST", path: mlflow + "/experiments/create", body: `{"name": "probe"}`, auth: editor})["experiment_id"].(string)
	run := mustCall(t, h, call{method: "POST", path: mlflow + "/runs/create", body: `{"experiment_id": "` + exp + `"}`, auth: editor})["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
	mustCall(t, h, call{method: "POST", path: mlflow + "/registered-models/create", body: `{"name": "ranker"}`, auth: editor})
	mustCall(t, h, call{method: "POST", path: mlflow + "/model-versions/create", body: `{"name": "ranker", "source": "runs:/` + run + `/model", "run_id": "` + run + `"}`, auth: editor})
	mustCall(t, h, call{method: "POST", path: mlflow + "/registered-models/alias", body: `{"name": "ranker", "alias": "prod", "version": "1"}`, auth: editor})
	artifact := "/api/2.0/mlflow-artifacts/artifacts/" + exp + "/" + run + "/artifacts/model.txt"
	mustCall(t, h, call{method: "PUT", path: artifact, body: "v1", auth: editor})

	push := `{"push_source_name": "listing_profile", "to": "online", "df": {"listing_id": [1], "timestamp": ["2024-01-03T00:00:00Z"], "rent": [1500], "price_per_m2": [1], "neighborhood": ["x"]}}`
	writes := []call{
		{method: "PUT", path: artifact, body: "pwned"},
		{method: "DELETE", path: artifact},
		{method: "POST", path: mlflow + "/registered-models/alias", body: `{"name": "ranker", "alias": "prod", "version": "1"}`},
		{method: "DELETE", path: mlflow + "/model-versions/delete", body: `{"name": "ranker", "version": "1"}`},
		{method: "DELETE", path: mlflow + "/registered-models/delete", body: `{"name": "ranker"}`},
		{method: "POST", path: mlflow + "/runs/delete", body: `{"run_id": "` + run + `"}`},
		{method: "POST", path: mlflow + "/experiments/delete", body: `{"experiment_id": "` + exp + `"}`},
		{method: "POST", path: "/push", body: push},
		{method: "POST", path: "/materialize-incremental", body: `{"end_date": "2024-01-04T00:00:00Z"}`},
	}
	for _, c := range writes {
		if code, body := c.do(t, h); code != 401 {
			t.Errorf("anonymous %s %s = %d %s, want 401", c.method, c.path, code, body)
		}
		c.auth = reader
		if code, body := c.do(t, h); code != 403 {
			t.Errorf("reader %s %s = %d %s, want 403", c.method, c.path, code, body)
		}
	}
	// Deletions are the admin's: the editor who made them cannot.
	for _, c := range writes[3:7] {
		c.auth = editor
		if code, body := c.do(t, h); code != 403 {
			t.Errorf("editor %s %s = %d %s, want 403", c.method, c.path, code, body)
		}
	}
	// Everything is still there, unchanged, for the reader to see.
	if code, body := (call{method: "GET", path: artifact, auth: reader}).do(t, h); code != 200 || body != "v1" {
		t.Errorf("artifact after the probes = %d %q, want v1", code, body)
	}
	got := mustCall(t, h, call{method: "GET", path: mlflow + "/registered-models/alias?name=ranker&alias=prod", auth: reader})
	if got["model_version"].(map[string]any)["version"] != "1" {
		t.Errorf("alias after the probes: %v", got)
	}
	if got := mustCall(t, h, call{method: "GET", path: mlflow + "/runs/get?run_id=" + run, auth: reader}); got["run"].(map[string]any)["info"].(map[string]any)["lifecycle_stage"] != "active" {
		t.Errorf("run after the probes: %v", got)
	}
	// The editor pushes; the admin deletes.
	if code, body := (call{method: "POST", path: "/push", body: push, auth: editor}).do(t, h); code != 200 {
		t.Errorf("editor push = %d %s", code, body)
	}
	// As docs/online.md's `curl -d` sends it (a form content type, no browser).
	curl := call{method: "POST", path: "/push", body: push, auth: editor, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}
	if code, body := curl.do(t, h); code != 200 {
		t.Errorf("editor push the way curl -d sends it = %d %s", code, body)
	}
	mustCall(t, h, call{method: "POST", path: mlflow + "/runs/delete", body: `{"run_id": "` + run + `"}`, auth: admin})

	// Expiry and revocation, through the CLI.
	short := token(auth.Editor, time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	if code, _ := (call{method: "GET", path: mlflow + "/experiments/get?experiment_id=0", auth: short}).do(t, h); code != 401 {
		t.Errorf("expired token = %d, want 401", code)
	}
	if code, _, errOut := atrium(t, "--repo", dir, "token", "revoke", "reader"); code != exitOK {
		t.Fatalf("token revoke: %s", errOut)
	}
	if code, _ := (call{method: "GET", path: mlflow + "/experiments/get?experiment_id=0", auth: reader}).do(t, h); code != 401 {
		t.Errorf("revoked token = %d, want 401", code)
	}

	// Loopback without authentication: the issue's cross-site probe.
	oh := guarded(t, apis, store, auth.GuardOptions{AllowedHosts: loopbackHosts}).Handler()
	run2 := mustCall(t, oh, call{method: "POST", path: mlflow + "/runs/create", body: `{"experiment_id": "` + exp + `"}`})["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
	for _, hdr := range []map[string]string{
		{"Content-Type": "text/plain", "Origin": "http://evil.example", "Host": "rebind.attacker.example"},
		{"Content-Type": "text/plain", "Origin": "http://rebind.attacker.example:8080", "Host": "rebind.attacker.example:8080"},
		{"Content-Type": "application/json", "Origin": "http://evil.example"},
		{"Content-Type": "text/plain"},
	} {
		c := call{method: "POST", path: mlflow + "/runs/delete", body: `{"run_id": "` + run2 + `"}`, header: hdr}
		if code, body := c.do(t, oh); code != 403 && code != 415 {
			t.Errorf("cross-site delete with %v = %d %s, want 403 or 415", hdr, code, body)
		}
	}
	if got := mustCall(t, oh, call{method: "GET", path: mlflow + "/runs/get?run_id=" + run2}); got["run"].(map[string]any)["info"].(map[string]any)["lifecycle_stage"] != "active" {
		t.Errorf("run after the cross-site probes: %v", got)
	}
}

func TestGuardOptionsSafeDefaults(t *testing.T) {
	for _, tt := range []struct {
		addr                      string
		has, insecure, required   bool
		wantRequired, wantRefused bool
		wantHosts                 bool
	}{
		{addr: "127.0.0.1:8080", wantHosts: true},
		{addr: "localhost:8080", has: true, wantRequired: true, wantHosts: true},
		{addr: "[::1]:8080", required: true, wantRefused: true},
		{addr: "127.0.0.1:8080", required: true, has: true, wantRequired: true, wantHosts: true},
		{addr: "0.0.0.0:8080", wantRefused: true},
		{addr: ":8080", wantRefused: true},
		{addr: "10.1.2.3:8080", has: true, wantRequired: true},
		{addr: "myhost.internal:8080", has: true, wantRequired: true},
		{addr: "0.0.0.0:8080", insecure: true},
		{addr: "0.0.0.0:8080", insecure: true, has: true},
	} {
		s := spec.Server{Addr: tt.addr, Auth: spec.ServerAuth{Required: tt.required}}
		opts, err := guardOptions(s, tt.has, tt.insecure)
		if refused := err != nil; refused != tt.wantRefused {
			t.Errorf("%+v: err = %v, want refused %v", tt, err, tt.wantRefused)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), "atrium token create --name admin --role admin") || !strings.Contains(err.Error(), "--insecure") {
				t.Errorf("refusal does not say how to create a credential: %v", err)
			}
			continue
		}
		if opts.Required != tt.wantRequired || (opts.AllowedHosts != nil) != tt.wantHosts {
			t.Errorf("%+v: Required %v, AllowedHosts %v", tt, opts.Required, opts.AllowedHosts)
		}
	}
}

// TestServeSafeDefaultsAndTLS runs `atrium serve`: on all interfaces
// without a credential it refuses to start and says how to create one; with
// a token created by `atrium token create` it serves HTTPS from certificate
// files, refuses anonymous calls, accepts the token, and `atrium audit`
// shows the mutating call.
func TestServeSafeDefaultsAndTLS(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := atrium(t, "--repo", dir, "serve", "--addr", "0.0.0.0:0")
	if code != exitFailure || !strings.Contains(errOut, "atrium token create") || !strings.Contains(errOut, "--insecure") {
		t.Fatalf("serve on 0.0.0.0 without credentials = %d %q, want a refusal saying how to create one", code, errOut)
	}
	code, tok, errOut := atrium(t, "--repo", dir, "token", "create", "--name", "ci", "--role", "editor", "--expires", "1d")
	if code != exitOK || !strings.HasPrefix(tok, "atr_") {
		t.Fatalf("token create = %d %q %q", code, tok, errOut)
	}
	tok = strings.TrimSpace(tok)
	if code, out, _ := atrium(t, "--repo", dir, "token", "list"); code != exitOK || !strings.Contains(out, "ci") || !strings.Contains(out, "editor") || strings.Contains(out, tok) {
		t.Errorf("token list = %d %q (must list the token, never its secret)", code, out)
	}
	cert, key, pool := authtest.SelfSigned(t, t.TempDir())

	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--repo", dir, "--addr", "0.0.0.0:0", "--tls-cert", cert, "--tls-key", key}, io.Discard, &stderr)
	}()
	addrRE := regexp.MustCompile(`atrium serving on https://\S+:(\d+)`)
	var port string
	for deadline := time.Now().Add(20 * time.Second); port == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := addrRE.FindStringSubmatch(stderr.String()); m != nil {
			port = m[1]
		}
	}
	if port == "" {
		cancel()
		t.Fatalf("serve did not start: %s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "atrium: authentication required") {
		t.Errorf("serve does not say authentication is required: %s", stderr.String())
	}
	base := "https://127.0.0.1:" + port
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	send := func(method, path, body, auth string) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := send("GET", "/healthz", "", ""); c != 200 {
		t.Errorf("healthz = %d", c)
	}
	if c := send("POST", mlflow+"/experiments/create", `{"name": "x"}`, ""); c != 401 {
		t.Errorf("anonymous create = %d, want 401", c)
	}
	if c := send("POST", mlflow+"/experiments/create", `{"name": "x"}`, "Bearer "+tok); c != 200 {
		t.Errorf("create with the token = %d, want 200", c)
	}
	if c := send("GET", "/metrics", "", "Bearer "+tok); c != 200 {
		t.Errorf("metrics with the token = %d, want 200", c)
	}
	// Plain HTTP on the TLS port is not served.
	if resp, err := http.Get("http://127.0.0.1:" + port + "/healthz"); err == nil {
		if resp.StatusCode == 200 {
			t.Errorf("plain HTTP answered 200 on the TLS port")
		}
		resp.Body.Close()
	}
	cancel()
	if c := <-done; c != exitOK {
		t.Fatalf("serve exited with %d: %s", c, stderr.String())
	}
	code, out, errOut := atrium(t, "--repo", dir, "-o", "json", "audit", "--since", "1h")
	var entries []auth.AuditEntry
	if code != exitOK || json.Unmarshal([]byte(out), &entries) != nil {
		t.Fatalf("audit = %d %q %q", code, out, errOut)
	}
	var who []string
	for _, e := range entries {
		who = append(who, e.Principal+" "+e.Method+" "+e.Path+" "+http.StatusText(e.Status))
	}
	want := []string{"anonymous:- POST " + mlflow + "/experiments/create Unauthorized", "token:ci (" + strings.Split(tok, "_")[1] + ") POST " + mlflow + "/experiments/create OK"}
	if !slices.Equal(who, want) {
		t.Errorf("audit = %q, want %q", who, want)
	}
}

// TestAuditRetention: `atrium audit` says how long entries are kept
// (server.audit_retention) and what the log holds; `--prune` deletes the
// entries older than the retention and keeps the younger ones.
func TestAuditRetention(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "atrium.yaml"), []byte("server:\n  audit_retention: 30d\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, store := serveAPIsOf(t, dir)
	now := time.Now()
	if err := store.Record(context.Background(), []auth.AuditEntry{
		{At: now.Add(-31 * 24 * time.Hour), Principal: "token:ci", Method: "POST", Path: "/push", RequestID: "old"},
		{At: now.Add(-29 * 24 * time.Hour), Principal: "token:ci", Method: "POST", Path: "/push", RequestID: "young"},
	}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := atrium(t, "--repo", dir, "audit", "--since", "60d")
	if code != exitOK || !strings.Contains(out, "old") || !strings.Contains(out, "young") ||
		!strings.Contains(errOut, "entries are kept 30d (server.audit_retention)") || !strings.Contains(errOut, "the log holds 2 entries") {
		t.Fatalf("audit = %d %q %q, want both entries and the retention", code, out, errOut)
	}
	if code, out, errOut := atrium(t, "--repo", dir, "audit", "--prune"); code != exitOK || !strings.Contains(out, "deleted 1 audit entries older than 30d") {
		t.Fatalf("audit --prune = %d %q %q", code, out, errOut)
	}
	code, out, errOut = atrium(t, "--repo", dir, "audit", "--since", "60d")
	if code != exitOK || strings.Contains(out, "old") || !strings.Contains(out, "young") || !strings.Contains(errOut, "the log holds 1 entries") {
		t.Errorf("audit after pruning = %d %q %q, want only the young entry", code, out, errOut)
	}
	if err := os.WriteFile(filepath.Join(dir, "atrium.yaml"), []byte("server:\n  audit_retention: never\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := atrium(t, "--repo", dir, "audit"); code != exitOK || !strings.Contains(errOut, "entries are kept for ever") {
		t.Errorf("audit with retention never = %d %q", code, errOut)
	}
	if code, _, errOut := atrium(t, "--repo", dir, "audit", "--prune"); code != exitUsage || !strings.Contains(errOut, "nothing is pruned") {
		t.Errorf("audit --prune with retention never = %d %q, want a usage error", code, errOut)
	}
}
