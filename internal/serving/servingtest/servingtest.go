// Package servingtest opens what serving's tests run on: a real tracking
// store and registry on SQLite and a filesystem artifact store, in temporary
// directories, as `atrium serve` composes them.
package servingtest

import (
	"context"
	"testing"

	"github.com/atrium-ml/atrium/internal/platform/artifact"
	"github.com/atrium-ml/atrium/internal/platform/artifact/fs"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/registry"
	"github.com/atrium-ml/atrium/internal/tracking"
)

// Stores are a test's tracking store, registry and artifact store.
type Stores struct {
	Tracking  *tracking.Store
	Registry  *registry.Store
	Artifacts artifact.Store
}

// Open opens fresh stores, closed when the test ends.
func Open(t testing.TB) Stores {
	t.Helper()
	ctx := context.Background()
	db := metatest.SQLite(t, tracking.Schema, registry.Schema)
	ts, err := tracking.New(ctx, db, tracking.Options{})
	if err != nil {
		t.Fatal(err)
	}
	arts, err := fs.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { arts.Close() })
	return Stores{Tracking: ts, Registry: registry.New(ts), Artifacts: arts}
}
