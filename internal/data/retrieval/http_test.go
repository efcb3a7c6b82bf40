package retrieval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/platform/server"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func testServer(t testing.TB, opts APIOptions) (*httptest.Server, *Online) {
	t.Helper()
	o := testOnline(t)
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	api := NewAPI(o, opts)
	// The server registers the API's metrics (it is a prometheus.Collector).
	srv := httptest.NewServer(server.New(server.Options{Logger: opts.Logger, Registry: prometheus.NewRegistry()}, api).Handler())
	t.Cleanup(srv.Close)
	return srv, o
}

func post(t testing.TB, srv *httptest.Server, path, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("POST %s: Content-Type %q", path, ct)
	}
	return resp.StatusCode, b
}

// checkError posts body and checks the status and the error message.
func checkError(t *testing.T, srv *httptest.Server, path, body string, code int, msg string) {
	t.Helper()
	got, resp := post(t, srv, path, body)
	var e struct{ Error string }
	if err := json.Unmarshal(resp, &e); err != nil {
		t.Fatalf("error body is not JSON: %s", resp)
	}
	if got != code || !strings.Contains(e.Error, msg) {
		t.Errorf("got %d %q, want %d containing %q", got, e.Error, code, msg)
	}
}

// feastResponse is Feast's GetOnlineFeaturesResponse JSON.
type feastResponse struct {
	Metadata struct {
		FeatureNames []string `json:"feature_names"`
	} `json:"metadata"`
	Results []struct {
		Values          []any    `json:"values"`
		Statuses        []string `json:"statuses"`
		EventTimestamps []string `json:"event_timestamps"`
	} `json:"results"`
}

// TestGetOnlineFeaturesGolden checks the exact response bytes of requests in
// testdata/get/*.request.json against *.response.json (-update rewrites them).
func TestGetOnlineFeaturesGolden(t *testing.T) {
	srv, _ := testServer(t, APIOptions{})
	files, err := filepath.Glob("testdata/get/*.request.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden requests: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".request.json")
		t.Run(name, func(t *testing.T) {
			req, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			code, body := post(t, srv, "/get-online-features", string(req))
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			var parsed feastResponse
			if err := json.Unmarshal(body, &parsed); err != nil {
				t.Fatalf("response is not JSON: %v\n%s", err, body)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, body, "", "  "); err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(f, ".request.json") + ".response.json"
			if *update {
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("response differs from %s:\n%s", golden, pretty.Bytes())
			}
			for i, r := range parsed.Results {
				n := len(r.Values)
				if len(r.Statuses) != n || len(r.EventTimestamps) != n {
					t.Errorf("result %d: %d values, %d statuses, %d timestamps", i, n, len(r.Statuses), len(r.EventTimestamps))
				}
			}
		})
	}
}

