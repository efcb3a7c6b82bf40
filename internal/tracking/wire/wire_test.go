package wire

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/platform/server"
)

type sample struct {
	Name   string   `json:"name"`
	IDs    []string `json:"ids"`
	N      Int64    `json:"n"`
	Opt    *Int64   `json:"opt"`
	F      Float    `json:"f"`
	B      Bool     `json:"b"`
	E      Enum     `json:"e"`
	Nested struct {
		K string `json:"k"`
	} `json:"nested"`
}

func TestDecodeQuery(t *testing.T) {
	r := httptest.NewRequest("GET", "/x?name=a&ids=1&ids=2&n=42&f=NaN&b=true&e=FINISHED&unknown=1", nil)
	var s sample
	if err := Decode(r, &s); err != nil {
		t.Fatal(err)
	}
	if s.Name != "a" || len(s.IDs) != 2 || s.N != 42 || !math.IsNaN(float64(s.F)) || !bool(s.B) || s.E != "FINISHED" || s.Opt != nil {
		t.Fatalf("decoded %+v", s)
	}
}

func TestDecodeBody(t *testing.T) {
	tests := []struct {
		body string
		ok   func(s sample) bool
	}{
		{`{"name":"a","n":"12","opt":0,"f":1.5,"e":3,"extra":{"x":1}}`, func(s sample) bool {
			return s.N == 12 && s.Opt != nil && *s.Opt == 0 && s.F == 1.5 && s.E == "3"
		}},
		{`{"n":1e3,"f":"-Infinity","b":"false"}`, func(s sample) bool { return s.N == 1000 && math.IsInf(float64(s.F), -1) && !bool(s.B) }},
		{`"{\"name\":\"double\"}"`, func(s sample) bool { return s.Name == "double" }},
		{``, func(s sample) bool { return s.Name == "" }},
	}
	for _, tt := range tests {
		var s sample
		r := httptest.NewRequest("POST", "/x", strings.NewReader(tt.body))
		if err := Decode(r, &s); err != nil || !tt.ok(s) {
			t.Errorf("Decode(%s) = %+v, %v", tt.body, s, err)
		}
	}
	// DELETE carries a body too.
	var s sample
	if err := Decode(httptest.NewRequest("DELETE", "/x", strings.NewReader(`{"name":"d"}`)), &s); err != nil || s.Name != "d" {
		t.Fatalf("DELETE body: %+v, %v", s, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ body, code, msg string }{
		{`{"n":"x"}`, "INVALID_PARAMETER_VALUE", "Invalid value \"x\" for parameter 'n' supplied: expected a 64-bit integer"},
		{`{"n":1.5}`, "INVALID_PARAMETER_VALUE", "for parameter 'n'"},
		{`{"f":"abc"}`, "INVALID_PARAMETER_VALUE", "for parameter 'f' supplied: expected a number"},
		{`{"b":"maybe"}`, "INVALID_PARAMETER_VALUE", "expected 'true' or 'false'"},
		{`{"name":1}`, "INVALID_PARAMETER_VALUE", "Invalid value for parameter 'name' supplied: expected a string"},
		{`{"ids":"a"}`, "INVALID_PARAMETER_VALUE", "for parameter 'ids' supplied: expected an array"},
		{`{"name":`, "BAD_REQUEST", "Malformed JSON"},
		{`[1]`, "BAD_REQUEST", "expected a JSON object"},
	}
	for _, tt := range tests {
		var s sample
		err := Decode(httptest.NewRequest("POST", "/x", strings.NewReader(tt.body)), &s)
		var we *Error
		if !errors.As(err, &we) || string(we.Code) != tt.code || !strings.Contains(we.Message, tt.msg) {
			t.Errorf("Decode(%s) error = %v, want %s containing %q", tt.body, err, tt.code, tt.msg)
		}
	}
}

func TestStatusMapping(t *testing.T) {
	for code, status := range map[Code]int{
		InvalidParameterValue: 400, BadRequest: 400, ResourceAlreadyExists: 400,
		ResourceDoesNotExist: 404, EndpointNotFound: 404, NotImplemented: 501, InternalError: 500, InvalidState: 500,
	} {
		if got := Status(code); got != status {
			t.Errorf("Status(%s) = %d, want %d", code, got, status)
		}
	}
	if !errors.Is(Invalidf("x"), ErrInvalid) || errors.Is(Invalidf("x"), ErrNotFound) {
		t.Fatal("errors.Is by code is wrong")
	}
}

func TestWriteErrorHidesNothingButCodes(t *testing.T) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/x", nil)
	WriteError(w, r, nil, NotFoundf("Run with id=%s not found", "abc"))
	var body map[string]string
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != http.StatusNotFound || body["error_code"] != "RESOURCE_DOES_NOT_EXIST" || body["message"] != "Run with id=abc not found" {
		t.Fatalf("WriteError = %d %v", w.Code, body)
	}
}

