package duckdb_test

import (
	"os"
	"testing"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/data/offline/offlinetest"
)

// TestConformance runs the offline-engine conformance suite (window and
// point-in-time golden cases, the contract of offline.Engine) on DuckDB.
func TestConformance(t *testing.T) {
	offlinetest.Run(t, func(t *testing.T, dir string, opts offline.Options) offline.Engine {
		e, err := duckdb.Open(t.Context(), dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		return e
	})
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
