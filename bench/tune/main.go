// Command tune-bench measures Atrium's TPE sampler against Optuna's in the
// same run: search quality (the best value after a trial budget, over
// several seeds, on standard test functions) and the sampler's overhead per
// trial at 1,000 trials with a trivial objective. It prints the Markdown
// table recorded in docs/benchmarks.md.
//
//	go run ./bench/tune -python /tmp/bench-venv-tune/bin/python
//
// bench/tune/run.sh installs Optuna (bench/tune/requirements.txt) in a
// virtualenv of its own and runs this with it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/tune"
)

// The test functions, the same as optuna_bench.py's: names, ranges and the
// order of the suggestions match.
var (
	hartA = [4][6]float64{{10, 3, 17, 3.5, 1.7, 8}, {0.05, 10, 17, 0.1, 8, 14}, {3, 3.5, 1.7, 10, 17, 8}, {17, 8, 0.05, 10, 0.1, 14}}
	hartP = [4][6]float64{{1312, 1696, 5569, 124, 8283, 5886}, {2329, 4135, 8307, 3736, 1004, 9991},
		{2348, 1451, 3522, 2883, 3047, 6650}, {4047, 8828, 8732, 5743, 1091, 381}}
	hartAlpha = [4]float64{1.0, 1.2, 3.0, 3.2}
)

func floats(t *tune.Trial, n int, lo, hi float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = t.SuggestFloat("x"+strconv.Itoa(i), lo, hi)
	}
	return x
}

type function struct {
	name string
	f    func(t *tune.Trial) float64
	// optimum is the known global minimum (NaN: not known).
	optimum float64
	// trials, when not zero, is the function's own trial budget (-trials
	// otherwise).
	trials int
}

var functions = []function{
	{"sphere5", func(t *tune.Trial) float64 {
		s := 0.0
		for _, x := range floats(t, 5, -5, 5) {
			s += x * x
		}
		return s
	}, 0, 0},
	{"rosenbrock2", func(t *tune.Trial) float64 {
		x := floats(t, 2, -5, 10)
		return 100*math.Pow(x[1]-x[0]*x[0], 2) + math.Pow(1-x[0], 2)
	}, 0, 0},
	{"branin", func(t *tune.Trial) float64 {
		x1 := t.SuggestFloat("x0", -5, 10)
		x2 := t.SuggestFloat("x1", 0, 15)
		b, c, tt := 5.1/(4*math.Pi*math.Pi), 5/math.Pi, 1/(8*math.Pi)
		return math.Pow(x2-b*x1*x1+c*x1-6, 2) + 10*(1-tt)*math.Cos(x1) + 10
	}, 0.397887, 0},
	{"hartmann6", func(t *tune.Trial) float64 {
		x := floats(t, 6, 0, 1)
		s := 0.0
		for i := range 4 {
			e := 0.0
			for j := range 6 {
				e += hartA[i][j] * math.Pow(x[j]-hartP[i][j]*1e-4, 2)
			}
			s += hartAlpha[i] * math.Exp(-e)
		}
		return -s
	}, -3.32237, 0},
	{"styblinski_tang5", func(t *tune.Trial) float64 {
		s := 0.0
		for _, x := range floats(t, 5, -5, 5) {
			s += x*x*x*x - 16*x*x + 5*x
		}
		return 0.5 * s
	}, -39.16617 * 5, 0},
	{"mixed", func(t *tune.Trial) float64 {
		lr := t.SuggestFloat("lr", 1e-4, 1, tune.Log())
		leaves := t.SuggestInt("leaves", 2, 256, tune.Log())
		depth := t.SuggestInt("depth", 1, 12)
		boost := t.SuggestCategorical("boost", []string{"gbdt", "dart", "goss"})
		penalty := map[string]float64{"gbdt": 0, "dart": 0.3, "goss": 0.6}[boost]
		return math.Pow(math.Log10(lr)+1.5, 2) + math.Pow(math.Log2(float64(leaves))-5, 2)/4 + math.Pow(float64(depth)-6, 2)/10 + penalty
	}, 0, 0},
	{"gbdt", func(t *tune.Trial) float64 {
		v, err := gbdtLoss(context.Background(), suggestGBDT(t))
		if err != nil {
			log.Fatal(err)
		}
		return v
	}, math.NaN(), gbdtTrials},
}

