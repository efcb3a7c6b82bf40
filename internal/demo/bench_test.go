package demo

import (
	"context"
	"testing"
)

// BenchmarkWriteData measures generating and writing the events of the medium
// preset (about 1 million events) on all cores. Run it with:
//
//	go test -run '^$' -bench WriteData -benchtime 3x ./internal/demo
func BenchmarkWriteData(b *testing.B) {
	cfg, _ := Preset("medium")
	m, err := NewMarket(cfg)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	var events int64
	for b.Loop() {
		sum, err := m.WriteData(context.Background(), dir, nil)
		if err != nil {
			b.Fatal(err)
		}
		events = sum.Events()
	}
	b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkWriteRanking measures the ranking set of the medium preset as CSV.
func BenchmarkWriteRanking(b *testing.B) {
	cfg, _ := Preset("medium")
	m, err := NewMarket(cfg)
	if err != nil {
		b.Fatal(err)
	}
	path := b.TempDir() + "/ranking.csv"
	var rows int64
	for b.Loop() {
		sum, err := m.WriteRanking(context.Background(), path, RankingOptions{})
		if err != nil {
			b.Fatal(err)
		}
		rows = sum.Rows
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
