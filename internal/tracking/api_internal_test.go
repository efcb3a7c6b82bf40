package tracking

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// TestMetricsResponseJSON: the hand-written encoder writes what encoding/json
// writes for the same struct.
func TestMetricsResponseJSON(t *testing.T) {
	for _, resp := range []metricsResponse{
		{Metrics: []Metric{}},
		{Metrics: []Metric{
			{Key: "loss", Value: 0.5, Timestamp: 1, Step: 2},
			{Key: `we"ird\key ü`, Value: wire.Float(math.NaN()), Timestamp: 3, Step: -4, RunID: "abc"},
			{Key: "m", Value: wire.Float(math.Inf(-1)), DatasetName: "d", DatasetDigest: "x", ModelID: "m-1"},
			{Key: "big", Value: 1e300},
		}, NextPageToken: "eyJvZmZzZXQiOiAxfQ=="},
	} {
		got, err := resp.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		type plain metricsResponse // drops the MarshalJSON method
		want, _ := json.Marshal(plain(resp))
		if !bytes.Equal(got, want) {
			t.Errorf("MarshalJSON =\n%s\nwant\n%s", got, want)
		}
	}
}

// TestRunsResponseJSON: the hand-written encoder of search results writes what
// encoding/json writes.
func TestRunsResponseJSON(t *testing.T) {
	end := int64(99)
	runs := []Run{
		{Info: RunInfo{RunID: "a", RunUUID: "a", RunName: "n", ExperimentID: "1", Status: "RUNNING", StartTime: 5, ArtifactURI: "mlflow-artifacts:/1/a/artifacts", LifecycleStage: "active"}},
		{
			Info: RunInfo{RunID: "b", RunUUID: "b", RunName: `we"ird <n> & ü`, ExperimentID: "2", UserID: "u\n", Status: "FINISHED", StartTime: 1, EndTime: &end, LifecycleStage: "deleted"},
			Data: RunData{
				Metrics: []Metric{{Key: "m", Value: wire.Float(math.NaN()), Timestamp: 1, Step: 2}},
				Params:  []KV{{Key: "p", Value: "1"}},
				Tags:    []KV{{Key: "mlflow.runName", Value: `x\y`}},
			},
			Inputs: RunInputs{
				DatasetInputs: []DatasetInput{{Tags: []KV{{Key: "mlflow.data.context", Value: "train"}}, Dataset: Dataset{Name: "d", Digest: "1", SourceType: "local", Source: "{}", Schema: "s"}}},
				ModelInputs:   []ModelInput{{ModelID: "m-1"}},
			},
			Outputs: RunOutputs{ModelOutputs: []ModelOutput{{ModelID: "m-2", Step: 3}}},
		},
		{Info: RunInfo{RunID: "c"}, Data: RunData{Tags: []KV{{Key: "t", Value: ""}}}},
	}
	for _, resp := range []runsResponse{{Runs: []Run{}}, {Runs: runs, NextPageToken: "tok"}} {
		got := resp.AppendJSON(nil)
		type plain runsResponse
		want, _ := json.Marshal(plain(resp))
		if !bytes.Equal(got, want) {
			t.Errorf("AppendJSON =\n%s\nwant\n%s", got, want)
		}
	}
}

// TestAppendMetricHistoryJSON: the streamed history is byte for byte the JSON of
// GetMetricHistory's points, whole and paged, on both engines.
func TestAppendMetricHistoryJSON(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		s, err := New(ctx, db, Options{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.CreateRun(ctx, RunCreate{})
		if err != nil {
			t.Fatal(err)
		}
		key := "lös/ü: x"
		var ms []Metric
		for i, v := range []float64{0.1, math.NaN(), -3, 1e-7, 1e21, math.Inf(1), 2, 1.0 / 3} {
			ms = append(ms, Metric{Key: key, Value: wire.Float(v), Timestamp: int64(100 + i), Step: int64(i / 2)})
		}
		if err := s.LogBatch(ctx, r.Info.RunID, ms, nil, nil); err != nil {
			t.Fatal(err)
		}
		for _, max := range []int64{0, 1, 3, 8, 20} {
			var mp *int64
			if max > 0 {
				mp = &max
			}
			tok := ""
			for {
				want, wantNext, err := s.GetMetricHistory(ctx, r.Info.RunID, key, mp, tok)
				if err != nil {
					t.Fatal(err)
				}
				got, next, err := s.AppendMetricHistoryJSON(ctx, []byte("x"), r.Info.RunID, key, mp, tok)
				if err != nil {
					t.Fatal(err)
				}
				if w := appendMetrics([]byte("x"), want); !bytes.Equal(got, w) || next != wantNext {
					t.Fatalf("max %d token %q:\n%s %q\nwant\n%s %q", max, tok, got, next, w, wantNext)
				}
				if tok = next; tok == "" {
					break
				}
			}
		}
		_, _, err = s.AppendMetricHistoryJSON(ctx, nil, "ffffffffffffffffffffffffffffffff", key, nil, "")
		if !errors.Is(err, wire.ErrNotFound) {
			t.Fatalf("missing run error = %v", err)
		}
	}, Schema)
}

