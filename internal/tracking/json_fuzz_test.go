package tracking

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// FuzzAnswersJSON: the hand-written encoders of runs and metric lists write
// byte for byte what encoding/json writes for the same structs, whatever the
// text and numbers in them (wire.Float writes itself in both: its finite
// values are encoding/json's float64, see wire.TestFloatJSON).
//
//	go test -run '^$' -fuzz FuzzAnswersJSON -fuzztime 60s ./internal/tracking/
func FuzzAnswersJSON(f *testing.F) {
	f.Add("run", "loss", "v", 0.5, int64(1), int64(2), true)
	f.Add(`q"uote\`, "<k&>", "\u2028\xff\x00", 1e21, int64(-1), int64(0), false)
	f.Add("üñí", "\t\b\f", "", -1e-7, int64(1<<62), int64(-1<<63), true)
	f.Fuzz(func(t *testing.T, name, key, value string, v float64, ts, step int64, ended bool) {
		ms := []Metric{
			{Key: key, Value: wire.Float(v), Timestamp: ts, Step: step},
			{Key: value, Value: wire.Float(-v), Timestamp: step, Step: ts, DatasetName: name, DatasetDigest: key, ModelID: value, RunID: name},
		}
		mresp := metricsResponse{Metrics: ms, NextPageToken: value}
		type plainMetrics metricsResponse // drops the MarshalJSON method
		want, err := json.Marshal(plainMetrics(mresp))
		if err != nil {
			t.Fatal(err)
		}
		if got := mresp.AppendJSON([]byte("x")); !bytes.Equal(got[1:], want) || got[0] != 'x' {
			t.Errorf("metrics:\n%s\nencoding/json:\n%s", got, want)
		}

		info := RunInfo{RunID: name, RunUUID: key, RunName: value, ExperimentID: key, UserID: value, Status: name,
			StartTime: ts, ArtifactURI: key, LifecycleStage: value}
		if ended {
			info.EndTime = &step
		}
		run := Run{Info: info, Data: RunData{Metrics: ms, Params: []KV{{Key: key, Value: value}}, Tags: []KV{{Key: value, Value: name}}}}
		rresp := runsResponse{Runs: []Run{run, {Info: info}}, NextPageToken: name}
		type plainRuns runsResponse
		if want, err = json.Marshal(plainRuns(rresp)); err != nil {
			t.Fatal(err)
		}
		if got := rresp.AppendJSON([]byte("x")); !bytes.Equal(got[1:], want) || got[0] != 'x' {
			t.Errorf("runs:\n%s\nencoding/json:\n%s", got, want)
		}
	})
}
