package retrieval

import (
	"encoding/json"
	"strings"
	"testing"
)

// jsonCases are documents on both sides of the grammar's edges.
var jsonCases = []string{
	``, ` `, `{}`, ` {} `, `[]`, `[1,]`, `[,1]`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `{"a":1}}`, `{"a":[1,{"b":null}]}`,
	`0`, `-0`, `01`, `-`, `1.`, `.5`, `1.5e`, `1e+`, `1E-7`, `-12.5e+30`, `1x`, `2 3`,
	`true`, `tru`, `truex`, `false`, `null`, `nul`, `nulll`,
	`"a"`, `"a`, `"\"`, `"\\"`, `"\u00e9"`, `"\u00g9"`, `"\u12"`, `"\x"`, `"\/"`, "\"a\tb\"", "\"a\x7fb\"", "\"\xff\xfe\"",
	`{"features": ["a:b"], "entities": {"id": [1, 2]}}`, `{"features": ["a:b"], "entities": {"id": [1, 2]}`,
	"{\"a\":\n\t[ 1 ,\r 2 ] }", `[[[[[[]]]]]]`, `[[[[[[]]]]]`, `{"a":{"b":{"c":{}}}}`, `{"\u0061":1}`,
	strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth),
	strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1),
}

// checkWalker fails when the walker and json.Valid disagree about doc.
func checkWalker(t *testing.T, doc []byte) {
	t.Helper()
	w := jsonWalker{b: doc}
	w.value()
	if got, want := w.end(), json.Valid(doc); got != want {
		t.Errorf("walker says valid=%v, json.Valid says %v, for %.200q", got, want, doc)
	}
}

func TestJSONWalkerAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range jsonCases {
		checkWalker(t, []byte(c))
	}
}

// FuzzJSONWalker: the walker accepts exactly what encoding/json accepts.
// go test -run - -fuzz FuzzJSONWalker ./internal/data/retrieval/
func FuzzJSONWalker(f *testing.F) {
	for _, c := range jsonCases {
		if len(c) < 1000 {
			f.Add(c)
		}
	}
	f.Fuzz(func(t *testing.T, doc string) { checkWalker(t, []byte(doc)) })
}

// checkUnquote: whenever encoding/json decodes the string token `"` + inner +
// `"`, unquote decodes it to the same string; when encoding/json refuses it
// and inner holds no quote (so the token's bounds are the scanners'), unquote
// refuses it too.
func checkUnquote(t *testing.T, inner string) {
	t.Helper()
	tok := []byte(`"` + inner + `"`)
	got, ok := unquote(tok)
	var want string
	if err := json.Unmarshal(tok, &want); err != nil {
		if ok && !strings.Contains(inner, `"`) {
			t.Errorf("unquote(%q) = %q, encoding/json refuses it: %v", tok, got, err)
		}
		return
	}
	if !ok || got != want {
		t.Errorf("unquote(%q) = %q, %v; encoding/json decodes %q", tok, got, ok, want)
	}
}

// FuzzUnquote: see checkUnquote. The decoded string keys and values of both
// request decoders (get-online-features, push) go through unquote.
// go test -run - -fuzz FuzzUnquote ./internal/data/retrieval/
func FuzzUnquote(f *testing.F) {
	for _, c := range []string{``, `a`, `\"`, `\\`, `\u00e9`, `\u00g9`, `\ud83d\ude00`, `\ud83d`, `\x`, `\/`, "a\tb",
		"\xff\xfe", "é", `a\nb`, `\u0000`, "\x7f", `\`, `k\u0065y`} {
		f.Add(c)
	}
	f.Fuzz(checkUnquote)
}
