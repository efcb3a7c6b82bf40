// Command e2e measures a whole GBDT tuning study: Atrium's trial loop (what
// each trial of `atrium train` runs: tune.Study with TPE and the median
// pruner, fit.Fit reporting the validation AUC per boosting iteration, then
// the refit of the best parameters on train+valid and the test AUC) against
// Optuna + LightGBM doing the same (optuna_lgb.py), on the same generated
// data, split, budget, space, pruner and thread count, in the same run.
// It prints the Markdown row recorded in docs/benchmarks.md.
//
//	bench/tune/e2e/run.sh -rows 1000000 -trials 50
//
// The point-in-time join that `atrium train` runs first is not timed (it
// has its own benchmarks); neither is loading the data on either side.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/fit"
	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/gbdt/gbdttest"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/tune"
)

const features = gbdttest.StudyFeatures

// writeNPY writes the features and the label as one float32 .npy matrix,
// label last, for the Python side.
func writeNPY(path string, x [][]float32, y []float64) error {
	n := len(y)
	header := fmt.Sprintf("{'descr': '<f4', 'fortran_order': True, 'shape': (%d, %d), }", n, features+1)
	for (10+len(header)+1)%64 != 0 {
		header += " "
	}
	header += "\n"
	buf := make([]byte, 0, 10+len(header)+4*n*(features+1))
	buf = append(buf, "\x93NUMPY\x01\x00"...)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(header)))
	buf = append(buf, header...)
	for j := range features {
		for _, v := range x[j] {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		}
	}
	for _, v := range y {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(float32(v)))
	}
	return os.WriteFile(path, buf, 0o644)
}

func dataset(x [][]float32, y []float64, lo, hi int) *ml.Dataset {
	ds := &ml.Dataset{Columns: make([]ml.Column, features), Label: y[lo:hi]}
	for j := range features {
		ds.Columns[j] = ml.Column{Name: "f" + strconv.Itoa(j), Values: x[j][lo:hi]}
	}
	return ds
}

// result is one side's outcome.
type result struct {
	Seconds   float64 `json:"seconds"`
	Complete  int     `json:"complete"`
	Pruned    int     `json:"pruned"`
	BestValid float64 `json:"best_valid"`
	TestAUC   float64 `json:"test_auc"`
	BestIters int     `json:"best_iterations"`
	// BestParams and Trials are the peer's (optuna_lgb.py), for -replay.
	BestParams map[string]any `json:"best_params,omitempty"`
	Trials     []peerTrial    `json:"trials,omitempty"`
}

// peerTrial is one of Optuna's trials: its parameters, the boosting
// iterations LightGBM ran before it completed or was pruned, and how long
// it took.
type peerTrial struct {
	Params     map[string]any `json:"params"`
	Iterations int            `json:"iterations"`
	Seconds    float64        `json:"seconds"`
}

// replay fits Optuna's trials with Atrium: the same parameters, each for
// the iterations LightGBM ran, the validation AUC computed after every
// iteration as the pruner needs (no sampler, no pruning decision, no
// early stopping). Against the trials' own durations, it compares the two
// libraries on the same work, whichever trials each sampler happened to
// draw. It returns Atrium's seconds and the peer's.
func replay(x [][]float32, y []float64, trials []peerTrial, threads int) (ours, theirs float64, err error) {
	n := len(y)
	a, b := n*70/100, n*85/100
	train, valid := dataset(x, y, 0, a), dataset(x, y, a, b)
	var bins gbdt.BinCache
	start := time.Now()
	for i, t := range trials {
		theirs += t.Seconds
		if t.Iterations == 0 {
			continue
		}
		o := fit.Options{Label: "y", Task: "binary", Params: params(threads, t.Iterations, t.Params), Bins: &bins, LogEvery: 1,
			OnMetrics: func(int, map[string]float64) {}}
		if _, err := fit.Fit(context.Background(), o, train, valid); err != nil {
			return 0, 0, fmt.Errorf("replay trial %d: %w", i, err)
		}
	}
	return time.Since(start).Seconds(), theirs, nil
}

