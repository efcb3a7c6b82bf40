package serving

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/online/pebble"
	"github.com/atrium-ml/atrium/internal/data/retrieval"
	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
)

// benchRank is the rank benchmark's world: 1,000 users and 10,000 listings
// of 15 float64 features each in Pebble, a 300-tree GBDT over the 30, and
// rank requests of 200 candidates (bench/serving/rank measures the same
// through `atrium serve`).
func benchRank(b *testing.B) (*Endpoints, [][]byte) {
	b.Helper()
	ctx := context.Background()
	store, err := pebble.Open(filepath.Join(b.TempDir(), "online"), pebble.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	r := rand.New(rand.NewPCG(1, 2))
	defs := retrieval.Definitions{Services: []retrieval.ServiceDef{{Name: "ranking", Features: []string{"user_profile", "listing_profile"}}}}
	var feats []string
	for _, s := range []struct {
		set, key, prefix string
		n                int
	}{{"user_profile", "user_id", "u", 1000}, {"listing_profile", "listing_id", "l", 10000}} {
		def := retrieval.SetDef{Name: s.set, JoinKeys: []retrieval.JoinKeyDef{{Name: s.key, Type: retrieval.KeyString}}}
		var names []string
		for i := range 15 {
			n := fmt.Sprintf("%s%02d", s.prefix, i)
			names = append(names, n)
			def.Features = append(def.Features, retrieval.FeatureDef{Name: n, Type: online.KindFloat64})
		}
		feats = append(feats, names...)
		defs.Sets = append(defs.Sets, def)
		rows := make([]online.Row, s.n)
		for i := range rows {
			vals := make([]online.Value, 15)
			for j := range vals {
				vals[j] = online.Float64(r.NormFloat64())
			}
			rows[i] = online.Row{Key: online.MustKey(s.prefix + strconv.Itoa(i)), TS: time.Now(), Values: vals}
		}
		if err := store.Write(ctx, s.set, names, rows); err != nil {
			b.Fatal(err)
		}
	}
	o, err := retrieval.NewOnline(store, defs, retrieval.Options{})
	if err != nil {
		b.Fatal(err)
	}
	w := newWorld(b)
	v := w.registerModel(b, "ranker", trainWide(b, feats, 300), "ranking")
	w.alias(b, "ranker", "champion", v)
	svc := New(w.loader, Options{})
	svc.Start(ctx)
	b.Cleanup(func() { svc.Close() })
	e, err := NewEndpoints(svc, EndpointOptions{Online: o})
	if err != nil {
		b.Fatal(err)
	}
	bodies := make([][]byte, 64)
	for i := range bodies {
		ids := make([]string, 200)
		for j := range ids {
			ids[j] = "l" + strconv.Itoa(r.IntN(10000))
		}
		bodies[i], _ = json.Marshal(map[string]any{"context": map[string]string{"user_id": "u" + strconv.Itoa(r.IntN(1000))},
			"candidates": map[string][]string{"listing_id": ids}, "top_k": 50})
	}
	return e, bodies
}

// trainWide fits a binary GBDT of the given trees on synthetic rows.
func trainWide(b *testing.B, feats []string, trees int) *modelfile.Model {
	b.Helper()
	const n = 4000
	r := rand.New(rand.NewPCG(5, 6))
	ds := &ml.Dataset{Label: make([]float64, n), Columns: make([]ml.Column, len(feats))}
	for j, f := range feats {
		ds.Columns[j] = ml.Column{Name: f, Values: make([]float32, n)}
	}
	for i := range n {
		z := 0.0
		for j := range feats {
			v := r.NormFloat64()
			ds.Columns[j].Values[i] = float32(v)
			z += v * v * math.Copysign(1, float64(j%3)-1)
		}
		if z+r.NormFloat64() > 0 {
			ds.Label[i] = 1
		}
	}
	p, err := gbdt.ParseParams(map[string]string{"objective": "binary", "num_iterations": strconv.Itoa(trees), "num_leaves": "31", "learning_rate": "0.05"})
	if err != nil {
		b.Fatal(err)
	}
	gm, err := gbdt.Train(context.Background(), ds, nil, p, gbdt.TrainOptions{})
	if err != nil {
		b.Fatal(err)
	}
	m, err := modelfile.NewGBDT(gm, ds)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkRank is one rank request of 200 candidates x 30 features through
// the HTTP handler (JSON in and out, one Pebble read, 300 trees), on one
// goroutine: the server's CPU time per request.
func BenchmarkRank(b *testing.B) {
	e, bodies := benchRank(b)
	h := http.NewServeMux()
	for _, rt := range e.Routes() {
		h.Handle(rt.Pattern, rt.Handler)
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/v1/models/ranker/rank", bytes.NewReader(bodies[i%len(bodies)]))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
		i++
	}
}

// BenchmarkTopK orders a rank request's 200 scored candidates and keeps 50.
func BenchmarkTopK(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	in := make([]Ranked, 200)
	for i := range in {
		in[i] = Ranked{Row: i, Score: r.Float64()}
	}
	work := make([]Ranked, len(in))
	b.ReportAllocs()
	for b.Loop() {
		copy(work, in)
		if top := topK(work, 50); len(top) != 50 {
			b.Fatal(len(top))
		}
	}
}
