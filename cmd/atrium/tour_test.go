package main

// The README's tour and the command blocks of docs/quickstart.md, run from the
// files' own text: a command that fails, or a line this test does not know how
// to run, fails the test, so the documents cannot drift from the code.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/client"
	"github.com/atrium-ml/atrium/internal/demo"
)

// notRunHere are lines of the documents this test recognises but does not
// run, and why. Every other line must be a command the tour runner knows.
var notRunHere = map[string]string{
	"go run ./cmd/atrium demo":             "TestDemoEndToEnd runs the demo, on the tiny size",
	"go build -o /tmp/atrium ./cmd/atrium": "the benchmark reproduction's binary: the tour runs atrium in-process",
	"python bench/demo/lightgbm_ranking.py /tmp/atrium --size medium --test-days 7": "a benchmark reproduction (medium size, LightGBM training: minutes)",
}

// shBlocks returns the lines of the ```sh blocks of the markdown file at path,
// block by block, within the section that starts with the heading section
// (the whole file when section is ""). A line ending in a backslash continues
// on the next.
func shBlocks(t *testing.T, path, section string) [][]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	if section != "" {
		i := strings.Index(text, "\n"+section+"\n")
		if i < 0 {
			t.Fatalf("%s has no section %q", path, section)
		}
		text = text[i+1:]
		if j := strings.Index(text[len(section):], "\n## "); j >= 0 {
			text = text[:len(section)+j]
		}
	}
	var blocks [][]string
	var cur []string
	in := false
	for line := range strings.SplitSeq(text, "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```sh":
			in, cur = true, nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks = append(blocks, cur)
		case in:
			if n := len(cur); n > 0 && strings.HasSuffix(cur[n-1], `\`) {
				cur[n-1] = strings.TrimSuffix(cur[n-1], `\`) + " " + strings.TrimSpace(line)
			} else {
				cur = append(cur, line)
			}
		}
	}
	if in {
		t.Fatalf("%s: a ```sh block is not closed", path)
	}
	return blocks
}

// comment is a shell comment after a command, or a whole comment line.
var comment = regexp.MustCompile(`(^|\s+)#.*$`)

// tourRunner runs documented shell lines in-process, from a fresh temporary
// working directory.
type tourRunner struct {
	t   *testing.T
	ctx context.Context
	// initOut is what the last `atrium init` printed.
	initOut string
	// server is `atrium serve` running in the background, if any.
	server *backgroundServe
	ran    []string
}

func newTourRunner(t *testing.T) *tourRunner {
	t.Chdir(t.TempDir())
	r := &tourRunner{t: t, ctx: context.Background()}
	t.Cleanup(func() {
		if r.server != nil {
			r.server.stop(t)
		}
	})
	return r
}

// line runs one documented line: commands joined by &&, a comment allowed.
func (r *tourRunner) line(line string) {
	r.t.Helper()
	line = strings.TrimSpace(comment.ReplaceAllString(line, ""))
	if line == "" {
		return
	}
	if why, ok := notRunHere[line]; ok {
		r.t.Logf("not run here: %s (%s)", line, why)
		return
	}
	for part := range strings.SplitSeq(line, " && ") {
		r.command(strings.Fields(part))
	}
}

func (r *tourRunner) command(f []string) {
	t := r.t
	t.Helper()
	r.ran = append(r.ran, strings.Join(f, " "))
	switch {
	case len(f) == 2 && f[0] == "cd":
		t.Chdir(f[1])
	case len(f) == 3 && f[0] == "atrium" && f[1] == "serve" && f[2] == "&":
		if r.server != nil {
			t.Fatal("a second `atrium serve &` while the first runs")
		}
		r.server = startServe(t, r.ctx)
	case len(f) == 2 && f[0] == "kill" && f[1] == "%1":
		if r.server == nil {
			t.Fatal("`kill %1` with no `atrium serve &` running")
		}
		r.server.stop(t)
		r.server = nil
	case len(f) >= 2 && f[0] == "atrium" && f[len(f)-1] != "&":
		var stdout, stderr bytes.Buffer
		if code := run(r.ctx, f[1:], &stdout, &stderr); code != exitOK {
			t.Fatalf("%s: exit code %d\nstdout:\n%s\nstderr:\n%s", strings.Join(f, " "), code, stdout.String(), stderr.String())
		}
		if f[1] == "init" {
			r.initOut = stdout.String()
		}
	case len(f) == 3 && strings.HasPrefix(f[0], "MLFLOW_TRACKING_URI=") && f[1] == "python" && f[2] == "train.py":
		r.trainPy(strings.TrimPrefix(f[0], "MLFLOW_TRACKING_URI="))
	default:
		t.Fatalf("the test does not know how to run %q: teach tour_test.go, or list it in notRunHere with the reason", strings.Join(f, " "))
	}
}

