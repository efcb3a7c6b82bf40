package main

import (
	"reflect"
	"testing"

	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/spec"
)

// TestServerDefaultsMatch: the defaults atrium.yaml documents (spec) are
// the server's own defaults, so a project without a server block serves
// exactly as the server package documents.
func TestServerDefaultsMatch(t *testing.T) {
	p, err := spec.LoadProject(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	got := serverOptions(p, &env{})
	if len(got.Limits.Classes) == 0 {
		t.Error("no route classes")
	}
	got.Limits.Classes = nil
	// Not settings of atrium.yaml: the server's defaults apply.
	got.Limits.RetryAfter, got.Limits.StreamReserveBytes = server.DefaultLimits.RetryAfter, server.DefaultLimits.StreamReserveBytes
	if !reflect.DeepEqual(got.Limits, server.DefaultLimits) {
		t.Errorf("limits from atrium.yaml defaults:\n%+v\nserver defaults:\n%+v", got.Limits, server.DefaultLimits)
	}
	if got.StoreTimeout != spec.DefaultStoreTimeout {
		t.Errorf("store timeout %s", got.StoreTimeout)
	}
}
