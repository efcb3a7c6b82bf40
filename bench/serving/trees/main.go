// Command trees-bench measures tree-ensemble prediction in the serving
// request path: one row, and batches of 200 rows x 30 features, one thread,
// Atrium's gbdt.Model against LightGBM's and XGBoost's own prediction on the
// same models (trained by those libraries) and rows, in the same run; and
// the time to load a 300- and a 1000-tree model. It prints the figures and
// ratios recorded in docs/benchmarks.md.
//
//	bench/serving/trees/run.sh              # 3 runs, medians and spread
//	go run ./bench/serving/trees -python $ATRIUM_TEST_PYTHON -runs 1
//
// peers.py trains the models (LightGBM, and XGBoost with the same
// parameters) and times the peers; see its doc for exactly what a peer's
// per-call time includes. Atrium's per-call time includes what serving does
// per request after decoding it: building the columnar ml.Dataset from the
// row-major input (one column of float32 values and, for numeric features,
// one of the doubles as sent) and Model.Predict.
package main

import (
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
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
)

type options struct {
	python string
	dir    string
	runs   int
	loops  int
	budget time.Duration
	// peers false: Atrium only (the models must have been trained in dir).
	peers      bool
	cpuProfile string
}

// meta is peers.py's meta.json.
type meta struct {
	Features    []string `json:"features"`
	Categorical []int    `json:"categorical"`
	Rows        int      `json:"rows"`
	Sizes       []int    `json:"sizes"`
	LightGBM    string   `json:"lightgbm"`
	XGBoost     string   `json:"xgboost"`
}

// measurement is one library's per-call time for one model and batch size
// (peers.py measure prints a list of them).
type measurement struct {
	Library string  `json:"library"`
	Path    string  `json:"path"`
	Trees   int     `json:"trees"`
	Rows    int     `json:"rows"`
	NsCall  float64 `json:"ns_per_call"`
	// CPUNsCall is the process's CPU time per call (all its threads):
	// other processes on a shared machine disturb it less than NsCall.
	CPUNsCall float64 `json:"cpu_ns_per_call"`
}

type loadTime struct {
	Library string  `json:"library"`
	File    string  `json:"file"`
	Trees   int     `json:"trees"`
	Seconds float64 `json:"seconds"`
}

