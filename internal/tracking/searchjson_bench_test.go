package tracking

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/atrium-ml/atrium/internal/platform/meta"
)

// BenchmarkSearchRunsPage1000: one page of 1,000 of 10,000 runs, no filter,
// the default order (mlflow-go's SearchRuns), on SQLite, read and encoded as
// the API answers it: "go" reads the page's data into Go values and encodes
// them (SearchRuns, runsResponse), "sqljson" has SQLite write the page's runs
// as JSON (searchRunsPage with the run cache off, pageJSON), "cached" copies
// the runs' JSON from a warm run cache (cachedPage). "c20" runs 20 searches at
// a time.
//
//	go test -run XXX -bench SearchRunsPage1000 -count 5 ./internal/tracking/
//
// The runs are those bench/tracking's load generator creates. They are seeded
// once per process (about 20 s) and shared by every sub-benchmark and -count.
func BenchmarkSearchRunsPage1000(b *testing.B) {
	s, exp := pageBenchStore(b)
	ctx := context.Background()
	q := RunQuery{ExperimentIDs: []string{exp}, MaxResults: 1000}
	uncached, err := New(ctx, s.db, Options{RunCacheBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	paths := []struct {
		name   string
		search func(b []byte) ([]byte, error)
	}{
		{"go", func(b []byte) ([]byte, error) {
			runs, next, err := s.SearchRuns(ctx, q)
			return runsResponse{nonNil(runs), next}.AppendJSON(b), err
		}},
		{"sqljson", func(b []byte) ([]byte, error) {
			page, err := uncached.searchRunsPage(ctx, q)
			return page.AppendJSON(b), err
		}},
		{"cached", func(b []byte) ([]byte, error) {
			page, err := s.searchRunsPage(ctx, q)
			return page.AppendJSON(b), err
		}},
	}
	for _, p := range paths {
		check := func(b *testing.B, out []byte, err error) {
			if err != nil || len(out) < 300_000 {
				b.Fatalf("%d bytes, error %v", len(out), err)
			}
		}
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				out, err := p.search(nil)
				check(b, out, err)
			}
		})
		b.Run(p.name+"/c20", func(b *testing.B) {
			b.SetParallelism(10) // 20 goroutines on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					out, err := p.search(nil)
					check(b, out, err)
				}
			})
		})
	}
}

var pageBench struct {
	once sync.Once
	dir  string
	s    *Store
	exp  string
	err  error
}

// pageBenchStore is a SQLite store of 10,000 runs shaped like the load
// generator's: two tags at creation, then a batch of one metric, one param and
// one tag.
func pageBenchStore(b *testing.B) (*Store, string) {
	pb := &pageBench
	pb.once.Do(func() {
		ctx := context.Background()
		if pb.dir, pb.err = os.MkdirTemp("", "atrium-bench-"); pb.err != nil {
			return
		}
		db, err := meta.Open(ctx, "sqlite://"+filepath.Join(pb.dir, "meta.db"), Schema)
		if err != nil {
			pb.err = err
			return
		}
		if pb.s, pb.err = New(ctx, db, Options{}); pb.err != nil {
			return
		}
		if pb.exp, pb.err = pb.s.CreateExperiment(ctx, "bench", "", nil); pb.err != nil {
			return
		}
		for i := range 10_000 {
			r, err := pb.s.CreateRun(ctx, RunCreate{ExperimentID: pb.exp, UserID: "bench", RunName: fmt.Sprintf("run-%05d", i),
				StartTime: int64(1_700_000_000_000 + i),
				Tags:      []KV{{Key: "mlflow.user", Value: "bench"}, {Key: "mlflow.source.type", Value: "LOCAL"}}})
			if err != nil {
				pb.err = err
				return
			}
			model := []string{"gbdt", "lr"}[i%2]
			err = pb.s.LogBatch(ctx, r.Info.RunID, []Metric{{Key: "acc", Value: 0.5, Timestamp: 17}},
				[]KV{{Key: "model", Value: model}}, []KV{{Key: "team", Value: fmt.Sprintf("t%d", i%10)}})
			if err != nil {
				pb.err = err
				return
			}
		}
	})
	if pb.err != nil {
		b.Fatal(pb.err)
	}
	return pb.s, pb.exp
}

// TestMain removes the page benchmark's store when the benchmark made one.
func TestMain(m *testing.M) {
	code := m.Run()
	if pageBench.dir != "" {
		os.RemoveAll(pageBench.dir)
	}
	os.Exit(code)
}
