package catalog_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/data/catalog"
	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/spec"
)

func example(t *testing.T, edit func(string) string) *spec.Features {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "spec", "testdata", "features", "issue_example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(data)
	if edit != nil {
		src = edit(src)
	}
	f, err := spec.ParseFeatures("features/example.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func changes(d *catalog.Diff) []string {
	var out []string
	for _, c := range d.Changes {
		s := string(c.Op) + " " + c.Kind + " " + c.Name
		if len(c.Details) > 0 {
			s += " (" + strings.Join(c.Details, "; ") + ")"
		}
		out = append(out, s)
	}
	return out
}

func TestApplyDiffLoad(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		if _, err := catalog.Load(ctx, db); !errors.Is(err, catalog.ErrNotApplied) {
			t.Fatalf("Load on an empty catalog = %v, want ErrNotApplied", err)
		}
		d, err := catalog.Apply(ctx, db, example(t, nil))
		if err != nil {
			t.Fatal(err)
		}
		if d.From != 0 || d.To != 1 || len(d.Changes) != 7 {
			t.Fatalf("first apply = %+v", d)
		}
		// The same definitions again: nothing stored.
		d, err = catalog.Apply(ctx, db, example(t, nil))
		if err != nil || !d.Empty() || d.To != 1 {
			t.Fatalf("second apply = %+v, %v; want no changes", d, err)
		}
		edited := example(t, func(s string) string {
			s = strings.Replace(s, "ttl: 2d", "ttl: 3d", 1)
			s = strings.Replace(s, `{name: viewers, type: int64, expr: user_id, aggs: [count_distinct]}`,
				`{name: viewers, type: int64, expr: user_id, aggs: [count_distinct, count]}
      - {name: visits, type: int64, expr: "CAST(event = 'visit' AS INTEGER)", aggs: [sum]}`, 1)
			s = strings.Replace(s, "  - {name: user, join_keys: [user_id]}\n", "", 1)
			return s
		})
		planned, err := catalog.Plan(ctx, db, edited)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			"removed entity user",
			"changed feature_set listing_engagement (features: ~viewers +visits; ttl)",
		}
		if !reflect.DeepEqual(changes(planned), want) {
			t.Errorf("plan = %q, want %q", changes(planned), want)
		}
		if l, _ := catalog.Load(ctx, db); l.Version != 1 {
			t.Errorf("Plan stored a version: %d", l.Version)
		}
		d, err = catalog.Apply(ctx, db, edited)
		if err != nil || d.From != 1 || d.To != 2 || !reflect.DeepEqual(changes(d), want) {
			t.Fatalf("apply edited = %+v, %v", d, err)
		}
		if d.Changes[1].Version != 2 || d.Changes[0].Version != 2 {
			t.Errorf("object versions = %d, %d; want 2, 2", d.Changes[0].Version, d.Changes[1].Version)
		}
		l, err := catalog.Load(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if l.Version != 2 || l.Features.Set("listing_engagement").TTL.String() != "3d" || l.Features.Entity("user") != nil {
			t.Errorf("loaded v%d ttl=%s", l.Version, l.Features.Set("listing_engagement").TTL)
		}
		if _, ok := l.Features.Set("listing_engagement").Column("visits_sum_7d"); !ok {
			t.Error("loaded definitions lack visits_sum_7d")
		}
		// Re-adding a removed object gives it the next version of its history.
		d, err = catalog.Apply(ctx, db, example(t, nil))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range d.Changes {
			if c.Kind == catalog.KindEntity && (c.Op != catalog.Added || c.Version != 3) {
				t.Errorf("re-added entity = %+v, want added v3", c)
			}
		}
	}, catalog.Schema)
}

// TestOnDemandSetsAreCatalogObjects applies an on-demand set, changes its
// expression, and loads it back: it is an object of its own in the diff and
// its features resolve after the round trip through the metadata DB.
func TestOnDemandSetsAreCatalogObjects(t *testing.T) {
	const od = `on_demand_features:
  - name: pricing
    sources: [listing_profile]
    request: {budget: float64}
    features:
      - {name: rent_to_budget, type: float64, expr: "rent / budget"}
`
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		if _, err := catalog.Apply(ctx, db, example(t, nil)); err != nil {
			t.Fatal(err)
		}
		d, err := catalog.Apply(ctx, db, example(t, func(s string) string { return s + od }))
		if err != nil {
			t.Fatal(err)
		}
		if got := changes(d); !reflect.DeepEqual(got, []string{"added on_demand_set pricing"}) {
			t.Errorf("adding = %q", got)
		}
		d, err = catalog.Apply(ctx, db, example(t, func(s string) string {
			return s + strings.Replace(od, "rent / budget", "rent / (budget + 1.0)", 1)
		}))
		if err != nil {
			t.Fatal(err)
		}
		if got := changes(d); !reflect.DeepEqual(got, []string{"changed on_demand_set pricing (features: ~rent_to_budget)"}) {
			t.Errorf("changing = %q", got)
		}
		l, err := catalog.Load(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		got, err := l.Features.Resolve("pricing")
		if err != nil || len(got) != 1 || !got[0].OnDemand || got[0].Type != spec.Float64 {
			t.Fatalf("loaded pricing resolves to %+v, %v", got, err)
		}
		if _, vars, err := l.Features.CompileOnDemand("pricing"); err != nil || len(vars) != 4 {
			t.Errorf("loaded pricing compiles to %d variables, %v; want rent, price_per_m2, neighborhood, budget", len(vars), err)
		}
	}, catalog.Schema)
}

// TestSetVersions checks each feature set's own version as of a catalog
// version: a set changed by the second apply is at 2 there and 1 before, an
// unchanged one at 1 in both.
func TestSetVersions(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		if _, err := catalog.Apply(ctx, db, example(t, nil)); err != nil {
			t.Fatal(err)
		}
		edited := example(t, func(s string) string { return strings.Replace(s, "ttl: 2d", "ttl: 3d", 1) })
		if _, err := catalog.Apply(ctx, db, edited); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			catalog int
			want    map[string]int
		}{
			{1, map[string]int{"listing_profile": 1, "listing_engagement": 1}},
			{2, map[string]int{"listing_profile": 1, "listing_engagement": 2}},
		} {
			got, err := catalog.SetVersions(ctx, db, c.catalog)
			if err != nil {
				t.Fatal(err)
			}
			for set, v := range c.want {
				if got[set] != v {
					t.Errorf("catalog v%d: %s at %d, want %d (all: %v)", c.catalog, set, got[set], v, got)
				}
			}
		}
	}, catalog.Schema)
}
