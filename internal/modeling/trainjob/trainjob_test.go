package trainjob

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/spec"
)

// features is the example with listing_profile scheduled and
// listing_engagement not, and an on-demand set reading both.
func features(t *testing.T) *spec.Features {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "spec", "testdata", "features", "issue_example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(string(b), "    ttl: 90d\n", "    ttl: 90d\n    schedule: daily\n", 1) + `on_demand_features:
  - name: ratio
    sources: ["listing_profile:rent", "listing_engagement:ctr_7d"]
    features:
      - {name: rent_ctr, type: float64, expr: "rent * ctr_7d"}
`
	f, err := spec.ParseFeatures("features.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestJobs(t *testing.T) {
	f := features(t)
	const head = "name: m\nspine: {path: s.csv, timestamp: ts, label: y}\nsplit: {by: random, valid: 0.2, test: 0.2}\nmodel: {objective: binary}\n"
	for _, c := range []struct {
		name, features, schedule string
		// sets are what the spec reads; fresh the run jobs its job waits for
		// (nil: no job); problem the error, if any.
		sets, fresh []string
		problem     string
	}{
		{name: "scheduled set", features: `["listing_profile:rent"]`, schedule: "weekly",
			sets: []string{"listing_profile"}, fresh: []string{"run:listing_profile"}},
		{name: "unscheduled set is not waited for", features: "{service: ranker}", schedule: "{cron: \"0 4 * * 1\", delay: 2h}",
			sets: []string{"listing_engagement", "listing_profile"}, fresh: []string{"run:listing_profile"}},
		{name: "only unscheduled sets", features: `["listing_engagement:ctr_7d"]`, schedule: "daily",
			sets: []string{"listing_engagement"}, fresh: []string{}},
		{name: "on-demand sources", features: `["ratio:rent_ctr"]`, schedule: "daily",
			sets: []string{"listing_engagement", "listing_profile"}, fresh: []string{"run:listing_profile"}},
		{name: "no schedule, no job", features: `["listing_profile:rent"]`, sets: []string{"listing_profile"}},
		{name: "unknown feature", features: `["listing_profile:rnt"]`, schedule: "daily", problem: "spec.yaml:5: features: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := head + "features: " + c.features + "\n"
			if c.schedule != "" {
				src += "schedule: " + c.schedule + "\n"
			}
			tr, err := spec.ParseTraining("spec.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			sets, ps := ReadSets(tr, f)
			js, err := Jobs([]*spec.Training{tr}, f)
			if c.problem != "" {
				if err == nil || !strings.Contains(err.Error(), c.problem) || len(ps) == 0 {
					t.Fatalf("Jobs = %v, ReadSets problems %v; want %q", err, ps, c.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(sets, c.sets) {
				t.Errorf("sets = %q, want %q", sets, c.sets)
			}
			if c.fresh == nil {
				if len(js) != 0 {
					t.Errorf("jobs = %+v, want none", js)
				}
				return
			}
			if len(js) != 1 || js[0].Name != "train:m" || js[0].Kind != Kind || js[0].Target != "m" || js[0].Calendar == nil {
				t.Fatalf("jobs = %+v", js)
			}
			if got := js[0].FreshUpTo; !slices.Equal(append([]string{}, got...), c.fresh) || len(js[0].DependsOn) != 0 {
				t.Errorf("fresh up to %q, depends on %q; want %q", got, js[0].DependsOn, c.fresh)
			}
		})
	}
}
