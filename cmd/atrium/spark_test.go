package main

import (
	"os"
	"strings"
	"testing"
)

// TestRunOnSpark runs `atrium run` with ATRIUM_COMPUTE pointing at a Spark
// Connect server: the same summary as the DuckDB run in TestApplyRunRuns, and
// `runs` records it. A compute URL of another scheme is refused by name.
func TestRunOnSpark(t *testing.T) {
	url := os.Getenv("ATRIUM_TEST_SPARK")
	if url == "" {
		t.Skip("ATRIUM_TEST_SPARK is unset: no Spark Connect server (.ci/spark.sh starts one)")
	}
	dir := exampleRepo(t)
	if code, out, errOut := atrium(t, "--repo", dir, "apply"); code != exitOK {
		t.Fatalf("apply = %d, %q, %q", code, out, errOut)
	}
	t.Setenv("ATRIUM_COMPUTE", "spark://"+strings.TrimPrefix(url, "sc://"))
	code, out, errOut := atrium(t, "--repo", dir, "run", "listing_engagement", "--start", "2024-01-01", "--end", "2024-01-05")
	if code != exitFailure || !strings.Contains(errOut, "stores.compute") || !strings.Contains(errOut, "sc://host:port") {
		t.Fatalf("run with a spark:// compute = %d, %q, %q; want it refused, naming stores.compute and sc://", code, out, errOut)
	}
	t.Setenv("ATRIUM_COMPUTE", url)
	code, out, errOut = atrium(t, "--repo", dir, "run", "listing_engagement", "--start", "2024-01-01", "--end", "2024-01-05")
	if code != exitOK || !strings.Contains(out, "listing_engagement 2024-01-01..2024-01-05 succeeded: 6 rows in, 9 rows out, 5 partitions") ||
		!strings.Contains(out, "check ok     ctr_7d: between [0, 1]") {
		t.Fatalf("run on Spark = %d, %q, %q", code, out, errOut)
	}
}
