package ml

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeFile writes content to name under a fresh temp dir and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// toParquet converts a CSV file to Parquet with DuckDB, with an explicit
// column list so that the Parquet types are the ones the test wants.
func toParquet(t *testing.T, csvPath, selectList string) string {
	t.Helper()
	out := strings.TrimSuffix(csvPath, ".csv") + ".parquet"
	d, err := openDuck()
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	src, _ := sourceSQL(csvPath)
	r, err := d.query(context.Background(), fmt.Sprintf("COPY (SELECT %s FROM %s) TO %s (FORMAT parquet)", selectList, src, quoteString(out)))
	if err != nil {
		t.Fatal(err)
	}
	r.close()
	return out
}

// nan is a float32 NaN; compare datasets with equalNaN.
var nan = float32(math.NaN())

// equalNaN compares float32 slices treating NaN as equal to NaN.
func equalNaN(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(a[i] != a[i] && b[i] != b[i]) {
			return false
		}
	}
	return true
}

func checkColumn(t *testing.T, ds *Dataset, name string, kind Kind, values []float32, cats []string) {
	t.Helper()
	i := ds.ColumnIndex(name)
	if i < 0 {
		t.Fatalf("column %q missing; have %v", name, columnNames(ds))
	}
	c := ds.Columns[i]
	if c.Kind != kind || !equalNaN(c.Values, values) || !reflect.DeepEqual(c.Categories, cats) {
		t.Errorf("column %q = %v %v %q, want %v %v %q", name, c.Kind, c.Values, c.Categories, kind, values, cats)
	}
}

func columnNames(ds *Dataset) []string {
	var names []string
	for _, c := range ds.Columns {
		names = append(names, c.Name)
	}
	return names
}

const basicCSV = `rent,rooms,hood,store,y,w
1200.5,2,north,7,1,1.5
NA,3,south,12,0,1
900,,north,7,1,2
1500,1,,3,0,0.5
`

func TestLoadCSVAndParquet(t *testing.T) {
	csvPath := writeFile(t, "rent.csv", basicCSV)
	pqPath := toParquet(t, csvPath, "CAST(rent AS DOUBLE) AS rent, CAST(rooms AS INTEGER) AS rooms, hood, CAST(store AS BIGINT) AS store, CAST(y AS BOOLEAN) AS y, w")
	for _, path := range []string{csvPath, pqPath} {
		t.Run(filepath.Ext(path), func(t *testing.T) {
			var progress [][2]int
			ds, err := Load(context.Background(), path, LoadOptions{Label: "y", Weight: "w", Categorical: []string{"store"},
				Progress: func(rows, total int) { progress = append(progress, [2]int{rows, total}) }})
			if err != nil {
				t.Fatal(err)
			}
			total := 0 // unknown for CSV
			if strings.HasSuffix(path, ".parquet") {
				total = 4
			}
			if !reflect.DeepEqual(progress, [][2]int{{4, total}}) {
				t.Errorf("progress %v", progress)
			}
			if got := columnNames(ds); !reflect.DeepEqual(got, []string{"rent", "rooms", "hood", "store"}) {
				t.Fatalf("features %v", got)
			}
			checkColumn(t, ds, "rent", Numeric, []float32{1200.5, nan, 900, 1500}, nil)
			checkColumn(t, ds, "rooms", Numeric, []float32{2, 3, nan, 1}, nil)
			checkColumn(t, ds, "hood", Categorical, []float32{0, 1, 0, nan}, []string{"north", "south"})
			// Numeric codes sort by value: 3 < 7 < 12.
			checkColumn(t, ds, "store", Categorical, []float32{1, 2, 1, 0}, []string{"3", "7", "12"})
			if !reflect.DeepEqual(ds.Label, []float64{1, 0, 1, 0}) || !reflect.DeepEqual(ds.Weight, []float64{1.5, 1, 2, 0.5}) {
				t.Errorf("label %v weight %v", ds.Label, ds.Weight)
			}
		})
	}
}

func TestLoadQuotedPath(t *testing.T) {
	path := writeFile(t, "o'brien, \"quoted\".csv", "x,y\n1,0\n2,1\n")
	ds, err := Load(context.Background(), path, LoadOptions{Label: "y"})
	if err != nil {
		t.Fatal(err)
	}
	checkColumn(t, ds, "x", Numeric, []float32{1, 2}, nil)
	// Quotes in column names.
	path = writeFile(t, "names.csv", "\"it's\",\"say \"\"hi\"\"\",y\n1,a,0\n2,b,1\n")
	ds, err = Load(context.Background(), path, LoadOptions{Label: "y"})
	if err != nil {
		t.Fatal(err)
	}
	checkColumn(t, ds, "it's", Numeric, []float32{1, 2}, nil)
	checkColumn(t, ds, `say "hi"`, Categorical, []float32{0, 1}, []string{"a", "b"})
}

