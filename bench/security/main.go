// Command security measures how `atrium serve` holds up against hostile
// clients and a failing online store (issue 10, items 4 and 5):
//
//   - memory: the server's peak RSS (VmHWM) while 16 clients send a body of
//     the feature API's maximum size at once, and while 16 send bodies over
//     it;
//   - outage: with the online store (a redis-server this program owns)
//     paused with SIGSTOP, then killed, the time each /get-online-features
//     and /readyz takes to answer, and the time to serve again once Redis is
//     back.
//
// It starts the atrium binary it is given (-atrium) on the repository -repo
// (features applied, see run.sh) once per scenario, so that each peak RSS is
// that scenario's, and prints one JSON object per measurement on stdout.
// run.sh runs it against this tree's binary and a baseline binary.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type result struct {
	Label    string         `json:"label"`
	Scenario string         `json:"scenario"`
	Values   map[string]any `json:"values"`
}

var (
	atriumBin = flag.String("atrium", "atrium", "atrium binary to measure")
	repo      = flag.String("repo", "", "repository with features applied")
	label     = flag.String("label", "atrium", "name of the binary in the output")
	clients   = flag.Int("clients", 16, "concurrent clients of the memory scenario")
	bodyMiB   = flag.Int("body-mib", 31, "body size of the memory scenario, MiB (the feature API's limit is 32)")
	overMiB   = flag.Int("over-mib", 50, "body size of the oversize scenario, MiB")
	requests  = flag.Int("requests", 20, "requests per outage phase")
	patience  = flag.Duration("patience", 15*time.Second, "client timeout of the outage scenario (a hanging server is recorded as this)")
	scenarios = flag.String("scenarios", "memory,oversize,outage", "scenarios to run")
)

func main() {
	flag.Parse()
	if *repo == "" {
		log.Fatal("-repo is required")
	}
	enc := json.NewEncoder(os.Stdout)
	for _, sc := range strings.Split(*scenarios, ",") {
		var vals map[string]any
		var err error
		switch sc {
		case "memory":
			vals, err = memory(*bodyMiB)
		case "oversize":
			vals, err = memory(*overMiB)
		case "outage":
			vals, err = outage()
		default:
			err = fmt.Errorf("unknown scenario %q", sc)
		}
		if err != nil {
			log.Fatalf("%s: %s: %v", *label, sc, err)
		}
		_ = enc.Encode(result{Label: *label, Scenario: sc, Values: vals})
	}
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// server is a running `atrium serve`.
type server struct {
	cmd  *exec.Cmd
	base string
}

func startServer(env ...string) (*server, error) {
	addr := "127.0.0.1:" + strconv.Itoa(freePort())
	cmd := exec.Command(*atriumBin, "--repo", *repo, "serve", "--addr", addr)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		if u, ok := strings.CutPrefix(lines.Text(), "atrium serving on "); ok {
			go func() { _, _ = io.Copy(io.Discard, stderr) }()
			return &server{cmd: cmd, base: u}, nil
		}
	}
	_ = cmd.Wait()
	return nil, fmt.Errorf("atrium serve exited without listening")
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Wait()
}

// peakRSS is the process's peak resident set (VmHWM), in MiB.
func (s *server) peakRSS() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return float64(kb) / 1024
		}
	}
	return -1
}

// featureBody is a get-online-features request of about size bytes: one
// long column of listing ids (valid JSON, too many entities to serve).
func featureBody(size int) []byte {
	var b bytes.Buffer
	b.Grow(size + 64)
	b.WriteString(`{"features": ["listing_profile:rent"], "entities": {"listing_id": [1`)
	for b.Len() < size-4 {
		b.WriteString(",1")
	}
	b.WriteString("]}}")
	return b.Bytes()
}

