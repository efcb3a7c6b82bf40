package tracking_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/tracking"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// newStore opens a tracking store on a fresh database of each engine.
func forEachStore(t *testing.T, fn func(t *testing.T, s *tracking.Store)) {
	t.Helper()
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		s, err := tracking.New(context.Background(), db, tracking.Options{})
		if err != nil {
			t.Fatal(err)
		}
		fn(t, s)
	}, tracking.Schema)
}

func wantCode(t *testing.T, err error, sentinel error, contains string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v containing %q", sentinel, contains)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("error %q (%T) is not %v", err, err, sentinel)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Fatalf("error %q does not contain %q", err, contains)
	}
}

func mustRun(t *testing.T, s *tracking.Store, exp string, tags ...tracking.KV) *tracking.Run {
	t.Helper()
	r, err := s.CreateRun(context.Background(), tracking.RunCreate{ExperimentID: exp, UserID: "alice", Tags: tags})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestExperiments(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *tracking.Store) {
		ctx := context.Background()
		def, err := s.GetExperiment(ctx, "0")
		if err != nil || def.Name != "Default" || def.ArtifactLocation != "mlflow-artifacts:/0" || def.LifecycleStage != "active" {
			t.Fatalf("Default experiment = %+v, %v", def, err)
		}
		// A second store on the same DB does not duplicate it.
		if _, err := tracking.New(ctx, s.DB(), tracking.Options{}); err != nil {
			t.Fatal(err)
		}
		id, err := s.CreateExperiment(ctx, "churn", "", []tracking.KV{{Key: "team", Value: "risk"}})
		if err != nil || id != "1" {
			t.Fatalf("CreateExperiment = %q, %v; want 1", id, err)
		}
		e, err := s.GetExperimentByName(ctx, "churn")
		if err != nil || e.ExperimentID != "1" || e.ArtifactLocation != "mlflow-artifacts:/1" || len(e.Tags) != 1 || e.Tags[0].Value != "risk" {
			t.Fatalf("GetExperimentByName = %+v, %v", e, err)
		}
		_, err = s.CreateExperiment(ctx, "churn", "", nil)
		wantCode(t, err, wire.ErrAlreadyExists, "Experiment(name=churn) already exists")
		_, err = s.CreateExperiment(ctx, "", "", nil)
		wantCode(t, err, wire.ErrInvalid, "Invalid experiment name: ''")
		_, err = s.GetExperiment(ctx, "42")
		wantCode(t, err, wire.ErrNotFound, "No Experiment with id=42 exists")
		_, err = s.GetExperiment(ctx, "abc")
		wantCode(t, err, wire.ErrInvalid, "Experiment ID must be a valid integer")
		_, err = s.GetExperimentByName(ctx, "nope")
		wantCode(t, err, wire.ErrNotFound, "Could not find experiment with name 'nope'")

		id2, err := s.CreateExperiment(ctx, "fraud", "s3://bucket/fraud", nil)
		if err != nil {
			t.Fatal(err)
		}
		if e, _ := s.GetExperiment(ctx, id2); e.ArtifactLocation != "s3://bucket/fraud" {
			t.Fatalf("artifact location = %q", e.ArtifactLocation)
		}
		if err := s.SetExperimentTag(ctx, id2, tracking.KV{Key: "k", Value: "v"}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteExperimentTag(ctx, id2, "k"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.DeleteExperimentTag(ctx, id2, "k"), wire.ErrNotFound, "No tag with name: k")
		if err := s.RenameExperiment(ctx, id2, "fraud-v2"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.RenameExperiment(ctx, id2, "churn"), wire.ErrAlreadyExists, "already exists")

		// Deleting an experiment deletes its runs; restoring restores them.
		r := mustRun(t, s, id2)
		if err := s.DeleteExperiment(ctx, id2); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetRun(ctx, r.Info.RunID); got.Info.LifecycleStage != "deleted" {
			t.Fatalf("run stage after experiment delete = %q", got.Info.LifecycleStage)
		}
		_, err = s.CreateRun(ctx, tracking.RunCreate{ExperimentID: id2})
		wantCode(t, err, wire.ErrInvalid, "must be in the 'active' state")
		wantCode(t, s.RenameExperiment(ctx, id2, "x"), wire.ErrInvalid, "Cannot rename a non-active experiment")
		wantCode(t, s.DeleteExperiment(ctx, "0"), wire.ErrInvalid, "Cannot delete the default experiment")
		if err := s.RestoreExperiment(ctx, id2); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetRun(ctx, r.Info.RunID); got.Info.LifecycleStage != "active" {
			t.Fatalf("run stage after experiment restore = %q", got.Info.LifecycleStage)
		}

		// Search: filter, order, view types, pages.
		for i := 0; i < 5; i++ {
			if _, err := s.CreateExperiment(ctx, fmt.Sprintf("page-%d", i), "", []tracking.KV{{Key: "group", Value: "p"}}); err != nil {
				t.Fatal(err)
			}
		}
		got, next, err := s.SearchExperiments(ctx, tracking.ExperimentQuery{Filter: "tags.group = 'p'", OrderBy: []string{"name ASC"}, MaxResults: 2})
		if err != nil || len(got) != 2 || got[0].Name != "page-0" || next == "" {
			t.Fatalf("page 1 = %v, %q, %v", names(got), next, err)
		}
		var all []string
		all = append(all, names(got)...)
		for next != "" {
			got, next, err = s.SearchExperiments(ctx, tracking.ExperimentQuery{Filter: "tags.group = 'p'", OrderBy: []string{"name ASC"}, MaxResults: 2, PageToken: next})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, names(got)...)
		}
		if strings.Join(all, ",") != "page-0,page-1,page-2,page-3,page-4" {
			t.Fatalf("paged search = %v", all)
		}
		got, _, _ = s.SearchExperiments(ctx, tracking.ExperimentQuery{Filter: "name LIKE 'PAGE%'"})
		if len(got) != 0 {
			t.Fatalf("LIKE must be case-sensitive, got %v", names(got))
		}
		got, _, _ = s.SearchExperiments(ctx, tracking.ExperimentQuery{Filter: "name ILIKE 'PAGE-1%'"})
		if len(got) != 1 || got[0].Name != "page-1" {
			t.Fatalf("ILIKE = %v", names(got))
		}
		got, _, _ = s.SearchExperiments(ctx, tracking.ExperimentQuery{Filter: "experiment_id IN ('0', '1')"})
		if len(got) != 2 {
			t.Fatalf("experiment_id IN = %v", names(got))
		}
		if err := s.DeleteExperiment(ctx, "1"); err != nil {
			t.Fatal(err)
		}
		got, _, _ = s.SearchExperiments(ctx, tracking.ExperimentQuery{ViewType: "DELETED_ONLY"})
		if len(got) != 1 || got[0].Name != "churn" {
			t.Fatalf("DELETED_ONLY = %v", names(got))
		}
		got, _, _ = s.SearchExperiments(ctx, tracking.ExperimentQuery{ViewType: "3", MaxResults: 100})
		if len(got) != 8 {
			t.Fatalf("ALL = %v", names(got))
		}
		_, _, err = s.SearchExperiments(ctx, tracking.ExperimentQuery{PageToken: "garbage!"})
		wantCode(t, err, wire.ErrInvalid, "Invalid page token")
		_, _, err = s.SearchExperiments(ctx, tracking.ExperimentQuery{Filter: "metrics.x > 1"})
		wantCode(t, err, wire.ErrInvalid, "Invalid entity type 'metrics'")
	})
}

