// Command oip is the load generator of bench/serving/oip: Open Inference
// Protocol REST infer of 200 rows x 30 features with one LightGBM model,
// against any OIP server (atrium serve, MLServer), so every server is measured
// by the same client code. run.sh drives it.
//
//	oip check  -url URL -model M -dir DIR     the server's predictions equal LightGBM's (1e-6 relative)?
//	oip run    -url URL -model M -dir DIR -name S (-rate R | -concurrency C) -duration 20s -out results.jsonl
//	oip report -in results.jsonl              Markdown table, Atrium against MLServer per load
//
// DIR holds prepare.py's rows.json and pred.json. The request is JSON: one
// FP64 input tensor [200, 30] named "input-0"; the answer's first output holds
// the 200 probabilities.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/atrium-ml/atrium/bench/internal/load"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: oip check|run|report [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "check":
		err = check(ctx, os.Args[2:])
	case "run":
		err = run(ctx, os.Args[2:])
	case "report":
		err = report(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "oip:", err)
		os.Exit(1)
	}
}

// body is the infer request of rows.
func body(dir string) ([]byte, []float64, error) {
	var rows [][]float64
	if err := readJSON(filepath.Join(dir, "rows.json"), &rows); err != nil {
		return nil, nil, err
	}
	var want []float64
	if err := readJSON(filepath.Join(dir, "pred.json"), &want); err != nil {
		return nil, nil, err
	}
	flat := make([]float64, 0, len(rows)*len(rows[0]))
	for _, r := range rows {
		flat = append(flat, r...)
	}
	b, err := json.Marshal(map[string]any{"id": "bench", "inputs": []map[string]any{{
		"name": "input-0", "datatype": "FP64", "shape": []int{len(rows), len(rows[0])}, "data": flat}}})
	return b, want, err
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// newClient is the load generator's HTTP client. Its connection buffers
// hold a whole request and answer: with net/http's default of 4 KiB, the
// 120 KB body went out in thirty 4 KiB writes (the server woken for each
// part), where Python's clients (requests, tritonclient) send it in one.
func newClient(conns int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute,
		WriteBufferSize: 256 << 10, ReadBufferSize: 64 << 10,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext}}
}

// infer posts the request and returns the answer's first output, checked
// for length n.
func infer(ctx context.Context, c *http.Client, url string, b []byte, n int) ([]float64, []byte, error) {
	raw, err := load.PostJSON(ctx, c, url, b)
	if err != nil {
		return nil, nil, err
	}
	out, err := outputs(raw, n)
	return out, raw, err
}

// outputs decodes an answer's first output, checked for length n.
func outputs(raw []byte, n int) ([]float64, error) {
	var ans struct {
		Outputs []struct {
			Name string    `json:"name"`
			Data []float64 `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return nil, fmt.Errorf("answer: %w", err)
	}
	if len(ans.Outputs) == 0 || len(ans.Outputs[0].Data) != n {
		return nil, fmt.Errorf("answer has no output of %d values: %.300s", n, raw)
	}
	return ans.Outputs[0].Data, nil
}

type common struct {
	url, model, dir *string
}

func commonFlags(fs *flag.FlagSet) common {
	return common{fs.String("url", "", "server URL"), fs.String("model", "bench-oip", "model name"), fs.String("dir", "", "prepare.py's directory")}
}

func (c common) endpoint() string {
	return strings.TrimRight(*c.url, "/") + "/v2/models/" + *c.model + "/infer"
}

// check compares one answer with LightGBM's predictions.
func check(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("check", flag.ExitOnError)
	c := commonFlags(fs)
	_ = fs.Parse(args)
	b, want, err := body(*c.dir)
	if err != nil {
		return err
	}
	got, _, err := infer(ctx, newClient(1), c.endpoint(), b, len(want))
	if err != nil {
		return fmt.Errorf("%s: %w", *c.url, err)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-6*math.Max(1, math.Abs(want[i])) {
			return fmt.Errorf("%s: prediction %d is %v, LightGBM's %v", *c.url, i, got[i], want[i])
		}
	}
	fmt.Printf("%s: %d predictions equal LightGBM's to 1e-6\n", *c.url, len(want))
	return nil
}

// result is a run's figures with what was measured.
type result struct {
	Server string `json:"server"`
	load.Result
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	c := commonFlags(fs)
	name := fs.String("name", "", "server name for the report")
	var lf load.Flags
	lf.Register(fs, 100)
	_ = fs.Parse(args)
	b, want, err := body(*c.dir)
	if err != nil {
		return err
	}
	conns := max(lf.Concurrency, 256)
	client, url := newClient(conns), c.endpoint()
	_, first, err := infer(ctx, client, url, b, len(want))
	if err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	// Every answer to the same request is the first one, byte for byte, on
	// both servers (the request names its id): an equal answer is checked
	// by comparing bytes, and only another one is decoded. Decoding 200
	// numbers per answer with encoding/json was a fifth of the load
	// generator's CPU time, taken from the cores the server runs on.
	res := result{Server: *name, Result: load.Run(ctx, lf.Options, func(ctx context.Context, _ int) error {
		raw, err := load.PostJSON(ctx, client, url, b)
		if err != nil || bytes.Equal(raw, first) {
			return err
		}
		_, err = outputs(raw, len(want))
		return err
	})}
	return lf.Done(*name, res, res.Result)
}

// report prints results.jsonl as a Markdown table, one row per load: each
// server's throughput (requests and rows per second) and p99, and the ratios
// of the server to the peer (MLServer): throughput, and the peer's p99 over
// the server's.
func report(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	in := fs.String("in", "", "results file (JSON lines of run)")
	server := fs.String("server", "atrium", "the server measured")
	peer := fs.String("peer", "mlserver", "the server it is compared with")
	_ = fs.Parse(args)
	raw, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	type pair struct{ server, peer *result }
	loads := map[string]*pair{}
	var order []string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var r result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return fmt.Errorf("%s: %w", *in, err)
		}
		name := fmt.Sprintf("closed loop, %d clients", r.Concurrency)
		if r.Mode == "open" {
			name = fmt.Sprintf("open loop, %g req/s", r.TargetRate)
		}
		if loads[name] == nil {
			loads[name] = &pair{}
			order = append(order, name)
		}
		switch r.Server {
		case *server:
			loads[name].server = &r
		case *peer:
			loads[name].peer = &r
		}
	}
	cell := func(r *result) string {
		if r == nil {
			return "- | - |"
		}
		errs := ""
		if r.Errors > 0 {
			errs = fmt.Sprintf(" (%d errors)", r.Errors)
		}
		return fmt.Sprintf("%.0f (%.0f rows/s)%s | %.2f |", r.Rate, r.Rate*200, errs, r.P99)
	}
	fmt.Printf("| load | %s req/s | %s p99 ms | %s req/s | %s p99 ms | throughput ratio | p99 ratio (%s / %s) |\n", *server, *server, *peer, *peer, *peer, *server)
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, name := range order {
		p := loads[name]
		tr, pr := "-", "-"
		if p.server != nil && p.peer != nil && p.peer.Rate > 0 && p.server.P99 > 0 {
			tr, pr = fmt.Sprintf("%.1fx", p.server.Rate/p.peer.Rate), fmt.Sprintf("%.1fx", p.peer.P99/p.server.P99)
		}
		fmt.Printf("| %s | %s %s %s | %s |\n", name, cell(p.server), cell(p.peer), tr, pr)
	}
	return nil
}