// TestErrorfBoundsEchoedInput: a message never repeats more than
// server.MaxEchoedBytes of one string argument (a client's name or id),
// whatever the call site formats; other arguments and short strings are
// left as they were, and the caller's arguments are not changed.
func TestErrorfBoundsEchoedInput(t *testing.T) {
	long := strings.Repeat("x", 500)
	args := []any{long, 7}
	for _, tt := range []struct {
		err  *Error
		want string
	}{
		{NotFoundf("Could not find experiment with name '%s'", long), "Could not find experiment with name '" + strings.Repeat("x", 64) + "... (500 bytes)'"},
		{Invalidf("Run with id=%s, step %d", args...), "Run with id=" + strings.Repeat("x", 64) + "... (500 bytes), step 7"},
		{Existsf("%q exists", "short"), `"short" exists`},
		{Errorf(BadRequest, "bad: %v", errors.New(long)), "bad: " + long},                 // not input: wrapped errors pass whole
		{Invalidf("'%s' supplied: %s", long[:3], Prose(long)), "'xxx' supplied: " + long}, // the server's words pass whole
	} {
		if tt.err.Message != tt.want {
			t.Errorf("message = %q, want %q", tt.err.Message, tt.want)
		}
	}
	if args[0] != long {
		t.Errorf("Invalidf changed its caller's arguments")
	}
}

func TestPageTokens(t *testing.T) {
	for _, n := range []int{0, 1, 50000} {
		got, err := DecodeOffset(EncodeOffset(n))
		if err != nil || got != n {
			t.Errorf("round trip %d = %d, %v", n, got, err)
		}
	}
	for _, bad := range []string{"!!", "bm90IGpzb24=", "e30=", "eyJvZmZzZXQiOiAtMX0="} { // not base64, not JSON, {}, offset -1
		if _, err := DecodeOffset(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("DecodeOffset(%q) error = %v, want INVALID_PARAMETER_VALUE", bad, err)
		}
	}
}

// TestFloatJSON: NaN and infinities as protobuf's JSON strings, finite
// values as encoding/json writes a float64 (1000000, not 1e+06).
func TestFloatJSON(t *testing.T) {
	b, _ := json.Marshal([]Float{Float(math.NaN()), Float(math.Inf(1)), Float(math.Inf(-1)), 0.25})
	if string(b) != `["NaN","Infinity","-Infinity",0.25]` {
		t.Fatalf("Float JSON = %s", b)
	}
	finite := []float64{0, 0.25, 1.0 / 3, 1e6, 1e20, 1e21, 1e-6, 1e-7, -math.MaxFloat64}
	fs := make([]Float, len(finite))
	for i, f := range finite {
		fs[i] = Float(f)
	}
	got, _ := json.Marshal(fs)
	want, _ := json.Marshal(finite)
	if string(got) != string(want) || string(got) != `[0,0.25,0.3333333333333333,1000000,100000000000000000000,1e+21,0.000001,1e-7,-1.7976931348623157e+308]` {
		t.Fatalf("Float JSON = %s, encoding/json writes %s", got, want)
	}
}

// appendFunc is a RawJSON written by a function.
type appendFunc func(b []byte) []byte

func (f appendFunc) AppendJSON(b []byte) []byte { return f(b) }

// TestServeRawJSON: RawJSON answers, appended to pooled buffers, and JSON
// answers, written as they are, each arrive whole and unmixed, however the
// sizes of consecutive answers differ (a buffer is reused after a larger or a
// smaller answer, or dropped when too large to keep).
func TestServeRawJSON(t *testing.T) {
	for i, n := range []int{10, 100_000, 3, maxPooledResp + 1, 7, 50_000, 0} {
		want := `{"v":"` + strings.Repeat(string(rune('a'+i)), n) + `"}`
		for _, resp := range []any{appendFunc(func(b []byte) []byte { return append(b, want...) }), JSON(want)} {
			h := Serve(slog.Default(), Route{Method: "GET", Path: "/x", Handler: func(*http.Request) (any, error) { return resp, nil }})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" || rec.Body.String() != want {
				t.Fatalf("answer %d (%T): status %d, type %q, %d bytes, want %d", i, resp, rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len(), len(want))
			}
		}
	}
}

