package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// pingAPI is an API with metrics of its own (a prometheus.Collector).
type pingAPI struct {
	readyErr error
	pings    prometheus.Counter
}

func newPingAPI() *pingAPI {
	return &pingAPI{pings: prometheus.NewCounter(prometheus.CounterOpts{Name: "atrium_test_pings_total", Help: "Pings answered."})}
}

func (p *pingAPI) Describe(ch chan<- *prometheus.Desc) { p.pings.Describe(ch) }
func (p *pingAPI) Collect(ch chan<- prometheus.Metric) { p.pings.Collect(ch) }

func (p *pingAPI) Routes() []Route {
	return []Route{
		{Pattern: "GET /ping/{name}", Permission: Read, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.pings.Inc()
			WriteJSON(w, http.StatusOK, map[string]string{"pong": r.PathValue("name")})
		})},
		{Pattern: "GET /boom", Permission: Read, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("boom") })},
	}
}

func (p *pingAPI) Ready(ctx context.Context) error { return p.readyErr }

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestRoutesHealthAndMetrics(t *testing.T) {
	api := newPingAPI()
	s := New(Options{}, api)
	h := s.Handler()
	tests := []struct {
		path     string
		code     int
		contains string
	}{
		{"/healthz", 200, `"ok"`},
		{"/readyz", 200, `"ready"`},
		{"/ping/abc", 200, `"pong":"abc"`},
		{"/boom", 500, "internal error"},
		{"/nope", 404, ""},
		{"/ping/../healthz", 400, "INVALID_PARAMETER_VALUE"},
		{"/ping/%2e%2e/healthz", 400, "empty path segments are not allowed"},
		{"/ping/./abc", 400, "INVALID_PARAMETER_VALUE"},
		{"/ping//abc", 400, "INVALID_PARAMETER_VALUE"},
		{"/ping/abc/", 404, ""},
		{"/metrics", 200, `atrium_http_requests_total{code="200",route="GET /ping/{name}"} 1`},
	}
	for _, tt := range tests {
		code, body := get(t, h, tt.path)
		if code != tt.code || !strings.Contains(body, tt.contains) {
			t.Errorf("GET %s = %d %q, want %d containing %q", tt.path, code, body, tt.code, tt.contains)
		}
	}
	_, metrics := get(t, h, "/metrics")
	for _, want := range []string{`route="GET /boom"} 1`, `route="unmatched"} 6`, "atrium_test_pings_total 1"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	api.readyErr = errors.New("online store down")
	if code, body := get(t, h, "/readyz"); code != 503 || !strings.Contains(body, `"not ready"`) || strings.Contains(body, "online store down") {
		t.Errorf("readyz when not ready = %d %s, want 503 without the cause", code, body)
	}
}

// The platform's own refusals (here a path) take the error shape of the API
// asked: MLflow's under /api/ and /ajax-api/, {"error"} elsewhere (OIP's).
func TestErrorShapeFollowsTheAPI(t *testing.T) {
	h := New(Options{}, newPingAPI()).Handler()
	for _, tc := range []struct {
		path string
		keys []string
	}{
		{"/api/2.0/mlflow/../runs/get", []string{"error_code", "message"}},
		{"/ajax-api/2.0/mlflow//runs/get", []string{"error_code", "message"}},
		{"/v2/models/%2e%2e", []string{"error", "error_code"}},
		{"/v1/models/x/./rank", []string{"error", "error_code"}},
		{"/get-online-features/..", []string{"error", "error_code"}},
	} {
		code, body := get(t, h, tc.path)
		var got map[string]string
		if err := json.Unmarshal([]byte(body), &got); err != nil || code != http.StatusBadRequest {
			t.Fatalf("GET %s = %d %s", tc.path, code, body)
		}
		keys := slices.Sorted(maps.Keys(got))
		if !slices.Equal(keys, tc.keys) || got["error_code"] != "INVALID_PARAMETER_VALUE" {
			t.Errorf("GET %s answered %s, want the members %v", tc.path, body, tc.keys)
		}
	}
}

// A path no route has is a 404, a method its routes do not take a 405 with
// Allow, both in the error shape of the API asked, not ServeMux's text.
func TestUnmatchedRoutes(t *testing.T) {
	h := New(Options{}, newPingAPI()).Handler()
	for _, tc := range []struct {
		method, path string
		code         int
		allow        string
		member, says string
	}{
		{"GET", "/v2/models/x/nope", 404, "", "error", `no route for GET "/v2/models/x/nope"`},
		{"GET", "/api/2.0/mlflow/nope", 404, "", "message", "no route"},
		{"GET", "/ping/abc/", 404, "", "error", "no route"},
		{"POST", "/ping/abc", 405, "GET, HEAD", "error", `method POST is not allowed on "/ping/abc"; use GET or HEAD`},
		{"DELETE", "/healthz", 405, "GET, HEAD", "error", "use GET or HEAD"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		var got map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != tc.code ||
			rec.Header().Get("Allow") != tc.allow || !strings.Contains(got[tc.member], tc.says) {
			t.Errorf("%s %s = %d (Allow %q) %s, want %d (Allow %q) with %s saying %q",
				tc.method, tc.path, rec.Code, rec.Header().Get("Allow"), rec.Body, tc.code, tc.allow, tc.member, tc.says)
		}
	}
}

// TestRequestIDs: every answer carries a request id, the client's when it
// sent a usable one; a 5xx names it instead of the internal error, which the
// log has under the same id.
func TestRequestIDs(t *testing.T) {
	var log strings.Builder
	api := newPingAPI()
	h := New(Options{Logger: slog.New(slog.NewTextHandler(&log, nil))}, api).Handler()
	do := func(path, id string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if id != "" {
			req.Header.Set(RequestIDHeader, id)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for _, tc := range []struct{ sent, want string }{
		{"abc-123", "abc-123"},
		{"has space", ""},
		{strings.Repeat("x", 129), ""},
		{"", ""},
	} {
		got := do("/ping/a", tc.sent).Header().Get(RequestIDHeader)
		if tc.want != "" && got != tc.want || tc.want == "" && (got == "" || got == tc.sent) {
			t.Errorf("sent %q: answer's request id %q", tc.sent, got)
		}
	}
	if a, b := do("/ping/a", "").Header().Get(RequestIDHeader), do("/ping/a", "").Header().Get(RequestIDHeader); a == b {
		t.Errorf("two requests got the same id %q", a)
	}

	rec := do("/boom", "req-42")
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "request id req-42") || strings.Contains(rec.Body.String(), "boom") {
		t.Errorf("panic answer = %d %s, want 500 naming the request id, not the panic", rec.Code, rec.Body)
	}
	api.readyErr = errors.New("dial tcp 10.0.0.7:6379: connection refused")
	rec = do("/readyz", "req-43")
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "req-43") || strings.Contains(rec.Body.String(), "10.0.0.7") {
		t.Errorf("readyz = %d %s, want 503 naming the request id, not the backend", rec.Code, rec.Body)
	}
	for _, want := range []string{"request_id=req-42 panic=boom", "request_id=req-43 err=\"dial tcp 10.0.0.7:6379"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, log.String())
		}
	}
}

