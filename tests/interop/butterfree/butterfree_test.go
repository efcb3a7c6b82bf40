// Package butterfree_test feeds the same events to butterfree's rolling-window
// aggregations (QuintoAndar's pipeline library, on pyspark) and to Atrium, and
// checks where they agree and that they differ only where docs/features.md
// says they do.
package butterfree_test

import (
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/spec"
)

const features = `entities: [{name: item, join_keys: [id]}]
sources: [{name: events, format: csv, path: events.csv, timestamp: ts}]
feature_sets:
  - name: events_agg
    entity: item
    source: events
    windows: [1d, 3d]
    features:
      - {name: v, type: float64, expr: v, aggs: [sum, count, avg, min, max, stddev_pop]}
`

// aggs are the aggregations both support; windows pairs Atrium's window with butterfree's.
var (
	aggs    = []string{"sum", "count", "avg", "min", "max", "stddev_pop"}
	windows = [][2]string{{"1d", "1 day"}, {"3d", "3 days"}}
)

// events are three keys over ten days of 2024-03: several events a day,
// days without any (gaps longer than the largest window), events exactly at
// midnight (a window's end excludes them, the next one's start includes
// them), and negative values.
func events() string {
	var b strings.Builder
	b.WriteString("id,ts,v\n")
	for id := 1; id <= 3; id++ {
		for day := 1; day <= 10; day++ {
			if (day+id)%4 == 0 || (id == 3 && day > 2 && day < 8) {
				continue // gaps
			}
			for k := 0; k < id+day%3; k++ {
				ts := time.Date(2024, 3, day, 0, 0, 0, 0, time.UTC).Add(time.Duration(k*7) * time.Hour)
				v := float64((id*31+day*17+k*13)%50) - 10 + 0.25*float64(k)
				fmt.Fprintf(&b, "%d,%s,%g\n", id, ts.Format(time.DateTime), v)
			}
		}
	}
	return b.String()
}

func TestRollingWindowsAgreeWithButterfree(t *testing.T) {
	py := os.Getenv("ATRIUM_TEST_BUTTERFREE_PYTHON")
	if py == "" {
		t.Skip("ATRIUM_TEST_BUTTERFREE_PYTHON is unset: no butterfree virtualenv (.ci/spark.sh creates it)")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "events.csv"), []byte(events()), 0o644); err != nil {
		t.Fatal(err)
	}
	// butterfree: steps from the first event's day up to end_date, which 1.8
	// includes (bench/pipeline found it: its docstring says exclusive).
	out := filepath.Join(dir, "butterfree.csv")
	cmd := exec.CommandContext(t.Context(), py, "butterfree_windows.py", filepath.Join(dir, "events.csv"), "2024-03-14", "1 day,3 days", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("butterfree: %v\n%s", err, b)
	}
	bf := readCSV(t, out)

	// Atrium over the same steps (a step at T is the day T-1 aggregated).
	feats, err := spec.ParseFeatures("features.yaml", []byte(features))
	if err != nil {
		t.Fatal(err)
	}
	e, err := duckdb.Open(t.Context(), t.TempDir(), offline.Options{Features: feats, BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	start, _ := offline.ParseDate("2024-03-01")
	end, _ := offline.ParseDate("2024-03-13")
	if _, err := e.Run(t.Context(), offline.RunRequest{Set: "events_agg", Start: start, End: end, SkipProfiles: true}); err != nil {
		t.Fatal(err)
	}
	keys, cols, _ := offline.Schema(feats, "events_agg")
	at := map[string][]any{}
	// Every stored row: scan up to each step (ScanLatest returns each key's latest).
	for d := start; !d.After(end); d = d.Add(24 * time.Hour) {
		err := e.ScanLatest(t.Context(), "events_agg", d.Add(-time.Nanosecond), d, func(rows []offline.LatestRow) error {
			for _, r := range rows {
				at[fmt.Sprintf("%v|%s", r.Key[0], r.TS.Format(time.DateTime))] = r.Values
			}
			return nil
		})
		if err != nil && !errors.Is(err, offline.ErrNoData) {
			t.Fatal(err)
		}
	}
	if len(keys) != 1 || len(at) == 0 {
		t.Fatalf("Atrium stored %d rows", len(at))
	}
	col := map[string]int{}
	for i, c := range cols {
		col[c.Name] = i
	}

	agree, atriumOnly, emptyWindow := 0, 0, 0
	seen := map[string]bool{}
	for _, row := range bf {
		k := row["id"] + "|" + row["timestamp"]
		seen[k] = true
		vals, ok := at[k]
		allNull := true
		for _, w := range windows {
			for _, a := range aggs {
				if row[bfName(a, w[1])] != "" {
					allNull = false
				}
			}
		}
		if !ok {
			// Atrium has no row where no window holds an event; butterfree
			// keeps one per key and day, with nulls.
			if !allNull {
				t.Errorf("%s: butterfree has values, Atrium no row: %v", k, row)
			}
			continue
		}
		for _, w := range windows {
			for _, a := range aggs {
				name := fmt.Sprintf("v_%s_%s", a, w[0])
				got, want := vals[col[name]], row[bfName(a, w[1])]
				if want == "" {
					// An empty window: butterfree null, Atrium 0 for sum and
					// count and null for the others.
					if (a == "sum" || a == "count") && (got == float64(0) || got == int64(0)) || got == nil {
						emptyWindow++
						continue
					}
					t.Errorf("%s %s: butterfree null, Atrium %v", k, name, got)
					continue
				}
				x, err := strconv.ParseFloat(want, 64)
				if err != nil {
					t.Fatalf("%s %s: %q", k, name, want)
				}
				if !near(got, x) {
					t.Errorf("%s %s: butterfree %v, Atrium %v", k, name, x, got)
					continue
				}
				agree++
			}
		}
	}
	for k := range at {
		if !seen[k] {
			atriumOnly++
			t.Errorf("%s: Atrium has a row, butterfree none", k)
		}
	}
	if agree < 200 {
		t.Errorf("only %d values compared equal; the events should give several hundred", agree)
	}
	t.Logf("%d values agree, %d empty windows (butterfree null), %d Atrium-only rows, %d butterfree rows", agree, emptyWindow, atriumOnly, len(bf))
}

func bfName(agg, window string) string {
	return fmt.Sprintf("v__%s_over_%s_rolling_windows", agg, strings.ReplaceAll(window, " ", "_"))
}

func near(got any, want float64) bool {
	var g float64
	switch v := got.(type) {
	case float64:
		g = v
	case int64:
		g = float64(v)
	default:
		return false
	}
	return math.Abs(g-want) <= 1e-9*math.Max(1, math.Abs(want))
}

func readCSV(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = r[i]
		}
		out = append(out, m)
	}
	return out
}