func names(exps []tracking.Experiment) []string {
	var out []string
	for _, e := range exps {
		out = append(out, e.Name)
	}
	return out
}

func TestRunLifecycle(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *tracking.Store) {
		ctx := context.Background()
		r, err := s.CreateRun(ctx, tracking.RunCreate{UserID: "alice", StartTime: 1000, Tags: []tracking.KV{{Key: "mlflow.user", Value: "alice"}}})
		if err != nil {
			t.Fatal(err)
		}
		if r.Info.ExperimentID != "0" || r.Info.Status != "RUNNING" || len(r.Info.RunID) != 32 || r.Info.RunName == "" ||
			r.Info.ArtifactURI != "mlflow-artifacts:/0/"+r.Info.RunID+"/artifacts" || r.Info.EndTime != nil {
			t.Fatalf("created run info = %+v", r.Info)
		}
		got, err := s.GetRun(ctx, r.Info.RunID)
		if err != nil {
			t.Fatal(err)
		}
		if tagValue(got.Data.Tags, "mlflow.runName") != r.Info.RunName || got.Info.RunName != r.Info.RunName {
			t.Fatalf("run name tag = %v, info %q", got.Data.Tags, got.Info.RunName)
		}
		_, err = s.CreateRun(ctx, tracking.RunCreate{RunName: "a", Tags: []tracking.KV{{Key: "mlflow.runName", Value: "b"}}})
		wantCode(t, err, wire.ErrInvalid, "Both 'run_name' argument and 'mlflow.runName' tag are specified")

		// Params are immutable unless the value is the same.
		id := r.Info.RunID
		if err := s.LogParam(ctx, id, tracking.KV{Key: "alpha", Value: "0.1"}); err != nil {
			t.Fatal(err)
		}
		if err := s.LogParam(ctx, id, tracking.KV{Key: "alpha", Value: "0.1"}); err != nil {
			t.Fatalf("same value again: %v", err)
		}
		wantCode(t, s.LogParam(ctx, id, tracking.KV{Key: "alpha", Value: "0.2"}), wire.ErrInvalid,
			"Changing param values is not allowed. Param with key='alpha' was already logged with value='0.1'")
		wantCode(t, s.LogParam(ctx, id, tracking.KV{Key: "../x", Value: "1"}), wire.ErrInvalid, "would resolve to")
		wantCode(t, s.LogParam(ctx, id, tracking.KV{Key: "a\tb", Value: "1"}), wire.ErrInvalid, "Names may only contain")
		long := strings.Repeat("v", 7000)
		if err := s.LogParam(ctx, id, tracking.KV{Key: "long", Value: long}); err != nil {
			t.Fatal(err)
		}

		// Tags: last write wins; mlflow.runName renames the run.
		for _, v := range []string{"1", "2"} {
			if err := s.SetTag(ctx, id, tracking.KV{Key: "t", Value: v}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SetTag(ctx, id, tracking.KV{Key: "mlflow.runName", Value: "renamed"}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteTag(ctx, id, "mlflow.user"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.DeleteTag(ctx, id, "nope"), wire.ErrNotFound, "No tag with name: nope")
		got, _ = s.GetRun(ctx, id)
		if tagValue(got.Data.Tags, "t") != "2" || got.Info.RunName != "renamed" || tagValue(got.Data.Tags, "mlflow.user") != "" {
			t.Fatalf("tags after updates = %+v, name %q", got.Data.Tags, got.Info.RunName)
		}
		if v := paramValue(got.Data.Params, "long"); len(v) != tracking.MaxParamValueLength {
			t.Fatalf("long param stored with %d characters, want truncation to %d", len(v), tracking.MaxParamValueLength)
		}

		// Update: status, end time, name.
		fin, end, name := "FINISHED", int64(2000), "final"
		info, err := s.UpdateRun(ctx, id, tracking.RunUpdate{Status: &fin, EndTime: &end, RunName: &name})
		if err != nil || info.Status != "FINISHED" || info.EndTime == nil || *info.EndTime != 2000 || info.RunName != "final" {
			t.Fatalf("UpdateRun = %+v, %v", info, err)
		}
		got, _ = s.GetRun(ctx, id)
		if tagValue(got.Data.Tags, "mlflow.runName") != "final" {
			t.Fatalf("runName tag after update = %q", tagValue(got.Data.Tags, "mlflow.runName"))
		}

		// Delete and restore; a deleted run refuses writes.
		if err := s.DeleteRun(ctx, id); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.SetTag(ctx, id, tracking.KV{Key: "x", Value: "y"}), wire.ErrInvalid, "must be in the 'active' state. Current state is deleted.")
		if err := s.RestoreRun(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := s.SetTag(ctx, id, tracking.KV{Key: "x", Value: "y"}); err != nil {
			t.Fatal(err)
		}
		_, err = s.GetRun(ctx, "0123456789abcdef0123456789abcdef")
		wantCode(t, err, wire.ErrNotFound, "Run with id=0123456789abcdef0123456789abcdef not found")
		wantCode(t, s.DeleteRun(ctx, "missing"), wire.ErrNotFound, "not found")
	})
}

func tagValue(kvs []tracking.KV, key string) string {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value
		}
	}
	return ""
}

