package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/client"
)

// mainEnv, set to 1, makes the test binary run the CLI instead of the tests:
// a test starts a real `atrium` process (a server beside the test's own
// commands) without building a second binary.
const mainEnv = "ATRIUM_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// startServer runs `atrium --repo dir serve` in a process of its own on a free
// port and returns its base URL; the process is stopped (SIGTERM, as a user
// would) when the test ends.
func startServer(t *testing.T, dir string) string {
	t.Helper()
	base, _ := startServerGRPC(t, dir)
	return base
}

// grpcServingPrefix starts the line serve prints once its gRPC listener is
// open (serving.grpc_addr), before the HTTP one.
const grpcServingPrefix = "atrium serving the Open Inference Protocol over gRPC on "

// startServerGRPC is startServer, also returning the gRPC listener's
// address ("" when the project sets no serving.grpc_addr).
func startServerGRPC(t *testing.T, dir string) (base, grpcAddr string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "--repo", dir, "--log-level", "info", "serve", "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	// The server says where it listens on stderr; the rest of its log is
	// drained so that it never blocks on a full pipe.
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		if addr, ok := strings.CutPrefix(lines.Text(), grpcServingPrefix); ok {
			grpcAddr = addr
		}
		if addr, ok := strings.CutPrefix(lines.Text(), "atrium serving on "); ok {
			go func() { _, _ = io.Copy(io.Discard, stderr) }()
			return addr, grpcAddr
		}
	}
	t.Fatalf("atrium serve exited without listening (%v)", lines.Err())
	return "", ""
}

// TestMaterializeThroughServerProcess: while `atrium serve` holds the
// embedded online store in another process, `atrium materialize` goes through
// it (the store's lock is recognised as such, not by its message), and the
// server's /metrics carries the online store's metrics.
func TestMaterializeThroughServerProcess(t *testing.T) {
	dir := exampleRepo(t)
	mustAtrium(t, dir, "apply")
	// Materialized before it is run: said so, and no resume point recorded
	// (the materialization through the server below writes its rows).
	out := mustAtrium(t, dir, "materialize", "--end", "2024-01-04", "listing_profile")
	if !strings.Contains(out, "listing_profile: no offline data up to 2024-01-04T00:00:00Z") {
		t.Errorf("materialize before run: %q", out)
	}
	mustAtrium(t, dir, "run", "listing_profile", "--start", "2024-01-01", "--end", "2024-01-05")

	url := startServer(t, dir)
	t.Setenv("ATRIUM_ADDR", strings.TrimPrefix(url, "http://"))
	out = mustAtrium(t, dir, "materialize", "--end", "2024-01-04", "listing_profile")
	if !strings.Contains(out, "listing_profile: 2 keys written") {
		t.Fatalf("materialize while the server holds the store: %q", out)
	}

	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.GetOnlineFeatures(ctx, client.OnlineFeaturesRequest{
		Features: []string{"listing_profile:rent"},
		Entities: new(client.Columns).Int64("listing_id", 1, 2, 3),
	})
	if err != nil {
		t.Fatal(err)
	}
	if rent, _ := resp.Column("rent"); rent.Values[0] != 1300.0 || rent.Statuses[2] != client.StatusNotFound {
		t.Errorf("rent served after materializing through the server: %v %v", rent.Values, rent.Statuses)
	}

	r, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	metrics, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`atrium_online_lookups_total{result="outside_max_age",set="listing_profile"} 2`,
		`atrium_online_lookups_total{result="not_found",set="listing_profile"} 1`,
		`atrium_http_requests_total{code="200",route="POST /materialize-incremental"} 1`,
		// The Pebble store's: the three keys read once, none from its row cache.
		"atrium_online_row_cache_misses_total 3",
		"atrium_online_row_cache_hits_total 0",
		"atrium_online_pebble_block_cache_hits_total ",
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics of atrium serve lacks %s", want)
		}
	}
}
