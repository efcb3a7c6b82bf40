package retrieval

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	_ "github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/online/pebble"
	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/spec"
)

const materializeFeatures = `
entities:
  - {name: listing, join_keys: [listing_id]}
sources:
  - {name: listings, format: csv, path: data/listings.csv, timestamp: ts}
feature_sets:
  - name: profile
    entity: listing
    source: listings
    ttl: 2d
    features:
      - {name: rent, type: float64, expr: rent}
      - {name: hood, type: string, expr: hood}
`

func day(d, h int) time.Time { return time.Date(2026, 3, d, h, 0, 0, 0, time.UTC) }

// materializeFixture is a real DuckDB offline engine, a Pebble online store and
// a metadata DB; rows enter the offline store through Append (what a push does).
type materializeFixture struct {
	eng   offline.Engine
	store online.Store
	m     *Materializer
	set   SetDef
	dir   string // holds the stores: offline/, online/
}

func newMaterializeFixture(t testing.TB, db *meta.DB) *materializeFixture {
	t.Helper()
	feats, err := spec.ParseFeatures("features.yaml", []byte(materializeFeatures))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	eng, err := offline.Open(context.Background(), "duckdb://"+filepath.Join(dir, "offline"), offline.Options{Features: feats, BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	store, err := pebble.Open(filepath.Join(dir, "online"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	defs, err := DefinitionsFromSpec(feats, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &materializeFixture{eng: eng, store: store, set: defs.Sets[0], dir: dir,
		m: &Materializer{Store: store, Meta: db, Engine: eng}}
}

func (f *materializeFixture) append(t *testing.T, rows ...offline.LatestRow) {
	t.Helper()
	if err := f.eng.Append(context.Background(), "profile", rows); err != nil {
		t.Fatal(err)
	}
}

func (f *materializeFixture) materialize(t *testing.T, end time.Time) MaterializeResult {
	t.Helper()
	res, err := f.m.Materialize(context.Background(), []SetDef{f.set}, end)
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

// online returns rent and the event time of listing id, or nil when absent.
func (f *materializeFixture) online(t *testing.T, id int64) (any, time.Time) {
	t.Helper()
	res := make([]online.Result, 1)
	q := online.Query{Set: "profile", Features: []string{"rent"}, Keys: []online.Key{online.MustKey(id)}}
	if err := f.store.Read(context.Background(), []online.Query{q}, res); err != nil {
		t.Fatal(err)
	}
	if !res[0].Found[0] {
		return nil, time.Time{}
	}
	return res[0].Values[0].Any(), res[0].TS[0]
}

func row(id int64, ts time.Time, rent float64) offline.LatestRow {
	return offline.LatestRow{Key: []any{id}, TS: ts, Values: []any{rent, "x"}}
}

func TestMaterializeIncremental(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		f := newMaterializeFixture(t, db)
		ctx := context.Background()
		f.append(t,
			row(1, day(1, 0), 10), row(1, day(3, 1), 11), row(1, day(9, 0), 12), // 12 is after the first end
			row(2, day(3, 0), 20), // exactly end - ttl (2d) at the first end: expired (t - ttl < ts <= t)
			row(3, day(4, 0), 30),
		)
		r := f.materialize(t, day(5, 0))
		if r.Rows != 2 || !r.From.Equal(day(3, 0)) || r.Skipped {
			t.Errorf("first run: %+v; want 2 rows from %s", r, day(3, 0))
		}
		for _, tt := range []struct {
			id   int64
			rent any
			ts   time.Time
		}{{1, 11.0, day(3, 1)}, {2, nil, time.Time{}}, {3, 30.0, day(4, 0)}} {
			if rent, ts := f.online(t, tt.id); rent != tt.rent || !ts.Equal(tt.ts) {
				t.Errorf("after the first run, listing %d: %v at %s, want %v at %s", tt.id, rent, ts, tt.rent, tt.ts)
			}
		}
		if last, _ := LastMaterialized(ctx, db, "profile"); !last.Equal(day(5, 0)) {
			t.Errorf("LastMaterialized = %s", last)
		}

		// Same or earlier end: nothing to do.
		if r := f.materialize(t, day(4, 0)); !r.Skipped {
			t.Errorf("materialize to an earlier end: %+v, want skipped", r)
		}

		// A fresher value already online (pushed) is not replaced by an older
		// offline row; the next run reads only rows after the previous end.
		if err := f.store.Write(ctx, "profile", []string{"rent", "hood"}, []online.Row{
			{Key: online.MustKey(int64(3)), TS: day(10, 0), Values: []online.Value{online.Float64(99), online.Null}},
		}); err != nil {
			t.Fatal(err)
		}
		f.append(t, row(3, day(8, 0), 31), row(4, day(6, 0), 40))
		r = f.materialize(t, day(10, 0))
		// The window starts at max(previous end, end - ttl) = day 8, exclusive:
		// listing 1's row of day 9 only (3's of day 8 is on the bound, 4's expired).
		if r.Rows != 1 || !r.From.Equal(day(8, 0)) {
			t.Errorf("second run: %+v; want 1 row from %s", r, day(8, 0))
		}
		for _, tt := range []struct {
			id   int64
			rent any
		}{{1, 12.0}, {3, 99.0}, {4, nil}} {
			if rent, _ := f.online(t, tt.id); rent != tt.rent {
				t.Errorf("after the second run, listing %d: %v, want %v", tt.id, rent, tt.rent)
			}
		}

		types, err := LoadKeyTypes(ctx, db)
		if err != nil || len(types["profile"]) != 1 || types["profile"][0] != KeyInt64 {
			t.Errorf("learned key types %v (%v), want [int64]", types, err)
		}
	}, Schema)
}

func TestMaterializeFull(t *testing.T) {
	f := newMaterializeFixture(t, metatest.SQLite(t, Schema))
	f.append(t, row(1, day(4, 0), 10))
	f.materialize(t, day(5, 0))
	// A late row within the last window (a backfill): incremental runs skip it,
	// a full run (from end - ttl) picks it up.
	f.append(t, row(2, day(4, 12), 20))
	if r := f.materialize(t, day(5, 1)); r.Rows != 0 {
		t.Errorf("incremental run after a backfill wrote %d rows, want 0", r.Rows)
	}
	f.m.Full = true
	r := f.materialize(t, day(5, 2))
	if r.Rows != 2 || !r.From.Equal(day(3, 2)) {
		t.Errorf("full run: %+v; want 2 rows from %s", r, day(3, 2))
	}
	if rent, _ := f.online(t, 2); rent != 20.0 {
		t.Errorf("backfilled listing after a full run: %v", rent)
	}
}

// TestMaterializeWithoutOfflineData: materializing a set the offline store
// has nothing of (it was never run) writes nothing and records no resume
// point, so that once it is run, a materialization to the same end reads it
// instead of skipping it as done.
func TestMaterializeWithoutOfflineData(t *testing.T) {
	db := metatest.SQLite(t, Schema)
	f := newMaterializeFixture(t, db)
	if r := f.materialize(t, day(5, 0)); !r.NoData || r.Skipped || r.Rows != 0 {
		t.Fatalf("materialize with no offline data: %+v, want NoData", r)
	}
	if last, err := LastMaterialized(context.Background(), db, "profile"); err != nil || !last.IsZero() {
		t.Fatalf("LastMaterialized = %s, %v; want none recorded", last, err)
	}
	f.append(t, row(1, day(4, 0), 10))
	if r := f.materialize(t, day(5, 0)); r.NoData || r.Skipped || r.Rows != 1 {
		t.Errorf("materialize once the set has data: %+v, want 1 row", r)
	}
	if rent, _ := f.online(t, 1); rent != 10.0 {
		t.Errorf("listing 1 online: %v, want 10", rent)
	}
}
