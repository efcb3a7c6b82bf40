package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/platform/server"
)

// TestAuthorizeHeader: the header check of non-HTTP transports against a
// real store, with and without required authentication, and its gRPC
// statuses.
func TestAuthorizeHeader(t *testing.T) {
	ctx := context.Background()
	store := NewStore(metatest.SQLite(t, Schema))
	reader, _, err := store.CreateToken(ctx, "search", Reader, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetUser(ctx, "ana", Editor, "pw"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		required bool
		header   string
		perm     server.Permission
		who      string
		err      error
		code     codes.Code
	}{
		{"anonymous refused", true, "", server.Infer, "", ErrUnauthenticated, codes.Unauthenticated},
		{"anonymous allowed without auth", false, "", server.Infer, "anonymous:-", nil, codes.OK},
		{"bearer token", true, "Bearer " + reader, server.Infer, "token:search", nil, codes.OK},
		{"token as basic password", true, basic("x", reader), server.Infer, "token:search", nil, codes.OK},
		{"user password", true, basic("ana", "pw"), server.Infer, "user:ana", nil, codes.OK},
		{"wrong password", true, basic("ana", "nope"), server.Infer, "", ErrUnauthenticated, codes.Unauthenticated},
		{"unknown token", true, "Bearer atr_nope", server.Infer, "", ErrUnauthenticated, codes.Unauthenticated},
		{"wrong token even without auth", false, "Bearer atr_nope", server.Infer, "", ErrUnauthenticated, codes.Unauthenticated},
		{"reader lacks deploy", true, "Bearer " + reader, server.Deploy, "", ErrPermissionDenied, codes.PermissionDenied},
		{"unknown scheme", true, "Token " + reader, server.Infer, "", ErrUnauthenticated, codes.Unauthenticated},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewGuard(GuardOptions{Store: store, Required: tt.required})
			defer g.Close()
			p, err := g.AuthorizeHeader(ctx, tt.header, tt.perm)
			if !errors.Is(err, tt.err) || (tt.err == nil && !strings.HasPrefix(p.String(), tt.who)) {
				t.Errorf("principal %s, err %v; want %s, %v", p, err, tt.who, tt.err)
			}
			if got := status.Code(g.GRPCAuthorizer(tt.perm)(ctx, tt.header)); got != tt.code {
				t.Errorf("gRPC status %s, want %s", got, tt.code)
			}
		})
	}
}
