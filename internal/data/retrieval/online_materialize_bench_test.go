package retrieval

import (
	"context"
	"testing"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
)

// BenchmarkMaterialize200k materializes 200,000 keys from the DuckDB offline
// store into Pebble (bench/online/materialize.sh measures 1 million end to end).
func BenchmarkMaterialize200k(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		f := newMaterializeFixture(b, metatest.SQLite(b, Schema))
		rows := make([]offline.LatestRow, 0, 200_000)
		for i := range 200_000 {
			rows = append(rows, row(int64(i), day(4, 0), float64(i)))
		}
		if err := f.eng.Append(context.Background(), "profile", rows); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := f.m.Materialize(context.Background(), []SetDef{f.set}, day(5, 0))
		if err != nil || res[0].Rows != 200_000 {
			b.Fatalf("%+v %v", res, err)
		}
	}
}
