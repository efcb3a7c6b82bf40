package retrieval

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/online/redis"
	"github.com/atrium-ml/atrium/internal/platform/proctest"
	"github.com/atrium-ml/atrium/internal/platform/server"
)

// redisProcess is a redis-server the test owns (never the shared CI one):
// the test stops, pauses and restarts it.
type redisProcess struct {
	t    *testing.T
	bin  string
	port int
	cmd  *exec.Cmd
}

// startRedis starts a redis-server on a free port, or skips the test when
// the binary is missing.
func startRedis(t *testing.T) *redisProcess {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not found on PATH (.ci/services.sh installs it): skipping the failing-backend test")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	p := &redisProcess{t: t, bin: bin, port: port}
	p.start()
	t.Cleanup(func() {
		if p.cmd != nil {
			_ = p.cmd.Process.Signal(syscall.SIGCONT)
			p.stop()
		}
	})
	return p
}

func (p *redisProcess) url() string { return "redis://127.0.0.1:" + strconv.Itoa(p.port) + "/0" }

func (p *redisProcess) start() {
	p.t.Helper()
	p.cmd = exec.Command(p.bin, "--port", strconv.Itoa(p.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start redis-server: %v", err)
	}
	// Wait (bounded) until it answers PING.
	for range 200 {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p.port)); err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			fmt.Fprint(c, "PING\r\n")
			buf := make([]byte, 7)
			n, _ := io.ReadFull(c, buf)
			c.Close()
			if string(buf[:n]) == "+PONG\r\n" {
				return
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	p.t.Fatalf("redis-server on port %d did not answer", p.port)
}

func (p *redisProcess) stop() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	p.cmd = nil
}

func (p *redisProcess) signal(sig syscall.Signal) {
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal redis-server: %v", err)
	}
}

