// Command monitoring generates the drift benchmark's data (see run.sh): two
// Parquet files of -rows rows, 40 numeric columns (normal, lognormal,
// integer-valued) and 10 categorical ones; in the current file 10 columns
// are shifted. Files are generated once per size.
package main

import (
	"database/sql"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	_ "github.com/duckdb/duckdb-go/v2"
)

func main() {
	dir := flag.String("dir", "/tmp/atrium-bench-monitoring", "output directory")
	rows := flag.Int("rows", 1_000_000, "rows per file")
	flag.Parse()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	for _, f := range []struct {
		name    string
		current bool
		seed    float64
	}{{"reference", false, 0.1}, {"current", true, 0.2}} {
		path := filepath.Join(*dir, fmt.Sprintf("%s-%d.parquet", f.name, *rows))
		if _, err := os.Stat(path); err == nil {
			continue
		}
		if _, err := db.Exec(fmt.Sprintf("SELECT setseed(%g)", f.seed)); err != nil {
			log.Fatal(err)
		}
		q := fmt.Sprintf("COPY (SELECT %s FROM range(%d)) TO '%s' (FORMAT parquet)", strings.Join(columns(f.current), ", "), *rows, path)
		if _, err := db.Exec(q); err != nil {
			log.Fatal(err)
		}
		log.Printf("wrote %s", path)
	}
}

// columns are the SELECT list: n00..n39 numeric, c00..c09 categorical. In
// the current data, n00-n05 and c00-c01 shift by a varying amount (some
// above Evidently's thresholds, some under), and n06-n07 get missing values.
func columns(current bool) []string {
	// Box-Muller normal from DuckDB's random().
	normal := "sqrt(-2 * ln(random())) * cos(2 * pi() * random())"
	var cols []string
	for i := range 40 {
		shift := 0.0
		if current && i < 6 {
			shift = []float64{0.02, 0.05, 0.08, 0.12, 0.2, 0.5}[i]
		}
		var e string
		switch i % 3 {
		case 0:
			e = fmt.Sprintf("%g + %d + (%d + 1) * %s", shift*float64(i%7+1), i, i%7, normal)
		case 1:
			e = fmt.Sprintf("exp(%g + 0.5 * %s)", shift*2, normal)
		default:
			e = fmt.Sprintf("CAST(floor(%d * random() + %g * %d) AS BIGINT)", 20+i, shift, 20+i)
		}
		if current && (i == 6 || i == 7) {
			e = fmt.Sprintf("CASE WHEN random() < 0.1 THEN NULL ELSE %s END", e)
		}
		cols = append(cols, fmt.Sprintf("%s AS n%02d", e, i))
	}
	for i := range 10 {
		k := 3 + i*5 // 3 to 48 categories
		skew := 1.0
		if current && i < 2 {
			skew = []float64{1.3, 2.0}[i]
		}
		cols = append(cols, fmt.Sprintf("'v' || CAST(floor(%d * pow(random(), %g)) AS INTEGER) AS c%02d", k, skew, i))
	}
	return cols
}
