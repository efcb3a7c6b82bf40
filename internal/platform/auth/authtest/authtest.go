// Package authtest builds the real access check for tests of what sits
// behind it: a guard requiring authentication over a store in a temporary
// SQLite database, and a token to pass it.
package authtest

import (
	"context"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/auth"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
)

// Guard returns a guard that requires authentication and a bearer token of
// role, valid for an hour; the guard is closed when the test ends.
func Guard(t testing.TB, role auth.Role) (*auth.Guard, string) {
	t.Helper()
	store := auth.NewStore(metatest.SQLite(t, auth.Schema))
	token, _, err := store.CreateToken(context.Background(), "test-"+string(role), role, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	g := auth.NewGuard(auth.GuardOptions{Store: store, Required: true})
	t.Cleanup(func() { g.Close() })
	return g, token
}