// TestSearchRunsJSON: the search answer written by runsPage (on
// SQLite, lists written by the engine) decodes, as the mlflow client decodes
// it, to the same runs as SearchRuns' runs encoded by runsResponse (the Go
// path), on both engines: strings that need escaping, NaN, infinities and
// extreme or integral doubles, 10,000 random doubles, sorted lists, runs
// without data, inputs and outputs, ended runs, paging, and text that is not
// valid UTF-8 (which takes the Go path).
func TestSearchRunsJSON(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		s, err := New(ctx, db, Options{})
		if err != nil {
			t.Fatal(err)
		}
		exp, err := s.CreateExperiment(ctx, "json", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		weird := []string{`q"uote\back/slash`, "ctl\x01\x1f\x7f\t\n\r\b\f", "<html>&amp;</html>", "üñí €", "line\u2028sep\u2029",
			"emoji 🎉", "", " ", "\ufeffbom", `{"json":[1,2]}`, "NaN", "1e999"}
		if db.Dialect == meta.SQLite { // PostgreSQL refuses NUL in text
			weird = append(weird, "nul\x00byte")
		}
		doubles := []float64{0.1, 0.1 + 0.2, 1.0 / 3, 5, -0.25, 0, math.Copysign(0, -1), 1e15, 1e16, 1e17, 1e21, 1e-7,
			123456789.123456789, 1 << 53, 1<<53 + 2, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64,
			-math.SmallestNonzeroFloat64, 2.2250738585072014e-308, 1e300, -1e-300, math.NaN(), math.Inf(1), math.Inf(-1)}
		rng := rand.New(rand.NewPCG(1, 2))
		var random []Metric // finite doubles of every magnitude
		for len(random) < 10_000 {
			if f := math.Float64frombits(rng.Uint64()); !math.IsNaN(f) && !math.IsInf(f, 0) {
				random = append(random, Metric{Key: fmt.Sprintf("r%05d", len(random)), Value: wire.Float(f), Timestamp: rng.Int64(), Step: -rng.Int64()})
			}
		}
		type runSpec struct {
			name           string
			params, tags   []KV
			metrics        []Metric
			ended, withIO  bool
			invalidUTF8Tag bool // SQLite only: PostgreSQL refuses it
		}
		var specs []runSpec
		for i := range weird {
			rs := runSpec{name: weird[i], ended: i%2 == 0}
			for j, k := range []string{"zeta", "alpha", "Mid", "m/ü " + strconv.Itoa(i), "k:-_. " + strconv.Itoa(i)} {
				rs.tags = append(rs.tags, KV{Key: k, Value: weird[(i+j)%len(weird)]})
				rs.params = append(rs.params, KV{Key: "p" + k, Value: weird[(i+2*j)%len(weird)]})
			}
			for j, k := range []string{"b", "a", "ü", "z z"} {
				rs.metrics = append(rs.metrics, Metric{Key: k, Value: wire.Float(doubles[(3*i+j)%len(doubles)]), Timestamp: int64(7 + j), Step: int64(j - 1)})
			}
			specs = append(specs, rs)
		}
		for i, f := range doubles {
			specs = append(specs, runSpec{name: fmt.Sprint("double ", i), metrics: []Metric{{Key: "v", Value: wire.Float(f), Timestamp: math.MaxInt64, Step: math.MinInt64}}})
		}
		specs = append(specs,
			runSpec{name: "no data"},
			runSpec{name: "io", withIO: true, params: []KV{{Key: "p", Value: "1"}}},
			runSpec{name: "random doubles", metrics: random},
			runSpec{name: "bad utf-8", invalidUTF8Tag: true, params: []KV{{Key: "p", Value: "1"}}},
		)
		ids := map[string]string{} // run name -> id
		for i, rs := range specs {
			if rs.invalidUTF8Tag && db.Dialect != meta.SQLite {
				continue
			}
			r, err := s.CreateRun(ctx, RunCreate{ExperimentID: exp, StartTime: int64(100 + i%5), RunName: rs.name})
			if err != nil {
				t.Fatal(err)
			}
			id := r.Info.RunID
			ids[rs.name] = id
			for ms := range slices.Chunk(rs.metrics, 1000) {
				if err := s.LogBatch(ctx, id, ms, nil, nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.LogBatch(ctx, id, nil, rs.params, rs.tags); err != nil {
				t.Fatal(err)
			}
			if rs.ended {
				end := int64(1000 + i)
				if _, err := s.UpdateRun(ctx, id, RunUpdate{EndTime: &end}); err != nil {
					t.Fatal(err)
				}
			}
			if rs.withIO {
				err := s.LogInputs(ctx, id, []DatasetInput{{Tags: []KV{{Key: TagDatasetCtx, Value: "train"}},
					Dataset: Dataset{Name: "d", Digest: "1", SourceType: "local", Source: `{"uri": "x"}`}}}, []ModelInput{{ModelID: "m-2"}, {ModelID: "m-1"}})
				if err != nil {
					t.Fatal(err)
				}
				if err := s.LogOutputs(ctx, id, []ModelOutput{{ModelID: "m-3", Step: 2}}); err != nil {
					t.Fatal(err)
				}
			}
			if rs.invalidUTF8Tag {
				if err := s.SetTag(ctx, id, KV{Key: "bad", Value: "x\xffy"}); err != nil {
					t.Fatal(err)
				}
			}
		}

		if db.Dialect == meta.SQLite { // the engine's JSON is used unless some text is not UTF-8
			for _, tc := range []struct {
				names []string
				json  bool
			}{{[]string{"no data", "io", weird[1], "random doubles"}, true}, {[]string{"io", "bad utf-8"}, false}} {
				runs := make([]Run, len(tc.names))
				for i, n := range tc.names {
					runs[i].Info.RunID = ids[n]
				}
				lists, err := s.runDataJSON(ctx, runs)
				if err != nil {
					t.Fatal(err)
				}
				if (lists != nil) != tc.json {
					t.Errorf("runs %q: SQLite's JSON used = %v, want %v", tc.names, lists != nil, tc.json)
				}
			}
		}

		// The cache off (pageJSON), then on: cold (renderRuns), then warm (every
		// run cached; MaxResults 7 pages copy runs cached by the first query).
		uncached, err := New(ctx, db, Options{RunCacheBytes: -1})
		if err != nil {
			t.Fatal(err)
		}
		if s.runCache == nil || uncached.runCache != nil {
			t.Fatalf("run cache on = %v, off = %v", s.runCache != nil, uncached.runCache == nil)
		}
		for _, pass := range []struct {
			name  string
			store *Store
		}{{"cache off", uncached}, {"cold cache", s}, {"warm cache", s}} {
			t.Run(pass.name, func(t *testing.T) { checkSearchJSON(t, s, pass.store, exp) })
		}
		want := len(ids) // every run the searches answered, but the one with bad UTF-8 on SQLite (never cached)
		if db.Dialect == meta.SQLite {
			want--
		}
		if n := s.runCache.EstimatedSize(); n != want {
			t.Errorf("the run cache holds %d runs after searching all %d, want %d", n, len(ids), want)
		}
	}, Schema)
}

// checkSearchJSON compares the answers of store's runsPage with those of
// ref's SearchRuns for a set of queries over experiment exp, every page.
func checkSearchJSON(t *testing.T, ref, store *Store, exp string) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []RunQuery{
		{ExperimentIDs: []string{exp}},
		{ExperimentIDs: []string{exp}, MaxResults: 7},
		{ExperimentIDs: []string{exp}, MaxResults: 2, OrderBy: []string{"metrics.b DESC"}, Filter: "params.palpha != 'none'"},
		{ExperimentIDs: []string{exp}, Filter: "attributes.run_name = 'random doubles'"},
		{ExperimentIDs: []string{exp}, Filter: "attributes.run_name = 'bad utf-8'"},
		{ExperimentIDs: []string{"424242"}},
		{},
	} {
		for page := 0; ; page++ {
			runs, next, err := ref.SearchRuns(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			want := runsResponse{nonNil(runs), next}.AppendJSON(nil)
			sp, err := store.searchRunsPage(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			got := sp.AppendJSON([]byte("x"))
			if got[0] != 'x' {
				t.Fatalf("AppendJSON did not append: %.100s", got)
			}
			if g, w := decodeAsClient(t, got[1:]), decodeAsClient(t, want); !reflect.DeepEqual(g, w) {
				t.Fatalf("query %+v page %d:\n%.3000s\nwant\n%.3000s", q, page, got[1:], want)
			}
			if q.PageToken = next; next == "" {
				break
			}
		}
	}
}

// decodeAsClient decodes a JSON answer to the values the mlflow client sees:
// Python's json.loads, then protobuf's ParseDict into double and int64 fields,
// where 5, 5.0 and 5e0 are all the number five and "NaN", "Infinity" stay
// strings that protobuf reads as such. A number under "value" (a metric's, the
// answer's only double field) becomes the float64 a double field holds: the
// digits 1234567890123456700 and 1.2345678901234568e+18 are the same double.
// Other numbers become int64 when integral and in range (exact for any int64
// timestamp or step), float64 otherwise; a number no double holds (1e999)
// fails the test, as protobuf refuses it.
func decodeAsClient(t *testing.T, b []byte) any {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("invalid JSON: %.300s", b)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var canon func(v any, double bool) any
	canon = func(v any, double bool) any {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				v[k] = canon(e, k == "value")
			}
		case []any:
			for i, e := range v {
				v[i] = canon(e, false)
			}
		case json.Number:
			if double {
				f, err := v.Float64()
				if err != nil {
					t.Fatalf("number %s: %v", v, err)
				}
				return f
			}
			if n, err := v.Int64(); err == nil {
				return n
			}
			f, err := v.Float64()
			if err != nil {
				t.Fatalf("number %s: %v", v, err)
			}
			if f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
				return int64(f)
			}
			return f
		}
		return v
	}
	return canon(v, false)
}

