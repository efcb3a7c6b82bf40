package retrieval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/online/pebble"
	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/spec"
)

// pushFeatures is a catalog whose sets carry checks of every level and kind
// a push applies (and a set-level one it leaves to pipeline runs).
const pushFeatures = `
entities:
  - {name: listing, join_keys: [listing_id]}
sources:
  - {name: s, format: csv, path: s.csv, timestamp: ts}
feature_sets:
  - name: listing
    entity: listing
    source: s
    checks: [{row_count: {min: 1000}}]
    features:
      - {name: rent, type: float64, expr: rent, checks: [not_null, {between: [100, 100000]}]}
      - {name: rooms, type: int64, expr: rooms, checks: [{between: [1, 20], level: warn}]}
      - {name: city, type: string, expr: city, checks: [{in_set: [Berlin, Hamburg], mostly: 0.5}]}
`

// pushClock is the server's clock in these tests.
var pushClock = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

type pushEnv struct {
	srv   *httptest.Server
	store *pebble.Store
	eng   offline.Engine
}

// pushServer serves the online API over a real Pebble store and a real DuckDB
// offline store, with the definitions `atrium serve` derives from pushFeatures.
func pushServer(t *testing.T, opts APIOptions) *pushEnv {
	t.Helper()
	ctx := context.Background()
	f, err := spec.ParseFeatures("features.yaml", []byte(pushFeatures))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := duckdb.Open(ctx, t.TempDir(), offline.Options{Features: f})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	store, err := pebble.Open(filepath.Join(t.TempDir(), "online"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	defs, err := DefinitionsFromSpec(f, map[string][]KeyType{"listing": {KeyInt64}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(defs.Sets[0].Checks); n != 4 {
		t.Fatalf("definitions carry %d checks, want the features' 4", n)
	}
	o, err := NewOnline(store, defs, Options{Now: func() time.Time { return pushClock }})
	if err != nil {
		t.Fatal(err)
	}
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	opts.Offline = eng
	opts.Now = func() time.Time { return pushClock }
	api := NewAPI(o, opts)
	srv := httptest.NewServer(server.New(server.Options{Logger: opts.Logger, Registry: prometheus.NewRegistry()}, api).Handler())
	t.Cleanup(srv.Close)
	return &pushEnv{srv: srv, store: store, eng: eng}
}

// pushBody is a push of listing rows: ids, event times and features, to dest.
func pushBody(to string, ids []int, ts []time.Time, rent []string, rooms []int, city []string) string {
	times := make([]string, len(ts))
	for i, t := range ts {
		times[i] = `"` + t.Format(time.RFC3339Nano) + `"`
	}
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	return fmt.Sprintf(`{"feature_set": "listing", "to": %q, "df": {"listing_id": %s, "timestamp": [%s], "rent": [%s], "rooms": %s, "city": %s}}`,
		to, js(ids), strings.Join(times, ", "), strings.Join(rent, ", "), js(rooms), js(city))
}

// onlineRent reads listing id's rent from the store: found, and its value.
func (e *pushEnv) onlineRent(t *testing.T, id int) (bool, online.Value, time.Time) {
	t.Helper()
	res := make([]online.Result, 1)
	if err := e.store.Read(context.Background(), []online.Query{{Set: "listing", Features: []string{"rent"}, Keys: []online.Key{online.MustKey(int64(id))}}}, res); err != nil {
		t.Fatal(err)
	}
	return res[0].Found[0], res[0].Values[0], res[0].TS[0]
}

// offlineRows counts the rows of the historical store.
func (e *pushEnv) offlineRows(t *testing.T) int {
	t.Helper()
	n := 0
	err := e.eng.ScanLatest(context.Background(), "listing", time.Time{}, pushClock.Add(100*365*24*time.Hour), func(rows []offline.LatestRow) error {
		n += len(rows)
		return nil
	})
	if err != nil && !errors.Is(err, offline.ErrNoData) {
		t.Fatal(err)
	}
	return n
}

func TestPushRefusesFutureRows(t *testing.T) {
	at := func(d time.Duration) []time.Time { return []time.Time{pushClock.Add(-time.Hour), pushClock.Add(d)} }
	ok := func(d time.Duration) string {
		return pushBody("online_and_offline", []int{1, 2}, at(d), []string{"500", "600"}, []int{2, 3}, []string{"Berlin", "Berlin"})
	}
	tests := []struct {
		name string
		skew time.Duration
		body string
		code int
		msg  string // in the error, or empty for success
	}{
		{"in 2260", 0, ok(time.Date(2260, 1, 1, 0, 0, 0, 0, time.UTC).Sub(pushClock)), 400, "row 1: event time 2260-01-01T"},
		{"past the default skew", 0, ok(5*time.Minute + time.Nanosecond), 400, "row 1: event time 2026-06-01T12:05:00.000000001Z is later than the server's clock plus 5m0s"},
		{"at the default skew", 0, ok(5 * time.Minute), 200, ""},
		{"a configured skew", time.Hour, ok(59 * time.Minute), 200, ""},
		{"past a configured skew", time.Hour, ok(61 * time.Minute), 400, "plus 1h0m0s"},
		{"no skew at all", -1, ok(time.Nanosecond), 400, "plus 0s"},
		{"no skew, at the clock", -1, ok(0), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := pushServer(t, APIOptions{PushMaxSkew: tt.skew})
			if tt.msg != "" {
				checkError(t, e.srv, "/push", tt.body, tt.code, tt.msg)
				// Refused whole: neither destination has any row.
				if found, _, _ := e.onlineRent(t, 1); found {
					t.Error("a refused push wrote to the online store")
				}
				if n := e.offlineRows(t); n != 0 {
					t.Errorf("a refused push wrote %d rows to the offline store", n)
				}
				return
			}
			if code, body := post(t, e.srv, "/push", tt.body); code != tt.code {
				t.Fatalf("push: %d %s", code, body)
			}
			if found, v, _ := e.onlineRent(t, 2); !found || v.Float64() != 600 {
				t.Errorf("listing 2 after push: found %v rent %s", found, v)
			}
		})
	}
}

func TestPushAppliesChecks(t *testing.T) {
	ts := func(n int) []time.Time {
		out := make([]time.Time, n)
		for i := range out {
			out[i] = pushClock.Add(-time.Duration(n-i) * time.Minute)
		}
		return out
	}
	tests := []struct {
		name     string
		body     func(to string) string
		msg      string // the refusal, or "" when written
		warnings []string
	}{
		{"all pass", func(to string) string {
			return pushBody(to, []int{1, 2}, ts(2), []string{"500", "100000"}, []int{1, 20}, []string{"Berlin", "Hamburg"})
		}, "", nil},
		{"null rent", func(to string) string {
			return pushBody(to, []int{1, 2}, ts(2), []string{"500", "null"}, []int{1, 2}, []string{"Berlin", "Berlin"})
		}, "row 1: feature rent = null fails not_null (1 of 2 rows fail)", nil},
		{"rent out of range", func(to string) string {
			return pushBody(to, []int{1, 2, 3}, ts(3), []string{"500", "99", "1e9"}, []int{1, 2, 3}, []string{"Berlin", "Berlin", "Berlin"})
		}, "row 1: feature rent = 99 fails between [100, 100000] (2 of 3 rows fail)", nil},
		{"a between check skips nulls but not_null does not", func(to string) string {
			return pushBody(to, []int{1}, ts(1), []string{"null"}, []int{1}, []string{"Berlin"})
		}, "feature rent = null fails not_null", nil},
		{"in_set within mostly", func(to string) string {
			return pushBody(to, []int{1, 2}, ts(2), []string{"500", "600"}, []int{1, 2}, []string{"Berlin", "Paris"})
		}, "", nil},
		{"in_set below mostly", func(to string) string {
			return pushBody(to, []int{1, 2, 3}, ts(3), []string{"500", "600", "700"}, []int{1, 2, 3}, []string{"Paris", "Berlin", "Rome"})
		}, `row 0: feature city = "Paris" fails in_set [Berlin Hamburg] mostly 0.5 (2 of 3 rows fail)`, nil},
		{"a warn check is written and reported", func(to string) string {
			return pushBody(to, []int{1, 2}, ts(2), []string{"500", "600"}, []int{1, 50}, []string{"Berlin", "Berlin"})
		}, "", []string{"row 1: feature rooms = 50 fails between [1, 20] (1 of 2 rows fail)"}},
		{"a long value is not echoed whole", func(to string) string {
			return pushBody(to, []int{1}, ts(1), []string{"500"}, []int{1}, []string{strings.Repeat("x", 10000)})
		}, `feature city = "` + strings.Repeat("x", 63) + `...`, nil},
	}
	for _, to := range []string{"online", "offline", "online_and_offline"} {
		for _, tt := range tests {
			t.Run(to+"/"+tt.name, func(t *testing.T) {
				e := pushServer(t, APIOptions{})
				body := tt.body(to)
				if tt.msg != "" {
					checkError(t, e.srv, "/push", body, http.StatusUnprocessableEntity, tt.msg)
					if found, _, _ := e.onlineRent(t, 1); found {
						t.Error("a refused push wrote to the online store")
					}
					if n := e.offlineRows(t); n != 0 {
						t.Errorf("a refused push wrote %d rows to the offline store", n)
					}
					return
				}
				code, resp := post(t, e.srv, "/push", body)
				var out struct {
					Rows     int
					Warnings []string
				}
				if err := json.Unmarshal(resp, &out); err != nil || code != 200 {
					t.Fatalf("push: %d %s", code, resp)
				}
				if strings.Join(out.Warnings, "|") != strings.Join(tt.warnings, "|") {
					t.Errorf("warnings %q, want %q", out.Warnings, tt.warnings)
				}
				found, _, _ := e.onlineRent(t, 1)
				if wantOnline := to != "offline"; found != wantOnline {
					t.Errorf("online store has listing 1: %v, want %v", found, wantOnline)
				}
				wantOffline := 0
				if to != "online" {
					wantOffline = out.Rows
				}
				if n := e.offlineRows(t); n != wantOffline {
					t.Errorf("offline store has %d rows, want %d", n, wantOffline)
				}
			})
		}
	}
}

func TestPushCheckMetrics(t *testing.T) {
	e := pushServer(t, APIOptions{})
	ts := []time.Time{pushClock.Add(-time.Minute)}
	for _, b := range []string{
		pushBody("online", []int{1}, ts, []string{"500"}, []int{99}, []string{"Berlin"}), // warn
		pushBody("online", []int{1}, ts, []string{"500"}, []int{99}, []string{"Berlin"}), // warn
		pushBody("online", []int{1}, ts, []string{"5"}, []int{1}, []string{"Berlin"}),    // error
	} {
		post(t, e.srv, "/push", b)
	}
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`atrium_push_check_failures_total{check="between [1, 20]",column="rooms",level="warn",set="listing"} 2`,
		`atrium_push_check_failures_total{check="between [100, 100000]",column="rent",level="error",set="listing"} 1`,
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestDeleteOnline(t *testing.T) {
	e := pushServer(t, APIOptions{})
	future := pushClock.Add(4 * time.Minute) // within the skew
	push := func(id int, ts time.Time, rent string) {
		t.Helper()
		if code, body := post(t, e.srv, "/push", pushBody("online", []int{id}, []time.Time{ts}, []string{rent}, []int{1}, []string{"Berlin"})); code != 200 {
			t.Fatalf("push: %d %s", code, body)
		}
	}
	push(1, future, "900")
	push(2, pushClock.Add(-time.Hour), "800")

	code, body := post(t, e.srv, "/delete-online", `{"feature_set": "listing", "entities": {"listing_id": [1, 3]}}`)
	if code != 200 || !strings.Contains(string(body), `"deleted":2`) || !strings.Contains(string(body), `"timestamp":"2026-06-01T12:00:00Z"`) {
		t.Fatalf("delete: %d %s", code, body)
	}
	if found, v, _ := e.onlineRent(t, 1); found {
		t.Fatalf("listing 1 after delete: %s, want not found", v)
	}
	if found, _, _ := e.onlineRent(t, 2); !found {
		t.Fatal("listing 2 was deleted too")
	}
	// Through the feature server, a deleted key is NOT_FOUND.
	code, body = post(t, e.srv, "/get-online-features", `{"features": ["listing:rent"], "entities": {"listing_id": [1]}}`)
	if code != 200 || !strings.Contains(string(body), `"NOT_FOUND"`) {
		t.Errorf("get after delete: %d %s", code, body)
	}
	// A row at or before the delete does not resurrect the key; a newer one does.
	push(1, pushClock.Add(-time.Minute), "700")
	push(1, pushClock, "701")
	if found, v, _ := e.onlineRent(t, 1); found {
		t.Fatalf("listing 1 resurrected by an older push: %s", v)
	}
	push(1, pushClock.Add(time.Second), "702")
	if found, v, _ := e.onlineRent(t, 1); !found || v.Float64() != 702 {
		t.Fatalf("listing 1 after a newer push: found %v %s, want 702", found, v)
	}
	// An explicit time.
	code, body = post(t, e.srv, "/delete-online", `{"feature_set": "listing", "entities": {"listing_id": [1]}, "timestamp": "2026-06-01T12:02:00Z"}`)
	if code != 200 {
		t.Fatalf("delete: %d %s", code, body)
	}
	push(1, pushClock.Add(time.Minute), "703")
	if found, v, _ := e.onlineRent(t, 1); found {
		t.Fatalf("listing 1 resurrected by a push before the delete's time: %s", v)
	}

	tests := []struct {
		name, body string
		code       int
		msg        string
	}{
		{"malformed", `{"feature_set": `, 400, "delete-online: malformed JSON"},
		{"no set", `{"entities": {"listing_id": [1]}}`, 400, "feature_set: missing"},
		{"unknown set", `{"feature_set": "nope", "entities": {"listing_id": [1]}}`, 404, `feature_set "nope" is not defined`},
		{"no keys", `{"feature_set": "listing", "entities": {"listing_id": []}}`, 400, "no keys to delete"},
		{"missing key column", `{"feature_set": "listing", "entities": {}}`, 400, "missing join key column listing_id"},
		{"unknown column", `{"feature_set": "listing", "entities": {"listing_id": [1], "x": [2]}}`, 400, `"x" is not a join key`},
		{"wrong key type", `{"feature_set": "listing", "entities": {"listing_id": ["a"]}}`, 400, "entities.listing_id[0]"},
		{"bad time", `{"feature_set": "listing", "entities": {"listing_id": [1]}, "timestamp": "soon"}`, 400, "timestamp: want a timestamp"},
		{"a tombstone in the future", `{"feature_set": "listing", "entities": {"listing_id": [1]}, "timestamp": "2260-01-01T00:00:00Z"}`, 400, "later than the server's clock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkError(t, e.srv, "/delete-online", tt.body, tt.code, tt.msg) })
	}
}
