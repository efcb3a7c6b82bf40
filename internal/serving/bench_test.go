package serving

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/gbdt/gbdttest"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/serving/oip"
)

// benchModel trains a binary GBDT of trees trees on 24 numeric and 6
// categorical features (the 30-feature ranker shape) and registers
// it as the champion of "bench" in LightGBM text.
func benchModel(b *testing.B, trees int, poll time.Duration) (*Backend, *ml.Dataset, *world, []byte) {
	b.Helper()
	full := gbdttest.BenchBinary(4000, 1)
	ds := &ml.Dataset{Label: full.Label}
	for _, c := range full.Columns {
		if (c.Kind == ml.Numeric && ds.NumFeatures() < 24) || (c.Kind == ml.Categorical && len(ds.Columns) >= 24 && len(ds.Columns) < 30) {
			ds.Columns = append(ds.Columns, c)
		}
	}
	p := gbdt.DefaultParams()
	p.Objective, p.NumIterations, p.NumLeaves = gbdt.ObjBinary, trees, 31
	gm, err := gbdt.Train(context.Background(), ds, nil, p, gbdt.TrainOptions{})
	if err != nil {
		b.Fatal(err)
	}
	m, err := modelfile.NewGBDT(gm, ds)
	if err != nil {
		b.Fatal(err)
	}
	text, err := m.MarshalLightGBM()
	if err != nil {
		b.Fatal(err)
	}
	w := newWorld(b)
	v := w.register(b, "bench", flavorDir("lightgbm", "model.lgb", text, ""))
	w.alias(b, "bench", "champion", v)
	s := New(w.loader, Options{PollInterval: poll})
	s.Start(context.Background())
	b.Cleanup(func() { s.Close() })
	return NewBackend(s), ds, w, text
}

// BenchmarkInfer is the OIP backend's cost of one request of 200 rows x 30
// features through a 300-tree GBDT (decoding excluded: the transport's), by
// input layout.
func BenchmarkInfer(b *testing.B) {
	be, ds, _, _ := benchModel(b, 300, 0)
	const rows = 200
	r := rand.New(rand.NewPCG(1, 2))
	start := r.IntN(ds.NumRows() - rows)
	matrix := oip.Tensor{Name: "x", Datatype: oip.FP64, Shape: []int64{rows, 30}, FP64: make([]float64, rows*30)}
	perFeature := make([]oip.Tensor, 30)
	for j, c := range ds.Columns {
		t := oip.Tensor{Name: c.Name, Datatype: oip.FP64, Shape: []int64{rows}}
		if c.Kind == ml.Categorical {
			t.Datatype = oip.BYTES
		}
		for i := range rows {
			v := c.Values[start+i]
			matrix.FP64[i*30+j] = float64(v)
			if c.Kind == ml.Categorical {
				s := ""
				if v == v {
					s = c.Categories[int(v)]
				}
				t.Bytes = append(t.Bytes, []byte(s))
			} else {
				t.FP64 = append(t.FP64, float64(v))
			}
		}
		perFeature[j] = t
	}
	ctx := context.Background()
	for _, bc := range []struct {
		name   string
		inputs []oip.Tensor
	}{{"matrix", []oip.Tensor{matrix}}, {"per-feature", perFeature}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res, err := be.Infer(ctx, "bench", "", &oip.InferRequest{Inputs: bc.inputs})
				if err != nil || len(res.Outputs[0].FP64) != rows {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLoad is the time to load a 1,000-tree model version from the
// registry and the artifact store (read, parse, compile on first predict).
func BenchmarkLoad(b *testing.B) {
	be, ds, _, text := benchModel(b, 1000, 0)
	one := be.svc.loader
	d0, err := be.svc.Resolve(context.Background(), "bench", "", "")
	if err != nil {
		b.Fatal(err)
	}
	if n := len(d0.Model().Body.(*gbdt.Model).Trees); n != 1000 {
		b.Fatalf("%d trees, want 1000", n)
	}
	if dir := os.Getenv("ATRIUM_BENCH_MODEL_DIR"); dir != "" {
		// bench/serving/load/run.sh times LightGBM loading the same file.
		if err := os.WriteFile(filepath.Join(dir, "model.lgb"), text, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	row := d0.NewDataset(1)
	for j := range row.Columns {
		row.Columns[j].Values[0] = ds.Columns[j].Values[0]
		if row.Columns[j].Float64 != nil {
			row.Columns[j].Float64[0] = float64(ds.Columns[j].Values[0])
		}
	}
	b.ResetTimer()
	for b.Loop() {
		d, err := one.Load(context.Background(), "bench", d0.Version)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.Predict(context.Background(), row); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSwapLatency compares the p99 latency of Infer (200 rows x 30
// features, 300 trees, two closed-loop clients) while the champion alias is
// still with while it moves every 500 ms to a version not loaded yet (the
// watcher polls every 250 ms; each move loads a model in the background,
// competing for the CPU). The issue's
// bar: p99 during swaps at most 2x the steady p99.
func BenchmarkSwapLatency(b *testing.B) {
	be, ds, w, lgbText := benchModel(b, 300, 250*time.Millisecond)
	var fresh []string
	for range 40 {
		fresh = append(fresh, w.register(b, "bench", flavorDir("lightgbm", "model.lgb", lgbText, "")))
	}
	const rows = 200
	matrix := oip.Tensor{Name: "x", Datatype: oip.FP64, Shape: []int64{rows, 30}, FP64: make([]float64, rows*30)}
	for j, c := range ds.Columns {
		for i := range rows {
			matrix.FP64[i*30+j] = float64(c.Values[i])
		}
	}
	ctx := context.Background()
	phase := func(d time.Duration, swap bool) []time.Duration {
		stop := make(chan struct{})
		lat := make([][]time.Duration, 2)
		done := make(chan int)
		for g := range 2 {
			go func() {
				for {
					select {
					case <-stop:
						done <- g
						return
					default:
					}
					start := time.Now()
					if _, err := be.Infer(ctx, "bench", "", &oip.InferRequest{Inputs: []oip.Tensor{matrix}}); err != nil {
						b.Error(err)
					}
					lat[g] = append(lat[g], time.Since(start))
				}
			}()
		}
		end := time.After(d)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
	loop:
		for {
			select {
			case <-end:
				break loop
			case <-tick.C:
				if swap && len(fresh) > 0 {
					w.alias(b, "bench", "champion", fresh[0])
					fresh = fresh[1:]
				}
			}
		}
		close(stop)
		<-done
		<-done
		return append(lat[0], lat[1]...)
	}
	b.ResetTimer()
	var steady, swapping []time.Duration
	for b.Loop() {
		steady = append(steady, phase(5*time.Second, false)...)
		swapping = append(swapping, phase(5*time.Second, true)...)
	}
	p99s, p99w := percentile(steady, 0.99), percentile(swapping, 0.99)
	b.ReportMetric(float64(p99s.Microseconds())/1000, "p99-steady-ms")
	b.ReportMetric(float64(p99w.Microseconds())/1000, "p99-swapping-ms")
	b.ReportMetric(float64(p99w)/float64(p99s), "p99-ratio")
	b.ReportMetric(testutil.ToFloat64(be.svc.m.swaps.WithLabelValues("bench", "champion")), "swaps")
}

func percentile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}