func paramValue(kvs []tracking.KV, key string) string { return tagValue(kvs, key) }

func metric(key string, v float64, ts, step int64) tracking.Metric {
	return tracking.Metric{Key: key, Value: wire.Float(v), Timestamp: ts, Step: step}
}

func TestMetrics(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *tracking.Store) {
		ctx := context.Background()
		id := mustRun(t, s, "0").Info.RunID
		for step := int64(0); step < 10; step++ {
			if err := s.LogMetric(ctx, id, metric("loss", 1/float64(step+1), 100+step, step)); err != nil {
				t.Fatal(err)
			}
		}
		// An older step logged later does not become the latest value.
		if err := s.LogMetric(ctx, id, metric("loss", 42, 999, 3)); err != nil {
			t.Fatal(err)
		}
		// The identical point again is stored once.
		if err := s.LogMetric(ctx, id, metric("loss", 42, 999, 3)); err != nil {
			t.Fatal(err)
		}
		for _, v := range []float64{math.NaN(), math.Inf(1)} {
			if err := s.LogMetric(ctx, id, metric("odd", v, 1, 0)); err != nil {
				t.Fatal(err)
			}
		}
		wantCode(t, s.LogMetric(ctx, id, metric("bad", 1, -1, 0)), wire.ErrInvalid, "Timestamp must be a nonnegative long")

		r, _ := s.GetRun(ctx, id)
		latest := map[string]tracking.Metric{}
		for _, m := range r.Data.Metrics {
			latest[m.Key] = m
		}
		if m := latest["loss"]; m.Step != 9 || float64(m.Value) != 0.1 {
			t.Fatalf("latest loss = %+v, want step 9 value 0.1", m)
		}
		hist, next, err := s.GetMetricHistory(ctx, id, "loss", nil, "")
		if err != nil || len(hist) != 11 || next != "" {
			t.Fatalf("history = %d points, %q, %v; want 11", len(hist), next, err)
		}
		for i := 1; i < len(hist); i++ {
			if hist[i].Step < hist[i-1].Step {
				t.Fatalf("history not ordered by step: %+v", hist)
			}
		}
		odd, _, _ := s.GetMetricHistory(ctx, id, "odd", nil, "")
		if len(odd) != 2 {
			t.Fatalf("odd history = %+v", odd)
		}
		var sawNaN, sawInf bool
		for _, m := range odd {
			sawNaN = sawNaN || math.IsNaN(float64(m.Value))
			sawInf = sawInf || float64(m.Value) == math.MaxFloat64
		}
		if !sawNaN || !sawInf {
			t.Fatalf("NaN/Inf round trip: %+v", odd)
		}
		// Paged history.
		two := int64(4)
		var paged []tracking.Metric
		tok := ""
		for {
			page, next, err := s.GetMetricHistory(ctx, id, "loss", &two, tok)
			if err != nil {
				t.Fatal(err)
			}
			paged = append(paged, page...)
			if next == "" {
				break
			}
			tok = next
		}
		if len(paged) != 11 {
			t.Fatalf("paged history has %d points, want 11", len(paged))
		}
		_, _, err = s.GetMetricHistory(ctx, "ffffffffffffffffffffffffffffffff", "loss", nil, "")
		wantCode(t, err, wire.ErrNotFound, "not found")

		// Bulk interval: sampled in SQL, first and last kept.
		id2 := mustRun(t, s, "0").Info.RunID
		var batch []tracking.Metric
		for step := int64(0); step < 1000; step++ {
			batch = append(batch, metric("acc", float64(step), step, step))
		}
		if err := s.LogBatch(ctx, id2, batch, nil, nil); err != nil {
			t.Fatal(err)
		}
		pts, err := s.MetricHistoryBulkInterval(ctx, []string{id2}, "acc", nil, nil, 10)
		if err != nil || len(pts) != 10 || pts[0].Step != 0 || pts[9].Step != 999 || pts[0].RunID != id2 {
			t.Fatalf("bulk interval = %+v, %v", pts, err)
		}
		lo, hi := int64(100), int64(199)
		pts, err = s.MetricHistoryBulkInterval(ctx, []string{id2, id}, "acc", &lo, &hi, 5)
		if err != nil || len(pts) != 5 || pts[0].Step != 100 || pts[4].Step != 199 {
			t.Fatalf("bulk interval in [100,199] = %+v, %v", pts, err)
		}
		_, err = s.MetricHistoryBulkInterval(ctx, []string{id2}, "acc", &hi, &lo, 5)
		wantCode(t, err, wire.ErrInvalid, "end_step must be greater than start_step")
		bulk, err := s.MetricHistoryBulk(ctx, []string{id, id2}, "loss", 5)
		if err != nil || len(bulk) != 5 {
			t.Fatalf("bulk = %+v, %v", bulk, err)
		}
	})
}

