package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// holdAPI has routes whose handlers read the body, report it and then wait
// until the test lets them go, so tests can hold requests in flight.
type holdAPI struct {
	entered chan string // the path of each request whose body was read
	release chan struct{}
	calls   atomic.Int64
	bodyErr chan error // the body read error of /slow
	ctxs    chan context.Context
}

func newHoldAPI() *holdAPI {
	return &holdAPI{entered: make(chan string, 16), release: make(chan struct{}), bodyErr: make(chan error, 1), ctxs: make(chan context.Context, 16)}
}

func (h *holdAPI) Routes() []Route {
	hold := func(w http.ResponseWriter, r *http.Request) {
		h.calls.Add(1)
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				WriteJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "too big"})
				return
			}
			WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "read body"})
			return
		}
		h.ctxs <- r.Context()
		h.entered <- r.URL.Path
		<-h.release
		WriteJSON(w, http.StatusOK, map[string]int64{"read": n})
	}
	slow := func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		h.bodyErr <- err
		if err != nil {
			WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "read body"})
			return
		}
		WriteJSON(w, http.StatusOK, struct{}{})
	}
	return []Route{
		{Pattern: "POST /write", Permission: Public, Handler: http.HandlerFunc(hold)},
		{Pattern: "POST /heavy", Permission: Public, Handler: http.HandlerFunc(hold)},
		{Pattern: "POST /search", Permission: Public, Handler: http.HandlerFunc(hold)},
		{Pattern: "GET /read", Permission: Public, Handler: http.HandlerFunc(hold)},
		{Pattern: "POST /slow", Permission: Public, Handler: http.HandlerFunc(slow)},
	}
}

type answer struct {
	code       int
	retryAfter string
	body       string
}

func post(t *testing.T, url string, body io.Reader, length int64) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = length
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("Retry-After"), string(b)}
}

// TestBodyLimits: a body over the limit is refused by its declared size
// before the handler runs, and cut off while read when it declares none.
func TestBodyLimits(t *testing.T) {
	api := newHoldAPI()
	close(api.release)
	srv := httptest.NewServer(New(Options{Limits: Limits{MaxBodyBytes: 1000, InFlightBodyBytes: 4000}}, api).Handler())
	defer srv.Close()

	a := post(t, srv.URL+"/write", strings.NewReader(strings.Repeat("x", 1001)), 1001)
	if a.code != http.StatusRequestEntityTooLarge || !strings.Contains(a.body, "limit of 1000 bytes") {
		t.Errorf("declared 1001 bytes: %d %s, want 413 naming the limit", a.code, a.body)
	}
	if n := api.calls.Load(); n != 0 {
		t.Errorf("the handler ran %d times for a body refused by its size", n)
	}
	// Chunked (length -1): the handler's read fails at the limit.
	a = post(t, srv.URL+"/write", io.MultiReader(strings.NewReader(strings.Repeat("x", 1001))), -1)
	if a.code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked 1001 bytes: %d %s, want 413", a.code, a.body)
	}
	a = post(t, srv.URL+"/write", strings.NewReader(strings.Repeat("x", 1000)), 1000)
	if a.code != http.StatusOK || !strings.Contains(a.body, `"read":1000`) {
		t.Errorf("1000 bytes: %d %s, want 200", a.code, a.body)
	}
}

