package retrieval

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/online/pebble"
)

// benchAPI serves a set of 50 features (40 float64, 10 string) for 10,000 listings.
func benchAPI(b *testing.B) (*API, []string) {
	store, err := pebble.Open(filepath.Join(b.TempDir(), "online"), pebble.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	set := SetDef{Name: "listing_stats", JoinKeys: []JoinKeyDef{{"listing_id", KeyInt64}}, TTL: 24 * time.Hour}
	var names, refs []string
	for f := range 50 {
		kind := online.KindFloat64
		if f%5 == 4 {
			kind = online.KindString
		}
		name := fmt.Sprintf("f%02d", f)
		set.Features = append(set.Features, FeatureDef{name, kind})
		names = append(names, name)
		refs = append(refs, `"listing_stats:`+name+`"`)
	}
	rows := make([]online.Row, 10_000)
	for i := range rows {
		vals := make([]online.Value, 50)
		for f := range vals {
			if f%5 == 4 {
				vals[f] = online.String(fmt.Sprintf("category-%d", (i+f)%17))
			} else {
				vals[f] = online.Float64(float64(i*f) / 7)
			}
		}
		rows[i] = online.Row{Key: online.MustKey(int64(i)), TS: time.Now().Add(-time.Hour), Values: vals}
	}
	if err := store.Write(context.Background(), set.Name, names, rows); err != nil {
		b.Fatal(err)
	}
	o, err := NewOnline(store, Definitions{Sets: []SetDef{set}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	return NewAPI(o, APIOptions{}), refs
}

func benchmarkGet(b *testing.B, entities int) {
	api, refs := benchAPI(b)
	ids := make([]string, entities)
	for i := range ids {
		ids[i] = fmt.Sprint((i * 97) % 10_000)
	}
	body := `{"features": [` + strings.Join(refs, ",") + `], "entities": {"listing_id": [` + strings.Join(ids, ",") + `]}}`
	mux := http.NewServeMux()
	for _, rt := range api.Routes() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/get-online-features", strings.NewReader(body))
		mux.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}

// go test -run - -bench GetOnlineFeatures ./internal/data/retrieval/
func BenchmarkGetOnlineFeatures1x50(b *testing.B)   { benchmarkGet(b, 1) }
func BenchmarkGetOnlineFeatures100x50(b *testing.B) { benchmarkGet(b, 100) }

// BenchmarkGetOnlineFeaturesLoopback1x50 goes through a real loopback HTTP
// server and client: what a request costs end to end on one machine.
func BenchmarkGetOnlineFeaturesLoopback1x50(b *testing.B) {
	api, refs := benchAPI(b)
	mux := http.NewServeMux()
	for _, rt := range api.Routes() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	body := `{"features": [` + strings.Join(refs, ",") + `], "entities": {"listing_id": [42]}}`
	client := srv.Client()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := client.Post(srv.URL+"/get-online-features", "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.Status)
		}
	}
}

// BenchmarkDecodeGetRequest1x50 is the request decoding alone.
func BenchmarkDecodeGetRequest1x50(b *testing.B) {
	refs := make([]string, 50)
	for f := range refs {
		refs[f] = fmt.Sprintf(`"listing_stats:f%02d"`, f)
	}
	body := []byte(`{"features":[` + strings.Join(refs, ",") + `],"entities":{"listing_id":[4242]},"full_feature_names":false}`)
	var d getRequest
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := decodeGetRequest(body, &d); err != nil {
			b.Fatal(err)
		}
	}
}
