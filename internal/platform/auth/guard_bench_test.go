package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/platform/server"
)

// BenchmarkGuard is the guard's own cost per request, in process: the same
// route without a guard, and behind one with a bearer token (cached, as
// after a client's first request), or a password (cached; bcrypt runs once).
//
//	go test -run - -bench Guard ./internal/platform/auth/
func BenchmarkGuard(b *testing.B) {
	store := NewStore(metatest.SQLite(b, Schema))
	tok, _, err := store.CreateToken(context.Background(), "bench", Reader, 0)
	if err != nil {
		b.Fatal(err)
	}
	if err := store.SetUser(context.Background(), "ana", Reader, "pw"); err != nil {
		b.Fatal(err)
	}
	for _, tt := range []struct{ name, header string }{{"none", ""}, {"bearer", "Bearer " + tok}, {"basic-password", basic("ana", "pw")}} {
		b.Run(tt.name, func(b *testing.B) {
			opts := server.Options{}
			if tt.header != "" {
				g := NewGuard(GuardOptions{Store: store, Required: true, AllowedHosts: []string{"127.0.0.1"}})
				defer g.Close()
				opts.Guard = g
			}
			h := server.New(opts, testAPI{}).Handler()
			req := httptest.NewRequest("GET", "/things", nil)
			req.Host = "127.0.0.1:8080"
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}
