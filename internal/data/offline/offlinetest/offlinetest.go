// Package offlinetest helps tests of the offline store compare stored rows with
// golden text: it runs a query on a fresh in-memory DuckDB and prints the result
// one line per row.
package offlinetest

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // the duckdb database/sql driver
)

// Lines runs query and returns its result as comma-separated lines, the column
// names first, each value spelled by Format.
func Lines(t testing.TB, query string) []string {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	out := []string{strings.Join(cols, ",")}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			cells[i] = Format(v)
		}
		out = append(out, strings.Join(cells, ","))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Format spells a value the way golden files do: NULL, floats to 12 significant
// digits (100, 0.333333333333), times as "2006-01-02 15:04:05" in UTC, with the
// fraction of a second when there is one ("2006-01-02 15:04:05.25").
func Format(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case float64:
		return strconv.FormatFloat(x, 'g', 12, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', 12, 64)
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05.999999999")
	}
	return fmt.Sprint(v)
}