// TestInFlightBudget: bodies in flight share one budget; past it a request is
// answered 503 with Retry-After, and admitted again once the budget frees.
func TestInFlightBudget(t *testing.T) {
	api := newHoldAPI()
	srv := httptest.NewServer(New(Options{Limits: Limits{MaxBodyBytes: 600, InFlightBodyBytes: 1000}}, api).Handler())
	defer srv.Close()

	first := make(chan answer, 1)
	go func() { first <- post(t, srv.URL+"/write", strings.NewReader(strings.Repeat("a", 600)), 600) }()
	<-api.entered // 600 of 1000 bytes held

	tests := []struct {
		name   string
		length int64
		code   int
	}{
		{"declared length over the rest", 500, http.StatusServiceUnavailable},
		{"no length reserves the limit", -1, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		n := max(tt.length, 500)
		a := post(t, srv.URL+"/write", io.MultiReader(strings.NewReader(strings.Repeat("b", int(n)))), tt.length)
		if a.code != tt.code || a.retryAfter != "1" || !strings.Contains(a.body, "1000 bytes of request bodies in flight") {
			t.Errorf("%s: %d (Retry-After %q) %s, want %d with Retry-After 1", tt.name, a.code, a.retryAfter, a.body, tt.code)
		}
	}
	// A body that fits the rest goes through while the first is held.
	second := make(chan answer, 1)
	go func() { second <- post(t, srv.URL+"/write", strings.NewReader(strings.Repeat("c", 400)), 400) }()
	<-api.entered
	api.release <- struct{}{}
	api.release <- struct{}{}
	for _, c := range []chan answer{first, second} {
		if a := <-c; a.code != http.StatusOK {
			t.Errorf("held request: %d %s", a.code, a.body)
		}
	}
	// Both released their share: a 600-byte body is admitted again.
	close(api.release)
	if a := post(t, srv.URL+"/write", strings.NewReader(strings.Repeat("d", 600)), 600); a.code != http.StatusOK {
		t.Errorf("after release: %d %s, want 200", a.code, a.body)
	}
}

// TestConcurrencyPerClass: each class has its own bound; a full class answers
// 503 with Retry-After while other classes go on.
func TestConcurrencyPerClass(t *testing.T) {
	api := newHoldAPI()
	lim := Limits{
		Classes:     map[string]Class{"POST /heavy": ClassHeavy, "POST /search": ClassRead},
		Concurrency: [numClasses]int{ClassRead: 1, ClassWrite: 1, ClassHeavy: 1, ClassStream: 1},
		RetryAfter:  3 * time.Second,
	}
	srv := httptest.NewServer(New(Options{Limits: lim}, api).Handler())
	defer srv.Close()

	held := make(chan answer, 2)
	go func() { held <- post(t, srv.URL+"/heavy", strings.NewReader("{}"), 2) }()
	<-api.entered
	a := post(t, srv.URL+"/heavy", strings.NewReader("{}"), 2)
	if a.code != http.StatusServiceUnavailable || a.retryAfter != "3" || !strings.Contains(a.body, "1 concurrent heavy requests") {
		t.Errorf("second heavy: %d (Retry-After %q) %s, want 503 with Retry-After 3", a.code, a.retryAfter, a.body)
	}
	// A POST listed as a read is in the read class, not write or heavy: it
	// is admitted, and holds the only read slot.
	go func() { held <- post(t, srv.URL+"/search", strings.NewReader("{}"), 2) }()
	<-api.entered
	resp, err := http.Get(srv.URL + "/read")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET with the read slot taken: %d, want 503", resp.StatusCode)
	}
	// The server's probes are not counted against the read class.
	for _, probe := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get(srv.URL + probe)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s with the read slot taken: %d, want 200", probe, resp.StatusCode)
		}
	}
	close(api.release)
	for range 2 {
		if a := <-held; a.code != http.StatusOK {
			t.Errorf("held request: %d %s", a.code, a.body)
		}
	}
	if a := post(t, srv.URL+"/heavy", strings.NewReader("{}"), 2); a.code != http.StatusOK {
		t.Errorf("heavy after release: %d %s", a.code, a.body)
	}
}

// TestRequestDeadlines: every request's context has a deadline, the long one
// for heavy routes.
func TestRequestDeadlines(t *testing.T) {
	api := newHoldAPI()
	close(api.release)
	lim := Limits{Classes: map[string]Class{"POST /heavy": ClassHeavy}, RequestTimeout: time.Minute, LongRequestTimeout: 5 * time.Hour}
	h := New(Options{Limits: lim}, api).Handler()
	for _, tt := range []struct {
		path    string
		timeout time.Duration
	}{{"/write", time.Minute}, {"/heavy", 5 * time.Hour}} {
		before := time.Now()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader("{}")))
		ctx := <-api.ctxs
		d, ok := ctx.Deadline()
		if !ok || d.Before(before.Add(tt.timeout)) || d.After(time.Now().Add(tt.timeout)) {
			t.Errorf("%s: deadline %v (set %v), want %s after the request", tt.path, d, ok, tt.timeout)
		}
		if ctx.Err() == nil {
			t.Errorf("%s: the request's context is not cancelled after it was served", tt.path)
		}
	}
}

// serveReal serves s on a real loopback listener (connection deadlines need
// one) until the test ends, and returns its address.
func serveReal(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return ln.Addr().String()
}

// TestTrickleBodyIsCut: a body that sends a byte and then nothing more loses
// its connection at the body timeout, rather than holding it.
func TestTrickleBodyIsCut(t *testing.T) {
	api := newHoldAPI()
	s := New(Options{Limits: Limits{BodyTimeout: 200 * time.Millisecond}}, api)
	addr := serveReal(t, s)

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A guard against a hanging test, not the assertion: the server must
	// answer (or close) long before it.
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nx")
	err = <-api.bodyErr
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("reading a stalled body: %v, want a deadline error", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("answer %d, want 400 (or a closed connection)", resp.StatusCode)
		}
		if _, err := conn.Read(make([]byte, 1)); err == nil {
			t.Error("the connection stays open after a stalled body")
		}
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the server neither answered nor closed the connection: %v", err)
	}
}

