package offlinetest

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/spec"
)

func TestParseScript(t *testing.T) {
	script := `# a comment
run s 2024-01-01 2024-01-02
----
published

append s
1,2024-01-01 00:00:00,2
2,2024-01-01 00:00:00,3
----
ok


write f.csv
a,b
----

close
----
ok`
	got, err := parseScript("script", script)
	if err != nil {
		t.Fatal(err)
	}
	want := []command{
		{pos: "script:2", name: "run", args: []string{"s", "2024-01-01", "2024-01-02"}, want: "published"},
		{pos: "script:6", name: "append", args: []string{"s"}, input: []string{"1,2024-01-01 00:00:00,2", "2,2024-01-01 00:00:00,3"}, want: "ok"},
		{pos: "script:13", name: "write", args: []string{"f.csv"}, input: []string{"a,b"}},
		{pos: "script:17", name: "close", args: []string{}, want: "ok"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseScript:\n%#v\nwant\n%#v", got, want)
	}

	for _, tt := range []struct{ script, want string }{
		{"", "script: no commands"},
		{"# only a comment\n", "script: no commands"},
		{"----\nok\n", "script:1: ---- without a command before it"},
		{"rows s", `script:1: "rows s": no ---- line`},
		{"rows s\n", `script:1: "rows s": no ---- line`},
		{"append s\n1,2\n\n----\nok\n", `script:1: "append s": no ---- line`},
	} {
		if _, err := parseScript("script", tt.script); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("parseScript(%q) error = %v, want %q", tt.script, err, tt.want)
		}
	}
}

func TestParseRow(t *testing.T) {
	cols := []spec.Column{{Name: "n", Type: spec.Int64}, {Name: "x", Type: spec.Float64}, {Name: "b", Type: spec.Bool}, {Name: "t", Type: spec.Timestamp}, {Name: "s", Type: spec.String}}
	ts := time.Date(2024, 1, 2, 3, 4, 5, 500_000_000, time.UTC)
	for _, tt := range []struct {
		line string
		want offline.LatestRow
	}{
		{"7,2024-01-02 03:04:05.5,1,1.5,true,2024-01-02T05:04:05.5+02:00,a", offline.LatestRow{Key: []any{int64(7)}, TS: ts, Values: []any{int64(1), 1.5, true, ts, "a"}}},
		{"u1,2024-01-02T03:04:05.5Z,NULL,NULL,NULL,NULL,NULL", offline.LatestRow{Key: []any{"u1"}, TS: ts, Values: []any{nil, nil, nil, nil, nil}}},
		// Quoted text is a string; what does not read as its column's type is
		// passed as a string, for the engine to refuse.
		{"'7',2024-01-02 03:04:05.5,'1',x,yes,soon,'NULL'", offline.LatestRow{Key: []any{"7"}, TS: ts, Values: []any{"1", "x", "yes", "soon", "NULL"}}},
		{"1.5,,1", offline.LatestRow{Key: []any{1.5}, Values: []any{int64(1)}}},
		{"1,2024-01-02 03:04:05.5,1,2,true,2024-01-02,s,extra", offline.LatestRow{Key: []any{int64(1)}, TS: ts, Values: []any{int64(1), 2.0, true, time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC), "s", "extra"}}},
	} {
		got, err := parseRow(tt.line, 1, cols)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseRow(%q) = %#v, %v\nwant %#v", tt.line, got, err, tt.want)
		}
	}
	for _, line := range []string{"1", "1,tomorrow,1"} {
		if _, err := parseRow(line, 1, cols); err == nil {
			t.Errorf("parseRow(%q) succeeded", line)
		}
	}
}

// TestFormatRows checks the order of rows (int64 keys numerically, then time)
// and the marks on values of a Go type their column does not allow.
func TestFormatRows(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2024, 1, d, 0, 0, 0, 0, time.UTC) }
	cols := []spec.Column{{Name: "n", Type: spec.Int64}, {Name: "s", Type: spec.String}}
	got := formatRows([]string{"k"}, cols, []offline.LatestRow{
		{Key: []any{int64(10)}, TS: day(1), Values: []any{int64(1), "a"}},
		{Key: []any{int64(2)}, TS: day(3), Values: []any{1, "NULL"}},
		{Key: []any{int64(2)}, TS: day(2).In(time.FixedZone("X", 3600)), Values: []any{nil, nil}},
	})
	want := []string{
		"k,timestamp,n,s",
		"2,2024-01-02 00:00:00!X,NULL,NULL",
		"2,2024-01-03 00:00:00,1!int,'NULL'",
		"10,2024-01-01 00:00:00,1,a",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("formatRows:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
