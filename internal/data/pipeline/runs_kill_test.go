package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/data/pipeline"
	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/platform/proctest"
	"github.com/atrium-ml/atrium/internal/spec"
)

// The environment of a child process (the test binary re-executed) that runs
// a pipeline and kills itself with SIGKILL when the run reaches a stage.
const (
	killAtEnv    = "ATRIUM_TEST_KILL_AT"
	killMetaEnv  = "ATRIUM_TEST_KILL_META"
	killStoreEnv = "ATRIUM_TEST_KILL_STORE"
	killBaseEnv  = "ATRIUM_TEST_KILL_BASE"
)

func TestMain(m *testing.M) {
	if stage := os.Getenv(killAtEnv); stage != "" {
		if err := runAndDie(stage); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		fmt.Fprintln(os.Stderr, "the run ended without reaching stage", stage)
		os.Exit(4)
	}
	os.Exit(m.Run())
}

// runAndDie runs items for 2024-01-01..02 and SIGKILLs its own process as the
// run completes stage (offline.RunStages): "publish" is right after the
// partitions were swapped in, before the outcome is recorded.
func runAndDie(stage string) error {
	ctx := context.Background()
	db, err := meta.Open(ctx, os.Getenv(killMetaEnv), pipeline.Schema)
	if err != nil {
		return err
	}
	f, err := spec.ParseFeatures("f.yaml", []byte(features))
	if err != nil {
		return err
	}
	eng, err := duckdb.Open(ctx, os.Getenv(killStoreEnv), offline.Options{Features: f, BaseDir: os.Getenv(killBaseEnv)})
	if err != nil {
		return err
	}
	day := func(s string) time.Time { d, _ := offline.ParseDate(s); return d }
	req := offline.RunRequest{Set: "items", Start: day("2024-01-01"), End: day("2024-01-02"), Progress: func(s string) {
		if s == stage {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}}
	_, err = pipeline.Execute(ctx, db, eng, req, 1)
	return err
}

func TestKilledRunRecord(t *testing.T) {
	tests := []struct {
		name   string
		killAt string
		// tamper runs after the kill, before the runs are listed.
		tamper     func(t *testing.T, store string)
		wantStatus string
		wantRows   int64
		wantParts  int
		wantError  string
		// wantValue is the stored v of item 1 (the first run wrote 5, the killed one 7).
		wantValue int64
	}{
		{name: "killed right after publishing", killAt: "publish",
			wantStatus: pipeline.StatusSucceeded, wantRows: 2, wantParts: 2, wantValue: 7},
		{name: "killed before publishing", killAt: "check",
			wantStatus: pipeline.StatusInterrupted, wantValue: 5},
		{name: "killed after publishing, one partition replaced since", killAt: "publish",
			tamper: func(t *testing.T, store string) {
				markers, _ := filepath.Glob(filepath.Join(store, "set=items", "date=2024-01-02", ".published-*"))
				if len(markers) != 1 {
					t.Fatalf("markers of 2024-01-02: %v, want 1", markers)
				}
				if err := os.Remove(markers[0]); err != nil {
					t.Fatal(err)
				}
			},
			wantStatus: pipeline.StatusFailed, wantRows: 2, wantParts: 2, wantValue: 7,
			wantError: "interrupted while publishing: 1 of 2 partitions hold this run's data (2024-01-01); the others hold earlier data or a later run's"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			metatest.ForEach(t, func(t *testing.T, _ *meta.DB) {
				ctx := context.Background()
				url := "sqlite://" + filepath.Join(t.TempDir(), "meta.db")
				if strings.HasSuffix(t.Name(), "/postgres") {
					url = metatest.PostgresURL(t)
				}
				base, store := t.TempDir(), t.TempDir()
				src := filepath.Join(base, "src.csv")
				write := func(v1 int) {
					t.Helper()
					body := fmt.Sprintf("id,ts,v\n1,2024-01-01 01:00:00,%d\n2,2024-01-02 01:00:00,6\n", v1)
					if err := os.WriteFile(src, []byte(body), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				// A first run publishes v=5 in a process that ends normally.
				write(5)
				runChild(t, "none", url, store, base, 4)
				// The killed run would publish v=7.
				write(7)
				runChild(t, tt.killAt, url, store, base, -1)
				if tt.tamper != nil {
					tt.tamper(t, store)
				}

				db, err := meta.Open(ctx, url, pipeline.Schema)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				runs, err := pipeline.ListRuns(ctx, db, pipeline.RunFilter{Set: "items"})
				if err != nil {
					t.Fatal(err)
				}
				if len(runs) != 2 || runs[1].Status != pipeline.StatusSucceeded {
					t.Fatalf("runs = %+v, want the killed run and a succeeded one", runs)
				}
				r := runs[0]
				if r.Status != tt.wantStatus || r.RowsOut != tt.wantRows || len(r.Partitions) != tt.wantParts || r.Error != tt.wantError {
					t.Errorf("killed run: %s rows %d partitions %v error %q, want %s rows %d, %d partitions, error %q",
						r.Status, r.RowsOut, r.Partitions, r.Error, tt.wantStatus, tt.wantRows, tt.wantParts, tt.wantError)
				}
				// Settled runs are stored so: listing again gives the same.
				again, err := pipeline.ListRuns(ctx, db, pipeline.RunFilter{Set: "items"})
				if err != nil || again[0].Status != r.Status {
					t.Errorf("listed again: %+v, %v", again[0], err)
				}

				f, err := spec.ParseFeatures("f.yaml", []byte(features))
				if err != nil {
					t.Fatal(err)
				}
				eng, err := duckdb.Open(ctx, store, offline.Options{Features: f, BaseDir: base})
				if err != nil {
					t.Fatal(err)
				}
				defer eng.Close()
				var got int64 = -1
				err = eng.ScanLatest(ctx, "items", time.Time{}, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), func(rows []offline.LatestRow) error {
					for _, row := range rows {
						if row.Key[0] == int64(1) {
							got = row.Values[0].(int64)
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if got != tt.wantValue {
					t.Errorf("stored v of item 1 = %d, want %d", got, tt.wantValue)
				}
			}, pipeline.Schema)
		})
	}
}

// runChild re-executes the test binary to run the pipeline, killing itself at
// stage ("none": not at all). wantCode -1 means killed by SIGKILL.
func runChild(t *testing.T, stage, metaURL, store, base string, wantCode int) {
	t.Helper()
	killed, code, out := proctest.Run(t, killAtEnv+"="+stage, killMetaEnv+"="+metaURL, killStoreEnv+"="+store, killBaseEnv+"="+base)
	switch {
	case wantCode == -1 && !killed:
		t.Fatalf("child (kill at %s): exit %d, want killed\n%s", stage, code, out)
	case wantCode != -1 && code != wantCode:
		t.Fatalf("child (kill at %s): exit %d (killed: %v), want exit %d\n%s", stage, code, killed, wantCode, out)
	}
}