// memory sends clients bodies of mib MiB at once, with an embedded online
// store, and reports the server's peak RSS before and after and the answers.
func memory(mib int) (map[string]any, error) {
	srv, err := startServer()
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	body := featureBody(mib << 20)
	// Warm up: one small request, so the baseline RSS includes the handlers.
	if resp, err := http.Post(srv.base+"/get-online-features", "application/json", strings.NewReader(`{"features": ["listing_profile:rent"], "entities": {"listing_id": [1]}}`)); err == nil {
		resp.Body.Close()
	}
	before := srv.peakRSS()
	codes := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range *clients {
		wg.Go(func() {
			code := "error"
			resp, err := http.Post(srv.base+"/get-online-features", "application/json", bytes.NewReader(body))
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				code = strconv.Itoa(resp.StatusCode)
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return map[string]any{
		"clients": *clients, "body_mib": mib, "codes": codes, "seconds": time.Since(start).Seconds(),
		"peak_rss_before_mib": before, "peak_rss_mib": srv.peakRSS(),
	}, nil
}

// redisServer is a redis-server this program owns.
type redisServer struct {
	port int
	cmd  *exec.Cmd
}

func (r *redisServer) start() error {
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		return err
	}
	for range 200 {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(r.port)); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("redis-server did not start")
}

func (r *redisServer) kill() {
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
}

// timed does one request and returns its status (0: no answer within the
// client's patience) and duration.
func timed(client *http.Client, method, url, body string) (int, time.Duration) {
	req, _ := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	start := time.Now()
	resp, err := client.Do(req)
	d := time.Since(start)
	if err != nil {
		return 0, d
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, d
}

type phase struct {
	Codes map[int]int `json:"codes"`
	P50ms float64     `json:"p50_ms"`
	P99ms float64     `json:"p99_ms"`
	Maxms float64     `json:"max_ms"`
}

func measure(client *http.Client, n int, method, url, body string) phase {
	p := phase{Codes: map[int]int{}}
	ds := make([]float64, 0, n)
	for range n {
		code, d := timed(client, method, url, body)
		p.Codes[code]++
		ds = append(ds, float64(d.Microseconds())/1000)
		if code == 0 {
			break // it hangs: once is enough to know
		}
	}
	slices.Sort(ds)
	p.P50ms, p.P99ms, p.Maxms = ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)], ds[len(ds)-1]
	return p
}

// recovery polls until a read answers 200 and returns how long it took.
func recovery(client *http.Client, url, body string) float64 {
	start := time.Now()
	for time.Since(start) < 60*time.Second {
		if code, _ := timed(client, "POST", url, body); code == 200 {
			return float64(time.Since(start).Microseconds()) / 1000
		}
		time.Sleep(10 * time.Millisecond)
	}
	return -1
}

// outage measures answers with the online store paused, then killed.
func outage() (map[string]any, error) {
	rd := &redisServer{port: freePort()}
	if err := rd.start(); err != nil {
		return nil, err
	}
	defer func() {
		_ = rd.cmd.Process.Signal(syscall.SIGCONT)
		rd.kill()
	}()
	srv, err := startServer("ATRIUM_ONLINE=redis://127.0.0.1:" + strconv.Itoa(rd.port) + "/0")
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	client := &http.Client{Timeout: *patience}
	read := srv.base + "/get-online-features"
	const body = `{"features": ["listing_profile:rent"], "entities": {"listing_id": [1]}}`
	out := map[string]any{"patience_s": patience.Seconds()}
	out["healthy_read"] = measure(client, *requests, "POST", read, body)

	_ = rd.cmd.Process.Signal(syscall.SIGSTOP)
	out["paused_read"] = measure(client, *requests, "POST", read, body)
	out["paused_readyz"] = measure(client, *requests, "GET", srv.base+"/readyz", "")
	_ = rd.cmd.Process.Signal(syscall.SIGCONT)
	out["resumed_recovery_ms"] = recovery(client, read, body)

	rd.kill()
	out["stopped_read"] = measure(client, *requests, "POST", read, body)
	out["stopped_readyz"] = measure(client, *requests, "GET", srv.base+"/readyz", "")
	if err := rd.start(); err != nil {
		return nil, err
	}
	out["restarted_recovery_ms"] = recovery(client, read, body)
	return out, nil
}