// TestRunCacheSeesEveryChange: after each kind of change to a run, made
// through another Store on the same database (as another process would), the
// searching store's answer (its run cache warm) equals SearchRuns', and shows
// the change.
func TestRunCacheSeesEveryChange(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		reader, err := New(ctx, db, Options{})
		if err != nil {
			t.Fatal(err)
		}
		writer, err := New(ctx, db, Options{})
		if err != nil {
			t.Fatal(err)
		}
		exp, err := writer.CreateExperiment(ctx, "cache", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		run, err := writer.CreateRun(ctx, RunCreate{ExperimentID: exp, StartTime: 1, RunName: "r"})
		if err != nil {
			t.Fatal(err)
		}
		id := run.Info.RunID
		end := int64(99)
		finished := "FINISHED"
		renamed := "renamed"
		for _, tc := range []struct {
			name   string
			change func() error
		}{
			{"log_metric", func() error { return writer.LogMetric(ctx, id, Metric{Key: "m", Value: 1, Timestamp: 1}) }},
			{"log_metric newer", func() error { return writer.LogMetric(ctx, id, Metric{Key: "m", Value: 2, Timestamp: 2, Step: 1}) }},
			{"log_param", func() error { return writer.LogParam(ctx, id, KV{Key: "p", Value: "v"}) }},
			{"log_batch", func() error {
				return writer.LogBatch(ctx, id, []Metric{{Key: "b", Value: 3, Timestamp: 3}}, []KV{{Key: "q", Value: "w"}}, []KV{{Key: "t", Value: "1"}})
			}},
			{"set_tag", func() error { return writer.SetTag(ctx, id, KV{Key: "t", Value: "2"}) }},
			{"set_tag mlflow.runName", func() error { return writer.SetTag(ctx, id, KV{Key: TagRunName, Value: "named by tag"}) }},
			{"delete_tag", func() error { return writer.DeleteTag(ctx, id, "t") }},
			{"update_run", func() error {
				_, err := writer.UpdateRun(ctx, id, RunUpdate{Status: &finished, EndTime: &end, RunName: &renamed})
				return err
			}},
			{"log_inputs", func() error {
				return writer.LogInputs(ctx, id, []DatasetInput{{Dataset: Dataset{Name: "d", Digest: "1", SourceType: "local", Source: "s"}}}, nil)
			}},
			{"log_outputs", func() error { return writer.LogOutputs(ctx, id, []ModelOutput{{ModelID: "m-1", Step: 1}}) }},
			{"record logged model", func() error {
				return writer.RecordLoggedModel(ctx, id,
					`{"artifact_path": "model", "run_id": "`+id+`", "utc_time_created": "2026-11-26 04:00:00.000000", "flavors": {}}`)
			}},
			{"delete_run", func() error { return writer.DeleteRun(ctx, id) }},
			{"restore_run", func() error { return writer.RestoreRun(ctx, id) }},
			{"delete_experiment", func() error { return writer.DeleteExperiment(ctx, exp) }},
			{"restore_experiment", func() error { return writer.RestoreExperiment(ctx, exp) }},
		} {
			q := RunQuery{ExperimentIDs: []string{exp}, RunViewType: "ALL"}
			before, err := reader.searchRunsPage(ctx, q) // warms the cache
			if err != nil {
				t.Fatal(err)
			}
			if reader.runCache.EstimatedSize() != 1 {
				t.Fatalf("%s: the run cache holds %d runs, want 1", tc.name, reader.runCache.EstimatedSize())
			}
			if err := tc.change(); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			got, want, _ := searchBothWays(t, reader, q)
			if !reflect.DeepEqual(decodeAsClient(t, got), decodeAsClient(t, want)) {
				t.Errorf("%s: search answered\n%s\nwant\n%s", tc.name, got, want)
			}
			if bytes.Equal(got, before.AppendJSON(nil)) {
				t.Errorf("%s: the answer did not change: %s", tc.name, got)
			}
		}
	}, Schema)
}

