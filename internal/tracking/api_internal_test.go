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