type peer struct {
	Version  string               `json:"version"`
	Best     map[string][]float64 `json:"best"`
	Overhead struct {
		Trials            int     `json:"trials"`
		Seconds           float64 `json:"seconds"`
		Last100Seconds    float64 `json:"last100_seconds"`
		CPUSeconds        float64 `json:"cpu_seconds"`
		Last100CPUSeconds float64 `json:"last100_cpu_seconds"`
	} `json:"overhead"`
}

func main() {
	seeds := flag.Int("seeds", 20, "seeds per function")
	trials := flag.Int("trials", 100, "trial budget per study")
	overheadTrials := flag.Int("overhead-trials", 1000, "trials of the overhead study (0: skip)")
	python := flag.String("python", "", "Python with optuna; empty: Atrium only")
	only := flag.String("functions", "", "comma-separated subset of the functions")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the overhead study to this file")
	raw := flag.String("raw", "", "write every study's best value, per library and function in seed order, to this JSON file")
	gbdtEval := flag.Bool("gbdt-eval", false, "answer the gbdt function's trials on stdin and stdout (optuna_bench.py's objective) and exit")
	flag.Parse()
	ctx := context.Background()
	if *gbdtEval {
		if err := serveGBDT(ctx, os.Stdin, os.Stdout); err != nil {
			log.Fatal(err)
		}
		return
	}

	fns := functions
	if *only != "" {
		fns = nil
		for _, f := range functions {
			if slices.Contains(strings.Split(*only, ","), f.name) {
				fns = append(fns, f)
			}
		}
	} else {
		// The gbdt function fits 2 x seeds x 50 models (minutes): asked for
		// by name only.
		fns = slices.DeleteFunc(slices.Clone(fns), func(f function) bool { return f.name == "gbdt" })
	}
	budget := func(fn function) int {
		if fn.trials > 0 {
			return fn.trials
		}
		return *trials
	}
	var names []string
	ours := map[string][]float64{}
	for _, fn := range fns {
		names = append(names, fn.name)
		for seed := range *seeds {
			st, err := tune.NewStudy(ctx, tune.StudyOptions{Name: fn.name, Seed: int64(seed)})
			if err != nil {
				log.Fatal(err)
			}
			obj := func(_ context.Context, t *tune.Trial) (float64, error) { return fn.f(t), nil }
			if err := st.Optimize(ctx, obj, tune.OptimizeOptions{Trials: budget(fn)}); err != nil {
				log.Fatal(err)
			}
			b, err := st.Best(ctx)
			if err != nil {
				log.Fatal(err)
			}
			ours[fn.name] = append(ours[fn.name], b.Value)
		}
	}
	var ourOverhead overheadTimes
	if *overheadTrials > 0 {
		ourOverhead = overhead(ctx, *overheadTrials, *cpuProfile)
	}

	var p peer
	if *python != "" {
		self, err := os.Executable()
		if err != nil {
			log.Fatal(err)
		}
		cmd := exec.Command(*python, "bench/tune/optuna_bench.py", "--seeds", strconv.Itoa(*seeds), "--trials", strconv.Itoa(*trials),
			"--gbdt-trials", strconv.Itoa(gbdtTrials), "--gbdt-eval", self,
			"--overhead-trials", strconv.Itoa(*overheadTrials), "--functions", strings.Join(names, ","))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			log.Fatalf("optuna_bench.py: %v", err)
		}
		if err := json.Unmarshal(out, &p); err != nil {
			log.Fatalf("optuna_bench.py output: %v", err)
		}
	}

	if *raw != "" {
		b, err := json.Marshal(map[string]map[string][]float64{"atrium": ours, "optuna": p.Best})
		if err == nil {
			err = os.WriteFile(*raw, b, 0o644)
		}
		if err != nil {
			log.Fatalf("raw values: %v", err)
		}
	}
	fmt.Printf("Best value after %d trials (gbdt: %d), median over %d seeds (lower is better; Optuna %s, default TPESampler)\n\n", *trials, gbdtTrials, *seeds, p.Version)
	// The last three columns tell a difference from seed noise (see compare):
	// an interval of the median difference that holds 0 and P(Atrium <
	// Optuna) near 0.5 with a large p mean the medians differ by luck.
	fmt.Println("| function | optimum | Atrium TPE median | Optuna TPE median | Atrium no worse | Atrium - Optuna median, 95% CI | P(Atrium < Optuna) | p |")
	fmt.Println("|---|---:|---:|---:|:---:|---:|---:|---:|")
	for _, fn := range fns {
		a := median(ours[fn.name])
		o := math.NaN()
		verdict, ci, pb, pv := "-", "-", "-", "-"
		if theirs, ok := p.Best[fn.name]; ok {
			o = median(theirs)
			verdict = map[bool]string{true: "yes", false: "no"}[a <= o]
			c := compare(ours[fn.name], theirs)
			ci = fmt.Sprintf("[%.3g, %.3g]", c.diffLo, c.diffHi)
			pb, pv = fmt.Sprintf("%.3f", c.pBetter), fmt.Sprintf("%.2g", c.pValue)
		}
		opt := "-"
		if !math.IsNaN(fn.optimum) {
			opt = fmt.Sprintf("%.4g", fn.optimum)
		}
		fmt.Printf("| %s | %s | %.4g | %.4g | %s | %s | %s | %s |\n", fn.name, opt, a, o, verdict, ci, pb, pv)
	}
	if *overheadTrials > 0 {
		fmt.Printf("\nOverhead of a study of %d trials with a trivial objective (5-d sphere), in-memory storage\n\n", *overheadTrials)
		fmt.Println("| per trial | Atrium | Optuna | Optuna / Atrium |")
		fmt.Println("|---|---:|---:|---:|")
		n := float64(*overheadTrials)
		row := func(what string, a, o, per float64) {
			fmt.Printf("| %s | %.3f ms | %.3f ms | %.1fx |\n", what, a/per*1e3, o/per*1e3, o/a)
		}
		row(fmt.Sprintf("wall, mean over %d trials", *overheadTrials), ourOverhead.wall, p.Overhead.Seconds, n)
		row("wall, last 100 trials", ourOverhead.wallLast100, p.Overhead.Last100Seconds, 100)
		row(fmt.Sprintf("CPU, mean over %d trials", *overheadTrials), ourOverhead.cpu, p.Overhead.CPUSeconds, n)
		row("CPU, last 100 trials", ourOverhead.cpuLast100, p.Overhead.Last100CPUSeconds, 100)
	}
}

