// Command gbdt-bench trains Atrium's gradient-boosted trees and LightGBM (and
// XGBoost) on the same generated data, with the same parameters and thread
// count, in the same run, and prints the figures and ratios recorded in
// docs/benchmarks.md.
//
//	go run ./bench/gbdt -python $ATRIUM_TEST_PYTHON            # both tasks
//	go run ./bench/gbdt -task binary -rows 1000000 -threads 2
//	bench/gbdt/run.sh -task study -rows 700000 -num-leaves 127 -feature-fraction 0.6 -min-data-in-leaf 10
//
// The study task is one trial of bench/tune/e2e's tuning study: its data
// (gbdttest.Study) and the parameters its search space varies.
//
// bench/gbdt/run.sh installs the peers (tests/interop/requirements.txt) in a
// virtualenv and runs this with it.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/gbdt/gbdttest"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

type options struct {
	task       string
	rows       int
	testRows   int
	queries    int
	iterations int
	leaves     int
	threads    int
	python     string
	dir        string
	cpuProfile string
	repeat     int
	xgboost    bool
	// study task only: the parameters tuning varies most
	featureFraction float64
	minDataInLeaf   int
}

// result is one library's figures on one task.
type result struct {
	Library      string  `json:"library"`
	TrainSeconds float64 `json:"train_seconds"`
	// TrainCPUSeconds is the CPU time (user + system) training took: on a
	// shared machine it moves less with the load of other processes.
	TrainCPUSeconds float64 `json:"train_cpu_seconds"`
	// Setting names the peer's run-time setting that gave these figures.
	Setting string `json:"setting,omitempty"`
	// PredictSeconds is the best of several timed batch predictions of the
	// test rows.
	PredictSeconds float64 `json:"predict_seconds"`
	Metric         string  `json:"metric"`
	Value          float64 `json:"value"`
}

