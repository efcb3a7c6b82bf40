// Package load drives a request function at a fixed rate (open loop) or
// with a fixed number of clients (closed loop) and summarises latencies, for
// the bench/ load generators: every server of a comparison is measured by
// the same code.
package load

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options say how to drive the load.
type Options struct {
	// Rate is the open-loop rate in requests per second; Concurrency, when
	// positive, runs a closed loop with that many clients instead.
	Rate        float64
	Concurrency int
	// Duration is measured after Warmup (unmeasured).
	Duration, Warmup time.Duration
	// Workers serve the open loop's due requests (default 256): a request
	// waiting for a free worker counts its wait as latency.
	Workers int
}

// Result is one run's figures. Latencies in milliseconds.
type Result struct {
	Mode        string  `json:"mode"` // "open" or "closed"
	TargetRate  float64 `json:"target_rate,omitempty"`
	Concurrency int     `json:"concurrency,omitempty"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	Rate        float64 `json:"achieved_rate"`
	P50         float64 `json:"p50_ms"`
	P90         float64 `json:"p90_ms"`
	P99         float64 `json:"p99_ms"`
	P999        float64 `json:"p999_ms"`
	Max         float64 `json:"max_ms"`
	FirstError  string  `json:"first_error,omitempty"`
}

// Run calls do until Warmup+Duration has passed and returns the figures of
// the calls started after Warmup. do gets a call number (to pick a request
// body) and must be safe for concurrent use. Open-loop latency counts from
// when a request was due, so a server that stalls cannot hide its queue; a
// request that finds the dispatch queue full is an error, not skipped.
func Run(ctx context.Context, o Options, do func(ctx context.Context, i int) error) Result {
	var (
		mu        sync.Mutex
		res       Result
		latencies []time.Duration
	)
	record := func(measured bool, d time.Duration, err error) {
		if !measured {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		res.Requests++
		if err != nil {
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = err.Error()
			}
			return
		}
		latencies = append(latencies, d)
	}
	start := time.Now()
	measureFrom, end := start.Add(o.Warmup), start.Add(o.Warmup+o.Duration)
	runCtx, cancel := context.WithDeadline(ctx, end.Add(10*time.Second))
	defer cancel()
	var wg sync.WaitGroup
	if o.Concurrency > 0 {
		res.Mode, res.Concurrency = "closed", o.Concurrency
		for w := range o.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; ; i += o.Concurrency {
					t := time.Now()
					if t.After(end) || runCtx.Err() != nil {
						return
					}
					err := do(runCtx, i)
					record(t.After(measureFrom), time.Since(t), err)
				}
			}()
		}
	} else {
		res.Mode, res.TargetRate = "open", o.Rate
		workers := o.Workers
		if workers <= 0 {
			workers = 256
		}
		due := make(chan time.Time, 1<<16)
		var n sync.Mutex
		calls := 0
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for t := range due {
					n.Lock()
					i := calls
					calls++
					n.Unlock()
					err := do(runCtx, i)
					record(t.After(measureFrom), time.Since(t), err)
				}
			}()
		}
		interval := time.Duration(float64(time.Second) / o.Rate)
		for next := start; next.Before(end) && ctx.Err() == nil; next = next.Add(interval) {
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
			now := time.Now()
			select {
			case due <- now:
			default:
				record(now.After(measureFrom), 0, errors.New("load generator queue full"))
			}
		}
		close(due)
	}
	wg.Wait()
	res.Rate = float64(res.Requests-res.Errors) / o.Duration.Seconds()
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return math.NaN()
		}
		i := min(len(latencies)-1, int(math.Ceil(p*float64(len(latencies))))-1)
		return float64(latencies[max(i, 0)].Microseconds()) / 1000
	}
	res.P50, res.P90, res.P99, res.P999, res.Max = pct(0.50), pct(0.90), pct(0.99), pct(0.999), pct(1)
	return res
}

// WriteLine prints v as a JSON line on stdout and, when path is set, appends
// the line to that file (results.jsonl of a benchmark script).
func WriteLine(path string, v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	fmt.Println(string(line))
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(append(line, '\n'))
	return errors.Join(err, f.Close())
}

// Flags are the command-line flags of a load run: -rate, -concurrency,
// -duration, -warmup and -out (the results file).
type Flags struct {
	Options
	Out string
}

// Register defines the flags on fs, with defaultRate for -rate.
func (f *Flags) Register(fs *flag.FlagSet, defaultRate float64) {
	fs.Float64Var(&f.Rate, "rate", defaultRate, "requests per second (open loop)")
	fs.IntVar(&f.Concurrency, "concurrency", 0, "closed loop with this many clients instead of a fixed rate")
	fs.DurationVar(&f.Duration, "duration", 20*time.Second, "measured duration")
	fs.DurationVar(&f.Warmup, "warmup", 3*time.Second, "unmeasured warm-up")
	fs.StringVar(&f.Out, "out", "", "append the result as a JSON line to this file")
}

// Done writes v, a run's record holding r, with WriteLine to f.Out, and
// reports r's failed requests on stderr.
func (f *Flags) Done(name string, v any, r Result) error {
	if err := WriteLine(f.Out, v); err != nil {
		return err
	}
	if r.Errors > 0 {
		fmt.Fprintf(os.Stderr, "%s: %d of %d requests failed, first: %s\n", name, r.Errors, r.Requests, strings.TrimSpace(r.FirstError))
	}
	return nil
}
