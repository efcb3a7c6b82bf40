package duckdb_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/data/profile"
)

const statsYAML = `entities:
  - {name: listing, join_keys: [listing_id]}
sources:
  - {name: listings, format: csv, path: listings.csv, timestamp: updated_at}
feature_sets:
  - name: stats
    entity: listing
    source: listings
    ttl: 30d
    features:
      - {name: rent, type: float64, expr: rent}
      - {name: rooms, type: int64, expr: rooms}
      - {name: city, type: string, expr: city}
`

// TestRunProfiles checks the profiles a run computes in DuckDB against
// profile.Build on the published rows read back: counts, moments, min/max,
// histograms and categories exactly; quantiles and distinct counts within
// the approximation's error; samples drawn from the values.
func TestRunProfiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var b strings.Builder
	b.WriteString("listing_id,updated_at,rent,rooms,city\n")
	id := 0
	for day, n := range map[int]int{1: 7000, 2: 40} { // day 3: no rows
		for i := range n {
			id++
			rent := ""
			if i%25 != 0 {
				rent = fmt.Sprintf("%.2f", 1500+400*rng.NormFloat64())
			}
			city := []string{"rome", "milan", "turin", "", "naples"}[rng.IntN(5)]
			fmt.Fprintf(&b, "%d,2024-01-0%d %02d:%02d:00,%s,%d,%s\n", id, day, i%24, i%60, rent, 1+rng.IntN(4), city)
		}
	}
	dir := repo(t, map[string]string{"features.yaml": statsYAML, "listings.csv": b.String()})
	e, _ := openEngine(t, dir)
	res, err := e.Run(context.Background(), offline.RunRequest{Set: "stats", Start: date(t, "2024-01-01"), End: date(t, "2024-01-03")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Profiles) != 3 {
		t.Fatalf("%d profiles, want one per day (3)", len(res.Profiles))
	}
	db := openDuckDB(t)
	for _, d := range []string{"2024-01-01", "2024-01-02", "2024-01-03"} {
		t.Run(d, func(t *testing.T) {
			got := res.Profiles[d]
			if got.Start.Format("2006-01-02") != d || got.End.Sub(got.Start).Hours() != 24 {
				t.Errorf("time range %v..%v", got.Start, got.End)
			}
			in := readBack(t, db, filepath.Join(e.Root(), "set=stats", "date="+d))
			want := profile.Build(in, profile.Options{})
			if got.Rows != want.Rows {
				t.Fatalf("rows %d, want %d", got.Rows, want.Rows)
			}
			if len(got.Columns) != 3 {
				t.Fatalf("columns %+v, want rent, rooms, city", got.Columns)
			}
			for i, g := range got.Columns {
				w := want.Columns[i]
				if g.Name != w.Name || g.Kind != w.Kind || g.Count != w.Count || g.Missing != w.Missing ||
					!near(g.Mean, w.Mean, 1e-9) || !near(g.Std, w.Std, 1e-9) || g.Min != w.Min || g.Max != w.Max || g.Other != w.Other ||
					!slices.Equal(g.Categories, w.Categories) {
					t.Errorf("%s: got\n%+v\nwant\n%+v", g.Name, summary(g), summary(w))
				}
				if (g.Histogram == nil) != (w.Histogram == nil) || g.Histogram != nil &&
					(!slices.Equal(g.Histogram.Counts, w.Histogram.Counts) || !slices.Equal(g.Histogram.Edges, w.Histogram.Edges)) {
					t.Errorf("%s: histogram %+v, want %+v", g.Name, g.Histogram, w.Histogram)
				}
				// Exact when the partition fits in the sample, else estimates:
				// HyperLogLog distinct counts within 10%, quantiles of the
				// 5,000-row sample within 3% in rank (the rank error of a
				// sample quantile is at most sqrt(0.25/5000) = 0.7% standard
				// deviation). The bound is in rank, not value: on a discrete
				// column a quantile on the edge between two levels may land on
				// either, so its value can be a whole level off.
				if g.Distinct != w.Distinct && (got.Rows <= 5000 || math.Abs(float64(g.Distinct-w.Distinct)) > 0.1*float64(w.Distinct)) {
					t.Errorf("%s: distinct %d, want %d", g.Name, g.Distinct, w.Distinct)
				}
				if len(g.Quantiles) != len(w.Quantiles) {
					t.Errorf("%s: quantiles %v, want about %v", g.Name, g.Quantiles, w.Quantiles)
				}
				var sorted []float64
				if w.Kind == profile.Numeric {
					sorted = slices.Sorted(slices.Values(slices.DeleteFunc(slices.Clone(in[i].Float), math.IsNaN)))
				}
				for j := range min(len(g.Quantiles), len(w.Quantiles)) {
					lo, hi := w.Quantiles[j].Value, w.Quantiles[j].Value
					if got.Rows > 5000 {
						lo, hi = rankQuantile(sorted, g.Quantiles[j].Q-0.03, math.Floor), rankQuantile(sorted, g.Quantiles[j].Q+0.03, math.Ceil)
					}
					if v := g.Quantiles[j].Value; v < lo-1e-9*max(math.Abs(lo), 1) || v > hi+1e-9*max(math.Abs(hi), 1) {
						t.Errorf("%s: quantile %v = %v, want within [%v, %v] (all %v, exact %v)", g.Name, g.Quantiles[j].Q, v, lo, hi, g.Quantiles, w.Quantiles)
						break
					}
				}
				// The sample is a reservoir sample of 5,000 rows; its
				// non-missing values come from the column.
				n := len(g.SampleFloat) + len(g.SampleString)
				limit := min(int64(5000), got.Rows)
				if int64(n) > limit || got.Rows > 0 && int64(n) < limit*g.Count/got.Rows*9/10 {
					t.Errorf("%s: sample of %d values (count %d, rows %d)", g.Name, n, g.Count, got.Rows)
				}
				for _, v := range g.SampleFloat {
					if !slices.Contains(w.SampleFloat, v) && got.Rows <= 5000 {
						t.Errorf("%s: sampled %v is not a value of the column", g.Name, v)
						break
					}
				}
			}
		})
	}
	// SkipProfiles leaves them out.
	res, err = e.Run(context.Background(), offline.RunRequest{Set: "stats", Start: date(t, "2024-01-02"), End: date(t, "2024-01-02"), SkipProfiles: true})
	if err != nil || res.Profiles != nil {
		t.Errorf("SkipProfiles: %v, profiles %v", err, res.Profiles)
	}
}