func main() {
	var o options
	flag.StringVar(&o.task, "task", "all", "binary, lambdarank, study or all (binary and lambdarank)")
	flag.IntVar(&o.rows, "rows", 1_000_000, "training rows (binary)")
	flag.IntVar(&o.testRows, "test-rows", 250_000, "test rows (binary)")
	flag.IntVar(&o.queries, "queries", 20_000, "training queries (lambdarank; about 32 rows each)")
	flag.IntVar(&o.iterations, "iterations", 100, "boosting iterations")
	flag.IntVar(&o.leaves, "num-leaves", 31, "num_leaves")
	flag.IntVar(&o.threads, "threads", 2, "threads for every library")
	flag.StringVar(&o.python, "python", os.Getenv("ATRIUM_TEST_PYTHON"), "Python with lightgbm (and xgboost); empty: Atrium only")
	flag.StringVar(&o.dir, "dir", "", "directory for the data files (default: a temporary one)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write Atrium's training CPU profile here")
	flag.IntVar(&o.repeat, "predict-repeat", 3, "timed prediction runs (the best counts)")
	flag.BoolVar(&o.xgboost, "xgboost", true, "also run XGBoost (binary task)")
	flag.Float64Var(&o.featureFraction, "feature-fraction", 1, "feature_fraction (study task)")
	flag.IntVar(&o.minDataInLeaf, "min-data-in-leaf", 20, "min_data_in_leaf (study task)")
	flag.Parse()
	if o.dir == "" {
		d, err := os.MkdirTemp("", "gbdt-bench")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(d)
		o.dir = d
	}
	fmt.Printf("machine: %d CPUs (GOMAXPROCS %d), %s/%s; threads=%d iterations=%d num_leaves=%d\n\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, o.threads, o.iterations, o.leaves)
	if o.task == "all" || o.task == "binary" {
		run(&o, "binary")
	}
	if o.task == "all" || o.task == "lambdarank" {
		run(&o, "lambdarank")
	}
	if o.task == "study" {
		run(&o, "study")
	}
}

func run(o *options, task string) {
	var train, test *ml.Dataset
	params := map[string]string{
		"objective":      task,
		"num_iterations": strconv.Itoa(o.iterations),
		"num_leaves":     strconv.Itoa(o.leaves),
		"num_threads":    strconv.Itoa(o.threads),
		"learning_rate":  "0.1",
		"max_bin":        "255",
		"seed":           "1",
	}
	metric := "auc"
	switch task {
	case "study":
		// The data of bench/tune/e2e's study (20 numeric features), one
		// trial's parameters: the learner on the tuning workload.
		train = gbdttest.StudyDataset(o.rows, 1)
		test = gbdttest.StudyDataset(o.testRows, 2)
		params["objective"] = "binary"
		params["feature_fraction"] = strconv.FormatFloat(o.featureFraction, 'g', -1, 64)
		params["min_data_in_leaf"] = strconv.Itoa(o.minDataInLeaf)
	case "binary":
		train = gbdttest.BenchBinary(o.rows, 1)
		test = gbdttest.BenchBinary(o.testRows, 2)
	default:
		train = gbdttest.BenchRanking(o.queries, 1)
		test = gbdttest.BenchRanking(o.queries/4, 2)
		params["eval_at"] = "10"
		metric = "ndcg@10"
	}
	fmt.Printf("## %s: %d training rows, %d test rows, %d features\n", task, train.NumRows(), test.NumRows(), train.NumFeatures())
	for name, ds := range map[string]*ml.Dataset{"train": train, "test": test} {
		if err := writeData(filepath.Join(o.dir, task+"."+name), ds); err != nil {
			log.Fatal(err)
		}
	}
	results := []result{atrium(o, task, train, test, params, metric)}
	if o.python != "" {
		results = append(results, peers(o, task, params, metric)...)
	}
	fmt.Printf("\n| library | train s (CPU s) | predict s (%d rows) | predict rows/s | %s | setting |\n|---|---|---|---|---|---|\n", test.NumRows(), metric)
	for _, r := range results {
		fmt.Printf("| %s | %.2f (%.2f) | %.3f | %.0f | %.5f | %s |\n", r.Library, r.TrainSeconds, r.TrainCPUSeconds, r.PredictSeconds, float64(test.NumRows())/r.PredictSeconds, r.Value, r.Setting)
	}
	if len(results) > 1 {
		a, l := results[0], results[1]
		fmt.Printf("\nAtrium / %s: training time x%.2f, prediction throughput x%.2f, %s difference %+.5f\n\n",
			l.Library, a.TrainSeconds/l.TrainSeconds, l.PredictSeconds/a.PredictSeconds, metric, a.Value-l.Value)
	}
}

func atrium(o *options, task string, train, test *ml.Dataset, kv map[string]string, metric string) result {
	p, err := gbdt.ParseParams(kv)
	if err != nil {
		log.Fatal(err)
	}
	runtime.GC()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile + "." + task)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer f.Close()
	}
	start := time.Now()
	cpu0 := cpuSeconds()
	m, err := gbdt.Train(context.Background(), train, nil, p, gbdt.TrainOptions{})
	if err != nil {
		log.Fatal(err)
	}
	trainSec := time.Since(start).Seconds()
	trainCPU := cpuSeconds() - cpu0
	if o.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	runtime.GOMAXPROCS(o.threads) // prediction uses GOMAXPROCS goroutines
	defer runtime.GOMAXPROCS(runtime.NumCPU())
	best := math.Inf(1)
	var pred []float64
	for i := 0; i < o.repeat; i++ {
		start = time.Now()
		pred, err = m.Predict(test)
		if err != nil {
			log.Fatal(err)
		}
		best = math.Min(best, time.Since(start).Seconds())
	}
	return result{Library: "atrium", TrainSeconds: trainSec, TrainCPUSeconds: trainCPU, PredictSeconds: best, Metric: metric, Value: score(task, test, pred)}
}

func score(task string, ds *ml.Dataset, pred []float64) float64 {
	var v float64
	var err error
	if task != "lambdarank" {
		v, err = ml.AUC(ds.Label, pred, nil)
	} else {
		v, err = ml.NDCG(ds.Label, pred, ds.Groups, 10, nil)
	}
	if err != nil {
		log.Fatal(err)
	}
	return v
}