func TestLogBatch(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *tracking.Store) {
		ctx := context.Background()
		id := mustRun(t, s, "0").Info.RunID
		err := s.LogBatch(ctx, id,
			[]tracking.Metric{metric("m", 1, 1, 0), metric("m", 2, 2, 1)},
			[]tracking.KV{{Key: "p", Value: "1"}},
			[]tracking.KV{{Key: "t", Value: "a"}, {Key: "t", Value: "b"}, {Key: "mlflow.runName", Value: "batch-name"}})
		if err != nil {
			t.Fatal(err)
		}
		r, _ := s.GetRun(ctx, id)
		if tagValue(r.Data.Tags, "t") != "b" || r.Info.RunName != "batch-name" || len(r.Data.Metrics) != 1 || float64(r.Data.Metrics[0].Value) != 2 {
			t.Fatalf("after batch: %+v", r)
		}
		// A conflicting param fails the whole batch: nothing of it is stored.
		err = s.LogBatch(ctx, id, []tracking.Metric{metric("m", 3, 3, 2)}, []tracking.KV{{Key: "p", Value: "2"}, {Key: "q", Value: "1"}}, []tracking.KV{{Key: "t", Value: "c"}})
		wantCode(t, err, wire.ErrInvalid, "Changing param values is not allowed. Params were already logged='[{'key': 'p', 'old_value': '1', 'new_value': '2'}]'")
		r, _ = s.GetRun(ctx, id)
		hist, _, _ := s.GetMetricHistory(ctx, id, "m", nil, "")
		if tagValue(r.Data.Tags, "t") != "b" || paramValue(r.Data.Params, "q") != "" || len(hist) != 2 {
			t.Fatalf("failed batch left data behind: tags %v params %v history %d", r.Data.Tags, r.Data.Params, len(hist))
		}
		// Limits, as MLflow words them.
		many := make([]tracking.Metric, 1001)
		for i := range many {
			many[i] = metric("x", 1, int64(i), 0)
		}
		wantCode(t, s.LogBatch(ctx, id, many, nil, nil), wire.ErrInvalid, "A batch logging request can contain at most 1000 metrics. Got 1001 metrics.")
		params := make([]tracking.KV, 101)
		for i := range params {
			params[i] = tracking.KV{Key: fmt.Sprintf("k%d", i), Value: "v"}
		}
		wantCode(t, s.LogBatch(ctx, id, nil, params, nil), wire.ErrInvalid, "at most 100 params")
		wantCode(t, s.LogBatch(ctx, id, many[:950], params[:60], nil), wire.ErrInvalid, "at most 1000 metrics, params, and tags")
		wantCode(t, s.LogBatch(ctx, id, nil, []tracking.KV{{Key: "d", Value: "1"}, {Key: "d", Value: "2"}}, nil), wire.ErrInvalid, "Duplicate parameter keys have been submitted: ['d']")
		wantCode(t, s.LogBatch(ctx, id, []tracking.Metric{metric("", 1, 1, 0)}, nil, nil), wire.ErrInvalid, "metrics[0].name")
		wantCode(t, s.LogBatch(ctx, "not a run id!", nil, nil, nil), wire.ErrInvalid, "Invalid value \"not a run id!\" for parameter 'run_id' supplied.")
		wantCode(t, s.LogBatch(ctx, "ffffffffffffffffffffffffffffffff", nil, nil, nil), wire.ErrNotFound, "not found")
	})
}

