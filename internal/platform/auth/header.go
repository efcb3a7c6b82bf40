package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atrium-ml/atrium/internal/platform/server"
)

// AuthorizeHeader is the guard's access check for a transport that is not a
// net/http route (the Open Inference Protocol's gRPC service, whose
// "authorization" metadata carries the same header): it authenticates the
// value of an Authorization header (Bearer token, or Basic with a user's
// password or a token) through the same cache and verification as Wrap, and
// checks that the principal holds p. An empty header is an anonymous caller:
// refused when the guard requires authentication, else an anonymous admin,
// as in Wrap.
//
// Errors: ErrUnauthenticated, ErrPermissionDenied (wrapped, naming the
// principal and p), or the store's error when credentials cannot be checked.
// The Host, Origin and content-type checks of Wrap are the browser's
// defences and do not apply.
func (g *Guard) AuthorizeHeader(ctx context.Context, header string, p server.Permission) (Principal, error) {
	// authenticate reads the header and the context from a request: a bare
	// one carrying both reuses it (and its cache) unchanged.
	r := (&http.Request{Header: http.Header{"Authorization": {header}}}).WithContext(ctx)
	pr, err := g.authenticate(r)
	if err != nil {
		return Principal{}, err
	}
	if !pr.Role.Allows(p) {
		return Principal{}, fmt.Errorf("%w: %s (role %s) lacks %s", ErrPermissionDenied, pr, pr.Role, p)
	}
	return pr, nil
}

// GRPCAuthorizer returns AuthorizeHeader for permission p with its errors as
// gRPC statuses: UNAUTHENTICATED, PERMISSION_DENIED, and UNAVAILABLE when the
// credential store does not answer (its words go to the guard's log). It is
// what a gRPC interceptor calls with the "authorization" metadata ("" when
// the call has none).
func (g *Guard) GRPCAuthorizer(p server.Permission) func(ctx context.Context, header string) error {
	return func(ctx context.Context, header string) error {
		_, err := g.AuthorizeHeader(ctx, header, p)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrUnauthenticated):
			return status.Error(codes.Unauthenticated, "authentication required: send metadata authorization: Bearer <token> or Basic (user name and password, or any user name and a token)")
		case errors.Is(err, ErrPermissionDenied):
			return status.Error(codes.PermissionDenied, "permission denied: "+err.Error())
		}
		g.opts.Logger.Error("authentication backend", "transport", "grpc", "err", err)
		return status.Error(codes.Unavailable, "credentials cannot be checked now; the server log has the cause")
	}
}