// TestDecodeRefusesNUL checks that U+0000 is refused wherever text arrives (the
// engines disagree on it), and that an escaped backslash before "u0000" is
// ordinary text.
func TestDecodeRefusesNUL(t *testing.T) {
	tests := []struct {
		method, target, body string
		refused              bool
	}{
		{"POST", "/x", `{"name":"a\u0000b"}`, true},
		{"POST", "/x", `{"ids":["ok","\u0000"]}`, true},
		{"POST", "/x", `{"nested":{"k":"\u0000"}}`, true},
		{"POST", "/x", `{"name":"a\\\u0000"}`, true},     // backslash, then NUL
		{"POST", "/x", `"{\"name\":\"\\u0000\"}"`, true}, // double-encoded body
		{"POST", "/x", `{"name":"a\\u0000"}`, false},     // backslash, then "u0000"
		{"POST", "/x", `{"name":"\\\\u0000"}`, false},    // two backslashes, then "u0000"
		{"POST", "/x", `{"name":"\u00000"}`, true},       // NUL then '0'
		{"POST", "/x", `{"name":"u0000 \u0001"}`, false}, // other control characters pass
		{"GET", "/x?name=a%00b", "", true},
		{"GET", "/x?ids=a&ids=%00", "", true},
		{"GET", "/x?unknown=%00", "", false}, // unknown fields are ignored
		{"DELETE", "/x?name=%00", "", true},
	}
	for _, tt := range tests {
		var s sample
		err := Decode(httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body)), &s)
		switch {
		case tt.refused && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "NUL")):
			t.Errorf("%s %s %s: err = %v, want INVALID_PARAMETER_VALUE about NUL", tt.method, tt.target, tt.body, err)
		case !tt.refused && err != nil:
			t.Errorf("%s %s %s: %v", tt.method, tt.target, tt.body, err)
		}
	}
}

// TestServeRefusesBadPaths checks path wildcards: a NUL or bytes that are not
// UTF-8 never reach a handler.
func TestServeRefusesBadPaths(t *testing.T) {
	mux := http.NewServeMux()
	for _, rt := range Routes(slog.Default(), []Route{{Method: "GET", Path: "/things/{id}", Permission: server.Read, Handler: func(r *http.Request) (any, error) {
		return map[string]string{"id": r.PathValue("id")}, nil
	}}}) {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	for _, tt := range []struct {
		path string
		code int
	}{
		{"/api/2.0/mlflow/things/abc", 200},
		{"/api/2.0/mlflow/things/a%00b", 400},
		{"/api/2.0/mlflow/things/%FF", 400},
		{"/ajax-api/2.0/mlflow/things/%C3%28", 400},
	} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", tt.path, nil))
		if w.Code != tt.code || (tt.code == 400 && !strings.Contains(w.Body.String(), `"INVALID_PARAMETER_VALUE"`)) {
			t.Errorf("GET %s = %d %s, want %d", tt.path, w.Code, w.Body, tt.code)
		}
	}
}

// TestNotFoundAndWrongMethod checks the answers for paths no route serves: 404
// for an unknown path, 405 with Allow for a known path under another method.
func TestNotFoundAndWrongMethod(t *testing.T) {
	mux := http.NewServeMux()
	ok := func(*http.Request) (any, error) { return nil, nil }
	routes := Routes(slog.Default(), []Route{
		{Method: "POST", Path: "/runs/create", Permission: server.Edit, Handler: ok},
		{Method: "GET", Path: "/things/{id}", Permission: server.Read, Handler: ok},
		{Method: "PATCH", Path: "/things/{id}", Permission: server.Edit, Handler: ok},
	})
	for _, rt := range routes {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	for _, p := range Prefixes {
		mux.HandleFunc(p+"/", NotFound(routes))
	}
	for _, tt := range []struct {
		method, path string
		code         int
		allow        string
	}{
		{"POST", "/api/2.0/mlflow/runs/create", 200, ""},
		{"GET", "/api/2.0/mlflow/runs/create", 405, "POST"},
		{"DELETE", "/ajax-api/2.0/mlflow/things/7", 405, "GET, PATCH"},
		{"GET", "/api/2.0/mlflow/nope", 404, ""},
		{"POST", "/api/2.0/mlflow/things", 404, ""},
	} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, strings.NewReader("{}")))
		if w.Code != tt.code || w.Header().Get("Allow") != tt.allow {
			t.Errorf("%s %s = %d (Allow %q) %s, want %d (Allow %q)", tt.method, tt.path, w.Code, w.Header().Get("Allow"), w.Body, tt.code, tt.allow)
		}
		if tt.code != 200 && !strings.Contains(w.Body.String(), `"error_code":"ENDPOINT_NOT_FOUND"`) {
			t.Errorf("%s %s: body %s, want ENDPOINT_NOT_FOUND", tt.method, tt.path, w.Body)
		}
	}
}

// TestDecodeBadQuery checks that a query string net/url cannot parse whole is
// refused by name, not decoded partly into a request missing its fields.
func TestDecodeBadQuery(t *testing.T) {
	many := "name=a" + strings.Repeat("&x=1", 10000)
	for _, tt := range []struct{ query, msg string }{
		{"name=a&ids=%zz", "invalid URL escape"},
		{"name=a;ids=1", "semicolon"},
		{many, "exceeded limit"},
	} {
		var s sample
		err := Decode(httptest.NewRequest("GET", "/x?"+tt.query, nil), &s)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "Invalid query string") || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("query %.40s...: err = %v, want INVALID_PARAMETER_VALUE naming %q", tt.query, err, tt.msg)
		}
	}
	var s sample
	if err := Decode(httptest.NewRequest("GET", "/x?name=a"+strings.Repeat("&x=1", 9998), nil), &s); err != nil || s.Name != "a" {
		t.Fatalf("9,999 parameters: %+v, %v", s, err)
	}
}