func TestSearchRuns(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *tracking.Store) {
		ctx := context.Background()
		exp, _ := s.CreateExperiment(ctx, "search", "", nil)
		var ids []string
		for i := 0; i < 6; i++ {
			r, err := s.CreateRun(ctx, tracking.RunCreate{ExperimentID: exp, RunName: fmt.Sprintf("run-%d", i), StartTime: int64(1000 + i), UserID: "u"})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, r.Info.RunID)
			model := "LR"
			if i%2 == 1 {
				model = "GBDT"
			}
			ms := []tracking.Metric{metric("rmse", float64(i)/10, 1, 0)}
			if i == 5 {
				ms = nil // no rmse: sorts last
			}
			if err := s.LogBatch(ctx, r.Info.RunID, ms, []tracking.KV{{Key: "model", Value: model}}, []tracking.KV{{Key: "user-name", Value: fmt.Sprintf("u%d", i%3)}}); err != nil {
				t.Fatal(err)
			}
		}
		fin := "FINISHED"
		if _, err := s.UpdateRun(ctx, ids[0], tracking.RunUpdate{Status: &fin}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteRun(ctx, ids[4]); err != nil {
			t.Fatal(err)
		}
		if err := s.LogInputs(ctx, ids[1], []tracking.DatasetInput{{
			Dataset: tracking.Dataset{Name: "train.csv", Digest: "abc123", SourceType: "local", Source: `{"uri":"x"}`},
			Tags:    []tracking.KV{{Key: "mlflow.data.context", Value: "training"}},
		}}, nil); err != nil {
			t.Fatal(err)
		}
		search := func(filter string, order ...string) []string {
			t.Helper()
			runs, _, err := s.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{exp}, Filter: filter, OrderBy: order})
			if err != nil {
				t.Fatalf("SearchRuns(%q, %q): %v", filter, order, err)
			}
			var out []string
			for _, r := range runs {
				out = append(out, r.Info.RunName)
			}
			return out
		}
		tests := []struct {
			filter string
			order  []string
			want   string
		}{
			{"", nil, "run-5,run-3,run-2,run-1,run-0"}, // start_time DESC, deleted run-4 hidden
			{"metrics.rmse < 0.25", []string{"metrics.rmse ASC"}, "run-0,run-1,run-2"},
			{"metrics.rmse >= 0.2 and params.model = 'LR'", nil, "run-2"},
			{"params.model != 'LR'", []string{"attributes.start_time ASC"}, "run-1,run-3,run-5"},
			{`tags."user-name" = 'u0'`, nil, "run-3,run-0"},
			{"tags.`user-name` LIKE 'u%'", []string{"run_name"}, "run-0,run-1,run-2,run-3,run-5"},
			{"params.model ILIKE 'gb%'", []string{"metrics.rmse DESC"}, "run-3,run-1,run-5"},
			{"attributes.status = 'FINISHED'", nil, "run-0"},
			{"attributes.run_id IN ('" + ids[1] + "', '" + ids[2] + "')", nil, "run-2,run-1"},
			{"attributes.run_id NOT IN ('" + ids[1] + "')", []string{"run_name ASC"}, "run-0,run-2,run-3,run-5"},
			{"run_name = 'run-3'", nil, "run-3"},
			{"created >= 1003", nil, "run-5,run-3"},
			{"params.missing IS NULL and metrics.rmse > 0.15", nil, "run-3,run-2"},
			{"tags.`user-name` IS NOT NULL and attributes.user_id = 'u'", []string{"start_time ASC"}, "run-0,run-1,run-2,run-3,run-5"},
			{"dataset.name = 'train.csv'", nil, "run-1"},
			{"datasets.context IN ('training', 'eval')", nil, "run-1"},
			{"dataset.digest = 'nope'", nil, ""},
			{"metrics.rmse > 0", []string{"metrics.rmse DESC"}, "run-3,run-2,run-1"},
			{"", []string{"metrics.rmse ASC"}, "run-0,run-1,run-2,run-3,run-5"},
			{"", []string{"params.model DESC", "start_time ASC"}, "run-0,run-2,run-1,run-3,run-5"},
			{"params.k = '; DROP TABLE runs; --'", nil, ""},
		}
		for _, tt := range tests {
			if got := strings.Join(search(tt.filter, tt.order...), ","); got != tt.want {
				t.Errorf("SearchRuns(%q, %q) = %s, want %s", tt.filter, tt.order, got, tt.want)
			}
		}
		// The table survived the injection attempt above.
		if got := search(""); len(got) != 5 {
			t.Fatalf("runs after injection attempt: %v", got)
		}
		// Deleted and all view types.
		runs, _, _ := s.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{exp}, RunViewType: "DELETED_ONLY"})
		if len(runs) != 1 || runs[0].Info.RunName != "run-4" {
			t.Fatalf("DELETED_ONLY = %d runs", len(runs))
		}
		runs, _, _ = s.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{exp, "0"}, RunViewType: "ALL"})
		if len(runs) != 6 {
			t.Fatalf("ALL = %d runs", len(runs))
		}
		// Loaded data: params, tags, metrics, inputs.
		runs, _, _ = s.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{exp}, Filter: "run_name = 'run-1'"})
		r := runs[0]
		if paramValue(r.Data.Params, "model") != "GBDT" || len(r.Data.Metrics) != 1 || len(r.Inputs.DatasetInputs) != 1 ||
			r.Inputs.DatasetInputs[0].Tags[0].Value != "training" {
			t.Fatalf("search run data = %+v", r)
		}
		// Pages cover everything exactly once.
		var paged []string
		tok := ""
		for {
			runs, next, err := s.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{exp}, MaxResults: 2, PageToken: tok, OrderBy: []string{"metrics.rmse"}})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range runs {
				paged = append(paged, r.Info.RunName)
			}
			if next == "" {
				break
			}
			tok = next
		}
		if strings.Join(paged, ",") != "run-0,run-1,run-2,run-3,run-5" {
			t.Fatalf("paged = %v", paged)
		}
		// Errors.
		for _, bad := range []struct {
			q   tracking.RunQuery
			msg string
		}{
			{tracking.RunQuery{ExperimentIDs: []string{exp}, Filter: "metrics.rmse < 'x'"}, "Expected numeric value type for metric"},
			{tracking.RunQuery{ExperimentIDs: []string{exp}, OrderBy: []string{"metrics.a", "metrics.a DESC"}}, "`order_by` contains duplicate fields"},
			{tracking.RunQuery{ExperimentIDs: []string{exp}, MaxResults: 50001}, "It must be at most 50000"},
			{tracking.RunQuery{ExperimentIDs: []string{"x"}}, "Invalid experiment ID 'x'"},
			{tracking.RunQuery{ExperimentIDs: []string{exp}, RunViewType: "SOME"}, "view_type"},
		} {
			_, _, err := s.SearchRuns(ctx, bad.q)
			wantCode(t, err, wire.ErrInvalid, bad.msg)
		}
	})
}

