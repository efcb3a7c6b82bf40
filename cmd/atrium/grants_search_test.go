package main

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"testing"

	"github.com/atrium-ml/atrium/internal/platform/auth"
)

// TestSearchesFilteredByGrants: experiments/search, registered-models/search
// and model-versions/search answer only what the caller may read (OWASP
// API1; MLflow's basic-auth app filters the same answers): a user's grants
// decide on their resources, the default permission on the others; admins
// see everything. Pages stay full across hidden rows, and walking the pages
// returns every readable item exactly once, whatever the page size.
func TestSearchesFilteredByGrants(t *testing.T) {
	apis, store, res := grantsServe(t, map[string]auth.Role{"ana": auth.Reader, "root": auth.Admin})
	ctx := context.Background()
	readerToken, _, err := store.CreateToken(ctx, "bot", auth.Reader, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := guardedCaching(t, apis, store, auth.GuardOptions{Required: true, Resources: res}).Handler()
	admin, ana := basicAuth("root", "pw-root"), basicAuth("ana", "pw-ana")
	token := map[string]string{"Authorization": "Bearer " + readerToken}

	// Ten experiments X0..X9 and ten models M0..M9 with a version each, made
	// by the admin (no creator grant).
	var run string
	for i := range 10 {
		id := mustCall(t, h, call{method: "POST", path: mlflow + "/experiments/create", body: fmt.Sprintf(`{"name": "X%d"}`, i), header: admin})["experiment_id"].(string)
		if i == 0 {
			run = mustCall(t, h, call{method: "POST", path: mlflow + "/runs/create", body: `{"experiment_id": "` + id + `"}`, header: admin})["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
		}
		m := fmt.Sprintf("M%d", i)
		mustCall(t, h, call{method: "POST", path: mlflow + "/registered-models/create", body: `{"name": "` + m + `"}`, header: admin})
		mustCall(t, h, call{method: "POST", path: mlflow + "/model-versions/create", body: `{"name": "` + m + `", "source": "runs:/` + run + `/model", "run_id": "` + run + `"}`, header: admin})
	}
	expID := func(name string) string {
		return mustCall(t, h, call{method: "GET", path: mlflow + "/experiments/get-by-name?experiment_name=" + name, header: admin})["experiment"].(map[string]any)["experiment_id"].(string)
	}
	// ana: READ on X1, X4, X7, M3, M8; NO_PERMISSIONS on X2 and M5; an
	// EDIT grant reads too (X9).
	for _, g := range []struct {
		kind  auth.Kind
		id    string
		level auth.Level
	}{
		{auth.KindExperiment, expID("X1"), auth.LevelRead}, {auth.KindExperiment, expID("X4"), auth.LevelRead},
		{auth.KindExperiment, expID("X7"), auth.LevelRead}, {auth.KindExperiment, expID("X9"), auth.LevelEdit},
		{auth.KindExperiment, expID("X2"), auth.NoPermissions},
		{auth.KindModel, "M3", auth.LevelRead}, {auth.KindModel, "M8", auth.LevelRead}, {auth.KindModel, "M5", auth.NoPermissions},
	} {
		if err := store.SetGrant(ctx, "ana", auth.Resource{Kind: g.kind, ID: g.id}, g.level); err != nil {
			t.Fatal(err)
		}
	}

	all := func(prefix string, without ...string) []string {
		var out []string
		if prefix == "X" {
			out = append(out, "Default")
		}
		for i := range 10 {
			if n := fmt.Sprintf("%s%d", prefix, i); !slices.Contains(without, n) {
				out = append(out, n)
			}
		}
		return out
	}
	// walk pages through a search, max_results at a time, and returns the
	// names in order; every page but the last must be full.
	walk := func(t *testing.T, who map[string]string, kind string, max int) []string {
		t.Helper()
		var names []string
		for token, pages := "", 0; ; pages++ {
			if pages > 50 {
				t.Fatalf("%s: more than 50 pages", kind)
			}
			q := url.Values{"max_results": {fmt.Sprint(max)}}
			if token != "" {
				q.Set("page_token", token)
			}
			var c call
			var list, field string
			switch kind {
			case "experiments":
				c, list, field = call{method: "GET", path: mlflow + "/experiments/search?" + q.Encode()}, "experiments", "name"
			case "models":
				c, list, field = call{method: "GET", path: mlflow + "/registered-models/search?" + q.Encode()}, "registered_models", "name"
			case "versions":
				q.Set("order_by", "name ASC")
				c, list, field = call{method: "GET", path: mlflow + "/model-versions/search?" + q.Encode()}, "model_versions", "name"
			}
			c.header = who
			out := mustCall(t, h, c)
			items, _ := out[list].([]any)
			for _, it := range items {
				names = append(names, it.(map[string]any)[field].(string))
			}
			token, _ = out["next_page_token"].(string)
			if token == "" {
				return names
			}
			if len(items) != max {
				t.Errorf("%s max_results %d: a page of %d items with a next page token", kind, max, len(items))
			}
		}
	}
	for _, def := range []string{"", "READ", "NO_PERMISSIONS"} {
		opts := auth.GuardOptions{Required: true, Resources: res}
		opts.DefaultPermission, _ = auth.ParseLevel(def)
		h = guardedCaching(t, apis, store, opts).Handler()
		type want struct {
			name string
			who  map[string]string
			kind string
			want []string
		}
		wants := []want{
			{"an admin sees every experiment", admin, "experiments", all("X")},
			{"an admin sees every model", admin, "models", all("M")},
			{"an admin sees every version", admin, "versions", all("M")},
		}
		if def == "NO_PERMISSIONS" {
			wants = append(wants,
				want{"ana: her grants' experiments", ana, "experiments", []string{"X1", "X4", "X7", "X9"}},
				want{"ana: her grants' models", ana, "models", []string{"M3", "M8"}},
				want{"ana: her grants' models' versions", ana, "versions", []string{"M3", "M8"}},
				want{"a token: no experiment", token, "experiments", nil},
				want{"a token: no model", token, "models", nil},
			)
		} else {
			wants = append(wants,
				want{"ana: all but X2", ana, "experiments", all("X", "X2")},
				want{"ana: all but M5", ana, "models", all("M", "M5")},
				want{"ana: all versions but M5's", ana, "versions", all("M", "M5")},
				want{"a token: every experiment", token, "experiments", all("X")},
				want{"a token: every model", token, "models", all("M")},
			)
		}
		for _, w := range wants {
			for _, max := range []int{1, 2, 3, 1000} {
				t.Run(fmt.Sprintf("default %q/%s/max %d", def, w.name, max), func(t *testing.T) {
					got := walk(t, w.who, w.kind, max)
					sorted := slices.Clone(got)
					slices.Sort(sorted)
					if !slices.Equal(slices.Compact(slices.Clone(sorted)), sorted) {
						t.Errorf("an item twice: %q", got)
					}
					want := slices.Clone(w.want)
					slices.Sort(want)
					if !slices.Equal(sorted, want) {
						t.Errorf("got %q, want %q", sorted, want)
					}
				})
			}
		}
	}
}