// searchBothWays answers q as the API does (searchRunsPage) and as the Go
// path does (SearchRuns' runs encoded by runsResponse), returning both
// answers and SearchRuns' runs.
func searchBothWays(t *testing.T, s *Store, q RunQuery) (got, want []byte, runs []Run) {
	t.Helper()
	page, err := s.searchRunsPage(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	runs, next, err := s.SearchRuns(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return page.AppendJSON(nil), runsResponse{runs, next}.AppendJSON(nil), runs
}

// TestRevisionMigration: a database made before runs.revision (tracking
// schema 1, with runs) is migrated when opened, and its runs are searched,
// cached and invalidated as new ones are.
func TestRevisionMigration(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "meta.db") }},
		{"postgres", func(t *testing.T) string { return metatest.PostgresURL(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.url(t)
			db, err := meta.Open(ctx, url, Schema)
			if err != nil {
				t.Fatal(err)
			}
			s, err := New(ctx, db, Options{})
			if err != nil {
				t.Fatal(err)
			}
			exp, err := s.CreateExperiment(ctx, "old", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			run, err := s.CreateRun(ctx, RunCreate{ExperimentID: exp, StartTime: 5, RunName: "before"})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.LogParam(ctx, run.Info.RunID, KV{Key: "p", Value: "1"}); err != nil {
				t.Fatal(err)
			}
			// Back to schema 1: the index and table as migration 1 made them.
			for _, stmt := range []string{
				`DROP INDEX runs_experiment`,
				`ALTER TABLE runs DROP COLUMN revision`,
				`CREATE INDEX runs_experiment ON runs (experiment_id, lifecycle_stage, start_time DESC, run_uuid)`,
				`DELETE FROM schema_migrations WHERE component = 'tracking' AND version = 2`,
			} {
				if _, err := db.Exec(ctx, stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			db.Close()

			db, err = meta.Open(ctx, url, Schema)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if v, err := db.SchemaVersion(ctx, "tracking"); err != nil || v != 2 {
				t.Fatalf("tracking schema version %d (%v), want 2", v, err)
			}
			s, err = New(ctx, db, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for i, change := range []func() error{
				func() error { return nil },
				func() error { return s.SetTag(ctx, run.Info.RunID, KV{Key: "t", Value: "after"}) },
			} {
				if err := change(); err != nil {
					t.Fatal(err)
				}
				q := RunQuery{ExperimentIDs: []string{exp}}
				got, want, runs := searchBothWays(t, s, q)
				if len(runs) != 1 || len(runs[0].Data.Params) != 1 || len(runs[0].Data.Tags) != i+1 ||
					!reflect.DeepEqual(decodeAsClient(t, got), decodeAsClient(t, want)) {
					t.Fatalf("step %d: search answered\n%s\nwant\n%s", i, got, want)
				}
			}
		})
	}
}