func TestInputsAndOutputs(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *tracking.Store) {
		ctx := context.Background()
		id := mustRun(t, s, "0").Info.RunID
		ds := tracking.DatasetInput{Dataset: tracking.Dataset{Name: "d", Digest: "1", SourceType: "local", Source: "{}", Schema: `{"a":1}`}, Tags: []tracking.KV{{Key: "mlflow.data.context", Value: "train"}}}
		for i := 0; i < 2; i++ { // logging the same dataset twice adds nothing
			if err := s.LogInputs(ctx, id, []tracking.DatasetInput{ds}, []tracking.ModelInput{{ModelID: "m-1"}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.LogOutputs(ctx, id, []tracking.ModelOutput{{ModelID: "m-2", Step: 3}}); err != nil {
			t.Fatal(err)
		}
		r, _ := s.GetRun(ctx, id)
		if len(r.Inputs.DatasetInputs) != 1 || r.Inputs.DatasetInputs[0].Dataset.Schema != `{"a":1}` ||
			len(r.Inputs.ModelInputs) != 1 || len(r.Outputs.ModelOutputs) != 1 || r.Outputs.ModelOutputs[0].Step != 3 {
			t.Fatalf("inputs/outputs = %+v %+v", r.Inputs, r.Outputs)
		}
		bad := ds
		bad.Dataset.Digest = strings.Repeat("x", 37)
		wantCode(t, s.LogInputs(ctx, id, []tracking.DatasetInput{bad}, nil), wire.ErrInvalid, "'digest' exceeds the maximum length of 36 characters")
	})
}

func TestLoggedModels(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *tracking.Store) {
		ctx := context.Background()
		run := mustRun(t, s, "0")
		m, err := s.CreateLoggedModel(ctx, tracking.LoggedModelCreate{ExperimentID: "0", Name: "model", ModelType: "sklearn", SourceRunID: run.Info.RunID,
			Params: []tracking.KV{{Key: "alpha", Value: "0.1"}}, Tags: []tracking.KV{{Key: "t", Value: "1"}}})
		if err != nil {
			t.Fatal(err)
		}
		id := m.Info.ModelID
		if !strings.HasPrefix(id, "m-") || m.Info.Status != "LOGGED_MODEL_PENDING" || m.Info.ArtifactURI != "mlflow-artifacts:/0/models/"+id+"/artifacts" ||
			len(m.Data.Params) != 1 || len(m.Info.Tags) != 1 {
			t.Fatalf("created logged model = %+v", m)
		}
		_, err = s.CreateLoggedModel(ctx, tracking.LoggedModelCreate{ExperimentID: "0", Name: "bad/name"})
		wantCode(t, err, wire.ErrInvalid, "Invalid model name")
		// Metrics logged with model_id land on the model too.
		mt := metric("acc", 0.9, 5, 1)
		mt.ModelID, mt.DatasetName, mt.DatasetDigest = id, "eval", "d1"
		if err := s.LogBatch(ctx, run.Info.RunID, []tracking.Metric{mt}, nil, nil); err != nil {
			t.Fatal(err)
		}
		ready, _ := tracking.ParseLoggedModelStatus("LOGGED_MODEL_READY")
		if m, err = s.FinalizeLoggedModel(ctx, id, ready); err != nil || m.Info.Status != "LOGGED_MODEL_READY" || len(m.Data.Metrics) != 1 || m.Data.Metrics[0].DatasetName != "eval" {
			t.Fatalf("finalized = %+v, %v", m, err)
		}
		if err := s.SetLoggedModelTags(ctx, id, []tracking.KV{{Key: "t", Value: "2"}, {Key: "u", Value: "3"}}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteLoggedModelTag(ctx, id, "u"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.DeleteLoggedModelTag(ctx, id, "u"), wire.ErrNotFound, "No tag with key 'u'")
		if err := s.LogLoggedModelParams(ctx, id, []tracking.KV{{Key: "beta", Value: "2"}}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddModelVersionRegistration(ctx, id, "churn", "1"); err != nil {
			t.Fatal(err)
		}
		if err := s.AddModelVersionRegistration(ctx, id, "churn", "1"); err != nil {
			t.Fatal(err)
		}
		m, _ = s.GetLoggedModel(ctx, id, false)
		if len(m.Info.Registrations) != 1 || m.Info.Registrations[0].Version != "1" || len(m.Data.Params) != 2 || tagValue(m.Info.Tags, "t") != "2" {
			t.Fatalf("logged model after updates = %+v", m)
		}
		other, _ := s.CreateLoggedModel(ctx, tracking.LoggedModelCreate{ExperimentID: "0"})
		got, _, err := s.SearchLoggedModels(ctx, tracking.LoggedModelQuery{ExperimentIDs: []string{"0"}, Filter: "metrics.acc > 0.5 and params.alpha = '0.1'"})
		if err != nil || len(got) != 1 || got[0].Info.ModelID != id {
			t.Fatalf("search by metric and param = %v, %v", got, err)
		}
		got, _, _ = s.SearchLoggedModels(ctx, tracking.LoggedModelQuery{ExperimentIDs: []string{"0"}, Datasets: []tracking.DatasetRef{{Name: "eval"}}})
		if len(got) != 1 {
			t.Fatalf("search by dataset = %d models", len(got))
		}
		got, _, _ = s.SearchLoggedModels(ctx, tracking.LoggedModelQuery{ExperimentIDs: []string{"0"}, Filter: "status = 'LOGGED_MODEL_PENDING'"})
		if len(got) != 1 || got[0].Info.ModelID != other.Info.ModelID {
			t.Fatalf("search by status = %v", got)
		}
		got, _, _ = s.SearchLoggedModels(ctx, tracking.LoggedModelQuery{ExperimentIDs: []string{"0"}, OrderBy: []tracking.LoggedModelOrder{{FieldName: "metrics.acc", Ascending: false}}})
		if len(got) != 2 || got[0].Info.ModelID != id {
			t.Fatalf("order by metric = %v", got)
		}
		if err := s.DeleteLoggedModel(ctx, id); err != nil {
			t.Fatal(err)
		}
		_, err = s.GetLoggedModel(ctx, id, false)
		wantCode(t, err, wire.ErrNotFound, "Logged model with ID '"+id+"' not found.")
		if _, err := s.GetLoggedModel(ctx, id, true); err != nil {
			t.Fatalf("allow_deleted: %v", err)
		}
	})
}

// TestConcurrentWriters: 8 writers logging 10,000 metrics each to one run lose nothing.
func TestConcurrentWriters(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *tracking.Store) {
		ctx := context.Background()
		id := mustRun(t, s, "0").Info.RunID
		const writers, perWriter, batch = 8, 10000, 1000
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				key := fmt.Sprintf("w%d", w)
				for b := 0; b < perWriter/batch; b++ {
					ms := make([]tracking.Metric, batch)
					for i := range ms {
						step := int64(b*batch + i)
						// Every writer also logs to a shared key: concurrent
						// latest_metrics updates of one row.
						k := key
						if i%10 == 0 {
							k = "shared"
						}
						ms[i] = metric(k, float64(step), step, step)
						ms[i].Timestamp = int64(w)*1_000_000 + step
					}
					if err := s.LogBatch(ctx, id, ms, nil, nil); err != nil {
						errs <- fmt.Errorf("writer %d batch %d: %w", w, b, err)
						return
					}
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		t.Logf("%d writers x %d metrics in %v", writers, perWriter, time.Since(start))
		total := 0
		for w := 0; w < writers; w++ {
			h, _, err := s.GetMetricHistory(ctx, id, fmt.Sprintf("w%d", w), nil, "")
			if err != nil {
				t.Fatal(err)
			}
			total += len(h)
		}
		shared, _, _ := s.GetMetricHistory(ctx, id, "shared", nil, "")
		total += len(shared)
		if total != writers*perWriter {
			t.Fatalf("stored %d metric points, want %d", total, writers*perWriter)
		}
		r, _ := s.GetRun(ctx, id)
		sort.Slice(r.Data.Metrics, func(i, j int) bool { return r.Data.Metrics[i].Key < r.Data.Metrics[j].Key })
		for _, m := range r.Data.Metrics {
			if m.Key == "shared" && (m.Step != 9990 || m.Timestamp != 7_000_000+9990) {
				t.Fatalf("latest shared = %+v, want step 9990 from writer 7", m)
			}
			if m.Key != "shared" && m.Step != 9999 {
				t.Fatalf("latest %s = %+v, want step 9999", m.Key, m)
			}
		}
	})
}