func TestGetOnlineFeaturesBadRequests(t *testing.T) {
	srv, _ := testServer(t, APIOptions{MaxBodyBytes: 4096})
	tests := []struct {
		name, body string
		code       int
		msg        string
	}{
		{"empty body", ``, 400, "empty body"},
		{"malformed JSON", `{"features": ["listing_profile:rent"], `, 400, "malformed JSON"},
		{"not an object", `[1,2]`, 400, "want"},
		{"features not a list", `{"features": "listing_profile:rent", "entities": {"listing_id": [1]}}`, 400, "features: want a list of strings"},
		{"no features", `{"entities": {"listing_id": [1]}}`, 400, "features: empty"},
		{"unknown feature", `{"features": ["listing_profile:area"], "entities": {"listing_id": [1]}}`, 404, `features[0]: unknown feature: "listing_profile:area"`},
		{"unknown service", `{"feature_service": "rankr", "entities": {"listing_id": [1]}}`, 404, `feature_service "rankr"`},
		{"empty service", `{"feature_service": "", "entities": {"listing_id": [1]}}`, 400, "feature_service: empty"},
		{"no entities", `{"features": ["listing_profile:rent"]}`, 400, "entities: empty; want one list of values per join key (listing_id (int64))"},
		{"entities not an object", `{"features": ["listing_profile:rent"], "entities": [1]}`, 400, "entities: want an object"},
		{"string for int key", `{"features": ["listing_profile:rent"], "entities": {"listing_id": [1, "2"]}}`, 400, `entities.listing_id[1]: want an integer (listing_id is an int64 join key), got the string "2"`},
		{"fraction for int key", `{"features": ["listing_profile:rent"], "entities": {"listing_id": [1.5]}}`, 400, `entities.listing_id[0]: want an integer, got 1.5`},
		{"number for string key", `{"features": ["user_profile:budget"], "entities": {"user_id": [7]}}`, 400, `entities.user_id[0]: want a string (user_id is a string join key), got 7`},
		{"null key", `{"features": ["user_profile:budget"], "entities": {"user_id": [null]}}`, 400, "entities.user_id[0]: null join key"},
		{"key column not a list", `{"features": ["user_profile:budget"], "entities": {"user_id": "u1"}}`, 400, "entities.user_id: want a list of values, got a string"},
		{"nested key", `{"features": ["user_profile:budget"], "entities": {"user_id": [["u1"]]}}`, 400, "entities.user_id[0]: want a single value, got a nested list"},
		{"ragged", `{"features": ["user_listing:views"], "entities": {"user_id": ["u1", "u2"], "listing_id": [1]}}`, 400, "every entity column needs one value per row"},
		{"missing key", `{"features": ["user_listing:views"], "entities": {"user_id": ["u1"]}}`, 400, "entities: missing join key listing_id"},
		{"unknown entity", `{"features": ["listing_profile:rent"], "entities": {"listing_id": [1], "listing": [1]}}`, 400, `entities: "listing" is not a join key`},
		{"collision", `{"features": ["listing_profile:rent", "listing_engagement:rent"], "entities": {"listing_id": [1]}}`, 400, "set full_feature_names"},
		{"mixed untyped key", `{"features": ["city_stats:listings"], "entities": {"city": ["paris", 7]}}`, 400, `entities.city[1]: want a string (city holds string values), got 7`},
		{"too large", `{"features": ["listing_profile:rent"], "entities": {"listing_id": [` + strings.Repeat("1,", 3000) + `1]}}`, 413, "larger than 4096 bytes"},
		{"request value of the wrong type", `{"features": ["match:boosted_ctr"], "entities": {"listing_id": [1], "user_id": ["u1"]}, "request_context": {"boost": ["x"]}}`, 400, "request_context.boost[0]: want a float64 value or null, got x"},
		{"request values not one per row", `{"features": ["match:boosted_ctr"], "entities": {"listing_id": [1], "user_id": ["u1"]}, "request_context": {"boost": [1, 2]}}`, 400, "request_context.boost has 2 values, want one per entity row (1)"},
		{"request value not a list", `{"features": ["match:boosted_ctr"], "entities": {"listing_id": [1], "user_id": ["u1"]}, "request_context": {"boost": 1}}`, 400, "request_context.boost: want a list of values"},
		{"request context not an object", `{"features": ["match:boosted_ctr"], "entities": {"listing_id": [1], "user_id": ["u1"]}, "request_context": [1]}`, 400, "request_context: want an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkError(t, srv, "/get-online-features", tt.body, tt.code, tt.msg)
		})
	}
}