// trainPy runs train.py with the real mlflow client against the background
// server (the documented URL names the default address; the test's server
// listens on a free port), then checks the run it logged through the
// tracking API.
func (r *tourRunner) trainPy(documentedURL string) {
	t := r.t
	t.Helper()
	if documentedURL != "http://"+demo.TourAddr {
		t.Fatalf("MLFLOW_TRACKING_URI=%s: the tour's server listens on http://%s", documentedURL, demo.TourAddr)
	}
	py := os.Getenv("ATRIUM_TEST_PYTHON")
	if py == "" {
		t.Logf("skipped `python train.py`: ATRIUM_TEST_PYTHON is not set (. .ci/python.sh creates a virtualenv with mlflow)")
		return
	}
	if r.server == nil {
		t.Fatal("`python train.py` with no `atrium serve &` running")
	}
	cmd := exec.CommandContext(r.ctx, py, "train.py")
	cmd.Env = append(os.Environ(), "MLFLOW_TRACKING_URI="+r.server.url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python train.py: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`run ([0-9a-f]{32}): ndcg_at_10 ([0-9.]+) on (\d+) test sessions`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("python train.py did not report its run:\n%s", out)
	}
	// The run is in Atrium's tracking store, with the metric and the model file.
	var got struct {
		Run struct {
			Data struct {
				Metrics []struct {
					Key   string  `json:"key"`
					Value float64 `json:"value"`
				} `json:"metrics"`
			} `json:"data"`
		} `json:"run"`
	}
	getJSON(t, r.server.url+"/api/2.0/mlflow/runs/get?run_id="+string(m[1]), &got)
	found := false
	for _, mt := range got.Run.Data.Metrics {
		if mt.Key == "ndcg_at_10" && fmt.Sprintf("%.4f", mt.Value) == string(m[2]) {
			found = true
		}
	}
	if !found {
		t.Errorf("run %s's metrics %+v lack ndcg_at_10 %s", m[1], got.Run.Data.Metrics, m[2])
	}
	var arts struct {
		Files []struct {
			Path string `json:"path"`
		} `json:"files"`
	}
	getJSON(t, r.server.url+"/api/2.0/mlflow/artifacts/list?run_id="+string(m[1]), &arts)
	if len(arts.Files) != 1 || arts.Files[0].Path != "ranker.txt" {
		t.Errorf("run %s's artifacts %+v, want ranker.txt", m[1], arts.Files)
	}
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, out) != nil {
		t.Fatalf("GET %s: %s %s", url, resp.Status, body)
	}
}

// backgroundServe is `atrium serve` running in a goroutine, as `atrium serve &`.
type backgroundServe struct {
	url    string
	cancel context.CancelFunc
	done   chan int
	stderr *syncBuffer
}

// startServe starts `atrium serve` on a free loopback port (ATRIUM_ADDR, so
// that the documented command line runs unchanged) and returns once it
// answers /readyz.
func startServe(t *testing.T, ctx context.Context) *backgroundServe {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("ATRIUM_ADDR", addr)
	ctx, cancel := context.WithCancel(ctx)
	s := &backgroundServe{url: "http://" + addr, cancel: cancel, done: make(chan int, 1), stderr: &syncBuffer{}}
	go func() { s.done <- run(ctx, []string{"serve"}, io.Discard, s.stderr) }()
	c, err := client.New(s.url)
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the server to listen: readiness, not a time, is what is
	// checked; the deadline only stops a server that never comes up.
	deadline := time.Now().Add(2 * time.Minute)
	for c.Ready(ctx) != nil {
		select {
		case code := <-s.done:
			t.Fatalf("atrium serve ended with exit code %d before answering:\n%s", code, s.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("atrium serve did not answer /readyz at %s:\n%s", s.url, s.stderr.String())
		}
	}
	return s
}

func (s *backgroundServe) stop(t *testing.T) {
	s.cancel()
	if code := <-s.done; code != exitOK {
		t.Errorf("atrium serve ended with exit code %d:\n%s", code, s.stderr.String())
	}
}

// TestREADMETour runs the README's tour as written, on the project `atrium
// init` makes, and checks that init printed the same commands.
func TestREADMETour(t *testing.T) {
	blocks := shBlocks(t, filepath.Join("..", "..", "README.md"), "## A tour of the CLI")
	if len(blocks) != 1 || len(blocks[0]) < 2 {
		t.Fatalf("the README's tour section has %d ```sh blocks, want one", len(blocks))
	}
	tour := blocks[0]
	r := newTourRunner(t)
	for _, line := range tour {
		r.line(line)
	}
	if r.initOut == "" {
		t.Fatal("the tour does not start with atrium init")
	}
	// init prints every step after itself, as the tour has it (but the
	// line that stops the server, which init does not start).
	var printed []string
	_, next, _ := strings.Cut(r.initOut, "\nnext, inside ")
	for _, l := range strings.Split(next, "\n")[1:] {
		if l = strings.TrimSpace(l); l != "" {
			printed = append(printed, l)
		}
	}
	var documented []string
	for _, l := range tour[1:] {
		if l = strings.TrimSpace(comment.ReplaceAllString(l, "")); l != "" && l != "kill %1" {
			documented = append(documented, l)
		}
	}
	if strings.Join(printed, "\n") != strings.Join(documented, "\n") {
		t.Errorf("atrium init printed the steps\n%s\nthe README's tour has\n%s", strings.Join(printed, "\n"), strings.Join(documented, "\n"))
	}
	// What the tour made is there: the model, its scores on every test impression.
	scores, err := os.ReadFile("scores.csv")
	if err != nil {
		t.Fatal(err)
	}
	spine := readCSVFile(t, filepath.Join("data", demo.TestSpineFile))
	if n := strings.Count(string(scores), "\n") - 1; n != len(spine) || len(spine) == 0 {
		t.Errorf("scores.csv has %d rows, the test spine %d", n, len(spine))
	}
}

// TestQuickstartCommands runs every ```sh block of docs/quickstart.md, each
// in a fresh directory.
func TestQuickstartCommands(t *testing.T) {
	blocks := shBlocks(t, filepath.Join("..", "..", "docs", "quickstart.md"), "")
	if len(blocks) == 0 {
		t.Fatal("docs/quickstart.md has no ```sh blocks")
	}
	for i, block := range blocks {
		t.Run(fmt.Sprint("block", i+1), func(t *testing.T) {
			r := newTourRunner(t)
			for _, line := range block {
				r.line(line)
			}
		})
	}
}
