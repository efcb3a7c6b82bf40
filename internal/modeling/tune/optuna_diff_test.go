package tune

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"testing"

	"github.com/atrium-ml/atrium/tests/interop/interoptest"
)

// TestParzenAgainstOptuna fits TPE's two Parzen estimators to one history
// with our code and with Optuna's own (tests/interop/tune/parzen.py), and
// compares the split of the trials and both log densities at random
// candidates: the whole of what TPE decides from, short of its random draws.
// The space has every kind: a log float, a stepped float, a plain float, a
// log int, a stepped int and a categorical.
//
// One difference is left out on purpose: numpy's argsort is not stable
// (it uses SIMD sorts), so when several trials have the same value of a
// numerical parameter, which of their kernels gets which width is arbitrary
// in Optuna (ours keeps trial order); with several parameters the kernels
// differ in the others, so the densities differ slightly. The histories
// therefore never repeat a numerical value: the discrete parameters'
// histories are short, and long ones use the continuous parameters and the
// categorical (whose kernels do not depend on order).
func TestParzenAgainstOptuna(t *testing.T) {
	py := interoptest.Python(t, "the differential TPE test against Optuna", "optuna")
	all := Space{
		{Name: "boost", Dist: CategoricalDist{Choices: []string{"gbdt", "dart", "goss"}}},
		{Name: "depth", Dist: IntDist{Low: 2, High: 12, Step: 2}},
		{Name: "frac", Dist: FloatDist{Low: 0.5, High: 1, Step: 0.1}},
		{Name: "leaves", Dist: IntDist{Low: 2, High: 256, Log: true}},
		{Name: "lr", Dist: FloatDist{Low: 1e-4, High: 1, Log: true}},
		{Name: "x", Dist: FloatDist{Low: -3, High: 7}},
	}
	continuous := Space{all[0], all[4], all[5]}
	for _, dir := range []Direction{Minimize, Maximize} {
		for _, n := range []int{2, 4, 6} {
			t.Run(dir.String()+"/all/"+strconv.Itoa(n), func(t *testing.T) { diffParzen(t, py, all, dir, n) })
		}
		for _, n := range []int{40, 90} {
			t.Run(dir.String()+"/continuous/"+strconv.Itoa(n), func(t *testing.T) { diffParzen(t, py, continuous, dir, n) })
		}
	}
}

func diffParzen(t *testing.T, py string, space Space, dir Direction, n int) {
	rng := rand.New(rand.NewPCG(uint64(n), uint64(dir)))
	type jsonTrial struct {
		Number       int                `json:"number"`
		State        string             `json:"state"`
		Value        float64            `json:"value"`
		Params       map[string]float64 `json:"params"`
		Intermediate map[string]float64 `json:"intermediate"`
	}
	var trials []*FrozenTrial
	var jt []jsonTrial
	used := map[string]map[float64]bool{}
	draw := func(p Param) float64 {
		if used[p.Name] == nil {
			used[p.Name] = map[float64]bool{}
		}
		x := sampleUniform(p.Dist, rng)
		if _, cat := p.Dist.(CategoricalDist); cat {
			return x
		}
		for used[p.Name][x] {
			x = sampleUniform(p.Dist, rng)
		}
		used[p.Name][x] = true
		return x
	}
	for i := range n {
		ft := &FrozenTrial{Number: i, State: Complete, Params: map[string]any{}, Distributions: map[string]Distribution{}, Intermediate: map[int]float64{}}
		j := jsonTrial{Number: i, State: "COMPLETE", Params: map[string]float64{}, Intermediate: map[string]float64{}}
		sum := 0.0
		for _, p := range space {
			x := draw(p)
			ft.Params[p.Name], ft.Distributions[p.Name] = p.Dist.ToExternal(x), p.Dist
			j.Params[p.Name] = x
			sum += x
		}
		ft.Value, j.Value = math.Round(sum*1000)/1000, math.Round(sum*1000)/1000
		if i%4 == 3 { // every fourth trial is pruned at a step of its own
			ft.State, j.State = Pruned, "PRUNED"
			step := i % 3
			ft.Intermediate[step], j.Intermediate[strconv.Itoa(step)] = ft.Value, ft.Value
		}
		trials = append(trials, ft)
		jt = append(jt, j)
	}
	cands := make([][]float64, 30)
	for i := range cands {
		for _, p := range space {
			cands[i] = append(cands[i], sampleUniform(p.Dist, rng))
		}
	}
	type jsonParam struct {
		Name string         `json:"name"`
		Dist map[string]any `json:"dist"`
	}
	var js []jsonParam
	for _, p := range space {
		b, _ := MarshalDistribution(p.Dist)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		js = append(js, jsonParam{Name: p.Name, Dist: m})
	}
	req, _ := json.Marshal(map[string]any{"direction": dir.String(), "trials": jt, "space": js, "candidates": cands})
	cmd := exec.Command(py, "../../../tests/interop/tune/parzen.py")
	cmd.Stdin = bytes.NewReader(req)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("parzen.py: %v", err)
	}
	var want struct {
		Below, Above []int
		LogL         []float64 `json:"log_l"`
		LogG         []float64 `json:"log_g"`
	}
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("parzen.py output %s: %v", out, err)
	}

	s := NewTPESampler(TPEOptions{})
	below, above := splitTrials(dir, trials, DefaultGamma(n))
	if !slices.Equal(numbers(below), want.Below) || !slices.Equal(numbers(above), want.Above) {
		t.Fatalf("split below %v above %v; Optuna %v and %v", numbers(below), numbers(above), want.Below, want.Above)
	}
	pl, pg := s.fit(below, space), s.fit(above, space)
	for i, c := range cands {
		l, g := pl.logPDF(c), pg.logPDF(c)
		if !near(l, want.LogL[i]) || !near(g, want.LogG[i]) {
			t.Errorf("candidate %v: log l %v g %v; Optuna %v and %v", c, l, g, want.LogL[i], want.LogG[i])
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
