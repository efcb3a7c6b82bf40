// Command online is the online-serving benchmark harness: it generates HTTP
// load in Feast's wire format against any feature server (atrium serve or
// feast serve), so both are measured by the same load generator, and checks
// that they give the same answers. bench/online/run.sh drives it.
//
//	online compare -a URL -b URL                               same answers from two servers?
//	online run     -url URL -entities 1 -rate 1000 -duration 20s -out results.jsonl
//	online report  -in results.jsonl                          Markdown table, Atrium vs Feast
//	online redis-clear -url redis://... -prefix P             delete the keys a run left
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/rueidis"

	"github.com/atrium-ml/atrium/bench/internal/load"
)

// The benchmark's feature set: listing_stats keyed by listing_id (int64),
// features f00..f49 (gen_data.py and project.sh define it for Feast and Atrium).
const setName = "listing_stats"

func featureName(f int) string { return fmt.Sprintf("f%02d", f) }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: online compare|run|report|redis-clear [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "compare":
		err = compare(ctx, os.Args[2:])
	case "run":
		err = runLoad(ctx, os.Args[2:])
	case "report":
		err = report(os.Args[2:])
	case "redis-clear":
		err = redisClear(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// requestBody is a get-online-features body for entity ids.
func requestBody(ids []int64, features int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"features":[`)
	for f := range features {
		if f > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"%s:%s"`, setName, featureName(f))
	}
	b.WriteString(`],"entities":{"listing_id":[`)
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	b.WriteString(`]}}`)
	return b.Bytes()
}

// bodies pre-builds n request bodies of random ids in [0, keys) plus a few
// (one in 50) that do not exist.
func bodies(n, entities, features, keys int, seed uint64) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([][]byte, n)
	for i := range out {
		ids := make([]int64, entities)
		for j := range ids {
			ids[j] = int64(rng.IntN(keys + keys/50))
		}
		out[i] = requestBody(ids, features)
	}
	return out
}

type response struct {
	Metadata struct {
		FeatureNames []string `json:"feature_names"`
	} `json:"metadata"`
	Results []struct {
		Values          []any    `json:"values"`
		Statuses        []string `json:"statuses"`
		EventTimestamps []string `json:"event_timestamps"`
	} `json:"results"`
}

// compare sends the same requests to two servers and checks their answers
// agree: names, values (floats to 1e-9), statuses and event timestamps.
func compare(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("compare", flag.ExitOnError)
	a := fs.String("a", "", "first server URL")
	b := fs.String("b", "", "second server URL")
	keys := fs.Int("keys", 10_000, "keys loaded")
	features := fs.Int("features", 50, "features per request")
	_ = fs.Parse(args)
	c := &http.Client{Timeout: 30 * time.Second}
	cells := 0
	for i, body := range bodies(20, 20, *features, *keys, 99) {
		var ra, rb response
		for _, x := range []struct {
			url string
			out *response
		}{{*a, &ra}, {*b, &rb}} {
			raw, err := load.PostJSON(ctx, c, x.url+"/get-online-features", body)
			if err != nil {
				return fmt.Errorf("%s: %w", x.url, err)
			}
			if err := json.Unmarshal(raw, x.out); err != nil {
				return fmt.Errorf("%s: %w", x.url, err)
			}
		}
		// Feast does not keep the requested feature order: match columns by name.
		na, nb := slices.Sorted(slices.Values(ra.Metadata.FeatureNames)), slices.Sorted(slices.Values(rb.Metadata.FeatureNames))
		if !slices.Equal(na, nb) {
			return fmt.Errorf("request %d: feature names differ:\n%v\n%v", i, ra.Metadata.FeatureNames, rb.Metadata.FeatureNames)
		}
		for col, name := range ra.Metadata.FeatureNames {
			va, vb := ra.Results[col], rb.Results[slices.Index(rb.Metadata.FeatureNames, name)]
			for row := range va.Values {
				if !sameValue(va.Values[row], vb.Values[row]) || va.Statuses[row] != vb.Statuses[row] ||
					va.EventTimestamps[row] != vb.EventTimestamps[row] {
					return fmt.Errorf("request %d, %s row %d: %v %s %s vs %v %s %s", i, name, row,
						va.Values[row], va.Statuses[row], va.EventTimestamps[row], vb.Values[row], vb.Statuses[row], vb.EventTimestamps[row])
				}
				cells++
			}
		}
	}
	fmt.Printf("compare: %s and %s agree on %d cells (values, statuses, event timestamps)\n", *a, *b, cells)
	return nil
}

func sameValue(x, y any) bool {
	fx, okx := x.(float64)
	fy, oky := y.(float64)
	if okx && oky {
		return math.Abs(fx-fy) <= 1e-9*math.Max(1, math.Abs(fx))
	}
	return x == y
}

// result is one load run's outcome.
type result struct {
	Server   string `json:"server"`
	Entities int    `json:"entities"`
	Features int    `json:"features"`
	load.Result
}

