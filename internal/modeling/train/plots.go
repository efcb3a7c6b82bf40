package train

import (
	"bytes"
	"fmt"
	"image/color"
	"maps"
	"math"
	"slices"
	"sort"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/modeling/tune"
	"github.com/atrium-ml/atrium/internal/spec"
)

// plotData is what the study's plots show.
type plotData struct {
	metric   string
	maximize bool
	// curves are the per-iteration validation metric of the study's trials,
	// by trial number (studyCurves); best is the best trial's number.
	curves map[int][]float64
	best   int
	trials []tune.FrozenTrial
	space  []spec.TuneParam
	model  *modelfile.Model
	test   *ml.Dataset
	pred   []float64 // the refit model's test predictions
}

// plotFiles draws the study's PNG plots, by artifact path: learning curves,
// parameter importance, feature importance, and a gain chart (ranking) or a
// calibration chart (binary) on the test split. A plot without data (one
// trial, a linear model) is left out.
func plotFiles(d plotData) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, pl := range []struct {
		path string
		draw func(plotData) (*plot.Plot, error)
	}{
		{"plots/learning_curves.png", learningCurves},
		{"plots/param_importance.png", paramImportance},
		{"plots/feature_importance.png", featureImportance},
		{"plots/gain.png", gainChart},
		{"plots/calibration.png", calibrationChart},
	} {
		p, err := pl.draw(d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pl.path, err)
		}
		if p == nil {
			continue
		}
		w, err := p.WriterTo(16*vg.Centimeter, 10*vg.Centimeter, "png")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pl.path, err)
		}
		var b bytes.Buffer
		if _, err := w.WriteTo(&b); err != nil {
			return nil, fmt.Errorf("%s: %w", pl.path, err)
		}
		out[pl.path] = b.Bytes()
	}
	return out, nil
}

var (
	grey = color.RGBA{R: 170, G: 170, B: 170, A: 255}
	blue = color.RGBA{R: 31, G: 119, B: 180, A: 255}
)

// learningCurves draws every trial's validation metric per iteration, the
// best trial's in colour.
func learningCurves(d plotData) (*plot.Plot, error) {
	if len(d.curves) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = "Learning curves (validation " + d.metric + ")"
	p.X.Label.Text = "iteration"
	p.Y.Label.Text = d.metric
	for _, n := range slices.Sorted(maps.Keys(d.curves)) {
		c := d.curves[n]
		if len(c) == 0 {
			continue
		}
		pts := make(plotter.XYs, len(c))
		for i, v := range c {
			pts[i] = plotter.XY{X: float64(i + 1), Y: v}
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, err
		}
		l.Color = grey
		if n == d.best {
			l.Color, l.Width = blue, vg.Points(2)
			defer p.Add(l) // drawn last, on top
			p.Legend.Add(fmt.Sprintf("best trial #%d", n), l)
			continue
		}
		p.Add(l)
	}
	return p, nil
}

// paramImportance ranks the searched parameters by the absolute Spearman
// rank correlation of their values with the objective over the completed
// trials (a cheap stand-in for Optuna's fANOVA that needs no model).
func paramImportance(d plotData) (*plot.Plot, error) {
	var complete []tune.FrozenTrial
	for _, t := range d.trials {
		if t.State == tune.Complete {
			complete = append(complete, t)
		}
	}
	if len(complete) < 3 || len(d.space) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(d.space))
	imp := make([]float64, 0, len(d.space))
	y := make([]float64, len(complete))
	for i, t := range complete {
		y[i] = t.Value
	}
	for _, sp := range d.space {
		x := make([]float64, len(complete))
		for i, t := range complete {
			x[i] = paramValue(t, sp)
		}
		c := spearman(x, y)
		if math.IsNaN(c) {
			c = 0
		}
		names, imp = append(names, sp.Name), append(imp, math.Abs(c))
	}
	return barChart("Parameter importance (|Spearman correlation| with "+d.metric+")", names, imp)
}

// paramValue is a trial's value of a parameter as a number: a category's
// index among the choices.
func paramValue(t tune.FrozenTrial, sp spec.TuneParam) float64 {
	switch v := t.Params[sp.Name].(type) {
	case float64:
		return v
	case int:
		return float64(v)
	case string:
		return float64(slices.Index(sp.Choices, v))
	}
	return math.NaN()
}

