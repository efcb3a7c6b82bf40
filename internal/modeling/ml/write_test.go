package ml

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestWriteTable(t *testing.T) {
	src := writeFile(t, "in.csv", "id,name,x\n10,a,1.5\n11,,2\n12,c,3\n")
	tab, err := LoadTable(context.Background(), src, LoadOptions{Passthrough: []string{"id", "name"}})
	if err != nil {
		t.Fatal(err)
	}
	cols := []OutputColumn{
		{Name: "id", Raw: &tab.Passthrough[0]},
		{Name: "name", Raw: &tab.Passthrough[1]},
		{Name: "prediction", Floats: []float64{0.25, 1.0 / 3, -2e-300}},
	}
	dir := t.TempDir()
	for _, name := range []string{"out.csv", "out.parquet"} {
		path := filepath.Join(dir, name)
		if err := WriteTable(context.Background(), path, cols); err != nil {
			t.Fatal(err)
		}
		back, err := LoadTable(context.Background(), path, LoadOptions{Passthrough: []string{"id", "name"}, Ignore: []string{"id", "name"}})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back.Passthrough, tab.Passthrough) {
			t.Errorf("%s: passthrough %+v, want %+v", name, back.Passthrough, tab.Passthrough)
		}
		checkColumn(t, back.Dataset, "prediction", Numeric, []float32{0.25, 1.0 / 3, -0}, nil)
	}
	csv, _ := os.ReadFile(filepath.Join(dir, "out.csv"))
	if !strings.Contains(string(csv), "0.3333333333333333") {
		t.Errorf("CSV does not keep float64 precision:\n%s", csv)
	}
	// A failed write leaves the previous file and no temporary files.
	bad := append(cols, OutputColumn{Name: "short", Floats: []float64{1}})
	if err := WriteTable(context.Background(), filepath.Join(dir, "out.csv"), bad); err == nil || !strings.Contains(err.Error(), `column "short" has 1 rows, want 3`) {
		t.Errorf("ragged columns: %v", err)
	}
	if err := WriteTable(context.Background(), filepath.Join(dir, "out.xlsx"), cols); err == nil || !strings.Contains(err.Error(), "unknown file type") {
		t.Errorf("xlsx: %v", err)
	}
	again, _ := os.ReadFile(filepath.Join(dir, "out.csv"))
	entries, _ := os.ReadDir(dir)
	if string(again) != string(csv) || len(entries) != 2 {
		t.Errorf("after failed writes: %d files, CSV unchanged %v", len(entries), string(again) == string(csv))
	}
}