// TestRequestIDReplacedIsLogged: a client's X-Request-Id that is not at most
// 128 bytes of printable ASCII (without spaces, quotes, backslashes) is
// replaced by a server id, and the replacement is logged at DEBUG with the
// id given, the client's value cut to 128 bytes and its length; a usable id,
// or none, logs nothing.
func TestRequestIDReplacedIsLogged(t *testing.T) {
	for _, tc := range []struct {
		name, sent string
		replaced   bool
	}{
		{"usable", "abc-123", false},
		{"128 bytes", strings.Repeat("x", MaxRequestIDLen), false},
		{"none", "", false},
		{"129 bytes", strings.Repeat("x", MaxRequestIDLen+1), true},
		{"5000 bytes", strings.Repeat("y", 5000), true},
		{"space", "has space", true},
		{"quote", `a"b`, true},
		{"not ASCII", "héllo-日本", true},
		{"control", "a\x01b", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log strings.Builder
			h := New(Options{Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))}, newPingAPI()).Handler()
			req := httptest.NewRequest(http.MethodGet, "/ping/a", nil)
			if tc.sent != "" {
				req.Header.Set(RequestIDHeader, tc.sent)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			got := rec.Header().Get(RequestIDHeader)
			line := ""
			for _, l := range strings.Split(log.String(), "\n") {
				if strings.Contains(l, "request id replaced") {
					line = l
				}
			}
			if !tc.replaced {
				if tc.sent != "" && got != tc.sent || line != "" {
					t.Fatalf("sent %q: answer's id %q, log %q; want the id kept, nothing logged", tc.sent, got, line)
				}
				return
			}
			if got == tc.sent || got == "" {
				t.Fatalf("sent %q: answer's id %q, want a server id", tc.sent, got)
			}
			if !strings.Contains(line, "level=DEBUG") || !strings.Contains(line, "request_id="+got) ||
				!strings.Contains(line, fmt.Sprintf("sent_bytes=%d", len(tc.sent))) || !strings.Contains(line, "transport=http") {
				t.Fatalf("sent %q: replacement log line %q, want DEBUG with the new id, the transport and the length", tc.sent, line)
			}
			if strings.Contains(line, strings.Repeat("y", MaxRequestIDLen+1)) {
				t.Fatalf("the log line holds more than %d bytes of the client's id: %.200s", MaxRequestIDLen, line)
			}
		})
	}
}

