package spark

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/data/offline/offlinetest"
	"github.com/atrium-ml/atrium/internal/data/pipeline"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/spec"
)

// startServer starts a Spark Connect server of the test's own (the shared
// one must outlive it) and returns its URL and a function that kills it.
// It skips without ATRIUM_TEST_SPARK_HOME and ATRIUM_TEST_SPARK_CONNECT_JAR
// (.ci/spark.sh exports them).
func startServer(t *testing.T) (url string, kill func()) {
	home, jar := os.Getenv("ATRIUM_TEST_SPARK_HOME"), os.Getenv("ATRIUM_TEST_SPARK_CONNECT_JAR")
	if home == "" || jar == "" {
		t.Skip("ATRIUM_TEST_SPARK_HOME or ATRIUM_TEST_SPARK_CONNECT_JAR is unset: cannot start a Spark Connect server to kill (.ci/spark.sh exports them)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(filepath.Join(home, "bin", "spark-submit"),
		"--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
		"--master", "local[1]", "--driver-memory", "512m", "--jars", jar,
		"--conf", fmt.Sprintf("spark.connect.grpc.binding.port=%d", port),
		"--conf", "spark.ui.enabled=false", "--conf", "spark.sql.session.timeZone=UTC",
		"spark-internal")
	cmd.Env = append(os.Environ(), "SPARK_HOME="+home)
	logFile := filepath.Join(t.TempDir(), "spark.log")
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: spark-submit runs the JVM as a child.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	kill = func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	t.Cleanup(kill)
	// Readiness: the gRPC port accepts connections (a JVM start-up on a busy
	// machine takes seconds to a minute; this is a wait, not an assertion).
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			b, _ := os.ReadFile(logFile)
			t.Fatalf("the Spark Connect server exited before listening:\n%s", b)
		case <-t.Context().Done():
			t.Fatal("test cancelled while waiting for Spark Connect")
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Sprintf("sc://127.0.0.1:%d", port), kill
}

const faultFeatures = `entities: [{name: item, join_keys: [id]}]
sources: [{name: src, format: csv, path: src.csv, timestamp: ts}]
feature_sets:
  - name: items
    entity: item
    source: src
    features:
      - {name: v, type: int64, expr: v}
`

// openFaultEngine opens a DuckDB engine over store with faultFeatures (the
// sources under dir) and url as its compute; the test closes it.
func openFaultEngine(t *testing.T, url, dir, store string) (*spec.Features, *duckdb.Engine) {
	t.Helper()
	feats, err := spec.ParseFeatures("features.yaml", []byte(faultFeatures))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := duckdb.Open(t.Context(), store, offline.Options{Features: feats, BaseDir: dir, Compute: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return feats, eng
}

// TestServerKilledMidRun kills the Spark Connect server after it has read
// the source and before it writes the output: the run is recorded as
// failed, nothing is published, the previous partition stays readable with
// its rows, and the run's staging directory is gone.
func TestServerKilledMidRun(t *testing.T) {
	url, kill := startServer(t)
	ctx := t.Context()
	dir, store := t.TempDir(), t.TempDir()
	src := filepath.Join(dir, "src.csv")
	write := func(v int) {
		t.Helper()
		data := fmt.Sprintf("id,ts,v\n1,2024-01-01 01:00:00,%d\n2,2024-01-01 02:00:00,%d\n", v, v+1)
		if err := os.WriteFile(src, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, eng := openFaultEngine(t, url, dir, store)
	db := metatest.SQLite(t, pipeline.Schema)
	day, _ := offline.ParseDate("2024-01-01")
	req := offline.RunRequest{Set: "items", Start: day, End: day}
	stored := func() []string {
		t.Helper()
		return offlinetest.Lines(t, fmt.Sprintf("SELECT id, timestamp, v FROM read_parquet('%s') ORDER BY id",
			filepath.Join(store, "set=items", "date=2024-01-01", "*.parquet")))
	}

	write(5)
	r, err := pipeline.Execute(ctx, db, eng, req, 1)
	if err != nil || r.Status != pipeline.StatusSucceeded {
		t.Fatalf("first run: %+v, %v", r, err)
	}
	want := []string{"id,timestamp,v", "1,2024-01-01 01:00:00,5", "2,2024-01-01 02:00:00,6"}
	if got := stored(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after the first run the partition holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	write(7)
	killed := false
	testHookBeforeWrite = func() { kill(); killed = true }
	defer func() { testHookBeforeWrite = nil }()
	runCtx, cancel := context.WithTimeout(ctx, 2*time.Minute) // a hung client would fail the test, not hang it
	defer cancel()
	r, err = pipeline.Execute(runCtx, db, eng, req, 1)
	if !killed {
		t.Fatalf("the run never reached the write (err %v)", err)
	}
	if err == nil || r == nil || r.Status != pipeline.StatusFailed || errors.Is(err, offline.ErrSource) {
		t.Fatalf("run with the server killed: %+v, %v; want a failed run, not blamed on the source", r, err)
	}
	t.Logf("the run failed with: %v", err)
	runs, err := pipeline.ListRuns(ctx, db, pipeline.RunFilter{Set: "items"})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].Status != pipeline.StatusFailed || runs[0].Error == "" {
		t.Fatalf("recorded runs %+v, want the latest failed with its error", runs)
	}
	if got := stored(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("after the killed run the partition holds\n%s\nwant the first run's\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	left, err := os.ReadDir(filepath.Join(store, ".tmp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("left in the store's .tmp: %s", e.Name())
	}
}

// TestServerKilledMidPointInTime kills the Spark Connect server once the
// join's inputs are defined and before Spark computes and writes it: the
// join fails (not as a bad request), the previous output file stays as it
// was, nothing else is left next to it, and the join's staging directory is
// gone from the store.
func TestServerKilledMidPointInTime(t *testing.T) {
	url, kill := startServer(t)
	ctx := t.Context()
	dir, store := t.TempDir(), t.TempDir()
	feats, eng := openFaultEngine(t, url, dir, store)
	at := time.Date(2024, 1, 1, 1, 0, 0, 0, time.UTC)
	if err := eng.Append(ctx, "items", []offline.LatestRow{{Key: []any{int64(1)}, TS: at, Values: []any{int64(5)}}}); err != nil {
		t.Fatal(err)
	}
	spine := filepath.Join(dir, "spine.csv")
	if err := os.WriteFile(spine, []byte("id,ts\n1,2024-01-01 02:00:00\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	feat, err := feats.Resolve("items:v")
	if err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	out := filepath.Join(outDir, "train.parquet")
	req := offline.PointInTimeRequest{Spine: spine, Features: feat, Names: []string{"v"}, Out: out}
	if _, err := eng.PointInTime(ctx, req); err != nil {
		t.Fatalf("first join: %v", err)
	}
	want := []string{"id,ts,v", "1,2024-01-01 02:00:00,5"}
	read := func() []string { return offlinetest.Lines(t, fmt.Sprintf("SELECT * FROM read_parquet('%s')", out)) }
	if got := read(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the first join wrote\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	if err := os.WriteFile(spine, []byte("id,ts\n1,2024-01-01 00:30:00\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	killed := false
	testHookBeforeWrite = func() { kill(); killed = true }
	defer func() { testHookBeforeWrite = nil }()
	joinCtx, cancel := context.WithTimeout(ctx, 2*time.Minute) // a hung client would fail the test, not hang it
	defer cancel()
	_, err = eng.PointInTime(joinCtx, req)
	if !killed {
		t.Fatalf("the join never reached the write (err %v)", err)
	}
	if err == nil || errors.Is(err, offline.ErrInvalid) {
		t.Fatalf("join with the server killed: %v; want a failure that is not a bad request", err)
	}
	t.Logf("the join failed with: %v", err)
	if got := read(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("after the killed join the output holds\n%s\nwant the first join's\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, d := range []string{outDir, filepath.Join(store, ".tmp")} {
		entries, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() != "train.parquet" {
				t.Errorf("left in %s: %s", d, e.Name())
			}
		}
	}
}