// TestSearchRunsNaNAndNulls: MLflow's ordering puts NaN metrics after every
// number and runs without the metric last, in both directions; a NaN never
// matches a comparison except "!=".
func TestSearchRunsNaNAndNulls(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *tracking.Store) {
		ctx := context.Background()
		exp, _ := s.CreateExperiment(ctx, "nan", "", nil)
		for i, v := range []float64{2, math.NaN(), 1, -1} {
			r, err := s.CreateRun(ctx, tracking.RunCreate{ExperimentID: exp, RunName: fmt.Sprintf("r%d", i), StartTime: int64(i + 1)})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.LogMetric(ctx, r.Info.RunID, metric("m", v, 1, 0)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.CreateRun(ctx, tracking.RunCreate{ExperimentID: exp, RunName: "none", StartTime: 9}); err != nil {
			t.Fatal(err)
		}
		names := func(filter string, order ...string) string {
			runs, _, err := s.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{exp}, Filter: filter, OrderBy: order})
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, r := range runs {
				out = append(out, r.Info.RunName)
			}
			return strings.Join(out, ",")
		}
		for _, tt := range []struct {
			filter, order, want string
		}{
			{"", "metrics.m ASC", "r3,r2,r0,r1,none"},
			{"", "metrics.m DESC", "r0,r2,r3,r1,none"},
			{"metrics.m > -10", "metrics.m ASC", "r3,r2,r0"},
			{"metrics.m != 1", "metrics.m ASC", "r3,r0,r1"},
			{"attributes.end_time > 0", "", ""},
		} {
			var order []string
			if tt.order != "" {
				order = []string{tt.order}
			}
			if got := names(tt.filter, order...); got != tt.want {
				t.Errorf("SearchRuns(%q, %q) = %s, want %s", tt.filter, tt.order, got, tt.want)
			}
		}
	})
}

