package serving

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// decoderOf is a decoder at the start of in.
func decoderOf(in string) *jsontext.Decoder {
	return jsontext.NewDecoder(strings.NewReader(in))
}

// readScalar reads every JSON value as encoding/json does (whole numbers
// that fit as int64).
func TestScalarLikeEncodingJSON(t *testing.T) {
	for _, in := range []string{`"l1"`, `""`, `"Neukölln"`, `"a\"b"`, `"tab\there"`, `"\u00e9"`, `"back\\slash"`,
		`12`, `-3`, `1.5`, `1e3`, `9223372036854775808`, `true`, `false`, `null`} {
		got, err := readScalar(decoderOf(in))
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

// A list longer than max_candidates is refused, its values past the limit
// counted, not kept: the heap a long list costs stays far below the
// body's size.
func TestColumnsRefuseLongListCheaply(t *testing.T) {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range 4 << 20 { // an 8 MiB list
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('7')
	}
	b.WriteByte(']')
	body := `{"id": ` + b.String() + `}`
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := readColumns(decoderOf(body), "candidates", false, 1000)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooMany) || !strings.Contains(err.Error(), "candidates.id has 4194304 values") || !strings.Contains(err.Error(), "serving.max_candidates") {
		t.Fatalf("err = %v", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("refusing an 8 MiB list allocated %d bytes", alloc)
	}
}

// readColumns splits a list into its values whatever the strings between its
// commas and brackets hold, and names the element that is not a value.
func TestColumnsSplitLists(t *testing.T) {
	for _, tc := range []struct {
		list string
		want []any
		says string
	}{
		{`[]`, []any{}, ""},
		{` [ ] `, []any{}, ""},
		{`[1, 2.5, "a", null, true]`, []any{int64(1), 2.5, "a", nil, true}, ""},
		{`["a,b", "c]d", "e\"],[f", "g\\"]`, []any{"a,b", "c]d", `e"],[f`, `g\`}, ""},
		{`[ "x" , {"k": [1, 2]} ]`, nil, "features.v[1]"},
		{`[1, [2, 3]]`, nil, "features.v[1]"},
	} {
		cols, err := readColumns(decoderOf(`{"v": `+tc.list+`}`), "features", true, 10)
		if tc.says != "" {
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("%s: err = %v, want %q", tc.list, err, tc.says)
			}
			continue
		}
		if err != nil || cols["v"].Broadcast || fmt.Sprint(cols["v"].Values) != fmt.Sprint(tc.want) || len(cols["v"].Values) != len(tc.want) {
			t.Fatalf("%s: %#v %v, want %#v", tc.list, cols["v"].Values, err, tc.want)
		}
	}
}

// Whatever the body, decoding it as rank's fails only with a request error
// (a 4xx), never one the server would answer 500 to, and never panics.
func FuzzReadRankBody(f *testing.F) {
	for _, seed := range []string{
		`{"context": {"user_id": "u1"}, "candidates": {"listing_id": ["l1", "l2"]}, "features": {"promo": 1}, "top_k": 2}`,
		`{"context": nul}`, `{"candidates": {"id": [1, [2]]}}`, `{"top_k": 1e400}`, `{"version": {}}`,
		`{"a": 1, "a": 2}`, "{\"context\": {\"k\": \"\xff\"}}", `[`, `{} {}`, `{"features": {"x": [1,2,3,4]}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/v1/models/m/rank", bytes.NewReader(body))
		err := readBody(r, func(dec *jsontext.Decoder, name string) (bool, error) {
			var err error
			switch name {
			case "context":
				_, err = readContext(dec)
			case "candidates":
				_, err = readColumns(dec, name, false, 3)
			case "features":
				_, err = readColumns(dec, name, true, 3)
			case "top_k":
				_, err = readInt(dec, name)
			case "version":
				_, err = readString(dec, name)
			case "return_features":
				_, err = readBool(dec, name)
			default:
				return false, nil
			}
			return true, err
		})
		if err != nil && !errors.Is(err, ErrInvalidInput) && !errors.Is(err, ErrTooMany) {
			t.Fatalf("%q: %v is not a request error", body, err)
		}
	})
}
