package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/proctest"
)

// pgProcess is a PostgreSQL server the test owns (never the shared CI one):
// the test stops, pauses and restarts it, signalling the postmaster and
// every process it forked.
type pgProcess struct {
	t         *testing.T
	bin, data string
	port      int
	cred      *syscall.Credential
	cmd       *exec.Cmd
}

// pgBinDir finds PostgreSQL's bin directory the way .ci/services.sh does:
// the newest /usr/lib/postgresql/<version>/bin.
func pgBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	best, bestV := "", -1
	for _, d := range dirs {
		v, err := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		if err == nil && v > bestV {
			best, bestV = d, v
		}
	}
	if best == "" {
		if p, err := exec.LookPath("postgres"); err == nil {
			return filepath.Dir(p)
		}
	}
	return best
}

// startPostgres initialises a cluster in a temporary directory and starts it
// on a free port, or skips the test when PostgreSQL is not installed.
func startPostgres(t *testing.T) *pgProcess {
	t.Helper()
	bin := pgBinDir()
	if bin == "" {
		t.Skip("PostgreSQL not found (.ci/services.sh installs it under /usr/lib/postgresql/*/bin): skipping the failing-backend test")
	}
	root, err := os.MkdirTemp("", "atrium-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	p := &pgProcess{t: t, bin: bin, data: filepath.Join(root, "data")}
	if err := os.Mkdir(p.data, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: the cluster belongs to the
		// postgres user, as in .ci/services.sh.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("running as root without a postgres user (%v): skipping", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chmod(root, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p.data, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", p.data, "-A", "trust", "-U", "postgres")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	p.start()
	t.Cleanup(func() {
		if p.cmd != nil {
			p.group(syscall.SIGCONT)
			p.stop()
		}
	})
	return p
}

func (p *pgProcess) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

func (p *pgProcess) start() {
	p.t.Helper()
	p.cmd = exec.Command(filepath.Join(p.bin, "postgres"), "-D", p.data, "-p", strconv.Itoa(p.port), "-k", p.data,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off")
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start postgres: %v", err)
	}
	ready := filepath.Join(p.bin, "pg_isready")
	for range 300 {
		if exec.Command(ready, "-h", "127.0.0.1", "-p", strconv.Itoa(p.port), "-q").Run() == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("postgres on port %d did not become ready", p.port)
}

// children lists the processes the postmaster forked (its backends and
// helpers: each is a session of its own, so a process-group signal misses
// them).
func (p *pgProcess) children() []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold spaces, ppid follows
		// the last ')'.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(p.cmd.Process.Pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// group signals the postmaster and every process it forked. The postmaster
// first: once it is stopped it forks nothing the listing could miss.
func (p *pgProcess) group(sig syscall.Signal) {
	if err := syscall.Kill(p.cmd.Process.Pid, sig); err != nil {
		p.t.Fatalf("signal postgres: %v", err)
	}
	for _, pid := range p.children() {
		_ = syscall.Kill(pid, sig)
	}
}

// pause stops the server and its backends (SIGSTOP) and returns once the
// kernel shows every one of them stopped.
func (p *pgProcess) pause() {
	p.group(syscall.SIGSTOP)
	proctest.WaitStopped(p.t, append([]int{p.cmd.Process.Pid}, p.children()...)...)
}

// stop kills the server and its backends at once (a crash, not a clean
// shutdown), and waits until they are gone so a restart can take the port
// and the shared memory.
func (p *pgProcess) stop() {
	kids := p.children()
	p.group(syscall.SIGKILL)
	_ = p.cmd.Wait()
	for _, pid := range kids {
		for range 200 {
			if syscall.Kill(pid, 0) != nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	p.cmd = nil
}

// TestServeWithMetaDBFailing: `atrium serve` on a PostgreSQL metadata DB
// that is paused (SIGSTOP), then killed and restarted, under load. /readyz
// reports it down, MLflow requests end at the request deadline instead of
// hanging, and everything serves again by itself once it is back.
func TestServeWithMetaDBFailing(t *testing.T) {
	pg := startPostgres(t)
	dir := t.TempDir()
	yaml := "server:\n  store_timeout: 300ms\n  request_timeout: 2s\n"
	if err := os.WriteFile(filepath.Join(dir, "atrium.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ATRIUM_META", pg.url())
	base := startServer(t, dir)
	// A guard against a hang (the defect this test is about), not a timing
	// assertion: every answer is expected long before it.
	client := &http.Client{Timeout: 30 * time.Second}
	get := func(path string) (int, string) {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const experiment = "/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default"
	healthy := func(phase string) {
		t.Helper()
		if code, body := get(experiment); code != 200 || !strings.Contains(body, `"name":"Default"`) {
			t.Errorf("%s: get experiment = %d %s", phase, code, body)
		}
		if code, body := get("/readyz"); code != 200 {
			t.Errorf("%s: readyz = %d %s", phase, code, body)
		}
	}
	waitReady := func(phase string) {
		t.Helper()
		for range 300 {
			if code, _ := get("/readyz"); code == 200 {
				// The pool may hold connections broken by the fault: the
				// first queries on them fail, later ones reconnect.
				for range 100 {
					if code, _ := get(experiment); code == 200 {
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("%s: the server did not recover", phase)
	}
	// load keeps clients on the MLflow API while a fault lasts: every request
	// is answered (200, or an error status), none hangs.
	load := func(stop <-chan struct{}) *sync.WaitGroup {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if code, body := get(experiment); code == 0 || code != 200 && code < 500 {
						t.Errorf("under load: %d %s", code, body)
						return
					}
				}
			})
		}
		return &wg
	}
	fault := func(phase string) {
		t.Helper()
		// Each check is answered within the store timeout (300ms).
		for range 3 {
			if code, body := get("/readyz"); code != 503 || strings.Contains(body, strconv.Itoa(pg.port)) {
				t.Errorf("%s: readyz = %d %s, want 503 without the address", phase, code, body)
			}
		}
		start := time.Now()
		code, body := get(experiment)
		t.Logf("%s: get experiment answered %d in %s: %s", phase, code, time.Since(start).Round(time.Millisecond), strings.TrimSpace(body))
		if code != 503 || !strings.Contains(body, "TEMPORARILY_UNAVAILABLE") || strings.Contains(body, strconv.Itoa(pg.port)) {
			t.Errorf("%s: get experiment = %d %s, want 503 TEMPORARILY_UNAVAILABLE without the address", phase, code, body)
		}
	}

	healthy("before")

	stop := make(chan struct{})
	wg := load(stop)
	pg.pause()
	fault("paused")
	pg.group(syscall.SIGCONT)
	waitReady("resumed")
	close(stop)
	wg.Wait()
	healthy("resumed")

	stop = make(chan struct{})
	wg = load(stop)
	pg.stop()
	fault("stopped")
	pg.start()
	waitReady("restarted")
	close(stop)
	wg.Wait()
	healthy("restarted")
}