func peers(o *options, task string, kv map[string]string, metric string) []result {
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	script := filepath.Join(filepath.Dir(self), "peers.py")
	if _, err := os.Stat(script); err != nil {
		script = filepath.Join("bench", "gbdt", "peers.py") // go run from the repository root
	}
	cfg, _ := json.Marshal(map[string]any{"task": task, "params": kv, "metric": metric, "repeat": o.repeat,
		"xgboost": o.xgboost && task == "binary", "dir": o.dir})
	// OpenMP threads spin while waiting by default, which is fastest on an
	// idle machine and slowest on a busy one: run the peers both ways and
	// keep each library's faster training (the same setting's prediction).
	best := map[string]result{}
	var order []string
	for _, policy := range []string{"active", "passive"} {
		cmd := exec.Command(o.python, script, string(cfg))
		cmd.Env = append(os.Environ(), "OMP_WAIT_POLICY="+policy)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			log.Fatalf("%s: %v", script, err)
		}
		var rs []result
		if err := json.Unmarshal(out, &rs); err != nil {
			log.Fatalf("%s printed %q: %v", script, out, err)
		}
		for _, r := range rs {
			r.Setting = "OMP_WAIT_POLICY=" + policy
			fmt.Printf("  %s with %s: train %.2f s (CPU %.2f s), predict %.3f s\n", r.Library, r.Setting, r.TrainSeconds, r.TrainCPUSeconds, r.PredictSeconds)
			b, ok := best[r.Library]
			if !ok {
				order = append(order, r.Library)
			}
			if !ok || r.TrainSeconds < b.TrainSeconds {
				best[r.Library] = r
			}
		}
	}
	var rs []result
	for _, l := range order {
		rs = append(rs, best[l])
	}
	return rs
}

// cpuSeconds is the CPU time this process has used.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// writeData writes the features (float32, column-major), the labels and the
// query sizes as .npy files, with the categorical column indices in a JSON
// side file.
func writeData(prefix string, ds *ml.Dataset) error {
	n, f := ds.NumRows(), ds.NumFeatures()
	var cats []int
	err := writeNpy(prefix+".X.npy", "<f4", true, []int{n, f}, func(w io.Writer) error {
		buf := make([]byte, 4*n)
		for j, c := range ds.Columns {
			if c.Kind == ml.Categorical {
				cats = append(cats, j)
			}
			for i, v := range c.Values {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
			}
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := writeNpy(prefix+".y.npy", "<f8", false, []int{n}, func(w io.Writer) error {
		return binary.Write(w, binary.LittleEndian, ds.Label)
	}); err != nil {
		return err
	}
	if ds.Groups != nil {
		g := make([]int32, len(ds.Groups))
		for i, v := range ds.Groups {
			g[i] = int32(v)
		}
		if err := writeNpy(prefix+".group.npy", "<i4", false, []int{len(g)}, func(w io.Writer) error {
			return binary.Write(w, binary.LittleEndian, g)
		}); err != nil {
			return err
		}
	}
	js, _ := json.Marshal(map[string]any{"categorical": cats})
	return os.WriteFile(prefix+".meta.json", js, 0o644)
}

// writeNpy writes a NumPy .npy (format 1.0) file.
func writeNpy(path, descr string, fortran bool, shape []int, body func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	dims := ""
	for _, d := range shape {
		dims += strconv.Itoa(d) + ","
	}
	order := "False"
	if fortran {
		order = "True"
	}
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }", descr, order, dims)
	// magic (6) + version (2) + length (2) + header + '\n', padded to 64.
	pad := 64 - (10+len(header)+1)%64
	header += string(make([]byte, 0)) + fmt.Sprintf("%*s", pad, "") + "\n"
	if _, err := w.WriteString("\x93NUMPY\x01\x00"); err != nil {
		return err
	}
	if err := binary.Write(w, binary.LittleEndian, uint16(len(header))); err != nil {
		return err
	}
	if _, err := w.WriteString(header); err != nil {
		return err
	}
	if err := body(w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}
