package tracking_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/tracking"
	"github.com/atrium-ml/atrium/internal/tracking/search"
)

// TestSearchRunsMaxConditions: a filter of search.MaxClauses conditions on
// metrics, params, tags, datasets and attributes finds exactly the runs that
// satisfy every one, with MLflow's semantics (NaN matches only "!=", a missing
// key matches nothing, "\_" is a literal '_'), whichever conditions come first
// (the first few are joins, the rest grouped subqueries).
func TestSearchRunsMaxConditions(t *testing.T) {
	var conds []string
	add := func(format string, args ...any) { conds = append(conds, fmt.Sprintf(format, args...)) }
	for i := 0; i < 50; i++ {
		switch i % 5 {
		case 0:
			add("metrics.m%d >= %d", i, i)
		case 1:
			add("metrics.m%d > %d", i, i-1)
		case 2:
			add("metrics.m%d <= %d", i, i)
		case 3:
			add("metrics.m%d = %d", i, i)
		case 4:
			add("metrics.m%d != -1", i)
		}
	}
	for i := 0; i < 10; i++ {
		add("metrics.m%d < %d", i, i+1) // a second condition on the same key
	}
	for _, e := range []struct{ entity, value string }{{"params.", "v"}, {"tags.", "w"}} {
		key := e.entity + map[string]string{"params.": "p", "tags.": "t"}[e.entity]
		for i := 0; i < 50; i++ {
			switch i % 5 {
			case 0:
				add("%s%d = '%s%d'", key, i, e.value, i)
			case 1:
				add("%s%d LIKE '%s%%'", key, i, e.value)
			case 2:
				add("%s%d ILIKE '%s%d'", key, i, strings.ToUpper(e.value), i)
			case 3:
				add("%s%d != 'x'", key, i)
			case 4:
				add("%s%d IS NOT NULL", key, i)
			}
		}
		for j := 0; j < 9; j++ {
			add("%sgone%d IS NULL", e.entity, j)
		}
	}
	add(`params.esc LIKE 'a\_b%%'`)
	add("tags.`a b` = 'x y'")
	add("dataset.name = 'train'")
	add("datasets.digest IN ('d1', 'd2')")
	add("datasets.context = 'training'")
	add("dataset.name LIKE 'tr%%'")
	add("attributes.status = 'RUNNING'")
	add("attributes.run_name LIKE 'r-%%'")
	add("attributes.start_time >= 0")
	for k := len(conds); k < search.MaxClauses; k++ {
		add("attributes.run_name != 'x%d'", k)
	}
	if len(conds) != search.MaxClauses {
		t.Fatalf("built %d conditions, want %d", len(conds), search.MaxClauses)
	}

	// Each variant changes the data of a run that satisfies every condition.
	type runData struct {
		metrics  map[string]float64
		params   map[string]string
		tags     map[string]string
		context  string // "" for no dataset input
		finished bool
	}
	variants := []struct {
		name   string
		change func(d *runData)
		match  bool
	}{
		{"all", func(d *runData) {}, true},
		{"nan-ne", func(d *runData) { d.metrics["m14"] = math.NaN() }, true},
		{"high-m0", func(d *runData) { d.metrics["m0"] = 0.5 }, true},
		{"nan-cmp", func(d *runData) { d.metrics["m0"] = math.NaN() }, false},
		{"m3-off", func(d *runData) { d.metrics["m3"] = 3.5 }, false},
		{"m5-second-cond", func(d *runData) { d.metrics["m5"] = 6 }, false},
		{"no-m4", func(d *runData) { delete(d.metrics, "m4") }, false},
		{"no-t3", func(d *runData) { delete(d.tags, "t3") }, false},
		{"no-p4", func(d *runData) { delete(d.params, "p4") }, false},
		{"p1-off", func(d *runData) { d.params["p1"] = "x1" }, false},
		{"t2-off", func(d *runData) { d.tags["t2"] = "w22" }, false},
		{"gone-param", func(d *runData) { d.params["gone0"] = "z" }, false},
		{"gone-tag", func(d *runData) { d.tags["gone8"] = "y" }, false},
		{"escape", func(d *runData) { d.params["esc"] = "axb1" }, false},
		{"context", func(d *runData) { d.context = "eval" }, false},
		{"no-dataset", func(d *runData) { d.context = "" }, false},
		{"finished", func(d *runData) { d.finished = true }, false},
	}

	forEachStore(t, func(t *testing.T, s *tracking.Store) {
		ctx := context.Background()
		exp, err := s.CreateExperiment(ctx, "many-conditions", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for n, v := range variants {
			d := runData{metrics: map[string]float64{}, params: map[string]string{"esc": "a_b1"}, tags: map[string]string{"a b": "x y"}, context: "training"}
			for i := 0; i < 50; i++ {
				d.metrics[fmt.Sprintf("m%d", i)] = float64(i)
				d.params[fmt.Sprintf("p%d", i)] = fmt.Sprintf("v%d", i)
				d.tags[fmt.Sprintf("t%d", i)] = fmt.Sprintf("w%d", i)
			}
			v.change(&d)
			r, err := s.CreateRun(ctx, tracking.RunCreate{ExperimentID: exp, RunName: "r-" + v.name, StartTime: int64(100 - n)})
			if err != nil {
				t.Fatal(err)
			}
			id := r.Info.RunID
			var ms []tracking.Metric
			for k, x := range d.metrics {
				ms = append(ms, metric(k, x, 1, 0))
			}
			var ps, ts []tracking.KV
			for k, x := range d.params {
				ps = append(ps, tracking.KV{Key: k, Value: x})
			}
			for k, x := range d.tags {
				ts = append(ts, tracking.KV{Key: k, Value: x})
			}
			// A batch holds at most 100 params and 100 tags.
			for len(ms)+len(ps)+len(ts) > 0 {
				np, nt := min(len(ps), 100), min(len(ts), 100)
				if err := s.LogBatch(ctx, id, ms, ps[:np], ts[:nt]); err != nil {
					t.Fatal(err)
				}
				ms, ps, ts = nil, ps[np:], ts[nt:]
			}
			if d.context != "" {
				if err := s.LogInputs(ctx, id, []tracking.DatasetInput{{
					Dataset: tracking.Dataset{Name: "train", Digest: "d1", SourceType: "local", Source: "x"},
					Tags:    []tracking.KV{{Key: tracking.TagDatasetCtx, Value: d.context}},
				}}, nil); err != nil {
					t.Fatal(err)
				}
			}
			if d.finished {
				fin := "FINISHED"
				if _, err := s.UpdateRun(ctx, id, tracking.RunUpdate{Status: &fin}); err != nil {
					t.Fatal(err)
				}
			}
			if v.match {
				want = append(want, "r-"+v.name)
			}
		}
		reversed := slices.Clone(conds)
		slices.Reverse(reversed)
		for _, tt := range []struct {
			name  string
			conds []string
			order []string
			want  []string
		}{
			{"in order", conds, nil, want}, // start_time DESC: variants in order
			{"reversed", reversed, nil, want},
			{"by metric", conds, []string{"metrics.m0 DESC"}, []string{"r-high-m0", "r-all", "r-nan-ne"}},
			{"by tag", reversed, []string{"tags.t0 ASC", "params.p1 DESC", "start_time ASC"}, []string{"r-high-m0", "r-nan-ne", "r-all"}},
		} {
			runs, _, err := s.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{exp}, Filter: strings.Join(tt.conds, " and "), OrderBy: tt.order})
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			var got []string
			for _, r := range runs {
				got = append(got, r.Info.RunName)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s: found %q, want %q", tt.name, got, tt.want)
			}
		}
	})
}