// TestOnlineStoreFailures: with Redis paused (SIGSTOP), stopped and
// restarted, under load, reads, pushes, deletes and /readyz answer 503
// naming the store timeout instead of hanging until the request's deadline
// (pushes once answered 500, then waited for the request's deadline), and
// everything serves again by itself once Redis is back.
func TestOnlineStoreFailures(t *testing.T) {
	rp := startRedis(t)
	ctx := context.Background()
	store, err := redis.Open(ctx, rp.url())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	fill := func() {
		t.Helper()
		err := store.Write(ctx, "listing_profile", []string{"rent", "price_per_m2", "neighborhood"}, []online.Row{
			{Key: online.MustKey(1), TS: now.Add(-time.Hour), Values: []online.Value{online.Float64(1500), online.Float64(25.5), online.String("Mitte")}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	fill()
	o, err := NewOnline(store, testDefs(), Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 300 * time.Millisecond
	log := slog.New(slog.DiscardHandler)
	api := NewAPI(o, APIOptions{Logger: log, StoreTimeout: timeout})
	srv := httptest.NewServer(server.New(server.Options{
		Logger: log, Registry: prometheus.NewRegistry(), StoreTimeout: timeout,
		// Far beyond the store timeout: a push answered 503 naming the store
		// timeout was cut by it, not by the request's deadline.
		Limits: server.Limits{RequestTimeout: time.Minute},
	}, api).Handler())
	t.Cleanup(srv.Close)
	// A guard against a hang (the defect this test is about), not a timing
	// assertion: every answer is expected long before it.
	client := &http.Client{Timeout: 20 * time.Second}

	const read = `{"features": ["listing_profile:rent"], "entities": {"listing_id": [1]}}`
	const push = `{"feature_set": "listing_profile", "df": {"listing_id": [9], "timestamp": ["2026-11-20T11:00:00Z"], "rent": [1], "price_per_m2": [1], "neighborhood": ["x"]}}`
	const deleteKey = `{"feature_set": "listing_profile", "entities": {"listing_id": [9]}}`
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("%s %s: %v", method, path, err)
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	healthy := func(phase string) {
		t.Helper()
		code, body := do("POST", "/get-online-features", read)
		var r feastResponse
		_ = json.Unmarshal([]byte(body), &r)
		if code != 200 || len(r.Results) != 2 || len(r.Results[1].Values) != 1 || r.Results[1].Values[0] != 1500.0 {
			t.Errorf("%s: read = %d %s, want 200 with rent 1500", phase, code, body)
		}
		if code, body := do("GET", "/readyz", ""); code != 200 {
			t.Errorf("%s: readyz = %d %s", phase, code, body)
		}
	}
	// waitReady polls /readyz until the store is back (bounded).
	waitReady := func(phase string) {
		t.Helper()
		for range 400 {
			if code, _ := do("GET", "/readyz", ""); code == 200 {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("%s: /readyz did not recover", phase)
	}
	// load runs clients reading while a fault lasts; every answer must be
	// 200 or a 503 that names the store, never another status.
	load := func(phase string, stop <-chan struct{}) *sync.WaitGroup {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					code, body := do("POST", "/get-online-features", read)
					if code != 200 && !(code == 503 && strings.Contains(body, "online store")) {
						t.Errorf("%s: under load: %d %s", phase, code, body)
						return
					}
				}
			})
		}
		return &wg
	}
	faultAnswers := func(phase string, wantMsgs ...string) {
		t.Helper()
		code, body := do("POST", "/get-online-features", read)
		if code != 503 || !containsAny(body, wantMsgs) || strings.Contains(body, "127.0.0.1") {
			t.Errorf("%s: read = %d %s, want 503 saying one of %q, without the address", phase, code, body, wantMsgs)
		}
		if code, body := do("GET", "/readyz", ""); code != 503 {
			t.Errorf("%s: readyz = %d %s, want 503", phase, code, body)
		}
		if code, body := do("POST", "/push", push); code != 503 || !containsAny(body, wantMsgs) {
			t.Errorf("%s: push = %d %s, want 503 saying one of %q", phase, code, body, wantMsgs)
		}
		if code, body := do("POST", "/delete-online", deleteKey); code != 503 || !containsAny(body, wantMsgs) {
			t.Errorf("%s: delete-online = %d %s, want 503 saying one of %q", phase, code, body, wantMsgs)
		}
	}

	healthy("before")

	// Paused: connections stay open, nothing answers.
	stop := make(chan struct{})
	wg := load("paused", stop)
	rp.signal(syscall.SIGSTOP)
	proctest.WaitStopped(t, rp.cmd.Process.Pid)
	faultAnswers("paused", "online store did not answer within 300ms")
	rp.signal(syscall.SIGCONT)
	waitReady("resumed")
	close(stop)
	wg.Wait()
	healthy("resumed")

	// Stopped: connections refused. Then restarted (empty: it keeps no data).
	stop = make(chan struct{})
	wg = load("stopped", stop)
	rp.stop()
	faultAnswers("stopped", "online store did not answer within 300ms", "online store is unreachable")
	rp.start()
	waitReady("restarted")
	close(stop)
	wg.Wait()
	fill()
	healthy("restarted")
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// TestLargeRequestsBounded: an entity column over the limit is refused as
// soon as the parser passes the limit, a body over the size limit by its
// declared length, and a large body's buffer does not stay in the pool.
func TestLargeRequestsBounded(t *testing.T) {
	srv, _ := testServer(t, APIOptions{MaxBodyBytes: 1 << 20})
	ids := strings.Repeat("1,", 10_000) + "1"
	checkError(t, srv, "/get-online-features", `{"features": ["listing_profile:rent"], "entities": {"listing_id": [`+ids+`]}}`,
		http.StatusBadRequest, "entities.listing_id: more than 10000 rows, at most 10000 per request")
	checkError(t, srv, "/get-online-features", `{"features": ["listing_profile:rent"], "entities": {"listing_id": [1], "`+strings.Repeat("k", 5000)+`": [1]}}`,
		http.StatusBadRequest, `is not a join key`)
	code, body := post(t, srv, "/get-online-features", `{"features": ["listing_profile:rent"], "entities": {"listing_id": [1], "`+strings.Repeat("k", 5000)+`": [1]}}`)
	if code != http.StatusBadRequest || len(body) > 1000 {
		t.Errorf("unknown 5000-byte join key: %d, %d-byte answer, want 400 with a bounded message", code, len(body))
	}
	code, body = post(t, srv, "/get-online-features", `{"features": ["listing_profile:rent"], "entities": {"listing_id": [`+strings.Repeat("1,", 600_000)+`1]}}`)
	if code != http.StatusRequestEntityTooLarge {
		t.Errorf("1.2 MB body with a 1 MiB limit: %d %s, want 413", code, body)
	}

	// readBody detaches a buffer grown past maxPooledBytes from the pooled one.
	api := NewAPI(testOnline(t), APIOptions{MaxBodyBytes: 8 << 20})
	var buf bytes.Buffer
	big := strings.Repeat("x", 2*maxPooledBytes)
	req := httptest.NewRequest(http.MethodPost, "/get-online-features", strings.NewReader(big))
	got, err := api.readBody(httptest.NewRecorder(), req, &buf)
	if err != nil || string(got) != big {
		t.Fatalf("readBody: %d bytes, %v", len(got), err)
	}
	if buf.Cap() != 0 {
		t.Errorf("the pooled buffer kept %d bytes of a large body", buf.Cap())
	}
	small := `{"a": 1}`
	got, err = api.readBody(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(small)), &buf)
	if err != nil || string(got) != small || buf.Cap() == 0 {
		t.Errorf("readBody of a small body: %q %v, pooled buffer %d bytes (want it kept)", got, err, buf.Cap())
	}
}

// TestErrorsEchoBoundedInput: answers name neither the transport's details
// of a body cut at the body timeout (they named both addresses: "read tcp
// 127.0.0.1:...->127.0.0.1:...: i/o timeout") nor more than 64 bytes of a
// long feature or set name the client sent (they echoed them whole).
func TestErrorsEchoBoundedInput(t *testing.T) {
	api := NewAPI(testOnline(t), APIOptions{Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(server.New(server.Options{Limits: server.Limits{BodyTimeout: 100 * time.Millisecond}}, api).Handler())
	t.Cleanup(srv.Close)

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// One byte of the 100 announced, then nothing: the read deadline passes.
	fmt.Fprintf(conn, "POST /get-online-features HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", srv.Listener.Addr())
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute)) // bounds a hung test only
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a body cut at the body timeout: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "did not arrive in time") || strings.Contains(string(b), "127.0.0.1") || strings.Contains(string(b), "i/o timeout") {
		t.Errorf("body cut at the body timeout = %d %s, want 400 saying it did not arrive in time, naming no address", resp.StatusCode, b)
	}

	long := strings.Repeat("y", 500)
	for _, body := range []string{
		`{"features": ["listing_profile:` + long + `"], "entities": {"listing_id": [1]}}`,
		`{"features": ["` + long + `:rent"], "entities": {"listing_id": [1]}}`,
		`{"feature_service": "` + long + `", "entities": {"listing_id": [1]}}`,
	} {
		code, got := post(t, srv, "/get-online-features", body)
		if code < 400 || code >= 500 || strings.Contains(string(got), strings.Repeat("y", 65)) {
			t.Errorf("%s... = %d %s, want a 4xx echoing at most 64 bytes of the name", body[:40], code, got)
		}
	}
	code, got := post(t, srv, "/push", `{"push_source_name": "`+long+`", "df": {"listing_id": [1]}}`)
	if code < 400 || code >= 500 || strings.Contains(string(got), strings.Repeat("y", 65)) {
		t.Errorf("push to a 500-byte set name = %d %s, want a 4xx echoing at most 64 bytes of it", code, got)
	}
}
