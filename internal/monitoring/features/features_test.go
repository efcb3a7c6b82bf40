package features_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/profile"
	"github.com/atrium-ml/atrium/internal/data/profile/profiledb"
	"github.com/atrium-ml/atrium/internal/monitoring/features"
	"github.com/atrium-ml/atrium/internal/monitoring/report"
	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
)

var day0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func date(i int) string { return day0.AddDate(0, 0, i).Format(time.DateOnly) }

// seed stores 14 daily profiles of a set: price ~ N(100, 10) and city, 2000
// rows a day; day 10 has no rows, day 12 only 300; on day 13 price shifts by
// one std and city's shares change.
func seed(t *testing.T, db *meta.DB) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 14 {
		n := 2000
		switch i {
		case 10:
			n = 0
		case 12:
			n = 300
		}
		price := make([]float64, n)
		city := make([]string, n)
		for j := range n {
			price[j] = 100 + 10*rng.NormFloat64()
			city[j] = []string{"rome", "milan", "turin"}[rng.IntN(3)]
			if i == 13 {
				price[j] += 10
				if rng.IntN(2) == 0 {
					city[j] = "rome"
				}
			}
		}
		p := profile.Build([]profile.Input{{Name: "price", Float: price}, {Name: "city", String: city}}, profile.Options{Seed: uint64(i + 1)})
		if err := profiledb.Save(context.Background(), db, "listings", "run"+date(i), map[string]*profile.Profile{date(i): p}, day0.AddDate(0, 0, i+1)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBuild(t *testing.T) {
	db := metatest.SQLite(t, profiledb.Schema)
	seed(t, db)
	ctx := context.Background()
	tests := []struct {
		name        string
		o           features.Options
		days        int
		drifted     []string
		volume      []string
		firstRefs   []string
		firstNoteIn string
	}{
		{
			name: "previous 7 days", days: 14,
			o:       features.Options{Set: "listings", Since: day0, Until: day0.AddDate(0, 0, 13), Reference: features.Reference{Previous: 7}},
			drifted: []string{date(13)}, volume: []string{date(10), date(12)},
			firstRefs: []string{}, firstNoteIn: "no reference days",
		},
		{
			name: "fixed reference", days: 5,
			o:       features.Options{Set: "listings", Since: day0.AddDate(0, 0, 9), Until: day0.AddDate(0, 0, 13), Reference: features.Reference{Start: day0, End: day0.AddDate(0, 0, 2)}},
			drifted: []string{date(13)}, volume: []string{date(10), date(12)},
			firstRefs: []string{date(0), date(1), date(2)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := features.Build(ctx, db, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Days) != tc.days || !slices.Equal(rep.DriftedDays, tc.drifted) || !slices.Equal(rep.VolumeDays, tc.volume) {
				t.Errorf("%d days, drifted %v, volume %v; want %d, %v, %v", len(rep.Days), rep.DriftedDays, rep.VolumeDays, tc.days, tc.drifted, tc.volume)
			}
			first := rep.Days[0]
			if !slices.Equal(first.ReferenceDays, tc.firstRefs) || !strings.Contains(first.Note, tc.firstNoteIn) {
				t.Errorf("first day: references %v, note %q", first.ReferenceDays, first.Note)
			}
			last := rep.Days[len(rep.Days)-1]
			if !slices.Equal(last.Drifted, []string{"price", "city"}) || last.Features[0].Drift.Method != "wasserstein" || last.Features[1].Drift.Method != "jensenshannon" {
				t.Errorf("last day drifted %v, tests %+v %+v", last.Drifted, last.Features[0].Drift, last.Features[1].Drift)
			}
			// The empty day is flagged, never reported as "no drift" silently.
			for _, d := range rep.Days {
				if d.Date == date(10) && (d.Note != "no rows" || d.Drift || d.Features[0].Note != "no values") {
					t.Errorf("empty day %+v", d)
				}
			}
			// Text, JSON and HTML all render.
			var text, js, html bytes.Buffer
			if err := rep.WriteText(&text); err != nil || !strings.Contains(text.String(), date(13)+"  2000  ") || !strings.Contains(text.String(), "DRIFT") {
				t.Errorf("text %v:\n%s", err, text.String())
			}
			if err := json.NewEncoder(&js).Encode(rep); err != nil {
				t.Error(err)
			}
			if err := report.Render(&html, rep.HTML(day0)); err != nil || strings.Count(html.String(), "<svg") < 7 {
				t.Errorf("html %v, %d plots", err, strings.Count(html.String(), "<svg"))
			}
		})
	}
	// Windows without data are errors, not empty reports.
	for _, o := range []features.Options{
		{Set: "listings", Since: day0.AddDate(1, 0, 0), Until: day0.AddDate(1, 0, 5), Reference: features.Reference{Previous: 7}},
		{Set: "nope", Since: day0, Until: day0.AddDate(0, 0, 5), Reference: features.Reference{Previous: 7}},
	} {
		if _, err := features.Build(ctx, db, o); !errors.Is(err, profiledb.ErrNone) {
			t.Errorf("%s from %v: %v, want ErrNone", o.Set, o.Since, err)
		}
	}
	if _, err := features.Build(ctx, db, features.Options{Set: "listings", Since: day0, Until: day0.AddDate(0, 0, 5),
		Reference: features.Reference{Start: day0.AddDate(0, 0, 10), End: day0.AddDate(0, 0, 10)}}); !errors.Is(err, features.ErrInput) {
		t.Errorf("empty fixed reference: %v, want ErrInput", err)
	}
}
