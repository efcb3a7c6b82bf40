package predlog

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// benchRecord is a rank request of rows candidates x 30 features (27
// numeric, 3 categorical), as the serving benchmarks score.
func benchRecord(id string, rows int) Record {
	r := Record{
		RequestID: id, Time: t0, Model: "ranker", Version: "3", Route: RouteRank, RoutingKey: "u1", Rows: rows,
		Context:  []Field{{"user_id", "u1"}},
		Entities: []Column{{"listing_id", make([]string, rows)}},
		Values:   make([]float64, rows*27), Strings: make([]string, rows*3), Scores: make([]float64, rows),
		Latency: Latency{Total: 3 * time.Millisecond, Fetch: time.Millisecond, Model: time.Millisecond},
	}
	for j := range 27 {
		r.Features = append(r.Features, fmt.Sprintf("f%02d", j))
	}
	r.Categorical = []string{"city", "kind", "neighbourhood"}
	for i := range rows {
		r.Entities[0].Values[i] = fmt.Sprintf("listing-%d", i)
		for j := range 27 {
			r.Values[i*27+j] = float64(i*j) / 7
		}
		for j := range 3 {
			r.Strings[i*3+j] = fmt.Sprintf("c%d", (i+j)%17)
		}
		r.Scores[i] = float64(i) / float64(rows)
	}
	return r
}

// drain empties the buffer without writing, so that Log benchmarks measure
// Log alone and never hit a full buffer.
func (w *Writer) drain() {
	w.mu.Lock()
	w.pending = w.pending[:0]
	w.mu.Unlock()
	w.held.Store(0)
}

// BenchmarkLog is the request path's cost of logging one request of 200 rows
// (independent of the rows: Log takes the record's slices).
func BenchmarkLog(b *testing.B) {
	w := openTest(b, Options{BufferRows: 1 << 40})
	rec := benchRecord("req", 200)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if !w.Log(rec) {
			b.Fatal("dropped")
		}
		if i++; i%100_000 == 0 {
			w.drain()
		}
	}
	w.drain()
}

// BenchmarkLogParallel is Log from every core at once.
func BenchmarkLogParallel(b *testing.B) {
	w := openTest(b, Options{BufferRows: 1 << 40})
	rec := benchRecord("req", 200)
	b.ReportAllocs()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Log(rec)
			if n.Add(1)%100_000 == 0 {
				w.drain()
			}
		}
	})
	w.drain()
}

// BenchmarkLogSampledOut is Log of a request outside a 10% sample.
func BenchmarkLogSampledOut(b *testing.B) {
	w := openTest(b, Options{SampleRate: 0.1})
	id := ""
	for i := 0; ; i++ {
		if id = fmt.Sprint("req-", i); !Sampled(id, 0.1) {
			break
		}
	}
	rec := benchRecord(id, 200)
	for b.Loop() {
		w.Log(rec)
	}
}

// BenchmarkFlush writes 100,000 rows (500 rank requests of 200 rows x 30
// features) to one Parquet file per iteration: the flush's throughput.
func BenchmarkFlush(b *testing.B) {
	w := openTest(b, Options{BufferRows: 1 << 20})
	recs := make([]Record, 500)
	for i := range recs {
		recs[i] = benchRecord(fmt.Sprint("req-", i), 200)
	}
	ctx := context.Background()
	rows := 0
	for b.Loop() {
		for _, r := range recs {
			w.Log(r)
		}
		if err := w.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		rows += 500 * 200
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkFlushRank is BenchmarkFlush on a rank request's values: the
// first 12 features the user's (one random value per request, repeated on
// its 200 rows), the other 15 the listings' (random on every row), as float32
// values widened, which the features are. Besides time, it reports the
// Parquet bytes a flush writes.
func BenchmarkFlushRank(b *testing.B) {
	dir := b.TempDir()
	w := openTest(b, Options{Dir: dir, BufferRows: 1 << 20})
	r := rand.New(rand.NewPCG(1, 2))
	recs := make([]Record, 500)
	for u := range recs {
		rec := benchRecord(fmt.Sprint("req-", u), 200)
		var user [12]float64
		for j := range user {
			user[j] = r.NormFloat64()
		}
		for i := range 200 {
			for j := range 27 {
				v := float64(float32(r.NormFloat64()))
				if j < len(user) {
					v = user[j]
				}
				rec.Values[i*27+j] = v
			}
		}
		recs[u] = rec
	}
	ctx := context.Background()
	for b.Loop() {
		for _, rec := range recs {
			w.Log(rec)
		}
		if err := w.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	var size int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				size += fi.Size()
			}
		}
		return nil
	})
	b.ReportMetric(float64(len(recs)*200*b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(size)/float64(b.N), "bytes/flush")
}
