package tracking

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
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
	})
}
