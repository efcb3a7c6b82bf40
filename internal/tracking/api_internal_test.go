package tracking

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

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