// TestRunProfilesExact checks the days whose profile is exact (every column
// fits in the sample) field by field against profile.Build, on the cases
// the grouped queries treat apart: a column with no value on a day, a
// constant column, a day without rows, values near 1e149 (whose moments are
// of x/scale), NaN and ±Inf (missing); and that a rerun over the same rows draws the same samples.
func TestRunProfilesExact(t *testing.T) {
	var b strings.Builder
	b.WriteString("listing_id,updated_at,rent,rooms,city\n")
	for i := range 30 {
		// Day 1: rent constant, rooms and city missing throughout.
		fmt.Fprintf(&b, "%d,2024-01-01 %02d:00:00,1000,,\n", i, i%24)
		// Day 3: everything varies, some values missing.
		rent, city := fmt.Sprint(900+i*i%17), []string{"rome", "milan", ""}[i%3]
		if i%7 == 0 {
			rent = ""
		}
		fmt.Fprintf(&b, "%d,2024-01-03 %02d:00:00,%s,%d,%s\n", 100+i, i%24, rent, i%4, city)
		// Day 4: rent near 1e149 (moments are of x/scale).
		fmt.Fprintf(&b, "%d,2024-01-04 %02d:00:00,%de148,%d,rome\n", 200+i, i%24, i*i%23-11, i%3)
		// Day 5: NaN and ±Inf among the rents, missing values as profile.Build's.
		fmt.Fprintf(&b, "%d,2024-01-05 %02d:00:00,%s,%d,rome\n", 300+i, i%24, []string{"1200.5", "nan", "inf", "-inf", "980"}[i%5], i%3)
	} // day 2: no rows
	dir := repo(t, map[string]string{"features.yaml": statsYAML, "listings.csv": b.String()})
	e, _ := openEngine(t, dir)
	req := offline.RunRequest{Set: "stats", Start: date(t, "2024-01-01"), End: date(t, "2024-01-05")}
	first, err := e.Run(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	db := openDuckDB(t)
	for _, d := range []string{"2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"} {
		got, want := first.Profiles[d], profile.Build(readBack(t, db, filepath.Join(e.Root(), "set=stats", "date="+d)), profile.Options{})
		if got == nil || got.Rows != want.Rows || len(got.Columns) != len(want.Columns) {
			t.Fatalf("%s: profile %+v, want %d rows and %d columns", d, got, want.Rows, len(want.Columns))
		}
		for i := range got.Columns {
			g, w := got.Columns[i], want.Columns[i]
			if !near(g.Mean, w.Mean, 1e-12) || !near(g.Std, w.Std, 1e-12) {
				t.Errorf("%s %s: mean, std %v, %v; want %v, %v", d, g.Name, g.Mean, g.Std, w.Mean, w.Std)
			}
			// Same values, in another order (ours by row hash). The
			// samples are sorted in copies: the rerun below compares the
			// profiles as returned.
			g.Mean, g.Std, w.Mean, w.Std = 0, 0, 0, 0
			g.SampleFloat, w.SampleFloat = slices.Sorted(slices.Values(g.SampleFloat)), slices.Sorted(slices.Values(w.SampleFloat))
			g.SampleString, w.SampleString = slices.Sorted(slices.Values(g.SampleString)), slices.Sorted(slices.Values(w.SampleString))
			if !reflect.DeepEqual(g, w) {
				t.Errorf("%s %s: got\n%+v\nwant\n%+v", d, g.Name, g, w)
			}
		}
	}
	// A rerun over the same rows profiles them alike, and so does one that
	// reads a column at a time (as a day too large for one read is read).
	restore := func() {}
	defer func() { restore() }()
	for _, rerun := range []string{"a rerun over the same rows", "read a column at a time"} {
		if rerun == "read a column at a time" {
			restore = duckdb.SetProfileReadValues(1)
		}
		again, err := e.Run(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		for d, p := range first.Profiles {
			if !reflect.DeepEqual(p, again.Profiles[d]) {
				t.Errorf("%s: %s profiled them differently:\n%+v\n%+v", d, rerun, p, again.Profiles[d])
			}
		}
	}
}

// TestRunProfilesNoColumns: a set whose features are none of them profiled
// (a timestamp here) still gets each day's row count.
func TestRunProfilesNoColumns(t *testing.T) {
	yaml := strings.Replace(statsYAML, `      - {name: rent, type: float64, expr: rent}
      - {name: rooms, type: int64, expr: rooms}
      - {name: city, type: string, expr: city}`, `      - {name: seen, type: timestamp, expr: updated_at}`, 1)
	csv := "listing_id,updated_at,rent,rooms,city\n1,2024-01-01 10:00:00,1,1,a\n2,2024-01-01 11:00:00,1,1,a\n3,2024-01-03 10:00:00,1,1,a\n"
	e, _ := openEngine(t, repo(t, map[string]string{"features.yaml": yaml, "listings.csv": csv}))
	res, err := e.Run(context.Background(), offline.RunRequest{Set: "stats", Start: date(t, "2024-01-01"), End: date(t, "2024-01-03")})
	if err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]int64{"2024-01-01": 2, "2024-01-02": 0, "2024-01-03": 1} {
		if p := res.Profiles[d]; p == nil || p.Rows != want || len(p.Columns) != 0 {
			t.Errorf("%s: profile %+v, want %d rows and no columns", d, p, want)
		}
	}
}

// openDuckDB opens an in-memory DuckDB closed with the test.
func openDuckDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// rankQuantile is the order statistic at rank q (clamped to [0, 1]) of the
// sorted values, its index rounded down or up by round.
func rankQuantile(sorted []float64, q float64, round func(float64) float64) float64 {
	q = min(max(q, 0), 1)
	return sorted[int(round(q*float64(len(sorted)-1)))]
}

func near(a, b, rel float64) bool { return math.Abs(a-b) <= rel*max(1, math.Abs(b)) }

func summary(c profile.Column) string {
	return fmt.Sprintf("%s %s count %d missing %d mean %v std %v min %v max %v distinct %d other %d cats %v",
		c.Name, c.Kind, c.Count, c.Missing, c.Mean, c.Std, c.Min, c.Max, c.Distinct, c.Other, c.Categories)
}

// readBack reads a published partition's feature columns into profile inputs.
func readBack(t *testing.T, db *sql.DB, dir string) []profile.Input {
	t.Helper()
	in := []profile.Input{{Name: "rent", Float: []float64{}}, {Name: "rooms", Float: []float64{}}, {Name: "city", String: []string{}}}
	files, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
	if len(files) == 0 {
		return in
	}
	rows, err := db.Query(fmt.Sprintf("SELECT CAST(rent AS DOUBLE), CAST(rooms AS DOUBLE), city FROM read_parquet(['%s'])", strings.Join(files, "','")))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var rent, rooms sql.NullFloat64
		var city sql.NullString
		if err := rows.Scan(&rent, &rooms, &city); err != nil {
			t.Fatal(err)
		}
		in[0].Float = append(in[0].Float, nullNaN(rent))
		in[1].Float = append(in[1].Float, nullNaN(rooms))
		in[2].String = append(in[2].String, city.String)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return in
}

func nullNaN(v sql.NullFloat64) float64 {
	if !v.Valid {
		return math.NaN()
	}
	return v.Float64
}
