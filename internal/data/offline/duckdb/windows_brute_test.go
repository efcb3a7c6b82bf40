package duckdb_test

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/offlinetest"
	"github.com/atrium-ml/atrium/internal/spec"
)

// TestWindowsMatchBruteForce stores aggregated sets computed from random events
// and compares every row with the window semantics evaluated naively: for each
// key and step T of the run, every column aggregates the events with
// T - w <= ts < T with a FILTERed aggregate, the key has a row when its largest
// window holds an event, and sums and counts over windows without values are 0.
// The events put rows exactly on step boundaries, NULL values, and, in the same
// key, values of very different sizes (so a window's result must not depend on
// the rows outside it); floats are compared to 1e-9 relative, the rest exactly.
func TestWindowsMatchBruteForce(t *testing.T) {
	tests := []struct {
		name    string
		windows []string
		slide   string
		start   string
		end     string
		days    int
	}{
		{name: "daily", windows: []string{"1d", "3d", "7d"}, slide: "1d", start: "2024-01-08", end: "2024-01-22", days: 20},
		{name: "half_day_slide", windows: []string{"12h", "2d"}, slide: "12h", start: "2024-01-03", end: "2024-01-09", days: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeRandomEvents(t, filepath.Join(dir, "ev.csv"), tt.days, 1)
			yaml := fmt.Sprintf(`entities:
  - {name: e, join_keys: [k]}
sources:
  - {name: ev, format: csv, path: ev.csv, timestamp: ts}
feature_sets:
  - name: s
    entity: e
    source: ev
    windows: [%s]
    slide: %s
    features:
      - {name: v, type: float64, expr: v, aggs: [sum, count, avg, min, max, stddev_pop, stddev_samp, last]}
      - {name: n, type: int64, expr: n, aggs: [sum, count, avg, min, max, stddev_pop, stddev_samp, last]}
      - {name: c, type: string, expr: c, aggs: [count_distinct, last]}
`, strings.Join(tt.windows, ", "), tt.slide)
			if err := os.WriteFile(filepath.Join(dir, "features.yaml"), []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			e, f := openEngine(t, dir)
			res, err := e.Run(context.Background(), offline.RunRequest{Set: "s", Start: date(t, tt.start), End: date(t, tt.end)})
			if err != nil {
				t.Fatal(err)
			}
			naive := naiveWindows(t, f.Set("s"), filepath.Join(dir, "ev.csv"), date(t, tt.start), date(t, tt.end).Add(24*time.Hour))
			stored := fmt.Sprintf("read_parquet('%s', union_by_name = true, hive_partitioning = false)",
				filepath.Join(e.Root(), "set=s", "date=*", "*.parquet"))
			var differ []string
			for _, c := range f.Set("s").Columns() {
				q := "a." + c.Name + " IS NOT DISTINCT FROM b." + c.Name
				if c.Type == spec.Float64 {
					q = fmt.Sprintf("(%s OR abs(a.%s - b.%s) <= 1e-9 * greatest(abs(a.%s), abs(b.%s)))", q, c.Name, c.Name, c.Name, c.Name)
				}
				differ = append(differ, fmt.Sprintf("CASE WHEN NOT %s THEN '%s: ' || coalesce(CAST(a.%s AS VARCHAR), 'NULL') || ' vs ' || coalesce(CAST(b.%s AS VARCHAR), 'NULL') END", q, c.Name, c.Name, c.Name))
			}
			rows := offlinetest.Lines(t, fmt.Sprintf(`SELECT coalesce(a.k, b.k) AS k, coalesce(a."timestamp", b."timestamp") AS ts,
				CASE WHEN a.k IS NULL THEN 'missing row' WHEN b.k IS NULL THEN 'extra row' ELSE concat_ws('; ', %s) END AS diff
				FROM (SELECT * FROM %s) a FULL JOIN (%s) b ON a.k = b.k AND a."timestamp" = b."timestamp"
				WHERE diff <> '' ORDER BY 1, 2`, strings.Join(differ, ", "), stored, naive))
			for _, r := range rows[1:] {
				t.Errorf("stored (got) vs naive (want): %s", r)
			}
			if res.RowsOut < 30 {
				t.Errorf("only %d rows out: the random data does not exercise the windows", res.RowsOut)
			}
		})
	}
}

