package retrieval

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/online/pebble"
	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/platform/proctest"
	"github.com/atrium-ml/atrium/internal/spec"
)

// A child process (the test binary re-executed with materializeChildEnv set
// to a directory) materializes the set of materializeFeatures stored there
// and SIGKILLs itself right after its first write to the online store.
const materializeChildEnv = "ATRIUM_TEST_MATERIALIZE_AND_DIE"

func TestMain(m *testing.M) {
	if dir := os.Getenv(materializeChildEnv); dir != "" {
		err := materializeAndDie(dir)
		fmt.Fprintln(os.Stderr, "materialize ended without being killed:", err)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// afterWrite is the hook point of these tests: a real store that calls fn
// after each successful Write.
type afterWrite struct {
	online.Store
	fn func()
}

func (s afterWrite) Write(ctx context.Context, set string, features []string, rows []online.Row) error {
	err := s.Store.Write(ctx, set, features, rows)
	if err == nil {
		s.fn()
	}
	return err
}

func materializeAndDie(dir string) error {
	ctx := context.Background()
	feats, err := spec.ParseFeatures("features.yaml", []byte(materializeFeatures))
	if err != nil {
		return err
	}
	eng, err := offline.Open(ctx, "duckdb://"+filepath.Join(dir, "offline"), offline.Options{Features: feats, BaseDir: dir})
	if err != nil {
		return err
	}
	store, err := pebble.Open(filepath.Join(dir, "online"), pebble.Options{})
	if err != nil {
		return err
	}
	db, err := meta.Open(ctx, "sqlite://"+filepath.Join(dir, "meta.db"), Schema)
	if err != nil {
		return err
	}
	defs, err := DefinitionsFromSpec(feats, nil)
	if err != nil {
		return err
	}
	m := &Materializer{Meta: db, Engine: eng, Store: afterWrite{store, func() {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}}}
	_, err = m.Materialize(ctx, defs.Sets, day(5, 0))
	return err
}

// manyRows are n listings' rows on day 4, enough for several scan batches.
func manyRows(n int) []offline.LatestRow {
	rows := make([]offline.LatestRow, n)
	for i := range rows {
		rows[i] = row(int64(i), day(4, 0), float64(i))
	}
	return rows
}

// checkAllOnline fails unless every listing 0..n-1 is in the online store.
func (f *materializeFixture) checkAllOnline(t *testing.T, n int) {
	t.Helper()
	keys := make([]online.Key, n)
	for i := range keys {
		keys[i] = online.MustKey(int64(i))
	}
	res := make([]online.Result, 1)
	if err := f.store.Read(context.Background(), []online.Query{{Set: "profile", Features: []string{"rent"}, Keys: keys}}, res); err != nil {
		t.Fatal(err)
	}
	missing := 0
	for j := range keys {
		if !res[0].Found[j] || res[0].Values[j].Float64() != float64(j) {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d listings missing or wrong online after resuming", missing, n)
	}
}

func historyStatuses(t *testing.T, db *meta.DB) []string {
	t.Helper()
	h, err := MaterializationHistory(context.Background(), db, "profile", 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range h {
		out = append(out, m.Status)
	}
	return out
}

func TestMaterializeInterruptedIsRecordedAndResumed(t *testing.T) {
	const n = 5000
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		f := newMaterializeFixture(t, db)
		f.append(t, manyRows(n)...)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		real := f.m.Store
		f.m.Store = afterWrite{real, cancel}
		_, err := f.m.Materialize(ctx, []SetDef{f.set}, day(5, 0))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("materialize cancelled after its first write: %v, want context.Canceled", err)
		}
		h, err := MaterializationHistory(context.Background(), db, "profile", 0)
		if err != nil || len(h) != 1 {
			t.Fatalf("history: %+v, %v", h, err)
		}
		if h[0].Status != MaterializeInterrupted || h[0].Error == "" || h[0].Rows <= 0 || !h[0].End.Equal(day(5, 0)) {
			t.Errorf("interrupted materialization recorded as %+v", h[0])
		}
		if last, _ := LastMaterialized(context.Background(), db, "profile"); !last.IsZero() {
			t.Errorf("resume point moved to %s by an interrupted materialization", last)
		}

		// A failing store: failed, on record.
		f.m.Store = afterWrite{real, func() {}}
		if err := real.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := f.m.Materialize(context.Background(), []SetDef{f.set}, day(5, 0)); !errors.Is(err, online.ErrClosed) {
			t.Fatalf("materialize to a closed store: %v", err)
		}
		if got := historyStatuses(t, db); len(got) != 2 || got[0] != MaterializeFailed {
			t.Errorf("history after a failed materialization: %v", got)
		}

		// The next one resumes from the previous end: everything is written.
		store, err := pebble.Open(filepath.Join(f.dir, "online"), pebble.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		f.store, f.m.Store = store, store
		r := f.materialize(t, day(5, 0))
		if r.Rows != n {
			t.Errorf("resumed materialization wrote %d rows, want %d", r.Rows, n)
		}
		f.checkAllOnline(t, n)
		if got := historyStatuses(t, db); len(got) != 3 || got[0] != MaterializeSucceeded {
			t.Errorf("history after resuming: %v", got)
		}
	}, Schema)
}

func TestMaterializeKilledIsRecordedAndResumed(t *testing.T) {
	const n = 5000
	dir := t.TempDir()
	ctx := context.Background()
	feats, err := spec.ParseFeatures("features.yaml", []byte(materializeFeatures))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := offline.Open(ctx, "duckdb://"+filepath.Join(dir, "offline"), offline.Options{Features: feats, BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Append(ctx, "profile", manyRows(n)); err != nil {
		t.Fatal(err)
	}
	eng.Close()

	proctest.Killed(t, materializeChildEnv+"="+dir)

	db, err := meta.Open(ctx, "sqlite://"+filepath.Join(dir, "meta.db"), Schema)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := historyStatuses(t, db); len(got) != 1 || got[0] != MaterializeInterrupted {
		t.Fatalf("history after a killed materialization: %v, want [interrupted]", got)
	}
	if last, _ := LastMaterialized(ctx, db, "profile"); !last.IsZero() {
		t.Errorf("resume point moved to %s by a killed materialization", last)
	}
	eng, err = offline.Open(ctx, "duckdb://"+filepath.Join(dir, "offline"), offline.Options{Features: feats, BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	store, err := pebble.Open(filepath.Join(dir, "online"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	defs, err := DefinitionsFromSpec(feats, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &materializeFixture{eng: eng, store: store, set: defs.Sets[0], m: &Materializer{Store: store, Meta: db, Engine: eng}}
	if r := f.materialize(t, day(5, 0)); r.Rows != n {
		t.Errorf("resumed materialization wrote %d rows, want %d", r.Rows, n)
	}
	f.checkAllOnline(t, n)
	if got := historyStatuses(t, db); len(got) != 2 || got[0] != MaterializeSucceeded || got[1] != MaterializeInterrupted {
		t.Errorf("history after resuming: %v, want [succeeded interrupted]", got)
	}
}
