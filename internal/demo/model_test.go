package demo

import (
	"context"
	"database/sql"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWithCrossFeatures(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.csv"), filepath.Join(dir, "out.parquet")
	data := "session_id,rent,budget,neighborhood,preferred_neighborhoods\n" +
		"3,3000.0,2000.0,Moema,Moema|Pinheiros\n" + // over budget, preferred
		"1,1000.0,2000.0,Lapa,Moema|Pinheiros\n" + // not preferred ("Lapa" is no substring match either)
		"2,1500.0,,Vila Madalena,Vila Madalena\n" + // unknown budget: null ratio
		"4,1500.0,0.0,Lapa,\n" // budget 0 and no preferences: nulls
	if err := os.WriteFile(in, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WithCrossFeatures(context.Background(), in, out); err != nil {
		t.Fatal(err)
	}
	db, _ := sql.Open("duckdb", "")
	defer db.Close()
	rows, err := db.Query(`SELECT session_id, rent_to_budget, neighborhood_match FROM read_parquet(?)`, out)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	type row struct {
		id    int64
		ratio sql.NullFloat64
		match sql.NullInt64
	}
	want := []row{
		{3, sql.NullFloat64{Float64: 1.5, Valid: true}, sql.NullInt64{Int64: 1, Valid: true}},
		{1, sql.NullFloat64{Float64: 0.5, Valid: true}, sql.NullInt64{Int64: 0, Valid: true}},
		{2, sql.NullFloat64{}, sql.NullInt64{Int64: 1, Valid: true}},
		{4, sql.NullFloat64{}, sql.NullInt64{}},
	}
	var got []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.ratio, &r.match); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.id != w.id || g.ratio.Valid != w.ratio.Valid || math.Abs(g.ratio.Float64-w.ratio.Float64) > 1e-12 || g.match != w.match {
			t.Errorf("row %d = %+v, want %+v", i, g, w)
		}
	}
	if err := WithCrossFeatures(context.Background(), in, filepath.Join(dir, "x.csv")); err == nil || !strings.Contains(err.Error(), "want a .parquet file") {
		t.Errorf("WithCrossFeatures to CSV = %v", err)
	}
}

func TestScoreRanker(t *testing.T) {
	l1, l2 := &Listing{ID: 10}, &Listing{ID: 20}
	s := &Session{ID: 7, Impressions: []Impression{{Listing: l1}, {Listing: l2}}}
	out := make([]float64, 2)
	if err := ScoreRanker(map[[2]int64]float64{{7, 10}: 0.5, {7, 20}: 2})(s, out); err != nil || out[0] != 0.5 || out[1] != 2 {
		t.Errorf("ScoreRanker = %v, %v", out, err)
	}
	if err := ScoreRanker(map[[2]int64]float64{{7, 10}: 0.5})(s, out); err == nil || !strings.Contains(err.Error(), "listing 20") {
		t.Errorf("ScoreRanker with a missing score = %v", err)
	}
}
