package auth

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/platform/server"
)

// testAPI has one route per kind of permission.
type testAPI struct{}

func (testAPI) Routes() []server.Route {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		server.WriteJSON(w, http.StatusOK, map[string]string{"who": p.String()})
	})
	return []server.Route{
		{Pattern: "GET /things", Permission: server.Read, Handler: ok},
		{Pattern: "POST /things", Permission: server.Edit, Handler: ok},
		{Pattern: "DELETE /things", Permission: server.Manage, Handler: ok},
		{Pattern: "POST /push", Permission: server.PushFeatures, Handler: ok},
		{Pattern: "GET /open", Permission: server.Public, Handler: ok},
		{Pattern: "POST /search", Permission: server.Read, Handler: ok},
	}
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestGuard(t *testing.T) {
	ctx := context.Background()
	store := NewStore(metatest.SQLite(t, Schema))
	reader, _, err := store.CreateToken(ctx, "dashboards", Reader, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	editor, _, err := store.CreateToken(ctx, "ci", Editor, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetUser(ctx, "ana", Admin, "pw"); err != nil {
		t.Fatal(err)
	}
	loopback := []string{"localhost", "127.0.0.1", "::1"}

	type req struct {
		method, path, auth, host, origin, ctype, site string
	}
	for _, tt := range []struct {
		name     string
		required bool
		req      req
		code     int
		contains string
	}{
		// Authentication required.
		{"anonymous read", true, req{method: "GET", path: "/things"}, 401, "UNAUTHENTICATED"},
		{"anonymous write", true, req{method: "POST", path: "/things"}, 401, "UNAUTHENTICATED"},
		{"anonymous public", true, req{method: "GET", path: "/open"}, 200, `"who":":"`},
		{"bearer reader reads", true, req{method: "GET", path: "/things", auth: "Bearer " + reader}, 200, "token:dashboards"},
		{"bearer reader cannot write", true, req{method: "POST", path: "/things", auth: "Bearer " + reader}, 403, "PERMISSION_DENIED"},
		{"reader cannot push", true, req{method: "POST", path: "/push", auth: "Bearer " + reader}, 403, "lacks features:push"},
		{"editor pushes", true, req{method: "POST", path: "/push", auth: "Bearer " + editor}, 200, "token:ci"},
		{"editor cannot delete", true, req{method: "DELETE", path: "/things", auth: "Bearer " + editor}, 403, "lacks MANAGE"},
		{"basic password admin deletes", true, req{method: "DELETE", path: "/things", auth: basic("ana", "pw")}, 200, "user:ana"},
		{"basic wrong password", true, req{method: "GET", path: "/things", auth: basic("ana", "nope")}, 401, ""},
		{"basic token as password", true, req{method: "POST", path: "/things", auth: basic("anyone", editor)}, 200, "token:ci"},
		{"bearer garbage", true, req{method: "GET", path: "/things", auth: "Bearer atr_nope"}, 401, ""},
		{"unknown scheme", true, req{method: "GET", path: "/things", auth: "Digest x"}, 401, ""},
		{"bad base64", true, req{method: "GET", path: "/things", auth: "Basic !!!"}, 401, ""},
		// Loopback without authentication: anonymous is admin, but a sent
		// credential must be valid.
		{"open anonymous delete", false, req{method: "DELETE", path: "/things"}, 200, "anonymous"},
		{"open bad credential", false, req{method: "GET", path: "/things", auth: "Bearer atr_000000000000_x"}, 401, ""},
		// DNS rebinding, CSRF, simple content types.
		{"rebinding host", false, req{method: "POST", path: "/things", host: "rebind.attacker.example:8080", origin: "http://rebind.attacker.example:8080", ctype: "application/json"}, 403, "DNS rebinding"},
		{"cross-origin", false, req{method: "POST", path: "/things", host: "127.0.0.1:8080", origin: "http://evil.example", ctype: "application/json"}, 403, "cross-origin"},
		{"null origin", false, req{method: "POST", path: "/things", host: "127.0.0.1:8080", origin: "null"}, 403, "cross-origin"},
		{"issue probe: text/plain, evil origin, rebound host", false, req{method: "POST", path: "/things", host: "rebind.attacker.example", origin: "http://evil.example", ctype: "text/plain"}, 403, ""},
		{"text/plain same origin", false, req{method: "POST", path: "/things", host: "localhost:8080", ctype: "text/plain;charset=UTF-8"}, 415, "application/json"},
		{"form post from a browser", false, req{method: "POST", path: "/things", host: "localhost:8080", ctype: "application/x-www-form-urlencoded", site: "cross-site"}, 415, ""},
		{"multipart form post", false, req{method: "POST", path: "/things", host: "localhost:8080", ctype: "multipart/form-data; boundary=x"}, 415, ""},
		{"curl -d (form type, no browser)", false, req{method: "POST", path: "/things", host: "localhost:8080", ctype: "application/x-www-form-urlencoded"}, 200, ""},
		{"same origin page", false, req{method: "POST", path: "/things", host: "localhost:8080", origin: "http://localhost:8080", ctype: "application/json"}, 200, ""},
		{"configured origin", false, req{method: "POST", path: "/things", host: "localhost:8080", origin: "https://ui.example.com", ctype: "application/json"}, 200, ""},
		{"ipv6 loopback host", false, req{method: "GET", path: "/things", host: "[::1]:8080"}, 200, ""},
		{"rebinding on a public route", false, req{method: "GET", path: "/open", host: "rebind.attacker.example"}, 403, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewGuard(GuardOptions{Store: store, Required: tt.required, AllowedHosts: loopback, AllowedOrigins: []string{"https://ui.example.com"}})
			defer g.Close()
			h := server.New(server.Options{Guard: g}, testAPI{}).Handler()
			r := httptest.NewRequest(tt.req.method, tt.req.path, strings.NewReader("{}"))
			r.Host = "127.0.0.1:8080"
			if tt.req.host != "" {
				r.Host = tt.req.host
			}
			for k, v := range map[string]string{"Authorization": tt.req.auth, "Origin": tt.req.origin, "Content-Type": tt.req.ctype, "Sec-Fetch-Site": tt.req.site} {
				if v != "" {
					r.Header.Set(k, v)
				}
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.contains) {
				t.Errorf("%s %s = %d %s, want %d containing %q", tt.req.method, tt.req.path, rec.Code, rec.Body, tt.code, tt.contains)
			}
			if tt.code == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		})
	}
}

// TestGuardRevocationAndAudit: with the cache off, a revoked token is refused
// on the next request; every mutating call, refused ones included, is in the
// audit log with who, what, from where and the status, once the guard closes.
func TestGuardRevocationAndAudit(t *testing.T) {
	ctx := context.Background()
	store := NewStore(metatest.SQLite(t, Schema))
	tok, info, err := store.CreateToken(ctx, "ci", Editor, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	g := NewGuard(GuardOptions{Store: store, Required: true, CacheTTL: -1})
	h := server.New(server.Options{Guard: g}, testAPI{}).Handler()
	do := func(method, auth string) int {
		path := "/things"
		if method == "SEARCH" {
			method, path = "POST", "/search"
		}
		r := httptest.NewRequest(method, path, nil)
		r.RemoteAddr = "192.0.2.7:41000"
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Code
	}
	if c := do("POST", "Bearer "+tok); c != 200 {
		t.Fatalf("POST with token = %d", c)
	}
	if c := do("GET", "Bearer "+tok); c != 200 {
		t.Fatalf("GET with token = %d", c)
	}
	if c := do("SEARCH", "Bearer "+tok); c != 200 {
		t.Fatalf("POST /search with token = %d", c)
	}
	if _, err := store.RevokeToken(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	if c := do("POST", "Bearer "+tok); c != 401 {
		t.Errorf("POST with a revoked token = %d, want 401", c)
	}
	if c := do("DELETE", ""); c != 401 {
		t.Errorf("anonymous DELETE = %d, want 401", c)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := store.Audit(ctx, time.Time{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		principal, method string
		status            int
	}{
		{"token:ci (" + info.ID + ")", "POST", 200},
		{"anonymous:-", "POST", 401},
		{"anonymous:-", "DELETE", 401},
	}
	if len(got) != len(want) {
		t.Fatalf("audit log = %+v, want %d entries (reads, GET or POST, are not audited)", got, len(want))
	}
	for i, w := range want {
		e := got[i]
		if e.Principal != w.principal || e.Method != w.method || e.Status != w.status || e.Path != "/things" || e.Route != w.method+" /things" || e.Remote != "192.0.2.7:41000" || e.RequestID == "" {
			t.Errorf("audit[%d] = %+v, want %+v", i, e, w)
		}
	}
}

// TestGuardCache: a cached credential skips the store (it answers even with
// the database closed) until CacheTTL; Forget drops it.
func TestGuardCache(t *testing.T) {
	ctx := context.Background()
	db := metatest.SQLite(t, Schema)
	store := NewStore(db)
	tok, _, err := store.CreateToken(ctx, "ci", Reader, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	g := NewGuard(GuardOptions{Store: store, Required: true, CacheTTL: time.Hour})
	defer g.Close()
	h := server.New(server.Options{Guard: g}, testAPI{}).Handler()
	get := func() int {
		r := httptest.NewRequest("GET", "/things", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Code
	}
	if c := get(); c != 200 {
		t.Fatalf("first GET = %d", c)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if c := get(); c != 200 {
		t.Errorf("cached GET with the database closed = %d, want 200", c)
	}
	g.Forget()
	if c := get(); c != 503 {
		t.Errorf("GET after Forget with the database closed = %d, want 503", c)
	}
}

// TestGuardPrunesAudit: a guard with a retention deletes the entries older
// than it when it starts and keeps the younger ones; one without keeps all.
// TestGuardAuditsRequestsCutShort: a request whose context has ended by the
// time it is audited (its client hung up, its body was cut at the body
// timeout) is recorded like any other. It was dropped about half the time:
// one select chose at random between queueing the entry and the ended
// context.
func TestGuardAuditsRequestsCutShort(t *testing.T) {
	ctx := context.Background()
	store := NewStore(metatest.SQLite(t, Schema))
	g := NewGuard(GuardOptions{Store: store, Required: true, CacheTTL: -1})
	h := server.New(server.Options{Guard: g}, testAPI{}).Handler()
	const n = 40 // all kept; with a coin flip per entry, 40 kept by chance is 1 in 10^12
	for range n {
		cut, cancel := context.WithCancel(ctx)
		cancel()
		r := httptest.NewRequest("DELETE", "/things", nil).WithContext(cut)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := store.Audit(ctx, time.Time{}, 2*n)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Errorf("audit log holds %d of %d requests cut short", len(got), n)
	}
}

// TestGuardAuditsCrossSiteRefusals: a write refused before authentication
// by the Host allow-list, the Origin check or the content-type check is in
// the audit log (as anonymous, with its 403 or 415); it was not, so a
// cross-site or DNS-rebinding attempt left no trace. Reads refused so are
// not audited, like other reads.
func TestGuardAuditsCrossSiteRefusals(t *testing.T) {
	ctx := context.Background()
	store := NewStore(metatest.SQLite(t, Schema))
	g := NewGuard(GuardOptions{Store: store, AllowedHosts: []string{"localhost"}})
	h := server.New(server.Options{Guard: g}, testAPI{}).Handler()
	for _, tt := range []struct {
		method, host, origin, ctype string
		status                      int
	}{
		{"DELETE", "rebind.attacker.example", "", "", 403},
		{"DELETE", "localhost", "http://evil.example", "", 403},
		{"POST", "localhost", "", "text/plain", 415},
		{"GET", "rebind.attacker.example", "", "", 403}, // a read: refused, not audited
	} {
		r := httptest.NewRequest(tt.method, "/things", strings.NewReader("{}"))
		r.Host = tt.host
		if tt.origin != "" {
			r.Header.Set("Origin", tt.origin)
		}
		if tt.ctype != "" {
			r.Header.Set("Content-Type", tt.ctype)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != tt.status {
			t.Errorf("%+v = %d, want %d", tt, rec.Code, tt.status)
		}
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := store.Audit(ctx, time.Time{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, e := range got {
		seen = append(seen, fmt.Sprintf("%s %s %d", e.Principal, e.Method, e.Status))
	}
	want := []string{"anonymous:- DELETE 403", "anonymous:- DELETE 403", "anonymous:- POST 415"}
	if !slices.Equal(seen, want) {
		t.Errorf("audit log = %q, want %q", seen, want)
	}
}

func TestGuardPrunesAudit(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name      string
		retention time.Duration
		want      []string
	}{{"90 days", 90 * 24 * time.Hour, []string{"young"}}, {"for ever", 0, []string{"old", "young"}}} {
		t.Run(tt.name, func(t *testing.T) {
			store := NewStore(metatest.SQLite(t, Schema))
			now := time.Now()
			if err := store.Record(ctx, []AuditEntry{
				{At: now.Add(-91 * 24 * time.Hour), Principal: "token:ci", Method: "POST", Path: "/push", RequestID: "old"},
				{At: now.Add(-89 * 24 * time.Hour), Principal: "token:ci", Method: "POST", Path: "/push", RequestID: "young"},
			}); err != nil {
				t.Fatal(err)
			}
			g := NewGuard(GuardOptions{Store: store, AuditRetention: tt.retention})
			// The first pruning runs as the guard starts; wait for its
			// outcome, since Close may stop it before it has run.
			waitFor(t, func() bool {
				got, err := store.Audit(ctx, time.Time{}, 10)
				return err == nil && len(got) == len(tt.want)
			})
			if err := g.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := store.Audit(ctx, time.Time{}, 10)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, e := range got {
				ids = append(ids, e.RequestID)
			}
			if strings.Join(ids, ",") != strings.Join(tt.want, ",") {
				t.Errorf("audit log after the guard started = %v, want %v", ids, tt.want)
			}
		})
	}
}

// waitFor polls cond until it holds; the bound is a guard against a hang,
// not a timing assertion.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not reached in 10 s")
}

// TestMutatingPermissions: which permissions' calls are audited. Scoring
// (models:infer) is a read: auditing it would write a row per prediction on
// the serving hot path.
func TestMutatingPermissions(t *testing.T) {
	for _, p := range server.Permissions {
		want := true
		switch p {
		case server.Public, server.Read, server.ReadFeatures, server.ReadMetrics, server.Infer:
			want = false
		}
		if got := mutating(p); got != want {
			t.Errorf("mutating(%s) = %v, want %v", p, got, want)
		}
	}
}