// runLoad measures latency, open-loop at a fixed rate (latency counts from
// when a request was dispatched, so a stalled server cannot hide its queue), or
// closed-loop throughput with a fixed number of clients.
func runLoad(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	url := fs.String("url", "", "server URL")
	name := fs.String("name", "", "server name for the report")
	entities := fs.Int("entities", 1, "entities per request")
	features := fs.Int("features", 50, "features per request")
	keys := fs.Int("keys", 10_000, "keys loaded")
	var lf load.Flags
	lf.Register(fs, 1000)
	_ = fs.Parse(args)

	reqs := bodies(2000, *entities, *features, *keys, 1)
	workers := lf.Concurrency
	if workers == 0 {
		workers = 256
	}
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: workers, MaxIdleConnsPerHost: workers, IdleConnTimeout: time.Minute,
			DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		},
	}
	// A request must answer before measuring starts (and the connection is warm).
	if _, err := load.PostJSON(ctx, client, *url+"/get-online-features", reqs[0]); err != nil {
		return fmt.Errorf("%s: %w", *url, err)
	}
	res := result{Server: *name, Entities: *entities, Features: *features}
	lf.Workers = workers
	res.Result = load.Run(ctx, lf.Options, func(ctx context.Context, i int) error {
		_, err := load.PostJSON(ctx, client, *url+"/get-online-features", reqs[i%len(reqs)])
		return err
	})
	return lf.Done(*name, res, res.Result)
}

// report prints the runs of results.jsonl as a Markdown table: one row per
// scenario and server, with the ratios of Feast's figures to each server's.
func report(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	in := fs.String("in", "", "results file (JSON lines of run)")
	_ = fs.Parse(args)
	raw, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	type key struct {
		entities, features, concurrency int
		mode                            string
		rate                            float64
	}
	var order []key
	var servers []string
	runs := map[key]map[string]result{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var r result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return fmt.Errorf("%s: %w", *in, err)
		}
		k := key{r.Entities, r.Features, r.Concurrency, r.Mode, r.TargetRate}
		if runs[k] == nil {
			runs[k] = map[string]result{}
			order = append(order, k)
		}
		if !slices.Contains(servers, r.Server) {
			servers = append(servers, r.Server)
		}
		runs[k][r.Server] = r
	}
	ratio := func(x, y float64) string {
		if y == 0 || math.IsNaN(x) || math.IsNaN(y) {
			return "-"
		}
		return fmt.Sprintf("%.1fx", x/y)
	}
	// Ratios are against Feast on the same store (feast-cassandra for
	// atrium-cassandra), else against Feast's default SQLite store.
	fmt.Println("| request | load | server | p50 ms | p99 ms | max ms | req/s | errors | Feast p99 / this p99 | this req/s / Feast req/s |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, k := range order {
		load := fmt.Sprintf("open loop, %g req/s", k.rate)
		if k.mode == "closed" {
			load = fmt.Sprintf("closed loop, %d clients", k.concurrency)
		}
		for _, name := range servers {
			r, ok := runs[k][name]
			if !ok {
				continue
			}
			// The peer is Feast on the same store where it ran
			// (atrium-cassandra against feast-cassandra), else Feast's
			// default (SQLite).
			peer := "feast"
			if store, ok := strings.CutPrefix(name, "atrium-"); ok {
				if _, ok := runs[k]["feast-"+store]; ok {
					peer = "feast-" + store
				}
			}
			p99r, rater := "-", "-"
			if feast, ok := runs[k][peer]; ok && !strings.HasPrefix(name, "feast") {
				p99r, rater = ratio(feast.P99, r.P99), ratio(r.Rate, feast.Rate)
			}
			fmt.Printf("| %d x %d | %s | %s | %.2f | %.2f | %.2f | %.0f | %d | %s | %s |\n",
				k.entities, k.features, load, name, r.P50, r.P99, r.Max, r.Rate, r.Errors, p99r, rater)
		}
	}
	return nil
}

// redisClear deletes the keys under a prefix (what a Redis run loaded).
func redisClear(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("redis-clear", flag.ExitOnError)
	rawURL := fs.String("url", "", "Redis URL")
	prefix := fs.String("prefix", "", "key prefix to delete")
	_ = fs.Parse(args)
	if *prefix == "" {
		return errors.New("redis-clear: -prefix is required")
	}
	opt, err := rueidis.ParseURL(*rawURL)
	if err != nil {
		return err
	}
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		return err
	}
	defer c.Close()
	var cursor uint64
	deleted := 0
	for {
		e, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Match(*prefix+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			return err
		}
		if len(e.Elements) > 0 {
			if err := c.Do(ctx, c.B().Del().Key(e.Elements...).Build()).Error(); err != nil {
				return err
			}
			deleted += len(e.Elements)
		}
		if cursor = e.Cursor; cursor == 0 {
			break
		}
	}
	fmt.Printf("deleted %d keys under %q\n", deleted, *prefix)
	return nil
}