type overheadTimes struct {
	wall, wallLast100, cpu, cpuLast100 float64
}

// overhead runs a study of n trials of a trivial objective and returns its
// total wall and CPU time and those of its last 100 trials, profiling it
// into profile when that is not empty.
func overhead(ctx context.Context, n int, profile string) overheadTimes {
	st, err := tune.NewStudy(ctx, tune.StudyOptions{Name: "overhead", Seed: 0})
	if err != nil {
		log.Fatal(err)
	}
	if profile != "" {
		stop, err := startCPUProfile(profile)
		if err != nil {
			log.Fatal(err)
		}
		defer stop()
	}
	wall := make([]float64, 0, n)
	cpu := make([]float64, 0, n)
	t0, c0 := time.Now(), cpuSeconds()
	obj := func(_ context.Context, t *tune.Trial) (float64, error) { return functions[0].f(t), nil }
	err = st.Optimize(ctx, obj, tune.OptimizeOptions{Trials: n, OnTrial: func(tune.FrozenTrial) {
		wall = append(wall, time.Since(t0).Seconds())
		cpu = append(cpu, cpuSeconds()-c0)
	}})
	if err != nil {
		log.Fatal(err)
	}
	last := func(s []float64) float64 {
		if len(s) > 100 {
			return s[len(s)-1] - s[len(s)-101]
		}
		return s[len(s)-1]
	}
	return overheadTimes{wall: wall[len(wall)-1], wallLast100: last(wall), cpu: cpu[len(cpu)-1], cpuLast100: last(cpu)}
}

// startCPUProfile profiles the process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile %s: %w", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			log.Printf("cpu profile %s: %v", path, err)
		}
	}, nil
}

// cpuSeconds is the process's user and system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		log.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return math.NaN()
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
