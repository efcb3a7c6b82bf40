package retrieval

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atrium-ml/atrium/internal/platform/auth"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/platform/server"
)

// BenchmarkGetOnlineFeaturesAuth1x50 is the cost of the auth layer on the
// 1 x 50 online read: the same API behind the whole server (request ids,
// metrics), once without a guard and once behind `atrium serve`'s guard
// requiring a bearer token (Host check, credential cache at its default), on
// a loopback HTTP server, with 1 client (latency) and 8 clients back to back
// (throughput). It reports req/s and the p99 latency of each; the two auth
// settings run next to each other, so that runs pair them under the same
// machine load.
//
//	go test -run - -bench GetOnlineFeaturesAuth1x50 -count 6 ./internal/data/retrieval/
func BenchmarkGetOnlineFeaturesAuth1x50(b *testing.B) {
	api, refs := benchAPI(b)
	store := auth.NewStore(metatest.SQLite(b, auth.Schema))
	token, _, err := store.CreateToken(context.Background(), "bench", auth.Reader, 0)
	if err != nil {
		b.Fatal(err)
	}
	body := `{"features": [` + strings.Join(refs, ",") + `], "entities": {"listing_id": [42]}}`
	for _, clients := range []int{1, 8} {
		for _, on := range []bool{false, true} {
			name := fmt.Sprintf("clients=%d/auth=off", clients)
			if on {
				name = fmt.Sprintf("clients=%d/auth=on", clients)
			}
			b.Run(name, func(b *testing.B) { benchAuth(b, api, store, token, body, clients, on) })
		}
	}
}

func benchAuth(b *testing.B, api *API, store *auth.Store, token, body string, clients int, on bool) {
	opts := server.Options{Registry: prometheus.NewRegistry()}
	header := ""
	if on {
		g := auth.NewGuard(auth.GuardOptions{Store: store, Required: true, AllowedHosts: []string{"127.0.0.1"}})
		defer g.Close()
		opts.Guard, header = g, "Bearer "+token
	}
	srv := httptest.NewServer(server.New(opts, api).Handler())
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	do := func() (time.Duration, error) {
		req, _ := http.NewRequest("POST", srv.URL+"/get-online-features", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return 0, fmt.Errorf("status %d", resp.StatusCode)
		}
		return time.Since(start), nil
	}
	var mu sync.Mutex
	var all []time.Duration
	b.ResetTimer()
	if clients == 1 {
		for b.Loop() {
			d, err := do()
			if err != nil {
				b.Fatal(err)
			}
			all = append(all, d)
		}
	} else {
		b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			var lat []time.Duration
			for pb.Next() {
				d, err := do()
				if err != nil {
					b.Error(err)
					return
				}
				lat = append(lat, d)
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		})
	}
	b.StopTimer()
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
