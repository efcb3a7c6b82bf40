// Command linear is Atrium's side of the linear-model and dataset-loading
// benchmark (bench/linear/run.sh drives it next to scikit-learn and pandas).
//
//	linear -mode load -data FILE -label COL [-repeat N]
//	linear -mode fit -data FILE -label COL -objective binary [-param k=v ...] -out RESULT.json
//
// It prints (load) or writes (fit) JSON with the timings and, for fit, the
// coefficients by input name.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/linear"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

type params map[string]string

func (p params) String() string { return fmt.Sprint(map[string]string(p)) }

func (p params) Set(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok {
		return fmt.Errorf("want key=value, got %q", kv)
	}
	p[k] = v
	return nil
}

func main() {
	mode := flag.String("mode", "fit", "load or fit")
	data := flag.String("data", "", "data file")
	label := flag.String("label", "y", "label column")
	objective := flag.String("objective", "binary", "linear objective")
	repeat := flag.Int("repeat", 3, "load: how many times to load (the best time counts)")
	out := flag.String("out", "", "fit: result file")
	ps := params{}
	flag.Var(ps, "param", "linear parameter k=v (repeatable)")
	flag.Parse()
	if err := run(*mode, *data, *label, *objective, *repeat, *out, ps); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// cpuSeconds is the process's user + system CPU time so far (all threads,
// DuckDB's included).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func run(mode, data, label, objective string, repeat int, out string, ps params) error {
	ctx := context.Background()
	switch mode {
	case "load":
		best, bestCPU := time.Duration(1<<63-1), 0.0
		var ds *ml.Dataset
		for range repeat {
			start, cpu := time.Now(), cpuSeconds()
			var err error
			if ds, err = ml.Load(ctx, data, ml.LoadOptions{Label: label}); err != nil {
				return err
			}
			if d := time.Since(start); d < best {
				best, bestCPU = d, cpuSeconds()-cpu
			}
		}
		return json.NewEncoder(os.Stdout).Encode(map[string]any{
			"file": data, "rows": ds.NumRows(), "features": ds.NumFeatures(), "seconds": best.Seconds(), "cpu_seconds": bestCPU})
	case "fit":
		start := time.Now()
		ds, err := ml.Load(ctx, data, ml.LoadOptions{Label: label})
		if err != nil {
			return err
		}
		loadSeconds := time.Since(start).Seconds()
		ps["objective"] = objective
		p, err := linear.ParseParams(ps)
		if err != nil {
			return err
		}
		start, cpu := time.Now(), cpuSeconds()
		m, err := linear.Train(ctx, ds, p, linear.TrainOptions{})
		if err != nil {
			return err
		}
		fitSeconds, fitCPU := time.Since(start).Seconds(), cpuSeconds()-cpu
		start = time.Now()
		if _, err := m.Predict(ds); err != nil {
			return err
		}
		predictSeconds := time.Since(start).Seconds()
		b, err := json.Marshal(map[string]any{
			"rows": ds.NumRows(), "inputs": m.Inputs, "coef": m.Coef, "intercept": m.Intercept,
			"iterations": m.Iterations, "converged": m.Converged,
			"load_seconds": loadSeconds, "fit_seconds": fitSeconds, "fit_cpu_seconds": fitCPU, "predict_seconds": predictSeconds})
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	}
	return fmt.Errorf("mode %q: want load or fit", mode)
}