// spearman is the rank correlation of x and y (average ranks for ties).
func spearman(x, y []float64) float64 {
	return stat.Correlation(ranks(x), ranks(y), nil)
}

func ranks(x []float64) []float64 {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return x[idx[a]] < x[idx[b]] })
	r := make([]float64, len(x))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && x[idx[j+1]] == x[idx[i]] {
			j++
		}
		for k := i; k <= j; k++ {
			r[idx[k]] = float64(i+j)/2 + 1
		}
		i = j + 1
	}
	return r
}

// featureImportance draws the refit model's gain per feature (trees only).
func featureImportance(d plotData) (*plot.Plot, error) {
	gm, ok := d.model.Body.(*gbdt.Model)
	if !ok {
		return nil, nil
	}
	gain := gbdt.GainImportance(gm)
	names := make([]string, len(d.model.Features))
	for i, f := range d.model.Features {
		names[i] = f.Name
	}
	return barChart("Feature importance (total split gain)", names, gain)
}

// barChart draws values by name, largest first, at most 20 bars.
func barChart(title string, names []string, values []float64) (*plot.Plot, error) {
	order := make([]int, len(values))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return values[order[a]] > values[order[b]] })
	if len(order) > 20 {
		order = order[:20]
	}
	slices.Reverse(order) // the first bar is drawn at the bottom: largest on top
	vs := make(plotter.Values, len(order))
	labels := make([]string, len(order))
	for i, k := range order {
		vs[i], labels[i] = values[k], names[k]
	}
	p := plot.New()
	p.Title.Text = title
	bars, err := plotter.NewBarChart(vs, vg.Points(14))
	if err != nil {
		return nil, err
	}
	bars.Color, bars.Horizontal = blue, true
	p.Add(bars)
	p.NominalY(labels...)
	return p, nil
}

// gainChart draws NDCG@k of the refit model on the test queries for k =
// 1..10 (ranking only).
func gainChart(d plotData) (*plot.Plot, error) {
	if d.model.Task != modelfile.TaskLambdarank || d.test == nil || d.test.Groups == nil {
		return nil, nil
	}
	pts := make(plotter.XYs, 0, 10)
	for k := 1; k <= 10; k++ {
		v, err := ml.NDCG(d.test.Label, d.pred, d.test.Groups, k, ml.DefaultLabelGain())
		if err != nil {
			return nil, err
		}
		pts = append(pts, plotter.XY{X: float64(k), Y: v})
	}
	p := plot.New()
	p.Title.Text = "Gain on the test split: NDCG@k"
	p.X.Label.Text = "k"
	p.Y.Label.Text = "NDCG@k"
	l, s, err := plotter.NewLinePoints(pts)
	if err != nil {
		return nil, err
	}
	l.Color, s.Color = blue, blue
	p.Add(l, s)
	return p, nil
}

// calibrationChart draws the observed positive rate against the mean
// predicted probability in ten bins of the test predictions (binary only).
func calibrationChart(d plotData) (*plot.Plot, error) {
	if d.model.Task != modelfile.TaskBinary || d.test == nil || len(d.pred) == 0 {
		return nil, nil
	}
	const bins = 10
	var sumP, sumY, n [bins]float64
	for i, p := range d.pred {
		b := min(int(p*bins), bins-1)
		sumP[b] += p
		sumY[b] += d.test.Label[i]
		n[b]++
	}
	var pts plotter.XYs
	for b := range bins {
		if n[b] > 0 {
			pts = append(pts, plotter.XY{X: sumP[b] / n[b], Y: sumY[b] / n[b]})
		}
	}
	p := plot.New()
	p.Title.Text = "Calibration on the test split"
	p.X.Label.Text = "mean predicted probability"
	p.Y.Label.Text = "observed positive rate"
	diag, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}})
	if err != nil {
		return nil, err
	}
	diag.Color = grey
	l, s, err := plotter.NewLinePoints(pts)
	if err != nil {
		return nil, err
	}
	l.Color, s.Color = blue, blue
	p.Add(diag, l, s)
	return p, nil
}