func main() {
	var o options
	flag.StringVar(&o.python, "python", os.Getenv("ATRIUM_TEST_PYTHON"), "Python with lightgbm and xgboost (required: it trains the models)")
	flag.StringVar(&o.dir, "dir", "", "directory for models and rows; reused when it holds them (default: a temporary one)")
	flag.IntVar(&o.runs, "runs", 3, "runs of the whole measurement; figures are the median, with the spread")
	flag.IntVar(&o.loops, "loops", 5, "timed loops per figure in a run (the best counts)")
	flag.DurationVar(&o.budget, "budget", 200*time.Millisecond, "length of one timed loop")
	flag.BoolVar(&o.peers, "peers", true, "measure the peers (false: Atrium only, for profiling)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of Atrium's measurement here")
	flag.Parse()
	if o.python == "" {
		log.Fatal("-python (or ATRIUM_TEST_PYTHON) is required: peers.py trains the models")
	}
	if o.dir == "" {
		d, err := os.MkdirTemp("", "trees-bench")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(d)
		o.dir = d
	}
	// One thread, as the peers are given: the request path must not rely on
	// fanning one request out over cores the other requests need.
	runtime.GOMAXPROCS(1)
	if _, err := os.Stat(filepath.Join(o.dir, "meta.json")); err != nil {
		fmt.Fprintf(os.Stderr, "training the models in %s\n", o.dir)
		if _, err := python(&o, "prepare"); err != nil {
			log.Fatal(err)
		}
	}
	var md meta
	if err := readJSON(filepath.Join(o.dir, "meta.json"), &md); err != nil {
		log.Fatal(err)
	}
	rows, err := readFloats(filepath.Join(o.dir, "rows.f64"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("machine: %d CPUs, GOMAXPROCS 1, %s/%s, %s; peers %s, %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH,
		runtime.Version(), md.LightGBM, md.XGBoost)
	fmt.Printf("models: LightGBM-trained binary (num_leaves 31) and XGBoost with the same parameters; %d features (1 categorical), rows with missing values\n\n", len(md.Features))

	models := loadModels(&o, &md, rows)
	if o.peers {
		printLoads(&o, models)
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}

	var all [][]measurement
	for run := 0; run < o.runs; run++ {
		fmt.Fprintf(os.Stderr, "run %d/%d: %s\n", run+1, o.runs, loadAvg())
		ms := measureAtrium(&o, &md, models, rows)
		if !o.peers {
			all = append(all, ms)
			continue
		}
		out, err := python(&o, "measure", fmt.Sprintf(`{"loops": %d, "budget_ms": %d}`, o.loops, o.budget.Milliseconds()))
		if err != nil {
			log.Fatal(err)
		}
		var peers []measurement
		if err := json.Unmarshal(out, &peers); err != nil {
			log.Fatalf("peers.py measure printed %q: %v", out, err)
		}
		all = append(all, append(ms, peers...))
	}
	report(all)
}

// model is one model file loaded by Atrium.
type model struct {
	peer  string // the library that trained it ("lightgbm", "xgboost")
	file  string
	trees int
	m     *gbdt.Model
	// loadSeconds is the best time of reading the file and compiling the
	// predictor (the first Predict).
	loadSeconds float64
}

func loadModels(o *options, md *meta, rows []float64) []*model {
	var out []*model
	for _, t := range md.Sizes {
		for _, peer := range []string{"lightgbm", "xgboost"} {
			file := fmt.Sprintf("lgb_%d.txt", t)
			if peer == "xgboost" {
				file = fmt.Sprintf("xgb_%d.json", t)
			}
			mo := &model{peer: peer, file: file, trees: t, loadSeconds: math.Inf(1)}
			one := datasetFromRows(rows[:len(md.Features)], 1, md)
			for range 3 {
				start := time.Now()
				m, err := readModel(filepath.Join(o.dir, file), peer)
				if err != nil {
					log.Fatal(err)
				}
				if _, err := m.Predict(one); err != nil { // compiles the predictor
					log.Fatal(err)
				}
				mo.loadSeconds = min(mo.loadSeconds, time.Since(start).Seconds())
				mo.m = m
			}
			checkParity(o, mo, md, rows)
			out = append(out, mo)
		}
	}
	return out
}

func readModel(path, peer string) (*gbdt.Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if peer == "xgboost" {
		return modelfile.ReadXGBoost(f)
	}
	return modelfile.ReadLightGBM(f)
}

// checkParity fails the benchmark unless Atrium predicts what the peer
// predicted for the rows (peers.py prepare wrote it): a fast wrong answer
// measures nothing.
func checkParity(o *options, mo *model, md *meta, rows []float64) {
	want, err := readFloats(filepath.Join(o.dir, strings.TrimSuffix(strings.TrimSuffix(mo.file, ".txt"), ".json")+".pred.f64"))
	if err != nil {
		log.Fatal(err)
	}
	got, err := mo.m.Predict(datasetFromRows(rows, md.Rows, md))
	if err != nil {
		log.Fatal(err)
	}
	// XGBoost returns float32 probabilities.
	tol := 1e-12
	if mo.peer == "xgboost" {
		tol = 1e-6
	}
	for i := range want {
		if d := math.Abs(got[i] - want[i]); d > tol*max(1, math.Abs(want[i])) {
			log.Fatalf("%s row %d: atrium %v, %s %v", mo.file, i, got[i], mo.peer, want[i])
		}
	}
}

func printLoads(o *options, models []*model) {
	out, err := python(o, "load")
	if err != nil {
		log.Fatal(err)
	}
	var peers []loadTime
	if err := json.Unmarshal(out, &peers); err != nil {
		log.Fatalf("peers.py load printed %q: %v", out, err)
	}
	fmt.Println("## Loading a model (best of 3; Atrium: read the file, validate, compile the predictor)")
	fmt.Println()
	fmt.Println("| file | trees | Atrium s | peer | peer s |")
	fmt.Println("|---|---|---|---|---|")
	for _, mo := range models {
		for _, p := range peers {
			if p.File == mo.file {
				fmt.Printf("| %s | %d | %.3f | %s | %.3f |\n", mo.file, mo.trees, mo.loadSeconds, p.Library, p.Seconds)
			}
		}
	}
	fmt.Println()
}

// datasetFromRows builds the columnar dataset serving hands to
// Model.Predict from n row-major rows in the model's feature order: float32
// values for every column, and the doubles as sent for numeric ones (so
// that LightGBM's comparisons on doubles are reproduced).
func datasetFromRows(x []float64, n int, md *meta) *ml.Dataset {
	nf := len(md.Features)
	ds := &ml.Dataset{Columns: make([]ml.Column, nf)}
	for j := range ds.Columns {
		c := &ds.Columns[j]
		c.Name = md.Features[j]
		c.Values = make([]float32, n)
		if slices.Contains(md.Categorical, j) {
			c.Kind = ml.Categorical
		} else {
			c.Float64 = make([]float64, n)
		}
		for r := 0; r < n; r++ {
			v := x[r*nf+j]
			c.Values[r] = float32(v)
			if c.Float64 != nil {
				c.Float64[r] = v
			}
		}
	}
	return ds
}

// measureAtrium times each model on one row (cycling through the rows) and
// on the 200 rows, the way peers.py times the peers.
func measureAtrium(o *options, md *meta, models []*model, rows []float64) []measurement {
	nf := len(md.Features)
	var out []measurement
	for _, mo := range models {
		for _, batch := range []int{1, md.Rows} {
			call := func(i int) {
				lo := (i % (md.Rows - batch + 1)) * nf
				if _, err := mo.m.Predict(datasetFromRows(rows[lo:lo+batch*nf], batch, md)); err != nil {
					log.Fatal(err)
				}
			}
			wall, cpu := perCall(call, o.loops, o.budget)
			out = append(out, measurement{Library: "atrium", Path: "Predict (" + mo.peer + " file)", Trees: mo.trees, Rows: batch,
				NsCall: wall, CPUNsCall: cpu})
		}
	}
	return out
}

// perCall is the mean time of one fn(i) call in nanoseconds, i counting
// up, in wall time and in CPU time of the process, each the best of loops
// timed loops of about budget each (after an untimed warm-up).
func perCall(fn func(i int), loops int, budget time.Duration) (wall, cpu float64) {
	start := time.Now()
	calls := 0
	for ; calls < 5 || time.Since(start) < budget/20; calls++ {
		fn(calls)
	}
	est := float64(time.Since(start).Nanoseconds()) / float64(calls)
	n := max(20, int(float64(budget.Nanoseconds())/est))
	wall, cpu = math.Inf(1), math.Inf(1)
	for range loops {
		start, c0 := time.Now(), cpuSeconds()
		for i := range n {
			fn(i)
		}
		wall = min(wall, float64(time.Since(start).Nanoseconds())/float64(n))
		cpu = min(cpu, (cpuSeconds()-c0)*1e9/float64(n))
	}
	return wall, cpu
}

// cpuSeconds is the CPU time this process has used.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// report prints, per model size and batch, each library's median per-call
// CPU and wall time over the runs with their spread, and Atrium's
// throughput over each peer's (by CPU time), computed within each run (same
// run, same load) and summarised the same way.
func report(runs [][]measurement) {
	type key struct {
		lib, path   string
		trees, rows int
	}
	var order []key
	wall, cpu := map[key][]float64{}, map[key][]float64{}
	ratios := map[key][]float64{}
	for _, ms := range runs {
		for _, m := range ms {
			k := key{m.Library, m.Path, m.Trees, m.Rows}
			if _, ok := wall[k]; !ok {
				order = append(order, k)
			}
			wall[k] = append(wall[k], m.NsCall)
			cpu[k] = append(cpu[k], m.CPUNsCall)
			if m.Library == "atrium" || m.Path == "ctypes overhead" {
				continue
			}
			peer := "xgboost"
			if strings.HasPrefix(m.Library, "lightgbm") {
				peer = "lightgbm"
			}
			for _, a := range ms {
				if a.Library == "atrium" && a.Path == "Predict ("+peer+" file)" && a.Trees == m.Trees && a.Rows == m.Rows {
					ratios[k] = append(ratios[k], m.CPUNsCall/a.CPUNsCall)
				}
			}
		}
	}
	slices.SortStableFunc(order, func(a, b key) int {
		if a.trees != b.trees {
			return a.trees - b.trees
		}
		return a.rows - b.rows
	})
	fmt.Printf("## Per-call prediction time, one thread (median of %d runs [min, max])\n\n", len(runs))
	fmt.Println("| trees | rows | library | path | CPU µs per call | wall µs per call | rows/s (CPU) | Atrium's throughput / this (CPU) |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, k := range order {
		cm, clo, chi := summary(cpu[k])
		wm, wlo, whi := summary(wall[k])
		ratio := ""
		if r := ratios[k]; len(r) > 0 {
			rm, rlo, rhi := summary(r)
			ratio = fmt.Sprintf("x%.2f [%.2f, %.2f]", rm, rlo, rhi)
		}
		fmt.Printf("| %d | %d | %s | %s | %.2f [%.2f, %.2f] | %.2f [%.2f, %.2f] | %.0f | %s |\n", k.trees, k.rows, k.lib, k.path,
			cm/1e3, clo/1e3, chi/1e3, wm/1e3, wlo/1e3, whi/1e3, float64(k.rows)*1e9/cm, ratio)
	}
}

func summary(v []float64) (med, lo, hi float64) {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		med = s[len(s)/2]
	} else {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return med, s[0], s[len(s)-1]
}

func python(o *options, args ...string) ([]byte, error) {
	script := filepath.Join("bench", "serving", "trees", "peers.py") // run from the repository root
	if _, err := os.Stat(script); err != nil {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		script = filepath.Join(filepath.Dir(self), "peers.py")
	}
	cmd := exec.Command(o.python, append([]string{script, args[0], o.dir}, args[1:]...)...)
	// One thread for the peers' OpenMP too, whatever they are asked.
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", script, args[0], err)
	}
	return out, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// readFloats reads a file of little-endian doubles.
func readFloats(path string) ([]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	v := make([]float64, st.Size()/8)
	if err := binary.Read(io.Reader(f), binary.LittleEndian, v); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "load unknown"
	}
	return "load average " + strings.Join(strings.Fields(string(b))[:3], " ")
}
