package spark_test

import (
	"os"
	"testing"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/data/offline/offlinetest"
	_ "github.com/atrium-ml/atrium/internal/data/offline/spark"
)

// sparkURL is the Spark Connect server the tests run on (.ci/spark.sh starts
// one); tests skip when it is unset.
func sparkURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("ATRIUM_TEST_SPARK")
	if u == "" {
		t.Skip("ATRIUM_TEST_SPARK is unset: no Spark Connect server (.ci/spark.sh starts one)")
	}
	return u
}

// TestConformance runs the offline-engine conformance suite with runs
// computed on Spark: every window golden and the rest of the contract.
func TestConformance(t *testing.T) {
	url := sparkURL(t)
	offlinetest.Run(t, func(t *testing.T, dir string, opts offline.Options) offline.Engine {
		opts.Compute = url
		e, err := duckdb.Open(t.Context(), dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		return e
	})
}
