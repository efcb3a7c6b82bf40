package offline_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	_ "github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/spec"
)

func TestOpenByScheme(t *testing.T) {
	ctx := context.Background()
	if _, err := offline.Open(ctx, "spark://localhost:15002", offline.Options{}); !errors.Is(err, offline.ErrUnsupportedURL) || !strings.Contains(err.Error(), "duckdb://") {
		t.Errorf("unknown scheme: %v, want ErrUnsupportedURL listing duckdb://", err)
	}
	eng, err := offline.Open(ctx, "duckdb://"+t.TempDir(), offline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	if err := eng.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("registering duckdb twice did not panic")
		}
	}()
	offline.Register("duckdb", nil)
}

func TestParseDateAndSchema(t *testing.T) {
	d, err := offline.ParseDate("2024-02-29")
	if err != nil || !d.Equal(time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("ParseDate = %v, %v", d, err)
	}
	for _, bad := range []string{"2024-02-30", "29/02/2024", "2024-02-29T10:00:00Z", ""} {
		if _, err := offline.ParseDate(bad); !errors.Is(err, offline.ErrInvalid) {
			t.Errorf("ParseDate(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	f, err := spec.ParseFeatures("f.yaml", []byte(`entities: [{name: e, join_keys: [a, b]}]
sources: [{name: s, format: csv, path: x.csv, timestamp: ts}]
feature_sets: [{name: fs, entity: e, source: s, windows: [1d], features: [{name: v, type: float64, expr: v, aggs: [avg, count]}]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	keys, cols, err := offline.Schema(f, "fs")
	if err != nil || strings.Join(keys, ",") != "a,b" || len(cols) != 2 || cols[0].Name != "v_avg_1d" || cols[1].Type != spec.Int64 {
		t.Errorf("Schema = %v, %+v, %v", keys, cols, err)
	}
	if _, _, err := offline.Schema(f, "nope"); !errors.Is(err, offline.ErrUnknownSet) {
		t.Errorf("Schema(nope) = %v", err)
	}
}
