package tracking_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/tracking"
)

// Store benchmarks on SQLite (and PostgreSQL when ATRIUM_TEST_POSTGRES is set):
//
//	go test -run XXX -bench . -benchtime 3s ./internal/tracking/
//
// The HTTP benchmark against the real mlflow server lives in bench/tracking.

func benchStores(b *testing.B, fn func(b *testing.B, s *tracking.Store)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, benchStore(b, metatest.SQLite(b, tracking.Schema))) })
	b.Run("postgres", func(b *testing.B) { fn(b, benchStore(b, metatest.Postgres(b, tracking.Schema))) })
}

func benchStore(b *testing.B, db *meta.DB) *tracking.Store {
	s, err := tracking.New(context.Background(), db, tracking.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkLogBatch500(b *testing.B) {
	benchStores(b, func(b *testing.B, s *tracking.Store) {
		ctx := context.Background()
		r, err := s.CreateRun(ctx, tracking.RunCreate{})
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			ms := make([]tracking.Metric, 500)
			for j := range ms {
				ms[j] = metric(fmt.Sprintf("m%d", j%10), float64(j), int64(i), int64(i*50+j/10))
			}
			if err := s.LogBatch(ctx, r.Info.RunID, ms, nil, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "metrics/s")
	})
}

func BenchmarkSearchRuns10k(b *testing.B) {
	benchStores(b, func(b *testing.B, s *tracking.Store) {
		ctx := context.Background()
		exp, err := s.CreateExperiment(ctx, "bench", "", nil)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < 10000; i++ {
			r, err := s.CreateRun(ctx, tracking.RunCreate{ExperimentID: exp, StartTime: int64(i + 1)})
			if err != nil {
				b.Fatal(err)
			}
			model := "lr"
			if i%2 == 0 {
				model = "gbdt"
			}
			if err := s.LogBatch(ctx, r.Info.RunID, []tracking.Metric{metric("acc", float64(i%1000)/1000, 1, 0)},
				[]tracking.KV{{Key: "model", Value: model}}, []tracking.KV{{Key: "t", Value: "x"}}); err != nil {
				b.Fatal(err)
			}
		}
		q := tracking.RunQuery{ExperimentIDs: []string{exp}, Filter: "metrics.acc > 0.5 and params.model = 'gbdt'",
			OrderBy: []string{"metrics.acc DESC"}, MaxResults: 100}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			runs, _, err := s.SearchRuns(ctx, q)
			if err != nil || len(runs) != 100 {
				b.Fatalf("%d runs, %v", len(runs), err)
			}
		}
	})
}

func BenchmarkMetricHistory100k(b *testing.B) {
	benchStores(b, func(b *testing.B, s *tracking.Store) {
		ctx := context.Background()
		r, err := s.CreateRun(ctx, tracking.RunCreate{})
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < 100; i++ {
			ms := make([]tracking.Metric, 1000)
			for j := range ms {
				step := int64(i*1000 + j)
				ms[j] = metric("loss", 1/float64(step+1), step, step)
			}
			if err := s.LogBatch(ctx, r.Info.RunID, ms, nil, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			h, _, err := s.GetMetricHistory(ctx, r.Info.RunID, "loss", nil, "")
			if err != nil || len(h) != 100000 {
				b.Fatalf("%d points, %v", len(h), err)
			}
		}
		b.StopTimer()
		b.Run("paged-25000", func(b *testing.B) {
			page := int64(25000)
			for i := 0; i < b.N; i++ {
				n, tok := 0, ""
				for {
					h, next, err := s.GetMetricHistory(ctx, r.Info.RunID, "loss", &page, tok)
					if err != nil {
						b.Fatal(err)
					}
					n += len(h)
					if tok = next; tok == "" {
						break
					}
				}
				if n != 100000 {
					b.Fatalf("%d points", n)
				}
			}
		})
	})
}

// BenchmarkHTTPMetricHistory100k: GET metrics/get-history of 100,000 points
// through the HTTP handler (store, JSON, transport), SQLite.
func BenchmarkHTTPMetricHistory100k(b *testing.B) {
	db := metatest.SQLite(b, tracking.Schema)
	s := benchStore(b, db)
	ctx := context.Background()
	r, err := s.CreateRun(ctx, tracking.RunCreate{})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		ms := make([]tracking.Metric, 1000)
		for j := range ms {
			step := int64(i*1000 + j)
			ms[j] = metric("loss", 1/float64(step+1), 1_700_000_000_000+step, step)
		}
		if err := s.LogBatch(ctx, r.Info.RunID, ms, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	srv := httptest.NewServer(server.New(server.Options{}, tracking.NewAPI(s, nil, nil)).Handler())
	defer srv.Close()
	url := srv.URL + "/api/2.0/mlflow/metrics/get-history?run_id=" + r.Info.RunID + "&metric_key=loss"
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n < 5_000_000 {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
		}
	}
}

// BenchmarkHTTPSearchRuns10k: POST runs/search over 10,000 runs (a metric and a
// param filter, ordered by the metric, 100 results) through the HTTP handler, SQLite.
func BenchmarkHTTPSearchRuns10k(b *testing.B) {
	s := benchStore(b, metatest.SQLite(b, tracking.Schema))
	ctx := context.Background()
	exp, err := s.CreateExperiment(ctx, "bench", "", nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 10000; i++ {
		r, err := s.CreateRun(ctx, tracking.RunCreate{ExperimentID: exp, StartTime: int64(i + 1)})
		if err != nil {
			b.Fatal(err)
		}
		model := "lr"
		if i%2 == 0 {
			model = "gbdt"
		}
		if err := s.LogBatch(ctx, r.Info.RunID, []tracking.Metric{metric("acc", float64(i%1000)/1000, 1, 0)},
			[]tracking.KV{{Key: "model", Value: model}}, []tracking.KV{{Key: "t", Value: "x"}}); err != nil {
			b.Fatal(err)
		}
	}
	srv := httptest.NewServer(server.New(server.Options{}, tracking.NewAPI(s, nil, nil)).Handler())
	defer srv.Close()
	body := `{"experiment_ids":["` + exp + `"],"filter":"metrics.acc > 0.5 and params.model = 'gbdt'","order_by":["metrics.acc DESC"],"max_results":100}`
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := http.Post(srv.URL+"/api/2.0/mlflow/runs/search", "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n < 10_000 {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
		}
	}
}

// BenchmarkHTTPLogBatch500: POST runs/log-batch of 500 metrics through the HTTP
// handler, SQLite.
func BenchmarkHTTPLogBatch500(b *testing.B) {
	s := benchStore(b, metatest.SQLite(b, tracking.Schema))
	r, err := s.CreateRun(context.Background(), tracking.RunCreate{})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(server.New(server.Options{}, tracking.NewAPI(s, nil, nil)).Handler())
	defer srv.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var sb strings.Builder
		fmt.Fprintf(&sb, `{"run_id":%q,"metrics":[`, r.Info.RunID)
		for j := 0; j < 500; j++ {
			if j > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"key":"m%d","value":%g,"timestamp":%d,"step":%d}`, j%10, float64(j)/7, 1_700_000_000_000+i, i*50+j/10)
		}
		sb.WriteString("]}")
		resp, err := http.Post(srv.URL+"/api/2.0/mlflow/runs/log-batch", "application/json", strings.NewReader(sb.String()))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkHTTPSearchRuns1000: POST runs/search without filter returning 1,000 of
// 10,000 runs in the default order (mlflow-go's SearchRuns), SQLite.
func BenchmarkHTTPSearchRuns1000(b *testing.B) {
	s := benchStore(b, metatest.SQLite(b, tracking.Schema))
	ctx := context.Background()
	exp, err := s.CreateExperiment(ctx, "bench", "", nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 10000; i++ {
		r, err := s.CreateRun(ctx, tracking.RunCreate{ExperimentID: exp, StartTime: int64(i/3 + 1)})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.LogBatch(ctx, r.Info.RunID, []tracking.Metric{metric("acc", float64(i%1000)/1000, 1, 0)},
			[]tracking.KV{{Key: "model", Value: "gbdt"}}, []tracking.KV{{Key: "t", Value: "x"}}); err != nil {
			b.Fatal(err)
		}
	}
	srv := httptest.NewServer(server.New(server.Options{}, tracking.NewAPI(s, nil, nil)).Handler())
	defer srv.Close()
	body := `{"experiment_ids":["` + exp + `"],"max_results":1000}`
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := http.Post(srv.URL+"/api/2.0/mlflow/runs/search", "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n < 100_000 {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
		}
	}
}

// BenchmarkLogBatch500Keys20Writers: mlflow-go's LogMetricBatch500 on the store:
// 20 writers log batches of 500 distinct metric keys into one shared run.
func BenchmarkLogBatch500Keys20Writers(b *testing.B) {
	benchStores(b, func(b *testing.B, s *tracking.Store) {
		ctx := context.Background()
		r, err := s.CreateRun(ctx, tracking.RunCreate{})
		if err != nil {
			b.Fatal(err)
		}
		var n atomic.Int64
		b.SetParallelism(10) // 20 goroutines on 2 cores
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ts := n.Add(1)
				ms := make([]tracking.Metric, 500)
				for j := range ms {
					ms[j] = metric(fmt.Sprintf("metric_%d", j), float64(j)*float64(ts%7), ts, 0)
				}
				if err := s.LogBatch(ctx, r.Info.RunID, ms, nil, nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "batches/s")
	})
}