// writeRandomEvents writes about 30 events a day over days days from 2024-01-01
// for 5 keys: a quarter exactly at midnight or noon, a tenth with NULL values,
// float values from 1e-3 to 1e5 with a few near 1e15, integers, and 4 categories.
func writeRandomEvents(t *testing.T, path string, days int, seed int64) {
	t.Helper()
	r := rand.New(rand.NewSource(seed))
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var b strings.Builder
	b.WriteString("k,ts,v,n,c\n")
	for i := 0; i < 30*days; i++ {
		ts := base.Add(time.Duration(r.Int63n(int64(days) * int64(24*time.Hour))))
		if r.Intn(4) == 0 {
			ts = base.Add(time.Duration(r.Intn(2*days)) * 12 * time.Hour)
		}
		v := fmt.Sprintf("%.3f", r.Float64()*100000)
		switch {
		case r.Intn(10) == 0:
			v = ""
		case r.Intn(40) == 0:
			v = fmt.Sprintf("%.1f", 1e15+r.Float64()*1e6)
		case r.Intn(3) == 0:
			v = fmt.Sprintf("%.3f", r.Float64())
		}
		n := fmt.Sprint(r.Intn(1000) - 500)
		if r.Intn(10) == 0 {
			n = ""
		}
		fmt.Fprintf(&b, "%d,%s,%s,%s,c%d\n", r.Intn(5), ts.Format("2006-01-02 15:04:05.000000"), v, n, r.Intn(4))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// naiveWindows is the query of an aggregated set's rows by the definition: every
// key, every step T in [from, to), each column a FILTERed aggregate over
// T - w <= ts < T, rows kept when the largest window holds an event.
func naiveWindows(t *testing.T, fs *spec.FeatureSet, csv string, from, to time.Time) string {
	t.Helper()
	var cols []string
	for _, c := range fs.Columns() {
		in := fmt.Sprintf("ev.ts >= st.T - INTERVAL '%d seconds' AND ev.ts < st.T", int64(c.Window.D().Seconds()))
		x := "ev." + c.Feature
		var e string
		switch c.Agg {
		case spec.Sum:
			e = fmt.Sprintf("coalesce(sum(%s) FILTER (WHERE %s), 0)", x, in)
		case spec.CountDistinct:
			e = fmt.Sprintf("count(DISTINCT %s) FILTER (WHERE %s)", x, in)
		case spec.Last:
			e = fmt.Sprintf("arg_max(%s, ev.ts) FILTER (WHERE %s AND %s IS NOT NULL)", x, in, x)
		default:
			e = fmt.Sprintf("%s(%s) FILTER (WHERE %s)", c.Agg, x, in)
		}
		cols = append(cols, fmt.Sprintf("CAST(%s AS %s) AS %s", e, c.Type.SQL(), c.Name))
	}
	return fmt.Sprintf(`WITH ev AS (SELECT k, CAST(ts AS TIMESTAMP) AS ts, CAST(v AS DOUBLE) AS v, CAST(n AS BIGINT) AS n, c FROM read_csv('%s')),
		st AS (SELECT unnest(range(TIMESTAMP '%s', TIMESTAMP '%s', INTERVAL '%d seconds')) AS T),
		keys AS (SELECT DISTINCT k FROM ev)
		SELECT keys.k, st.T AS "timestamp", %s FROM keys CROSS JOIN st
		LEFT JOIN ev ON ev.k = keys.k AND ev.ts >= st.T - INTERVAL '%d seconds' AND ev.ts < st.T
		GROUP BY keys.k, st.T HAVING count(ev.ts) > 0`,
		csv, from.Format(time.DateTime), to.Format(time.DateTime), int64(fs.Slide.D().Seconds()), strings.Join(cols, ", "),
		int64(fs.LargestWindow().D().Seconds()))
}