// TestSearchRunsManyClauses: filters and orderings with many keys stay client
// errors or work; they never reach an engine limit (a 500).
func TestSearchRunsManyClauses(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *tracking.Store) {
		ctx := context.Background()
		r := mustRun(t, s, "0")
		var ms []tracking.Metric
		var ps, filter, order []string
		for i := 0; i < 80; i++ {
			ms = append(ms, metric(fmt.Sprintf("m%d", i), float64(i), 1, 0))
			ps = append(ps, fmt.Sprintf("metrics.m%d >= %d", i, i))
		}
		if err := s.LogBatch(ctx, r.Info.RunID, ms, nil, nil); err != nil {
			t.Fatal(err)
		}
		filter = append(filter, strings.Join(ps, " and "))
		runs, _, err := s.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{"0"}, Filter: filter[0]})
		if err != nil || len(runs) != 1 {
			t.Fatalf("80 metric clauses: %d runs, %v", len(runs), err)
		}
		for i := 0; i < 17; i++ {
			order = append(order, fmt.Sprintf("metrics.m%d", i))
		}
		_, _, err = s.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{"0"}, OrderBy: order})
		wantCode(t, err, wire.ErrInvalid, "`order_by` has more than 16 metric, param and tag fields")
		ids := make([]string, 10001)
		for i := range ids {
			ids[i] = fmt.Sprintf("'%032d'", i)
		}
		_, _, err = s.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{"0"}, Filter: "attributes.run_id IN (" + strings.Join(ids, ",") + ")"})
		wantCode(t, err, wire.ErrInvalid, "got more than 10000 values")
		runs, _, err = s.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{"0"}, Filter: "attributes.run_id IN (" + strings.Join(ids[:9999], ",") + ",'" + r.Info.RunID + "')"})
		if err != nil || len(runs) != 1 {
			t.Fatalf("10000-value IN list: %d runs, %v", len(runs), err)
		}
	})
}
