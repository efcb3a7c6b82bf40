// Package offlinetest is the conformance suite of offline engines: every
// engine's tests call
//
//	offlinetest.Run(t, func(t *testing.T, dir string, opts offline.Options) offline.Engine { ... })
//
// and so run the same cases: the window semantics of aggregated sets, Feast's
// point-in-time rules, and the rest of the contract of offline.Engine (atomic,
// check-gated publishing; reruns; ScanLatest's bounds and ties; Append; Close).
// The suite reads and writes through offline.Engine only, so an engine passes
// or fails on what users see, not on how it stores rows.
//
// A case is a directory testdata/<group>/<case>/ (embedded in the package):
// features.yaml, the source files its sets read, and a script, so that a new case
// is a text edit. A script is a list of commands separated by blank lines, each
// a command line, input lines, a line "----" and the expected output; lines
// starting with "#" between commands are comments:
//
//	run SET START END [progress]   runs the days START..END: error class, published or not, partitions, rows, checks
//	append SET                     appends the input rows (keys, timestamp, values; NULL; 'text' is a string): ok or error class
//	rows SET                       every stored row (one per key and timestamp: the one written last), sorted
//	scan SET [from=T] [to=T] [stop]  what ScanLatest returns, sorted; stop: the callback fails
//	pit (features=REFS | service=S) [time=COL] [full-names] [spine=parquet]
//	                               joins the input spine, to CSV and to Parquet, and prints the rows read back
//	write PATH                     writes the input to a file of the case (to change a source); a CSV as Parquet to PATH.parquet
//	close, reopen                  closes the engine; opens a new one on the same store
//
// Errors print as the sentinels of package offline they wrap ("error:
// ErrChecksFailed"), never as messages, which differ between engines.
//
// Lines and Format spell query results the way the cases' expected output does,
// for engine-specific tests that read stored files directly.
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