func TestLoadFeaturesAndPassthrough(t *testing.T) {
	path := writeFile(t, "p.csv", "id,a,b,c\n10,1,x,5\n11,2,y,6\n12,,x,7\n")
	tab, err := LoadTable(context.Background(), path, LoadOptions{
		Features: []string{"c", "b", "a"}, Categorical: []string{"c"}, Passthrough: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := columnNames(tab.Dataset); !reflect.DeepEqual(got, []string{"c", "b", "a"}) {
		t.Fatalf("features %v, want the order asked for", got)
	}
	checkColumn(t, tab.Dataset, "c", Categorical, []float32{0, 1, 2}, []string{"5", "6", "7"})
	checkColumn(t, tab.Dataset, "a", Numeric, []float32{1, 2, nan}, nil)
	want := []RawColumn{{Name: "id", Type: "BIGINT", Value: []string{"10", "11", "12"}, Valid: []bool{true, true, true}}}
	if !reflect.DeepEqual(tab.Passthrough, want) || tab.Label != nil {
		t.Errorf("passthrough %+v label %v", tab.Passthrough, tab.Label)
	}
}

// TestLoadFeaturesUnderscored: a model read from LightGBM text names the
// feature "rent per m2" as "rent_per_m2"; it still finds its column, unless
// two columns would fit.
func TestLoadFeaturesUnderscored(t *testing.T) {
	path := writeFile(t, "p.csv", "rent per m2,hood name,x\n1,a,5\n2,b,6\n")
	ds, err := Load(context.Background(), path, LoadOptions{Features: []string{"rent_per_m2", "hood_name"}, Categorical: []string{"hood_name"}})
	if err != nil {
		t.Fatal(err)
	}
	checkColumn(t, ds, "rent_per_m2", Numeric, []float32{1, 2}, nil)
	checkColumn(t, ds, "hood_name", Categorical, []float32{0, 1}, []string{"a", "b"})
	path = writeFile(t, "p.csv", "a b,a\tb\n1,2\n")
	if _, err := Load(context.Background(), path, LoadOptions{Features: []string{"a_b"}}); err == nil || !strings.Contains(err.Error(), `column "a_b": feature column not found`) {
		t.Errorf("two columns fit a_b: error %v, want feature column not found", err)
	}
}

func TestLoadGroupsAndTime(t *testing.T) {
	// Queries q1 and q2 interleave; Load moves each query's rows together.
	path := writeFile(t, "rank.csv", "qid,ts,x,rel\nq1,5,1,2\nq2,3,2,0\nq1,4,3,1\nq3,1,4,0\nq2,2,5,1\n")
	ds, err := Load(context.Background(), path, LoadOptions{Label: "rel", Group: "qid", Ignore: []string{"ts"}})
	if err != nil {
		t.Fatal(err)
	}
	checkColumn(t, ds, "x", Numeric, []float32{1, 3, 2, 5, 4}, nil)
	if !reflect.DeepEqual(ds.Groups, []int{2, 2, 1}) || !reflect.DeepEqual(ds.Label, []float64{2, 1, 0, 1, 0}) {
		t.Errorf("groups %v label %v", ds.Groups, ds.Label)
	}
	// Ordered by time: queries in order of their first row by time.
	ds, err = Load(context.Background(), path, LoadOptions{Label: "rel", Group: "qid", Time: "ts"})
	if err != nil {
		t.Fatal(err)
	}
	checkColumn(t, ds, "x", Numeric, []float32{4, 5, 2, 3, 1}, nil)
	if !reflect.DeepEqual(ds.Groups, []int{1, 2, 2}) {
		t.Errorf("groups %v", ds.Groups)
	}
	// Integer query ids, already contiguous.
	path = writeFile(t, "rank2.csv", "qid,x,rel\n7,1,1\n7,2,0\n3,3,1\n")
	ds, err = Load(context.Background(), path, LoadOptions{Label: "rel", Group: "qid"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ds.Groups, []int{2, 1}) || ds.NumFeatures() != 1 {
		t.Errorf("groups %v features %v", ds.Groups, columnNames(ds))
	}
}

func TestLoadErrors(t *testing.T) {
	// A numeric column with a word after the rows DuckDB samples to infer
	// types: DuckDB's own conversion error, reported with file, column and row.
	var late strings.Builder
	late.WriteString("x,y\n")
	for i := range 21000 {
		fmt.Fprintf(&late, "%d,%d\n", i, i%2)
	}
	late.WriteString("abc,1\n")
	// The same with a float column, which Load has DuckDB parse as float32.
	var lateFloat strings.Builder
	lateFloat.WriteString("x,y\n")
	for i := range 21000 {
		fmt.Fprintf(&lateFloat, "%d.5,%d\n", i, i%2)
	}
	lateFloat.WriteString("n/a?,1\n")
	// A numeric column with a word in the sampled rows: inferred as text, caught by Load.
	var early strings.Builder
	early.WriteString("x,y\n")
	for i := range 40 {
		if i == 17 {
			early.WriteString("oops,0\n")
			continue
		}
		fmt.Fprintf(&early, "%d.5,%d\n", i, i%2)
	}
	tests := []struct {
		name, file, content string
		opts                LoadOptions
		want                string
	}{
		{"missing label column", "a.csv", "x,y\n1,2\n", LoadOptions{Label: "target"}, `a.csv: column "target": label column not found; the file has: x, y`},
		{"missing weight column", "a.csv", "x,y\n1,2\n", LoadOptions{Label: "y", Weight: "w"}, `column "w": weight column not found`},
		{"missing feature column", "a.csv", "x,y\n1,2\n", LoadOptions{Features: []string{"x", "z"}}, `column "z": feature column not found`},
		{"NaN label", "a.csv", "x,y\n1,0\n2,NaN\n", LoadOptions{Label: "y"}, `a.csv: column "y" row 2: missing label`},
		{"empty label", "a.csv", "x,y\n1,0\n2,1\n3,\n", LoadOptions{Label: "y"}, `column "y" row 3: missing label`},
		{"text label", "a.csv", "x,y\n1,0\n2,yes\n", LoadOptions{Label: "y"}, `column "y" row 2: value "yes" is not a number`},
		{"negative weight", "a.csv", "x,y,w\n1,0,1\n2,1,-2\n", LoadOptions{Label: "y", Weight: "w"}, `column "w" row 2: weight is -2, want >= 0`},
		{"word in numeric column (sampled)", "a.csv", early.String(), LoadOptions{Label: "y"}, `a.csv: column "x" row 18: value "oops" is not a number, but 39 of the column's 40 distinct values are`},
		{"word in numeric column (after sample)", "a.csv", late.String(), LoadOptions{Label: "y"}, `a.csv: column "x" row 21001: value "abc" is not a BIGINT`},
		{"word in float column (after sample)", "a.csv", lateFloat.String(), LoadOptions{Label: "y"}, `a.csv: column "x" row 21001: value "n/a?" is not a number (the column holds numbers in the first rows)`},
		{"word in forced numeric column", "a.csv", "x,y\na,1\nb,0\n", LoadOptions{Label: "y", Numeric: []string{"x"}}, `column "x" row 1: value "a" is not a number`},
		{"date feature", "a.csv", "d,y\n2024-01-01,1\n2024-01-02,0\n", LoadOptions{Label: "y"}, `column "d": type DATE cannot be a feature`},
		{"no rows", "a.csv", "x,y\n", LoadOptions{Label: "y"}, `a.csv: no data rows`},
		{"unknown extension", "a.json", "{}", LoadOptions{}, `a.json: unknown file type`},
		{"not parquet", "a.parquet", "x,y\n1,2\n", LoadOptions{}, `a.parquet: cannot read: Invalid Input Error`},
		{"label is also weight", "a.csv", "x,y\n1,2\n", LoadOptions{Label: "y", Weight: "y"}, `column "y": used for two roles`},
		{"label refused by CheckLabel", "a.csv", "x,y\n1,0\n2,1\n3,2\n", LoadOptions{Label: "y", CheckLabel: binaryLabel}, `a.csv: column "y" row 3: label is 2, want 0 or 1`},
		{"label refused by CheckLabel, rows ordered by time", "a.csv", "t,x,y\n3,1,2\n1,2,0\n2,3,1\n", LoadOptions{Label: "y", Time: "t", CheckLabel: binaryLabel}, `a.csv: column "y" row 1: label is 2, want 0 or 1`},
		{"missing group id", "a.csv", "q,x,y\n1,1,0\n,2,1\n", LoadOptions{Label: "y", Group: "q"}, `column "q" row 2: missing group (query) id`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.file, tt.content)
			_, err := Load(context.Background(), path, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrBadData) {
				t.Fatalf("Load() = %v, want a bad-data error containing %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	if _, err := Load(context.Background(), filepath.Join(t.TempDir(), "none.csv"), LoadOptions{}); err == nil || !strings.Contains(err.Error(), "none.csv: cannot open: no such file") {
		t.Errorf("missing file: %v", err)
	}
}

// binaryLabel is a LoadOptions.CheckLabel accepting 0 and 1.
func binaryLabel(y float64) string {
	if y != 0 && y != 1 {
		return fmt.Sprintf("label is %v, want 0 or 1", y)
	}
	return ""
}

func TestLoadCanceled(t *testing.T) {
	path := writeFile(t, "a.csv", basicCSV)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Load(ctx, path, LoadOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Load() on a canceled context = %v", err)
	}
}

// FuzzLoadCSV: no CSV content makes Load panic, and what it accepts is a
// valid dataset.
func FuzzLoadCSV(f *testing.F) {
	f.Add([]byte(basicCSV), "y", "w", "")
	f.Add([]byte("qid,x,rel\nq1,1,2\nq2,2,0\nq1,3,1\n"), "rel", "", "qid")
	f.Add([]byte("a,b\n\"x,y\",1\n,\n"), "b", "", "")
	f.Add([]byte("x\n1e400\n-0\nnan\n"), "", "", "")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content []byte, label, weight, group string) {
		path := filepath.Join(dir, "f.csv")
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		tab, err := LoadTable(context.Background(), path, LoadOptions{Label: label, Weight: weight, Group: group, Passthrough: []string{}})
		if err != nil {
			return
		}
		if err := tab.Validate(); err != nil {
			t.Fatalf("Load accepted an invalid dataset: %v", err)
		}
	})
}

// LoadOptions.Float64 keeps numeric features as read (CSV text, Parquet
// DOUBLE, a text column forced numeric), with Values their float32
// roundings: the prediction path needs the doubles LightGBM would compare.
func TestLoadFloat64(t *testing.T) {
	csv := writeFile(t, "d.csv", "x,s,y\n0.30000000000000004,0.1000000000000000055,1\n,NA,0\n1e-40,word7,1\n")
	want := []float64{0.30000000000000004, math.NaN(), 1e-40}
	for _, path := range []string{csv, toParquet(t, csv, "CAST(x AS DOUBLE) AS x, s, y")} {
		ds, err := Load(context.Background(), path, LoadOptions{Label: "y", Float64: true, Features: []string{"x"}})
		if err != nil {
			t.Fatal(err)
		}
		c := ds.Columns[0]
		for i, w := range want {
			if got := c.Float64[i]; !(got == w || got != got && w != w) || !(c.Values[i] == float32(w) || w != w && c.Values[i] != c.Values[i]) {
				t.Errorf("%s row %d: %v (float32 %v), want %v", filepath.Ext(path), i, got, c.Values[i], w)
			}
		}
		if err := ds.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	// A text column forced numeric parses to float64 too; a bad value is
	// reported with its row.
	_, err := Load(context.Background(), csv, LoadOptions{Label: "y", Float64: true, Numeric: []string{"s"}})
	var de *DataError
	if !errors.As(err, &de) || de.Row != 3 || de.Column != "s" {
		t.Fatalf("forced numeric with a word: %v, want a DataError at row 3 of s", err)
	}
	csv2 := writeFile(t, "e.csv", "s,y\n0.1000000000000000055,1\n0.5,0\n")
	ds, err := Load(context.Background(), csv2, LoadOptions{Label: "y", Float64: true, Numeric: []string{"s"}})
	if err != nil {
		t.Fatal(err)
	}
	if c := ds.Columns[0]; c.Float64[0] != 0.1000000000000000055 || c.Float64[1] != 0.5 || c.Values[0] != float32(0.1) {
		t.Fatalf("forced numeric: %v %v", c.Float64, c.Values)
	}
	// Without the option, no doubles are kept.
	ds, err = Load(context.Background(), csv, LoadOptions{Label: "y", Features: []string{"x"}})
	if err != nil || ds.Columns[0].Float64 != nil {
		t.Fatalf("default load kept doubles: %v %v", err, ds)
	}
}