func TestRunShutsDownOnCancel(t *testing.T) {
	s := New(Options{Addr: "127.0.0.1:0"}, newPingAPI())
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, func(a net.Addr) { addrc <- a }) }()
	addr := <-addrc
	resp, err := http.Get("http://" + addr.String() + "/ping/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"pong":"x"`) {
		t.Fatalf("body %q", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// TestServeOnCallersListener serves on a listener the caller opened: the
// address is known before Serve runs, requests made before Serve starts
// accepting wait in the listen backlog, and Serve closes the listener when it
// returns.
func TestServeOnCallersListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Addr is ignored by Serve: an address nothing listens on proves it.
	s := New(Options{Addr: "192.0.2.1:1"}, newPingAPI())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/ping/y")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"pong":"y"`) {
		t.Fatalf("body %q", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve returned %v", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("the listener is still open after Serve returned")
	}
}

// teapotGuard answers 418 for every route it wraps, and remembers them.
type teapotGuard struct{ wrapped []Route }

func (g *teapotGuard) Wrap(rt Route) http.Handler {
	g.wrapped = append(g.wrapped, rt)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
}

// TestGuardWrapsEveryRoute: the guard sees every route, the server's own
// included, with its permission, and nothing reaches a handler around it.
func TestGuardWrapsEveryRoute(t *testing.T) {
	g := &teapotGuard{}
	s := New(Options{Guard: g}, newPingAPI())
	if len(g.wrapped) != len(s.Routes()) || len(g.wrapped) != 5 {
		t.Fatalf("guard wrapped %d routes, server has %d, want 5", len(g.wrapped), len(s.Routes()))
	}
	perms := map[string]Permission{}
	for _, rt := range g.wrapped {
		perms[rt.Pattern] = rt.Permission
	}
	for pattern, want := range map[string]Permission{"GET /healthz": Public, "GET /readyz": Public, "GET /metrics": ReadMetrics, "GET /ping/{name}": Read} {
		if perms[pattern] != want {
			t.Errorf("%s wrapped with %q, want %q", pattern, perms[pattern], want)
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/ping/x", "/boom"} {
		if code, _ := get(t, s.Handler(), path); code != http.StatusTeapot {
			t.Errorf("GET %s = %d, want the guard's 418", path, code)
		}
	}
}

type badAPI []Route

func (b badAPI) Routes() []Route { return b }

// TestNewRefusesUndeclaredRoutes: every problem is named, one per line.
func TestNewRefusesUndeclaredRoutes(t *testing.T) {
	defer func() {
		p := recover()
		err, _ := p.(error)
		if err == nil || !strings.Contains(err.Error(), `route "POST /a" declares no valid permission ("")`) ||
			!strings.Contains(err.Error(), `route "POST /b" declares no valid permission ("WRITE")`) || !strings.Contains(err.Error(), `route "GET /c" has no handler`) {
			t.Errorf("New with undeclared routes: recovered %v", p)
		}
	}()
	ok := http.NotFoundHandler()
	New(Options{}, badAPI{{Pattern: "POST /a", Handler: ok}, {Pattern: "POST /b", Permission: "WRITE", Handler: ok}, {Pattern: "GET /c", Permission: Read}})
}
