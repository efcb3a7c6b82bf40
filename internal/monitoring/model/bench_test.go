package model

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/profile"
	"github.com/atrium-ml/atrium/internal/serving/predlog"
	"github.com/atrium-ml/atrium/internal/serving/servingtest"
)

// BenchmarkReport100k times a model report over a window of 100,000 logged
// rows of 10 inputs (8 numeric, 2 categorical) and the same number in the
// previous window, against a training profile: reading the log, drift of
// every input against the reference and the previous window.
func BenchmarkReport100k(b *testing.B) {
	const rows, numeric = 100_000, 8
	ctx := context.Background()
	st := servingtest.Open(b)
	dir := b.TempDir()
	mon := New(Options{Registry: st.Registry, Tracking: st.Tracking, Artifacts: st.Artifacts, LogDir: dir})
	rng := rand.New(rand.NewPCG(1, 1))
	names := make([]string, numeric)
	var ins []profile.Input
	for f := range numeric {
		names[f] = fmt.Sprintf("x%d", f)
		v := make([]float64, 20000)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		ins = append(ins, profile.Input{Name: names[f], Float: v})
	}
	for _, c := range []string{"c0", "c1"} {
		v := make([]string, 20000)
		for i := range v {
			v[i] = fmt.Sprint("v", rng.IntN(20))
		}
		ins = append(ins, profile.Input{Name: c, String: v})
	}
	w := &world{st: st, logDir: dir, mon: mon}
	version := w.register(b, "bench", profile.Build(ins, profile.Options{}))
	wr, err := predlog.Open(ctx, predlog.Options{Dir: dir, BufferRows: 4 * rows, FlushInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	end := time.Now().UTC()
	for i := range 2 * rows {
		vals := make([]float64, numeric)
		for f := range vals {
			vals[f] = rng.NormFloat64()
		}
		wr.Log(predlog.Record{RequestID: fmt.Sprint("r", i), Time: end.Add(-time.Duration(i) * 2 * time.Hour / (2 * rows)), Model: "bench", Version: version,
			Route: predlog.RoutePredict, Rows: 1, Features: names, Values: vals, Categorical: []string{"c0", "c1"},
			Strings: []string{fmt.Sprint("v", rng.IntN(20)), fmt.Sprint("v", rng.IntN(20))}, Scores: []float64{rng.Float64()}})
		if i%50_000 == 0 {
			if err := wr.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := wr.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		rep, err := mon.Compute(ctx, Request{Model: "bench", Window: time.Hour, Now: end.Add(time.Millisecond)})
		if err != nil || rep.Volume.Rows < rows-1 || rep.Tested != 10 {
			b.Fatalf("report: %v, %d rows, %d tested", err, rep.Volume.Rows, rep.Tested)
		}
	}
}
