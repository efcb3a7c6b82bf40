package datadrift_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/atrium-ml/atrium/internal/monitoring/datadrift"
	"github.com/atrium-ml/atrium/internal/monitoring/drift"
	"github.com/atrium-ml/atrium/internal/monitoring/report"
)

// table is test data kept in memory (to compute the expected result with
// drift.Compare) and written as CSV.
type table struct {
	price []float64 // NaN: empty field
	qty   []float64
	city  []string // "": empty field
}

func gen(n int, seed uint64, shift float64, cities []string) table {
	rng := rand.New(rand.NewPCG(seed, 1))
	var t table
	for i := range n {
		p := 100 + shift + 15*rng.NormFloat64()
		if i%50 == 7 {
			p = math.NaN()
		}
		t.price = append(t.price, p)
		t.qty = append(t.qty, float64(1+rng.IntN(3)))
		c := cities[rng.IntN(len(cities))]
		if i%40 == 3 {
			c = ""
		}
		t.city = append(t.city, c)
	}
	return t
}

func (t table) writeCSV(tb testing.TB, path string) {
	var b strings.Builder
	b.WriteString("price,qty,city,day\n")
	for i := range t.price {
		p := ""
		if !math.IsNaN(t.price[i]) {
			p = fmt.Sprintf("%.17g", t.price[i])
		}
		fmt.Fprintf(&b, "%s,%g,%s,2026-12-%02d\n", p, t.qty[i], t.city[i], 1+i%28)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// toParquet converts a CSV file with DuckDB.
func toParquet(tb testing.TB, csv, parquet string) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(fmt.Sprintf(`COPY (SELECT * FROM read_csv('%s')) TO '%s' (FORMAT parquet)`, csv, parquet)); err != nil {
		tb.Fatal(err)
	}
}

func (t table) samples() []drift.Sample {
	return []drift.Sample{{Name: "price", Numeric: t.price}, {Name: "qty", Numeric: t.qty}, {Name: "city", Categorical: t.city}}
}

// Run reads the files (CSV and Parquet, NULLs, a date column) and gives
// exactly drift.Compare's result on the same data held in memory.
func TestRunMatchesCompare(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name       string
		ref, cur   table
		overrides  map[string]drift.Options
		wantMethod []drift.Method
		wantDrift  []bool
	}{
		{
			name: "large reference: wasserstein and jensen-shannon, price shifted",
			ref:  gen(3000, 1, 0, []string{"oslo", "paris", "rome"}), cur: gen(2000, 2, 6, []string{"oslo", "paris", "rome"}),
			wantMethod: []drift.Method{drift.MethodWasserstein, drift.MethodJensenShannon, drift.MethodJensenShannon},
			wantDrift:  []bool{true, false, false},
		},
		{
			name: "small reference: ks, chi-square; a new city",
			ref:  gen(600, 3, 0, []string{"oslo", "paris", "rome"}), cur: gen(700, 40, 0, []string{"oslo", "paris", "rome", "lima"}),
			wantMethod: []drift.Method{drift.MethodKS, drift.MethodChiSquare, drift.MethodChiSquare},
			// qty is uniform on both sides, yet drifts: Evidently's chi-square
			// takes the reference shares as exact, so two small samples of one
			// distribution differ at p < 0.05 (here p = 0.009) more often than 5%.
			wantDrift: []bool{false, true, true},
		},
		{
			name: "overrides",
			ref:  gen(3000, 5, 0, []string{"oslo", "paris"}), cur: gen(3000, 6, 3, []string{"oslo", "paris"}),
			overrides:  map[string]drift.Options{"price": {Method: drift.MethodPSI, Threshold: 0.25}, "city": {Threshold: 0.001}},
			wantMethod: []drift.Method{drift.MethodPSI, drift.MethodJensenShannon, drift.MethodJensenShannon},
			wantDrift:  []bool{false, false, true},
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			refCSV, curCSV := filepath.Join(dir, fmt.Sprintf("ref%d.csv", i)), filepath.Join(dir, fmt.Sprintf("cur%d.csv", i))
			tc.ref.writeCSV(t, refCSV)
			tc.cur.writeCSV(t, curCSV)
			refPQ := filepath.Join(dir, fmt.Sprintf("ref%d.parquet", i))
			toParquet(t, refCSV, refPQ)
			want, err := drift.Compare(tc.ref.samples(), tc.cur.samples(), tc.overrides, 0)
			if err != nil {
				t.Fatal(err)
			}
			got, err := datadrift.Run(context.Background(), datadrift.Options{Reference: refPQ, Current: curCSV, Overrides: tc.overrides, Distributions: true})
			if err != nil {
				t.Fatal(err)
			}
			if got.ReferenceRows != int64(len(tc.ref.price)) || got.CurrentRows != int64(len(tc.cur.price)) {
				t.Errorf("rows %d/%d, want %d/%d", got.ReferenceRows, got.CurrentRows, len(tc.ref.price), len(tc.cur.price))
			}
			if len(got.Skipped) != 1 || got.Skipped[0].Column != "day" {
				t.Errorf("skipped %+v, want the date column", got.Skipped)
			}
			gj, _ := json.Marshal(got.DatasetResult)
			wj, _ := json.Marshal(want)
			if !bytes.Equal(gj, wj) {
				t.Errorf("Run gave\n%s\ndrift.Compare on the same data\n%s", gj, wj)
			}
			for j, c := range got.Columns {
				if c.Method != tc.wantMethod[j] || c.Drift != tc.wantDrift[j] {
					t.Errorf("%s: %s drift=%v (score %g), want %s drift=%v", c.Column, c.Method, c.Drift, c.Score, tc.wantMethod[j], tc.wantDrift[j])
				}
			}
			// The report draws a distribution per column.
			var html bytes.Buffer
			if err := report.Render(&html, got.Report(time.Now())); err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(html.String(), `class="chart `); n != 4 {
				t.Errorf("report has %d charts, want 4 (scores + 3 distributions)", n)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ref := write("ref.csv", "a,b,c\n1,x,2026-01-01\n2,y,2026-01-02\n")
	lacksB := write("lacks.csv", "a,c\n1,2026-01-01\n")
	bText := write("btext.csv", "a,b,c\nz,x,2026-01-01\n")
	allNull := write("null.csv", "a,b,c\nNaN,x,2026-01-01\n")
	tests := []struct {
		name string
		o    datadrift.Options
		msg  string
	}{
		{"missing column", datadrift.Options{Reference: ref, Current: lacksB}, `column "b" of the reference is missing from the current data`},
		{"type change", datadrift.Options{Reference: ref, Current: bText}, `column "a" is numeric (BIGINT) in the reference but categorical (VARCHAR)`},
		{"unknown --columns", datadrift.Options{Reference: ref, Current: ref, Columns: []string{"a", "zz"}}, `--columns: "zz" is not a column of the reference (it has a, b, c)`},
		{"date column named", datadrift.Options{Reference: ref, Current: ref, Columns: []string{"c"}}, `column "c" is DATE`},
		{"override of an unknown column", datadrift.Options{Reference: ref, Current: ref, Overrides: map[string]drift.Options{"q": {Threshold: 1}}}, `override for "q"`},
		{"bad extension", datadrift.Options{Reference: write("x.json", "{}"), Current: ref}, "want a .csv, .tsv or .parquet file"},
		{"no such file", datadrift.Options{Reference: ref, Current: filepath.Join(dir, "nope.parquet")}, "--current"},
		{"glob matching nothing", datadrift.Options{Reference: filepath.Join(dir, "*.parquet"), Current: ref}, "matches no file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := datadrift.Run(context.Background(), tc.o)
			if err == nil || !errors.Is(err, datadrift.ErrInput) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %v, want ErrInput mentioning %q", err, tc.msg)
			}
		})
	}
	// An empty current column is an error from drift, never "no drift".
	if _, err := datadrift.Run(context.Background(), datadrift.Options{Reference: ref, Current: allNull, Columns: []string{"a"}}); !errors.Is(err, drift.ErrEmpty) {
		t.Errorf("all-missing current column: %v, want drift.ErrEmpty", err)
	}
}

// TestEvidentlyFiles runs Evidently's DataDriftPreset on the same files
// (testdata/evidently_files.py) and requires the same method, verdict and
// score (1e-6 relative: the KS p-value beyond 10,000 values may differ, see
// internal/monitoring/drift) for every column, and the same dataset verdict.
// It needs ATRIUM_TEST_EVIDENTLY_PYTHON (evidently 0.7.23, pandas<3).
func TestEvidentlyFiles(t *testing.T) {
	py := os.Getenv("ATRIUM_TEST_EVIDENTLY_PYTHON")
	if py == "" {
		t.Skip("ATRIUM_TEST_EVIDENTLY_PYTHON not set")
	}
	dir := t.TempDir()
	cases := []struct {
		name     string
		ref, cur table
	}{
		{"large", gen(3000, 11, 0, []string{"oslo", "paris", "rome"}), gen(2500, 12, 5, []string{"oslo", "paris", "rome", "lima"})},
		{"small", gen(800, 13, 0, []string{"oslo", "paris", "rome"}), gen(900, 14, 3, []string{"oslo", "paris", "rome"})},
		{"two values", gen(500, 15, 0, []string{"oslo", "paris"}), gen(500, 16, 0, []string{"oslo", "paris"})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ref, cur := filepath.Join(dir, tc.name+"-ref.csv"), filepath.Join(dir, tc.name+"-cur.csv")
			tc.ref.writeCSV(t, ref)
			tc.cur.writeCSV(t, cur)
			got, err := datadrift.Run(context.Background(), datadrift.Options{Reference: ref, Current: cur})
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(py, filepath.Join("testdata", "evidently_files.py"), ref, cur, "price", "qty", "city").Output()
			if err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					t.Fatalf("evidently: %v\n%s", err, ee.Stderr)
				}
				t.Fatal(err)
			}
			var ev struct {
				Columns []struct {
					Column, Method   string
					Score, Threshold float64
					Drift            bool
				}
				DatasetDrift bool `json:"dataset_drift"`
			}
			if err := json.Unmarshal(out, &ev); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if len(ev.Columns) != len(got.Columns) {
				t.Fatalf("evidently tested %d columns, we %d", len(ev.Columns), len(got.Columns))
			}
			for i, e := range ev.Columns {
				g := got.Columns[i]
				if g.Column != e.Column || string(g.Method) != e.Method || g.Drift != e.Drift || g.Threshold != e.Threshold ||
					math.Abs(g.Score-e.Score) > 1e-6*max(math.Abs(e.Score), 1e-12) {
					t.Errorf("ours %+v, evidently %+v", g, e)
				}
			}
			if got.DatasetDrift != ev.DatasetDrift {
				t.Errorf("dataset drift %v, evidently %v", got.DatasetDrift, ev.DatasetDrift)
			}
		})
	}
}
