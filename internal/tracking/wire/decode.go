package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/atrium-ml/atrium/internal/platform/jsonw"
)

// DefaultMaxBody bounds request bodies of endpoints that do not set their own limit.
const DefaultMaxBody = 8 << 20

// Decode fills dst, a pointer to a struct with json tags, from the request the
// way MLflow's server does: GET (and a DELETE without a body) take fields from
// the query string, where a slice field collects every repetition of its key;
// other methods take a JSON object body. Unknown fields are ignored; an empty
// body is an empty request. A body that is a JSON string holding the object
// (older clients double-encode) is decoded twice.
func Decode(r *http.Request, dst any) error {
	var data []byte
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		var err error
		if data, err = queryJSON(r, dst); err != nil {
			return err
		}
	} else {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				e := Invalidf("Request body is larger than the limit of %d bytes for %s.", mbe.Limit, r.URL.Path)
				e.cause = mbe
				return e
			}
			return Errorf(BadRequest, "read request body: %v", err)
		}
		data = bytes.TrimSpace(b)
		if len(data) == 0 && r.Method == http.MethodDelete && r.URL.RawQuery != "" {
			if data, err = queryJSON(r, dst); err != nil {
				return err
			}
		}
	}
	return unmarshal(data, dst)
}

// errNUL refuses text holding U+0000. PostgreSQL cannot store it in text
// columns and SQLite would, so without this rule a request's fate would depend
// on the engine; a NUL also truncates names in C-based tools and file systems.
var errNUL = Invalidf("Invalid value in the request: text may not contain NUL characters (\\u0000).")

// hasEscapedNUL reports whether JSON text holds the escape \u0000 (a raw NUL
// byte is not valid JSON, and the query-string path writes NUL as that escape
// too). An escape counts only after an even run of backslashes: in "\\u0000"
// the backslash is itself escaped.
func hasEscapedNUL(data []byte) bool {
	for off := 0; ; {
		i := bytes.Index(data[off:], []byte(`\u0000`))
		if i < 0 {
			return false
		}
		i += off
		n := 0
		for j := i - 1; j >= 0 && data[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return true
		}
		off = i + 1
	}
}

// CheckPath refuses a request path (after percent-decoding) that holds a NUL
// or bytes that are not UTF-8: path wildcards ({model_id}) reach the store as
// they are, and the engines disagree on such text (see errNUL).
func CheckPath(r *http.Request) error {
	if strings.IndexByte(r.URL.Path, 0) >= 0 {
		return errNUL
	}
	if !utf8.ValidString(r.URL.Path) {
		return Invalidf("Invalid request path %q: it is not valid UTF-8 once percent-decoded.", r.URL.EscapedPath())
	}
	return nil
}

func unmarshal(data []byte, dst any) error {
	if len(data) == 0 {
		return nil
	}
	if data[0] == '"' {
		var inner string
		if err := json.Unmarshal(data, &inner); err != nil {
			return Errorf(BadRequest, "Malformed JSON request body: %v", err)
		}
		data = bytes.TrimSpace([]byte(inner))
		if len(data) == 0 {
			return nil
		}
	}
	if data[0] != '{' {
		return Errorf(BadRequest, "Malformed JSON request body: expected a JSON object")
	}
	if hasEscapedNUL(data) {
		return errNUL
	}
	if err := json.Unmarshal(data, dst); err != nil {
		var te *json.UnmarshalTypeError
		var fe *fieldError
		switch {
		case errors.As(err, &fe):
			return Invalidf("Invalid value %s for parameter '%s' supplied: %s. See the API docs for more information about request parameters.", fe.value, locate(data, dst), fe.want)
		case errors.As(err, &te):
			field := te.Field
			if field == "" {
				field = "request"
			}
			return Invalidf("Invalid value for parameter '%s' supplied: expected %s, got JSON %s. See the API docs for more information about request parameters.", field, jsonTypeName(te.Type), te.Value)
		default:
			return Errorf(BadRequest, "Malformed JSON request body: %v", err)
		}
	}
	return nil
}

// locate names the top-level field of dst whose value in data fails to decode
// (custom unmarshalers' errors carry no field name). It runs only on the error path.
func locate(data []byte, dst any) string {
	var raw map[string]json.RawMessage
	if json.Unmarshal(data, &raw) != nil {
		return "request"
	}
	for _, f := range reflect.VisibleFields(reflect.TypeOf(dst).Elem()) {
		if f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		v, ok := raw[name]
		if !ok {
			continue
		}
		if json.Unmarshal(v, reflect.New(f.Type).Interface()) != nil {
			return name
		}
	}
	return "request"
}

func jsonTypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Bool:
		return "a boolean"
	default:
		return "a number"
	}
}

