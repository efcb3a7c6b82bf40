package search

import (
	"slices"
	"strings"
	"testing"
)

// TestWhereFencesLaterConditions: past the first plannedConditions, conditions
// are fenced in "(...) IS TRUE" (so PostgreSQL keeps their subqueries out of
// its join search), in order, with their arguments in the same order.
func TestWhereFencesLaterConditions(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want string
	}{
		{0, "1=1"},
		{1, "c0 = ?"},
		{4, "c0 = ? AND c1 = ? AND c2 = ? AND c3 = ?"},
		{6, "c0 = ? AND c1 = ? AND c2 = ? AND c3 = ? AND (c4 = ? AND c5 = ?) IS TRUE"},
	} {
		var w Where
		for i := 0; i < tt.n; i++ {
			w.Add("c"+string(rune('0'+i))+" = ?", i)
		}
		if got := w.SQL(); got != tt.want {
			t.Errorf("%d conditions: %s, want %s", tt.n, got, tt.want)
		}
		for i, a := range w.Args {
			if a != i {
				t.Errorf("%d conditions: argument %d is %v", tt.n, i, a)
			}
		}
	}
}

// TestAddKeyValues checks the grouped conditions of key-value clauses: one
// counting subquery for the keys that must be present (with every clause on
// a key in its arm), one for the keys that must be absent, and as many
// arguments as placeholders, in order.
func TestAddKeyValues(t *testing.T) {
	t1 := KeyValues{Table: "tags", Owner: "run_uuid", Outer: "r.run_uuid"}
	for _, tt := range []struct {
		filter, sql string
		args        []any
	}{
		{"tags.a = 'x'", "(SELECT COUNT(*) FROM tags kv WHERE kv.run_uuid = r.run_uuid AND kv.key IN (?) AND ((kv.key = ? AND kv.value = ?))) = 1",
			[]any{"a", "a", "x"}},
		{"tags.a IS NOT NULL and tags.b IS NOT NULL and tags.a IS NOT NULL", "(SELECT COUNT(*) FROM tags kv WHERE kv.run_uuid = r.run_uuid AND kv.key IN (?, ?)) = 2",
			[]any{"a", "b"}},
		{"tags.a != 'x' and tags.b IS NOT NULL and tags.a LIKE 'y%' and tags.c IS NULL and tags.d IS NULL",
			"(SELECT COUNT(*) FROM tags kv WHERE kv.run_uuid = r.run_uuid AND kv.key IN (?, ?) AND ((kv.key = ? AND kv.value != ? AND kv.value LIKE ? ESCAPE '\\') OR kv.key = ?)) = 2" +
				" AND (SELECT COUNT(*) FROM tags kv WHERE kv.run_uuid = r.run_uuid AND kv.key IN (?, ?)) = 0",
			[]any{"a", "b", "a", "x", "y%", "b", "c", "d"}},
		{"", "1=1", nil},
	} {
		clauses, err := Parse(Runs, tt.filter)
		if err != nil {
			t.Fatal(err)
		}
		var w Where
		w.AddKeyValues(t1, clauses)
		if got := w.SQL(); got != tt.sql {
			t.Errorf("%s:\n got %s\nwant %s", tt.filter, got, tt.sql)
		}
		if strings.Count(w.SQL(), "?") != len(w.Args) || len(w.Args) != len(tt.args) {
			t.Errorf("%s: %d placeholders, args %q, want %q", tt.filter, strings.Count(w.SQL(), "?"), w.Args, tt.args)
			continue
		}
		for i := range tt.args {
			if w.Args[i] != tt.args[i] {
				t.Errorf("%s: args %q, want %q", tt.filter, w.Args, tt.args)
				break
			}
		}
	}
}

// TestKeptPage: walking a filtered query page by page returns every kept row
// once, in order, each page full but the last, for sparse and dense filters
// and page sizes around the read sizes (hidden runs longer than a read).
func TestKeptPage(t *testing.T) {
	const rows = 12000 // past maxKeptChunk: a hidden stretch spans several reads
	for _, tc := range []struct {
		name string
		keep func(int) bool
	}{
		{"every row", func(int) bool { return true }},
		{"none", func(int) bool { return false }},
		{"every third", func(i int) bool { return i%3 == 0 }},
		{"first and last only", func(i int) bool { return i == 0 || i == rows-1 }},
		{"a run in the middle", func(i int) bool { return i >= 7000 && i < 7005 }},
		{"nil keep", nil},
	} {
		for _, limit := range []int64{1, 2, 7, 1000} {
			var want []int
			for i := range rows {
				if tc.keep == nil || tc.keep(i) {
					want = append(want, i)
				}
			}
			if limit == 1 && len(want) > 100 {
				continue // thousands of pages: covered by the others
			}
			fetch := func(n int64, off int) ([]int, error) {
				var out []int
				for i := off; i < rows && int64(len(out)) < n; i++ {
					out = append(out, i)
				}
				return out, nil
			}
			var got []int
			token := ""
			for pages := 0; ; pages++ {
				_, offset, err := Page(limit, limit, limit, token)
				if err != nil {
					t.Fatal(err)
				}
				page, next, err := KeptPage(fetch, tc.keep, limit, offset)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, page...)
				if next == "" {
					break
				}
				if int64(len(page)) != limit {
					t.Errorf("%s, limit %d: page %d has %d rows and a next page", tc.name, limit, pages, len(page))
				}
				token = next
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s, limit %d: got %d rows %v..., want %d", tc.name, limit, len(got), got[:min(len(got), 5)], len(want))
			}
		}
	}
}
