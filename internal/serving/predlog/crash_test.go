//go:build unix

package predlog

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/proctest"
)

// crashEnv makes the test binary a child that logs, flushes once, and is
// killed during its second flush: "<stage>:<dir>", stage copy (while DuckDB
// writes the file) or publish (the file written, not yet renamed).
const crashEnv = "ATRIUM_PREDLOG_CRASH"

func TestMain(m *testing.M) {
	flusherPriority = func() {} // see flusherPriority
	if v := os.Getenv(crashEnv); v != "" {
		stage, dir, _ := strings.Cut(v, ":")
		crashChild(stage, dir)
	}
	os.Exit(m.Run())
}

// crashChild publishes 500 rows, then dies by SIGKILL in the middle of
// writing 100,000 more.
func crashChild(stage, dir string) {
	ctx := context.Background()
	w, err := Open(ctx, Options{Dir: dir, FlushInterval: time.Hour})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for i := range 10 {
		w.Log(rankRecord(fmt.Sprintf("done%d", i), t0, "1", 50))
	}
	if err := w.Flush(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	die := func() { _ = syscall.Kill(os.Getpid(), syscall.SIGKILL); select {} }
	switch stage {
	case "copy":
		testHookCopy = func(tmp string) {
			go func() {
				for {
					if _, err := os.Stat(tmp); err == nil {
						die()
					}
					runtime.Gosched()
				}
			}()
		}
		testHookPublish = func(string) { select {} } // never publish before the kill
	case "publish":
		testHookPublish = func(string) { die() }
	}
	for i := range 400 {
		w.Log(rankRecord(fmt.Sprintf("lost%d", i), t0.Add(time.Second), "1", 250))
	}
	_ = w.Flush(ctx)
	fmt.Fprintln(os.Stderr, "child survived its flush")
	os.Exit(3)
}

// TestCrashMidFlush: a writer killed while a flush is written leaves the files
// of earlier flushes complete and readable, its own file only under a hidden
// temporary name that readers skip, and the next Open removes it.
func TestCrashMidFlush(t *testing.T) {
	for _, stage := range []string{"copy", "publish"} {
		t.Run(stage, func(t *testing.T) {
			dir := t.TempDir()
			proctest.Killed(t, crashEnv+"="+stage+":"+dir)
			temps := tempFiles(t, dir)
			if len(temps) != 1 {
				t.Fatalf("temporary files %v, want the killed flush's one", temps)
			}
			rows, err := Read(context.Background(), dir, "ranker", time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 500 {
				t.Errorf("read %d rows, want the first flush's 500", len(rows))
			}
			for _, r := range rows {
				if !strings.HasPrefix(r.RequestID, "done") {
					t.Fatalf("row of request %s, logged in the killed flush, is visible", r.RequestID)
				}
			}
			db, err := sql.Open("duckdb", "")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var n int
			glob := filepath.Join(dir, "predictions", "**", "*.parquet")
			if err := db.QueryRow(fmt.Sprintf(`SELECT count(*) FROM read_parquet('%s', hive_partitioning = true)`, glob)).Scan(&n); err != nil {
				t.Fatalf("glob read: %v", err)
			}
			if n != 500 {
				t.Errorf("glob read %d rows, want 500", n)
			}
			// Fresh, the file may be a live replica's: Open keeps it. Once
			// unwritten for staleTempAge, it is a dead writer's: removed.
			w := openTest(t, Options{Dir: dir, FlushInterval: time.Second})
			if got := tempFiles(t, dir); len(got) != 1 {
				t.Errorf("temporary files %v after Open, want the fresh one kept", got)
			}
			if err := w.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			old := time.Now().Add(-staleTempAge(time.Second) - time.Minute)
			if err := os.Chtimes(temps[0], old, old); err != nil {
				t.Fatal(err)
			}
			w = openTest(t, Options{Dir: dir, FlushInterval: time.Second})
			if temps := tempFiles(t, dir); len(temps) != 0 {
				t.Errorf("temporary files %v left after Open", temps)
			}
			if err := w.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && isTemp(d.Name()) {
			out = append(out, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRemoveDeadTemps: only temporary files unwritten for longer than the
// cutoff are removed, whatever pid their name carries (a replica in another
// pid namespace sharing the directory has pids that mean nothing here);
// published files are never touched.
func TestRemoveDeadTemps(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	files := []struct {
		name string
		age  time.Duration
		kept bool
	}{
		{".1733390000000000000-1-abcd" + tempSuffix, time.Second, true},                       // pid 1: every container's
		{".1733390000000000000-999999-abcd" + tempSuffix, 5 * time.Minute, true},              // a pid dead here, maybe alive elsewhere
		{".1733390000000000000-1-dead" + tempSuffix, 16 * time.Minute, false},                 // unwritten for longer than the cutoff
		{"1733390000000000000-1-done.parquet", 48 * time.Hour, true},                          // published
		{".1733390000000000000-" + strconv.Itoa(os.Getpid()) + "-mine" + tempSuffix, 0, true}, // this process's, in flight
	}
	for _, f := range files {
		p := filepath.Join(dir, "m", f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		at := now.Add(-f.age)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
	if err := removeDeadTemps(dir, now.Add(-staleTempAge(time.Second))); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		_, err := os.Stat(filepath.Join(dir, "m", f.name))
		if kept := err == nil; kept != f.kept {
			t.Errorf("%s (%v old): kept %v, want %v", f.name, f.age, kept, f.kept)
		}
	}
	if err := removeDeadTemps(filepath.Join(dir, "absent"), now); err != nil {
		t.Errorf("a directory not created yet: %v", err)
	}
}
