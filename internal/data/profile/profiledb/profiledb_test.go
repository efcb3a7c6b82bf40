package profiledb_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/profile"
	"github.com/atrium-ml/atrium/internal/data/profile/profiledb"
	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
)

func prof(vals ...float64) *profile.Profile {
	return profile.Build([]profile.Input{{Name: "x", Float: vals}}, profile.Options{})
}

func TestSaveList(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		if _, err := profiledb.List(ctx, db, "s", "2026-01-01", "2026-12-31"); !errors.Is(err, profiledb.ErrNone) || !strings.Contains(err.Error(), "no run has published it") {
			t.Errorf("empty: %v", err)
		}
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(profiledb.Save(ctx, db, "s", "run1", map[string]*profile.Profile{"2026-11-01": prof(1), "2026-11-02": prof(1, 2)}, t0))
		must(profiledb.Save(ctx, db, "other", "run2", map[string]*profile.Profile{"2026-11-02": prof(9, 9, 9)}, t0))
		// A rerun of 11-02 replaces its profile.
		must(profiledb.Save(ctx, db, "s", "run3", map[string]*profile.Profile{"2026-11-02": prof(5, 6, 7)}, t0.Add(time.Hour)))
		got, err := profiledb.List(ctx, db, "s", "2026-10-01", "2026-11-30")
		must(err)
		if len(got) != 2 || got[0].Date != "2026-11-01" || got[0].RunID != "run1" || got[0].Profile.Rows != 1 ||
			got[1].Date != "2026-11-02" || got[1].RunID != "run3" || got[1].Profile.Rows != 3 || !got[1].CreatedAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("list %+v", got)
		}
		if c, ok := got[1].Profile.Column("x"); !ok || c.Mean != 6 {
			t.Errorf("decoded column %+v", c)
		}
		got, err = profiledb.List(ctx, db, "s", "2026-11-02", "2026-11-02")
		if err != nil || len(got) != 1 {
			t.Errorf("one day: %v %v", got, err)
		}
		if _, err := profiledb.List(ctx, db, "s", "2026-12-01", "2026-12-31"); !errors.Is(err, profiledb.ErrNone) || !strings.Contains(err.Error(), "cover 2026-11-01 to 2026-11-02") {
			t.Errorf("out of range: %v", err)
		}
	}, profiledb.Schema)
}