func TestPush(t *testing.T) {
	srv, _ := testServer(t, APIOptions{})
	get := func() feastResponse {
		t.Helper()
		code, body := post(t, srv, "/get-online-features",
			`{"features": ["listing_profile:rent", "listing_profile:neighborhood"], "entities": {"listing_id": [1, 7]}}`)
		if code != 200 {
			t.Fatalf("get: %d %s", code, body)
		}
		var r feastResponse
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	// A fresh row for listing 7 and an update of listing 1, Feast's shape.
	code, body := post(t, srv, "/push", `{"push_source_name": "listing_profile", "to": "online", "df": {
		"listing_id": [7, 1], "event_timestamp": ["2026-11-20T11:30:00Z", "2026-11-20 11:45:00"],
		"rent": [700, 1600.5], "price_per_m2": [null, 30], "neighborhood": ["Wedding", "Mitte"]}}`)
	if code != 200 || !strings.Contains(string(body), `"rows":2`) {
		t.Fatalf("push: %d %s", code, body)
	}
	r := get()
	if got := r.Results[1].Values; got[0] != 1600.5 || got[1] != 700.0 {
		t.Errorf("rent after push: %v, want [1600.5 700]", got)
	}
	if got := r.Results[2].EventTimestamps; got[0] != "2026-11-20T11:45:00Z" || got[1] != "2026-11-20T11:30:00Z" {
		t.Errorf("event times after push: %v", got)
	}
	// An older row does not overwrite a newer one.
	code, body = post(t, srv, "/push", `{"feature_set": "listing_profile", "df": {
		"listing_id": [1], "timestamp": [1700000000], "rent": [1], "price_per_m2": [1], "neighborhood": ["old"]}}`)
	if code != 200 {
		t.Fatalf("push: %d %s", code, body)
	}
	if got := get().Results[2].Values[0]; got != "Mitte" {
		t.Errorf("an older pushed row overwrote a newer one: %v", got)
	}
}

func TestPushBadRequests(t *testing.T) {
	srv, _ := testServer(t, APIOptions{})
	full := func(df string) string { return `{"feature_set": "user_profile", "df": {` + df + `}}` }
	ok := `"user_id": ["u9"], "timestamp": ["2026-11-20T00:00:00Z"], "budget": [1.5], "active": [true], "signup": ["2026-01-01T00:00:00Z"]`
	tests := []struct {
		name, body string
		code       int
		msg        string
	}{
		{"malformed", `{"feature_set": `, 400, "push: malformed JSON"},
		{"no set", `{"df": {}}`, 400, "feature_set (or push_source_name): missing"},
		{"unknown set", `{"feature_set": "nope", "df": {}}`, 404, `feature_set "nope" is not defined`},
		{"two names", `{"feature_set": "user_profile", "push_source_name": "x", "df": {}}`, 400, "differ"},
		{"bad to", `{"feature_set": "user_profile", "to": "both", "df": {}}`, 400, "to: \"both\""},
		{"offline without store", `{"feature_set": "user_profile", "to": "online_and_offline", "df": {}}`, 501, "no offline store"},
		{"empty df", full(``), 400, "df: empty"},
		{"missing key", full(`"timestamp": ["2026-11-20T00:00:00Z"], "budget": [1.5], "active": [true], "signup": [null]`), 400, "missing join key column user_id"},
		{"missing time", full(`"user_id": ["u9"], "budget": [1.5], "active": [true], "signup": [null]`), 400, "missing the event-time column"},
		{"missing feature", full(`"user_id": ["u9"], "timestamp": ["2026-11-20T00:00:00Z"], "budget": [1.5], "signup": [null]`), 400, "missing column active"},
		{"unknown column", full(ok + `, "age": [3]`), 400, `unknown column "age"`},
		{"wrong type", full(strings.Replace(ok, `[true]`, `["yes"]`, 1)), 400, `df.active[0]: want true or false, got "yes"`},
		{"bad time", full(strings.Replace(ok, `["2026-11-20T00:00:00Z"]`, `["yesterday"]`, 1)), 400, `df.timestamp[0]: want a timestamp`},
		{"null time", full(strings.Replace(ok, `["2026-11-20T00:00:00Z"]`, `[null]`, 1)), 400, `df.timestamp[0]: null event time`},
		{"ragged", full(strings.Replace(ok, `[1.5]`, `[1.5, 2]`, 1)), 400, "every column needs one value per row"},
		{"string for number", full(strings.Replace(ok, `[1.5]`, `["1.5"]`, 1)), 400, `df.budget[0]: want a number, got "1.5"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkError(t, srv, "/push", tt.body, tt.code, tt.msg)
		})
	}
	// The valid frame of the table is accepted (so the failures above are the
	// ones their names say).
	if code, body := post(t, srv, "/push", full(ok)); code != 200 {
		t.Errorf("valid push: %d %s", code, body)
	}
}

func TestMetricsAndHealth(t *testing.T) {
	srv, _ := testServer(t, APIOptions{})
	post(t, srv, "/get-online-features", `{"features": ["listing_engagement:ctr_7d"], "entities": {"listing_id": [1, 2, 3]}}`)
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`atrium_online_lookups_total{result="found",set="listing_engagement"} 1`,
		`atrium_online_lookups_total{result="not_found",set="listing_engagement"} 1`,
		`atrium_online_lookups_total{result="outside_max_age",set="listing_engagement"} 1`,
		`atrium_online_feature_age_seconds_count{set="listing_engagement"} 2`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, path := range []string{"/health", "/readyz"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
}

func TestUntypedKeysAndKeyTypeRecording(t *testing.T) {
	db := metatest.SQLite(t, Schema)
	srv, _ := testServer(t, APIOptions{Meta: db})
	code, body := post(t, srv, "/push", `{"feature_set": "city_stats", "df": {"city": ["paris"], "timestamp": ["2026-11-20T00:00:00Z"], "listings": [12]}}`)
	if code != 200 {
		t.Fatalf("push: %d %s", code, body)
	}
	types, err := LoadKeyTypes(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if got := types["city_stats"]; len(got) != 1 || got[0] != KeyString {
		t.Errorf("recorded key types %v, want [string]", got)
	}
	code, body = post(t, srv, "/get-online-features", `{"features": ["city_stats:listings"], "entities": {"city": ["paris"]}}`)
	if code != 200 || !strings.Contains(string(body), `"values":[12]`) {
		t.Errorf("get by untyped key: %d %s", code, body)
	}
	// An integer key is a different key, not an error, while the type is unknown.
	code, body = post(t, srv, "/get-online-features", `{"features": ["city_stats:listings"], "entities": {"city": [7]}}`)
	if code != 200 || !strings.Contains(string(body), `"NOT_FOUND"`) {
		t.Errorf("get by an integer untyped key: %d %s", code, body)
	}
}

func TestDecodeGetRequest(t *testing.T) {
	tests := []struct {
		body     string
		features string
		service  string
		full     bool
		entities string // name=raw;...
	}{
		{`{"features":["a:b"],"entities":{"id":[1,2]}}`, `["a:b"]`, "", false, `id=[1,2];`},
		{" {\n \"request_context\": {\"x\": [1, {\"y\": \"}\"}]}, \"full_feature_names\" : true ,\n \"entities\": {\"k\\u0065y\": [\"a\\\"b\"], \"other\": []}, \"feature_service\": \"s\\u00e9\"}",
			"", "sé", true, `key=["a\"b"];other=[];`},
		{`{"features": null, "feature_service": null, "entities": null, "full_feature_names": null}`, "", "", false, ""},
		{`{"unknown": {"features": ["x:y"]}, "features": [ "p:q" , "r:s" ]}`, `[ "p:q" , "r:s" ]`, "", false, ""},
	}
	for _, tt := range tests {
		var d getRequest
		if err := decodeGetRequest([]byte(tt.body), &d); err != nil {
			t.Errorf("decode %s: %v", tt.body, err)
			continue
		}
		var ents strings.Builder
		for _, e := range d.entities {
			ents.WriteString(e.name + "=" + string(e.raw) + ";")
		}
		if string(d.features) != tt.features || d.service != tt.service || d.fullNames != tt.full || ents.String() != tt.entities {
			t.Errorf("decode %s:\n got features %s service %q full %v entities %s\nwant features %s service %q full %v entities %s",
				tt.body, d.features, d.service, d.fullNames, ents.String(), tt.features, tt.service, tt.full, tt.entities)
		}
	}
	for _, bad := range []string{`{"features": ["a:b"]`, `{"a": 1,}`, `{"features": "a:b"}`, `{"feature_service": 3}`, `{"full_feature_names": "yes"}`, `{"entities": [1]}`, `"x"`, `nul`} {
		var d getRequest
		if err := decodeGetRequest([]byte(bad), &d); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("decode %s: %v, want ErrInvalidRequest", bad, err)
		}
	}
}

func TestDuplicateEntityColumnLastWins(t *testing.T) {
	srv, _ := testServer(t, APIOptions{})
	code, body := post(t, srv, "/get-online-features", `{"features": ["listing_profile:rent"], "entities": {"listing_id": [1, 2], "listing_id": [2]}}`)
	if code != 200 || !strings.Contains(string(body), `{"values":[2],`) {
		t.Errorf("duplicate entity column: %d %s", code, body)
	}
}

// FuzzRequests checks that no body makes either route panic or answer 5xx:
// whatever a client sends is its mistake or a valid request.
// go test -run - -fuzz FuzzRequests ./internal/data/retrieval/
func FuzzRequests(f *testing.F) {
	o := testOnline(f)
	api := NewAPI(o, APIOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	mux := http.NewServeMux()
	for _, rt := range api.Routes() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	files, _ := filepath.Glob("testdata/get/*.request.json")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add("/get-online-features", string(b))
	}
	f.Add("/get-online-features", `{"features": ["city_stats:listings"], "entities": {"city": ["a", 1]}}`)
	f.Add("/get-online-features", `{"features": ["user_listing:views"], "entities": {"user_id": ["\ud800"], "listing_id": [1e400]}}`)
	f.Add("/push", `{"feature_set": "user_profile", "df": {"user_id": ["u"], "timestamp": [1e300], "budget": [1], "active": [true], "signup": ["2026-01-01"]}}`)
	f.Add("/push", `{"feature_set": "listing_profile", "df": {"listing_id": [1], "event_timestamp": ["2026-01-01T00:00:00Z"], "rent": [-0.0], "price_per_m2": [null], "neighborhood": ["\u0000"]}}`)
	f.Fuzz(func(t *testing.T, path, body string) {
		if path != "/push" {
			path = "/get-online-features"
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("POST", path, strings.NewReader(body)))
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q: %d %s", path, body, rec.Code, rec.Body)
		}
	})
}

// TestWriteToOnlineStore posts what Feast's remote online store sends when it
// materializes into a feature server.
func TestWriteToOnlineStore(t *testing.T) {
	srv, _ := testServer(t, APIOptions{})
	code, body := post(t, srv, "/write-to-online-store", `{"feature_view_name": "user_profile", "allow_registry_cache": false,
		"df": {"user_id": ["u7"], "budget": [950.5], "active": [false], "signup": [null],
		       "event_timestamp": ["2026-11-20T10:00:00"], "created": [null]}}`)
	if code != 200 {
		t.Fatalf("write-to-online-store: %d %s", code, body)
	}
	code, body = post(t, srv, "/get-online-features", `{"features": ["user_profile:budget", "user_profile:signup"], "entities": {"user_id": ["u7"]}}`)
	if code != 200 || !strings.Contains(string(body), `"values":[950.5],"statuses":["PRESENT"],"event_timestamps":["2026-11-20T10:00:00Z"]`) ||
		!strings.Contains(string(body), `"statuses":["NULL_VALUE"]`) {
		t.Errorf("after write-to-online-store: %d %s", code, body)
	}
	checkError(t, srv, "/write-to-online-store", `{"df": {}}`, 400, "feature_view_name: missing")
}

func TestMaterializeRouteErrors(t *testing.T) {
	srv, _ := testServer(t, APIOptions{})
	checkError(t, srv, "/materialize-incremental", `{"end_ts": "now"}`, 501, "no offline store to materialize from")

	o := testOnline(t)
	api := NewAPI(o, APIOptions{Materializer: &Materializer{Store: o.Store(), Meta: metatest.SQLite(t, Schema)}})
	srv2 := httptest.NewServer(server.New(server.Options{}, api).Handler())
	defer srv2.Close()
	checkError(t, srv2, "/materialize-incremental", `{"end_ts": "soon"}`, 400, `end_ts: "soon": want an RFC 3339 time`)
	checkError(t, srv2, "/materialize-incremental", `{"end_ts": "now", "feature_views": ["listing_profile", "nope"]}`, 404, `feature_views[1]: feature set "nope" is not defined`)
	checkError(t, srv2, "/materialize-incremental", `{"end_ts": 5}`, 400, "end_ts")
}

// TestServerErrorsHideTheirCause: a 5xx answer names the request id, never
// the store's error text, which goes to the log.
func TestServerErrorsHideTheirCause(t *testing.T) {
	srv, o := testServer(t, APIOptions{})
	if err := o.Store().Close(); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/get-online-features",
		strings.NewReader(`{"features": ["listing_profile:rent"], "entities": {"listing_id": [1]}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Request-Id", "probe-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "request id probe-1") ||
		strings.Contains(string(body), "closed") {
		t.Errorf("read of a closed store = %d %s; want 503 naming the request id, not the cause", resp.StatusCode, body)
	}
}