// fieldsOf caches, per struct type, which json field names are slices.
var fieldsOf sync.Map // reflect.Type -> map[string]bool

func sliceFields(t reflect.Type) map[string]bool {
	if m, ok := fieldsOf.Load(t); ok {
		return m.(map[string]bool)
	}
	m := map[string]bool{}
	// VisibleFields includes the fields of embedded structs, which encoding/json
	// promotes too.
	for _, f := range reflect.VisibleFields(t) {
		if f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		m[name] = f.Type.Kind() == reflect.Slice
	}
	fieldsOf.Store(t, m)
	return m
}

// queryJSON turns the query string into a JSON object using dst's fields to know
// which keys repeat. Values stay strings; the field types below accept strings.
func queryJSON(r *http.Request, dst any) ([]byte, error) {
	t := reflect.TypeOf(dst)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("wire.Decode: dst must be a pointer to a struct, got %s", t)
	}
	fields := sliceFields(t.Elem())
	// r.URL.Query() drops what it cannot parse (a bad %-escape, a ';', every
	// pair past net/url's 10,000-parameter limit) and the request would then
	// fail as if fields were missing: name the real problem instead.
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, Invalidf("Invalid query string: %v", err)
	}
	obj := make(map[string]any, len(q))
	for k, vs := range q {
		isSlice, known := fields[k]
		switch {
		case !known:
			continue
		case isSlice:
			obj[k] = vs
		default:
			obj[k] = vs[0]
		}
	}
	return json.Marshal(obj)
}

// fieldError reports a value a wire type could not accept.
type fieldError struct{ value, want string }

func (e *fieldError) Error() string { return fmt.Sprintf("invalid value %s: %s", e.value, e.want) }

// Int64 is an int64 that decodes from a JSON number or a string holding one
// (proto3 JSON writes int64 as strings; MLflow writes numbers). It encodes as a number.
// Use *Int64 when the presence of the field matters.
type Int64 int64

func (v *Int64) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	s = strings.Trim(s, `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// 1e3 and 1000.0 are integers too, as in protobuf's JSON parser.
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<63 {
			return &fieldError{value: string(b), want: "expected a 64-bit integer"}
		}
		n = int64(f)
	}
	*v = Int64(n)
	return nil
}

// Float is a float64 that decodes from a number or a string ("NaN", "Infinity",
// "-Infinity" or a decimal, as protobuf's JSON writes them) and encodes NaN and
// infinities as those strings.
type Float float64

func (v *Float) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	s = strings.Trim(s, `"`)
	var f float64
	switch s {
	case "NaN", "nan":
		f = math.NaN()
	case "Infinity", "inf", "Inf":
		f = math.Inf(1)
	case "-Infinity", "-inf", "-Inf":
		f = math.Inf(-1)
	default:
		var err error
		if f, err = strconv.ParseFloat(s, 64); err != nil {
			return &fieldError{value: string(b), want: "expected a number"}
		}
	}
	*v = Float(f)
	return nil
}

// MarshalJSON writes v as encoding/json writes a float64, and NaN and
// infinities as protobuf's JSON strings (jsonw.AppendProtoFloat).
func (v Float) MarshalJSON() ([]byte, error) { return jsonw.AppendProtoFloat(nil, float64(v)), nil }

// Bool decodes from a JSON boolean or the strings "true"/"false" (query strings).
type Bool bool

func (v *Bool) UnmarshalJSON(b []byte) error {
	switch strings.ToLower(strings.Trim(string(b), `"`)) {
	case "true":
		*v = true
	case "false", "null":
		*v = false
	default:
		return &fieldError{value: string(b), want: "expected 'true' or 'false'"}
	}
	return nil
}

// Enum holds a protobuf enum as sent: its name, or its number written as a
// decimal string. Resolve it with Name.
type Enum string

func (v *Enum) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = Enum(s)
		return nil
	}
	if _, err := strconv.Atoi(string(b)); err != nil {
		return &fieldError{value: string(b), want: "expected an enum name or number"}
	}
	*v = Enum(b)
	return nil
}

// Name resolves the enum against names, the enum's value names indexed by number
// (an empty string for unused numbers). ok is false for an unknown value.
func (v Enum) Name(names []string) (name string, ok bool) {
	if n, err := strconv.Atoi(string(v)); err == nil {
		if n >= 0 && n < len(names) && names[n] != "" {
			return names[n], true
		}
		return "", false
	}
	for _, nm := range names {
		if nm != "" && nm == string(v) {
			return nm, true
		}
	}
	return "", false
}

// Request decodes a request into a new T with Decode.
func Request[T any](r *http.Request) (*T, error) {
	v := new(T)
	return v, Decode(r, v)
}