// TestReadyzBounded: /readyz reports a backend that does not answer as down,
// with the Readier's context bounded by StoreTimeout.
func TestReadyzBounded(t *testing.T) {
	api := &hangReady{}
	h := New(Options{StoreTimeout: 50 * time.Millisecond}, api).Handler()
	code, body := get(t, h, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "not ready") {
		t.Errorf("readyz with a hanging backend: %d %s, want 503", code, body)
	}
	if !api.hadDeadline.Load() {
		t.Error("Ready ran without a deadline")
	}
}

type hangReady struct{ hadDeadline atomic.Bool }

func (h *hangReady) Routes() []Route { return nil }
func (h *hangReady) Ready(ctx context.Context) error {
	_, ok := ctx.Deadline()
	h.hadDeadline.Store(ok)
	<-ctx.Done() // a backend that never answers
	return ctx.Err()
}

func TestQuote(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	for _, tt := range []struct{ in, want string }{
		{"abc", `"abc"`},
		{strings.Repeat("x", 64), `"` + strings.Repeat("x", 64) + `"`},
		{strings.Repeat("x", 65), `"` + strings.Repeat("x", 64) + `"... (65 bytes)`},
		{long, `"` + strings.Repeat("é", 32) + `"... (200 bytes)`},
	} {
		if got := Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%d bytes) = %s, want %s", len(tt.in), got, tt.want)
		}
	}
	// A 1 MB path is answered with a bounded message.
	h := New(Options{}, newPingAPI()).Handler()
	code, body := get(t, h, "/ping/"+strings.Repeat("a", 1<<20)+"/../x")
	if code != http.StatusBadRequest || len(body) > 512 {
		t.Errorf("long invalid path: %d, %d-byte answer, want 400 with a bounded message", code, len(body))
	}
}

// TestClip: Clip bounds input as Quote does, without the quotes, and
// ClipQuoted bounds every long Go-quoted value of a message, leaving the
// rest of it (short values, lone quotes, other text) as it was.
func TestClip(t *testing.T) {
	x65, x64 := strings.Repeat("x", 65), strings.Repeat("x", 64)
	for _, tt := range []struct{ in, want string }{
		{"abc", "abc"},
		{x64, x64},
		{x65, x64 + "... (65 bytes)"},
		{strings.Repeat("é", 100), strings.Repeat("é", 32) + "... (200 bytes)"},
	} {
		if got := Clip(tt.in); got != tt.want {
			t.Errorf("Clip(%d bytes) = %s, want %s", len(tt.in), got, tt.want)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{`unknown feature: "short"`, `unknown feature: "short"`},
		{`features[0]: unknown feature: "` + x65 + `"; also "ok"`, `features[0]: unknown feature: "` + x64 + `"... (65 bytes); also "ok"`},
		{`a "lone quote and ` + x65, `a "lone quote and ` + x65},
		// Escaped quotes inside a value do not end it.
		{strconv.Quote(strings.Repeat(`"`, 80)) + " then " + strconv.Quote(x65), strconv.Quote(strings.Repeat(`"`, 64)) + "... (80 bytes) then " + strconv.Quote(x64) + "... (65 bytes)"},
	} {
		if got := ClipQuoted(tt.in); got != tt.want {
			t.Errorf("ClipQuoted(%q)\n = %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestLimitsValidate(t *testing.T) {
	l := Limits{MaxBodyBytes: 10 << 20, InFlightBodyBytes: 1 << 20, Concurrency: [numClasses]int{ClassWrite: -1}, BodyTimeout: -time.Second}
	l.ensureDefaults()
	err := l.Validate()
	if err == nil {
		t.Fatal("Validate accepted invalid limits")
	}
	for _, want := range []string{"in-flight body bytes: 1048576", "concurrency of write requests: -1", "body timeout: -1s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v\nlacks %q", err, want)
		}
	}
	// Serve refuses to start on invalid limits.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := New(Options{Limits: Limits{MaxBodyBytes: 10 << 20, InFlightBodyBytes: 1 << 20}}, newPingAPI()).Serve(context.Background(), ln); err == nil || !strings.Contains(err.Error(), "in-flight body bytes") {
		t.Errorf("Serve with invalid limits = %v", err)
	}
	d := Limits{}
	d.ensureDefaults()
	if err := d.Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}

// TestUnroutedClasses: a class for a pattern no API registers stops Serve.
func TestUnroutedClasses(t *testing.T) {
	lim := Limits{Classes: map[string]Class{"POST /heavy": ClassHeavy, "GET /read": ClassRead, "POST /hevy": ClassHeavy, "GET /ping/{name}": ClassRead}}
	s := New(Options{Limits: lim}, newHoldAPI(), newPingAPI())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = s.Serve(context.Background(), ln)
	if err == nil || !strings.Contains(err.Error(), "no API registers: POST /hevy") || strings.Contains(err.Error(), "/ping") {
		t.Errorf("Serve = %v, want an error naming only POST /hevy", err)
	}
}

// manyRoutesAPI registers n routes besides GET /ping/{name}, like the full
// server (MLflow's routes under two prefixes, the feature API, ...).
type manyRoutesAPI struct{ n int }

func (m manyRoutesAPI) Routes() []Route {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	var routes []Route
	for i := range m.n {
		routes = append(routes, Route{Pattern: fmt.Sprintf("POST /api/2.0/mlflow/route%d/{id}", i), Permission: Public, Handler: ok})
	}
	return append(routes, Route{Pattern: "POST /get-online-features", Permission: Public, Handler: ok})
}

// BenchmarkLimits: the cost the limits add to a request (class lookup,
// counters, deadline, body wrapper), with and without a class table.
func BenchmarkLimits(b *testing.B) {
	for _, bc := range []struct {
		name    string
		classes map[string]Class
	}{{"default classes", nil}, {"class table", map[string]Class{"POST /get-online-features": ClassRead}}} {
		b.Run(bc.name, func(b *testing.B) {
			h := New(Options{Limits: Limits{Classes: bc.classes}}, manyRoutesAPI{n: 150}).Handler()
			body := strings.Repeat("x", 200)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/get-online-features", strings.NewReader(body)))
			}
		})
	}
}

