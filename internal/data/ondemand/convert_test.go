package ondemand

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/atrium-ml/atrium/internal/data/online"
)

// TestConvertDuckDBScans converts what DuckDB's driver scans for each column
// type an offline join can hold. Before, types Value did not list
// (DECIMAL, HUGEINT, TINYINT, SMALLINT, the unsigned ones) became Null
// silently, so offline on-demand values differed from online ones; now
// each converts exactly, or is an error naming the value and the kind.
func TestConvertDuckDBScans(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tests := []struct {
		sql  string
		kind online.Kind
		want online.Value
		err  string // "" when it converts
	}{
		{"12.50::DECIMAL(10,2)", online.KindFloat64, online.Float64(12.5), ""},
		{"12.00::DECIMAL(10,2)", online.KindInt64, online.Int64(12), ""},
		{"-7::DECIMAL(18,0)", online.KindInt64, online.Int64(-7), ""},
		{"12.50::DECIMAL(10,2)", online.KindInt64, online.Null, "value 12.5 (duckdb.Decimal) cannot be read as int64"},
		{"42::HUGEINT", online.KindInt64, online.Int64(42), ""},
		{"42::HUGEINT", online.KindFloat64, online.Float64(42), ""},
		{"170141183460469231731687303715884105727::HUGEINT", online.KindFloat64, online.Float64(1.7014118346046923e38), ""},
		{"170141183460469231731687303715884105727::HUGEINT", online.KindInt64, online.Null, "cannot be read as int64"},
		{"-5::TINYINT", online.KindInt64, online.Int64(-5), ""},
		{"-300::SMALLINT", online.KindFloat64, online.Float64(-300), ""},
		{"7::UTINYINT", online.KindInt64, online.Int64(7), ""},
		{"9::USMALLINT", online.KindInt64, online.Int64(9), ""},
		{"11::UINTEGER", online.KindInt64, online.Int64(11), ""},
		{"13::UBIGINT", online.KindInt64, online.Int64(13), ""},
		{"18446744073709551615::UBIGINT", online.KindInt64, online.Null, "cannot be read as int64"},
		{"18446744073709551615::UBIGINT", online.KindFloat64, online.Float64(18446744073709551615), ""},
		{"2.5::FLOAT", online.KindFloat64, online.Float64(2.5), ""},
		{"3::INTEGER", online.KindFloat64, online.Float64(3), ""},
		{"'x'", online.KindString, online.String("x"), ""},
		{"true", online.KindBool, online.Bool(true), ""},
		{"TIMESTAMP '2026-12-05 08:00:00'", online.KindTime, online.Time(time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)), ""},
		{"NULL::DOUBLE", online.KindFloat64, online.Null, ""},
		{"'1.5'", online.KindFloat64, online.Null, "value 1.5 (string) cannot be read as float64"},
		{"1.5::DOUBLE", online.KindInt64, online.Null, "value 1.5 (float64) cannot be read as int64"},
		{"[1, 2]", online.KindInt64, online.Null, "cannot be read as int64"},
	}
	for _, tc := range tests {
		t.Run(tc.sql+" as "+tc.kind.String(), func(t *testing.T) {
			var x any
			if err := db.QueryRow("SELECT " + tc.sql).Scan(&x); err != nil {
				t.Fatal(err)
			}
			got, err := Convert(x, tc.kind)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("Convert(%v %T): error %v, want %q", x, x, err, tc.err)
			}
			if !sameValue(got, tc.want) {
				t.Errorf("Convert(%v %T) = %v, want %v", x, x, got, tc.want)
			}
			if v := Value(x, tc.kind); !sameValue(v, tc.want) {
				t.Errorf("Value(%v %T) = %v, want %v", x, x, v, tc.want)
			}
		})
	}
}

func sameValue(a, b online.Value) bool {
	if a.Kind() != b.Kind() {
		return false
	}
	switch a.Kind() {
	case online.KindTime:
		return a.Time().Equal(b.Time())
	}
	return a == b
}