// params is a fit's parameters on both sides' terms: the study's fixed
// ones, iterations boosting rounds and the sampled ones (a trial's or the
// best trial's; nil for none).
func params(threads, iterations int, sampled map[string]any) map[string]string {
	kv := map[string]string{"objective": "binary", "metric": "auc", "num_iterations": strconv.Itoa(iterations),
		"num_threads": strconv.Itoa(threads), "seed": "1", "verbosity": "-1"}
	for k, v := range sampled {
		kv[k] = fmt.Sprint(v)
	}
	return kv
}

// refitTestAUC fits kv on train+valid (the first 85% of the rows) as the
// study's refit does and returns the AUC on the test rows.
func refitTestAUC(ctx context.Context, x [][]float32, y []float64, kv map[string]string) (float64, error) {
	n := len(y)
	b := n * 85 / 100
	m, err := fit.Fit(ctx, fit.Options{Label: "y", Task: "binary", Params: kv}, dataset(x, y, 0, b), nil)
	if err != nil {
		return 0, err
	}
	test := dataset(x, y, b, n)
	pred, err := m.Predict(test)
	if err != nil {
		return 0, err
	}
	return ml.AUC(test.Label, pred, nil)
}

// atrium runs the study the way atrium train's trials do.
func atrium(x [][]float32, y []float64, trials, threads int, seed int64) (result, error) {
	n := len(y)
	a, b := n*70/100, n*85/100
	train, valid := dataset(x, y, 0, a), dataset(x, y, a, b)
	start := time.Now()
	ctx := context.Background()
	study, err := tune.NewStudy(ctx, tune.StudyOptions{Name: "e2e", Direction: tune.Maximize, Seed: seed,
		Sampler: tune.NewTPESampler(tune.TPEOptions{}), Pruner: tune.MedianPruner{}})
	if err != nil {
		return result{}, err
	}
	iters := map[int]int{}
	var bins gbdt.BinCache
	base := params(threads, 200, nil)
	base["early_stopping_round"] = "20"
	opts := func(kv map[string]string) fit.Options {
		return fit.Options{Label: "y", Task: "binary", Params: kv}
	}
	obj := func(ctx context.Context, t *tune.Trial) (float64, error) {
		kv := map[string]string{
			"num_leaves":       strconv.Itoa(t.SuggestInt("num_leaves", 15, 255, tune.Log())),
			"learning_rate":    strconv.FormatFloat(t.SuggestFloat("learning_rate", 0.01, 0.3, tune.Log()), 'g', -1, 64),
			"min_data_in_leaf": strconv.Itoa(t.SuggestInt("min_data_in_leaf", 5, 200)),
			"feature_fraction": strconv.FormatFloat(t.SuggestFloat("feature_fraction", 0.5, 1.0), 'g', -1, 64),
		}
		for k, v := range base {
			kv[k] = v
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		pruned := false
		o := opts(kv)
		o.Bins = &bins // as atrium train's trials share their training rows' bins
		o.LogEvery = 1
		o.OnMetrics = func(iter int, m map[string]float64) {
			if pruned || t.Report(ctx, iter, m["valid_auc"]) != nil {
				return
			}
			if t.ShouldPrune() {
				pruned = true
				cancel()
			}
		}
		m, err := fit.Fit(ctx, o, train, valid)
		if pruned {
			return 0, fmt.Errorf("%w", tune.ErrPruned)
		}
		if err != nil {
			return 0, err
		}
		iters[t.Number()] = m.Training.Iterations
		return m.Training.Metrics["valid_auc"], nil
	}
	if err := study.Optimize(ctx, obj, tune.OptimizeOptions{Trials: trials, Parallel: 1}); err != nil {
		return result{}, err
	}
	best, err := study.Best(ctx)
	if err != nil {
		return result{}, err
	}
	res := result{BestValid: best.Value, BestIters: iters[best.Number]}
	all, _ := study.Trials(ctx)
	for _, t := range all {
		switch t.State {
		case tune.Complete:
			res.Complete++
		case tune.Pruned:
			res.Pruned++
		}
	}
	if res.TestAUC, err = refitTestAUC(ctx, x, y, params(threads, max(res.BestIters, 1), best.Params)); err != nil {
		return result{}, err
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

func main() {
	rows := flag.Int("rows", 1_000_000, "rows of generated data (70% train, 15% valid, 15% test)")
	trials := flag.Int("trials", 50, "trial budget")
	threads := flag.Int("threads", 2, "threads per fit on both sides")
	seed := flag.Int64("seed", 1, "sampler seed on both sides")
	python := flag.String("python", "python3", "Python with optuna and lightgbm")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of Atrium's side to this file")
	skipPeer := flag.Bool("skip-peer", false, "run Atrium's side only (with -cpuprofile, to see where its time goes)")
	replayPeer := flag.Bool("replay", false, "then fit Optuna's trials with Atrium (the same parameters and iterations): the libraries on the same work")
	flag.Parse()
	x, y := gbdttest.Study(*rows, 1)
	dir, err := os.MkdirTemp("", "atrium-e2e-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	npy := filepath.Join(dir, "data.npy")
	if err := writeNPY(npy, x, y); err != nil {
		log.Fatal(err)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
	}
	ours, err := atrium(x, y, *trials, *threads, *seed)
	pprof.StopCPUProfile()
	if err != nil {
		log.Fatal(err)
	}
	if *skipPeer {
		fmt.Printf("Atrium (tune + fit): %d rows, %d trials, %.1f s, %d/%d complete/pruned, best valid AUC %.5f, test AUC %.5f\n",
			*rows, *trials, ours.Seconds, ours.Complete, ours.Pruned, ours.BestValid, ours.TestAUC)
		return
	}
	cmd := exec.Command(*python, filepath.Join("bench", "tune", "e2e", "optuna_lgb.py"), npy, strconv.Itoa(*trials), strconv.Itoa(*threads), strconv.FormatInt(*seed, 10))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		log.Fatalf("optuna_lgb.py: %v", err)
	}
	var peer result
	if err := json.Unmarshal(out, &peer); err != nil {
		log.Fatalf("optuna_lgb.py output %q: %v", out, err)
	}
	fmt.Printf("| rows | trials | side | wall s | complete/pruned | best valid AUC | test AUC |\n|---|---|---|---|---|---|---|\n")
	for _, r := range []struct {
		name string
		r    result
	}{{"Atrium (tune + fit)", ours}, {"Optuna + LightGBM", peer}} {
		fmt.Printf("| %d | %d | %s | %.1f | %d/%d | %.5f | %.5f |\n", *rows, *trials, r.name, r.r.Seconds, r.r.Complete, r.r.Pruned, r.r.BestValid, r.r.TestAUC)
	}
	fmt.Printf("\nwall time ratio Atrium / Optuna+LightGBM: %.2fx; test AUC difference %+.5f\n", ours.Seconds/peer.Seconds, ours.TestAUC-peer.TestAUC)
	if *replayPeer {
		a, p, err := replay(x, y, peer.Trials, *threads)
		if err != nil {
			log.Fatal(err)
		}
		iters := 0
		for _, t := range peer.Trials {
			iters += t.Iterations
		}
		fmt.Printf("replay of Optuna's %d trials (%d boosting iterations): Atrium %.1f s, LightGBM (Optuna's trial durations) %.1f s: %.2fx\n",
			len(peer.Trials), iters, a, p, a/p)
		// Optuna's best parameters refit by Atrium: against LightGBM's refit
		// of the same parameters, the libraries' test metrics apart from
		// the samplers' choice of parameters.
		auc, err := refitTestAUC(context.Background(), x, y, params(*threads, max(peer.BestIters, 1), peer.BestParams))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("Optuna's best parameters refit by Atrium: test AUC %.5f (LightGBM's refit %.5f, %+.5f)\n", auc, peer.TestAUC, auc-peer.TestAUC)
	}
}