// bigAPI answers 64 MiB (far more than the loopback socket buffers hold) in
// 32 KiB writes, or 16 MiB with pauses when paced, and reports how its
// writes ended.
type bigAPI struct{ writeErr chan error }

func (b *bigAPI) Routes() []Route {
	answer := func(paced bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			chunk := make([]byte, 32<<10)
			chunks := 2048 // 64 MiB
			if paced {
				chunks = 512 // 16 MiB, 200 ms after each 2 MiB: 1.4 s in all
			}
			var err error
			for i := 0; i < chunks && err == nil; i++ {
				if paced && i%64 == 0 && i > 0 {
					time.Sleep(200 * time.Millisecond)
				}
				_, err = w.Write(chunk)
			}
			b.writeErr <- err
		}
	}
	return []Route{
		{Pattern: "GET /big", Permission: Public, Handler: answer(false)},
		{Pattern: "GET /download", Permission: Public, Handler: answer(false)},
		{Pattern: "GET /paced-download", Permission: Public, Handler: answer(true)},
	}
}

// TestSlowReaderIsCut: a client that does not read its answer loses the
// connection at the write deadline, which ends the handler, for ordinary
// routes (the request's deadline plus the body timeout) and for streamed
// ones (the body timeout from the answer's start, although their request
// deadline is an hour away); a download read at a fair rate that lasts
// longer than the body timeout is not cut.
func TestSlowReaderIsCut(t *testing.T) {
	api := &bigAPI{writeErr: make(chan error, 1)}
	s := New(Options{Limits: Limits{
		RequestTimeout: 200 * time.Millisecond, BodyTimeout: 500 * time.Millisecond, LongRequestTimeout: time.Hour,
		Classes: map[string]Class{"GET /download": ClassStream, "GET /paced-download": ClassStream},
	}}, api)
	addr := serveReal(t, s)
	// handlerEnd waits for the handler's last write error. The wait is a
	// guard against a hanging test, not a timing assertion.
	handlerEnd := func() error {
		t.Helper()
		select {
		case err := <-api.writeErr:
			return err
		case <-time.After(60 * time.Second):
			t.Fatal("the handler still writes to a client that reads nothing")
			return nil
		}
	}
	for _, path := range []string{"/big", "/download"} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
		if err := handlerEnd(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s: writing to a client that reads nothing ended with %v, want the write deadline", path, err)
		}
		conn.Close()
	}

	resp, err := http.Get("http://" + addr + "/paced-download")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if werr := handlerEnd(); werr != nil || err != nil || n != 16<<20 {
		t.Errorf("a paced download read at once: %d bytes, read error %v, handler's write error %v; want all 16 MiB", n, err, werr)
	}
}
