package oip

import (
	"strings"
	"testing"
)

// TestSkipData checks the vectorised skipData against the rule it
// implements: the value ends at the ']' that closes its first '[',
// brackets inside strings (escaped quotes included) do not count, and
// nesting past maxDepth or a missing end is an error.
func TestSkipData(t *testing.T) {
	deep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	for _, tc := range []struct {
		name, doc, want, err string
	}{
		{"flat numbers", `[1.5,-2,3e4],"x":1`, `[1.5,-2,3e4]`, ""},
		{"nested", `[[1,2],[3,[4]]] tail`, `[[1,2],[3,[4]]]`, ""},
		{"empty", `[]`, `[]`, ""},
		{"brackets in strings", `["a]b","[[","c\"]d"],1`, `["a]b","[[","c\"]d"]`, ""},
		{"nested strings", `[["]"],["[",["x"]]]]`, `[["]"],["[",["x"]]]`, ""},
		{"scalar", `1.25,`, `1.25`, ""},
		{"string scalar", `"a]",`, `"a]"`, ""},
		{"at the limit", strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth), strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth), ""},
		{"too deep", deep, "", "malformed JSON at byte 64: nested deeper than 64"},
		{"too deep after a stretch", `[1,[2],` + deep[1:], "", "malformed JSON at byte 70: nested deeper than 64"},
		{"many strings", "[" + strings.Repeat(`"a]",`, 50) + `"b"]`, "[" + strings.Repeat(`"a]",`, 50) + `"b"]`, ""},
		{"many lists", "[" + strings.Repeat(`[1,"]"],`, 50) + `[2]]`, "[" + strings.Repeat(`[1,"]"],`, 50) + `[2]]`, ""},
		{"unterminated", `[1,2,[3]`, "", "the end of the data list"},
		{"unterminated string", `["a]`, "", "the end of a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := scanner{b: []byte(tc.doc)}
			got, err := s.skipData()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("skipData(%q) error %v, want %q", tc.doc, err, tc.err)
				}
				return
			}
			if err != nil || string(got) != tc.want || s.i != len(tc.want) {
				t.Fatalf("skipData(%q) = %q at %d, %v; want %q at %d", tc.doc, got, s.i, err, tc.want, len(tc.want))
			}
		})
	}
}

// BenchmarkSkipData steps over 1 MB lists: numbers, strings (a BYTES
// tensor) and short lists. Each byte is searched once for ']' and once for
// '"' whatever the shape: a search that went on to the list's end for every
// string was quadratic (2.5 s for the strings' megabyte).
//
//	go test -run '^$' -bench SkipData ./internal/serving/oip/
func BenchmarkSkipData(b *testing.B) {
	for _, tc := range []struct{ name, doc string }{
		{"numbers", "[" + strings.Repeat(`-0.25392231576178065,`, 50000) + `1]`},
		{"strings", "[" + strings.Repeat(`"ab",`, 200000) + `"x"]`},
		{"lists", "[" + strings.Repeat(`[1,2],`, 200000) + `[3]]`},
	} {
		doc := []byte(tc.doc)
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				s := scanner{b: doc}
				if _, err := s.skipData(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
