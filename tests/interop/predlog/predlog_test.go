// Package predlog_test reads Atrium's prediction log with pyarrow and pandas,
// as a data scientist's notebook or a Python monitoring job would, from the
// interpreter in $ATRIUM_TEST_PYTHON (.ci/python.sh sets it).
package predlog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"reflect"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/serving/predlog"
	"github.com/atrium-ml/atrium/tests/interop/interoptest"
)

type pyRow struct {
	Features  map[string]any    `json:"features"`
	Entities  map[string]string `json:"entities"`
	Score     *float64          `json:"score"`
	Scores    []float64         `json:"scores"`
	Timestamp string            `json:"timestamp"`
	Partition string            `json:"partition"`
}

type pyModel struct {
	Rows          int              `json:"rows"`
	Format        string           `json:"format"`
	Models        []string         `json:"models"`
	Versions      []string         `json:"versions"`
	Requests      int              `json:"requests"`
	FeatureFields []string         `json:"feature_fields"`
	RowsByRequest map[string]pyRow `json:"rows_by_request"`
}

// TestPandasReadsTheLog: pyarrow reads every file of two versions with
// different features across hours, and the values are those logged: missing
// values null, categorical strings, multiclass score lists, entity keys,
// microsecond times; a model name that needs escaping reads back exact.
func TestPandasReadsTheLog(t *testing.T) {
	py := interoptest.Python(t, "reading the prediction log with pyarrow and pandas", "pyarrow", "pandas")
	dir := t.TempDir()
	ctx := context.Background()
	w, err := predlog.Open(ctx, predlog.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 5, 7, 59, 0, 123456000, time.UTC)
	for i := range 4 {
		version, features := "1", []string{"rent", "budget_ratio"}
		if i >= 2 {
			version, features = "2", []string{"rent", "budget_ratio", "photos"}
		}
		values := make([]float64, 2*len(features))
		for j := range values {
			values[j] = float64(i*10 + j)
		}
		values[len(features)] = math.NaN() // row 1's rent is missing
		w.Log(predlog.Record{
			RequestID: fmt.Sprint("r", i), Time: t0.Add(time.Duration(i) * time.Minute), Model: "ranker", Version: version,
			Route: predlog.RouteRank, Rows: 2, Context: []predlog.Field{{Name: "user_id", Value: "u7"}},
			Entities: []predlog.Column{{Name: "listing_id", Values: []string{"l1", "l2"}}},
			Features: features, Values: values,
			Categorical: []string{"neighbourhood"}, Strings: []string{"Mitte", ""},
			Scores: []float64{0.25, 0.75},
		})
		w.Log(predlog.Record{
			RequestID: fmt.Sprint("c", i), Time: t0.Add(time.Duration(i) * time.Minute), Model: "churn v2", Version: "5",
			Route: predlog.RouteInfer, Rows: 1, Features: []string{"tenure"}, Values: []float64{float64(i)},
			Outputs: 3, Scores: []float64{0.5, 0.25, 0.25},
		})
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "read_log.py", dir).Output()
	if err != nil {
		t.Fatalf("read_log.py: %v\n%s", err, stderrOf(err))
	}
	var got map[string]pyModel
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	r, c := got["ranker"], got["churn v2"]
	if r.Rows != 8 || r.Requests != 4 || r.Format != predlog.FormatVersion || !reflect.DeepEqual(r.Versions, []string{"1", "2"}) ||
		!reflect.DeepEqual(r.FeatureFields, []string{"budget_ratio", "neighbourhood", "photos", "rent"}) {
		t.Errorf("ranker: %d rows, %d requests, format %q, versions %v, feature fields %v", r.Rows, r.Requests, r.Format, r.Versions, r.FeatureFields)
	}
	row := r.RowsByRequest["r3/1"] // version 2, row 1: rent missing, neighbourhood missing
	wantFeatures := map[string]any{"budget_ratio": 34.0, "photos": 35.0}
	if !reflect.DeepEqual(row.Features, wantFeatures) || row.Entities["listing_id"] != "l2" || row.Entities["user_id"] != "u7" ||
		row.Score == nil || *row.Score != 0.75 || row.Timestamp != "2026-12-05T08:02:00.123456" || row.Partition != "2026-12-05/08" {
		t.Errorf("r3/1 = %+v, want features %v, listing l2 of user u7, score 0.75 at 08:02:00.123456 in 2026-12-05/08", row, wantFeatures)
	}
	if row := r.RowsByRequest["r0/0"]; !reflect.DeepEqual(row.Features, map[string]any{"rent": 0.0, "budget_ratio": 1.0, "neighbourhood": "Mitte"}) || row.Partition != "2026-12-05/07" {
		t.Errorf("r0/0 = %+v, want version 1's features (no photos) in 2026-12-05/07", row)
	}
	if c.Rows != 4 || !reflect.DeepEqual(c.Models, []string{"churn v2"}) || !reflect.DeepEqual(c.RowsByRequest["c2/0"].Scores, []float64{0.5, 0.25, 0.25}) {
		t.Errorf("churn v2: %+v", c)
	}
}

func stderrOf(err error) []byte {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Stderr
	}
	return nil
}
