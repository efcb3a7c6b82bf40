package serving

import (
	"encoding/json"
	"testing"
)

// scalar reads every JSON value as encoding/json does, whether it takes
// the fast path for plain strings or not.
func TestScalarLikeEncodingJSON(t *testing.T) {
	for _, in := range []string{`"l1"`, `""`, `"Neukölln"`, `"a\"b"`, `"tab\there"`, `"\u00e9"`, "\"\xff\"", `"back\\slash"`,
		`12`, `-3`, `1.5`, `1e3`, `9223372036854775808`, `true`, `false`, `null`} {
		got, err := scalar(json.RawMessage(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		var want any
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		switch w := want.(type) {
		case float64:
			if n, ok := got.(int64); ok {
				if float64(n) != w {
					t.Errorf("%s: %v, encoding/json %v", in, got, w)
				}
				continue
			}
		}
		if got != want {
			t.Errorf("%s: %#v, encoding/json %#v", in, got, want)
		}
	}
}
