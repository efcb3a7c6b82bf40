package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/profile"
	"github.com/atrium-ml/atrium/internal/demo"
	"github.com/atrium-ml/atrium/internal/monitoring/drift"
	"github.com/atrium-ml/atrium/internal/monitoring/model"
	"github.com/atrium-ml/atrium/internal/serving/predlog"
)

// Monitoring is what the monitor step needs beyond Serving: the model
// monitor on the project's stores (cmd/atrium builds it as `atrium monitor
// model` does).
type Monitoring interface {
	ModelMonitor() (*model.Monitor, error)
}

// shock is the price shock the monitor step injects: the rents of one
// neighbourhood's listings multiplied, as a botched price import would.
const shock = 1.8

// replaySessions is how many recent searches each slice of traffic replays.
const replaySessions = 150

// search is one replayed search: a user and the listings shown.
type search struct {
	user     int64
	listings []int64
}

// monitor records the ranker's training profile, replays the last day's
// searches through the served ranker, raises the rents of one
// neighbourhood's listings in the online store and replays them again, then
// runs the model monitor on the late slice: against the slice before, the
// rent features drift and nothing else, and per neighbourhood only the
// shocked one does.
func (r *runner) monitor(ctx context.Context) error {
	mon, err := r.Monitoring.ModelMonitor()
	if err != nil {
		return err
	}
	searches, hood, err := r.lastSearches(ctx)
	if err != nil {
		return err
	}
	url, stop, err := r.startServer()
	if err != nil {
		return err
	}
	defer stop()
	dir, err := r.Serving.PredictionLogDir()
	if err != nil {
		return err
	}

	// The reference is the profile atrium train recorded with the version
	// (the training set's features and the best trial's validation
	// predictions). It is read, never written again here: a profile
	// rebuilt from the training set alone would lose the prediction
	// distribution that the prediction drift check needs.
	last, err := predlog.Tail(ctx, dir, ModelName, time.Time{}, time.Time{}, 1)
	if err != nil || len(last) == 0 {
		return fmt.Errorf("monitor: the serve step's prediction log: %v", err)
	}
	ref, err := mon.ReferenceOf(ctx, ModelName, last[0].Version)
	if err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	prof := ref.Profile
	if prof.Prediction == nil {
		return fmt.Errorf("monitor: the training profile %s of %s version %s has no prediction distribution", ref.Path, ModelName, last[0].Version)
	}
	fmt.Fprintf(r.Out, "      the training profile of %s version %s recorded by atrium train (%d rows x %d inputs and %d validation predictions, samples of up to %d values) at %s\n",
		ModelName, last[0].Version, prof.Rows, len(prof.Columns), prof.Prediction.Count, profile.DefaultSampleSize, ref.Path)

	start := time.Now()
	if err := r.replay(ctx, url, searches); err != nil {
		return err
	}
	mid := time.Now()
	n, restore, err := r.shockRents(ctx, hood)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.Out, "      replayed %d recent searches, then raised the rent of the %d listings in %s x%.1f in the online store, and replayed them again\n",
		len(searches), n, hood, shock)
	if err := r.replay(ctx, url, searches); err != nil {
		return err
	}
	// The project is left as materialized: the shock lives on in the log only.
	if err := restore(ctx); err != nil {
		return err
	}
	if err := r.Serving.FlushPredictions(ctx); err != nil {
		return err
	}
	// The current window is the late slice, the previous one the slice
	// before the shock.
	window := max(time.Since(mid), mid.Sub(start)).Truncate(time.Second) + time.Second
	now := mid.Add(window)
	r.command("monitor", "model", ModelName, "--window", fmt.Sprintf("%ds", int(window.Seconds())))
	rep, err := mon.Compute(ctx, model.Request{Model: ModelName, Window: window, Now: now})
	if err != nil {
		return err
	}
	var moved, vsTraining []string
	for _, f := range rep.Features {
		if f.Previous != nil && f.Previous.Drift {
			moved = append(moved, fmt.Sprintf("%s (%s %.3g)", f.Name, f.Previous.Method, f.Previous.Score))
		}
		if f.Drift != nil && f.Drift.Drift {
			vsTraining = append(vsTraining, f.Name)
		}
	}
	fmt.Fprintf(r.Out, "        %d rows of version %s in the window (%d in the one before)\n", rep.Volume.Rows, rep.Version, int(rep.Volume.Previous))
	fmt.Fprintf(r.Out, "        against the window before the shock, %d of %d inputs drift: %s\n", len(moved), len(rep.Features), strings.Join(moved, ", "))
	fmt.Fprintf(r.Out, "        against the training profile, %d drift: %s (serving reads the latest values, training saw %d days of history)\n",
		len(vsTraining), strings.Join(vsTraining, ", "), r.testFrom)
	segs, err := rentByNeighbourhood(ctx, dir, start, mid, now)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.Out, "        rent per neighbourhood, late slice against the one before: drifted in %s\n", strings.Join(segs, ", "))
	if p := rep.Performance; p != nil && p.Message != "" {
		fmt.Fprintf(r.Out, "        %s\n", p.Message)
	}
	fmt.Fprintf(r.Out, "      (the window is the late slice, the previous one the slice before it; the online store is back as materialized)\n")
	fmt.Fprintf(r.Out, "      the full report, with histograms: atrium monitor model %s --window 1h --out report.html; alerts: monitors/*.yaml (docs/monitoring.md)\n", ModelName)
	return nil
}

// lastSearches returns replaySessions searches, the latest first (going
// back day by day; a small market's few searches are replayed in turn until
// there are enough), and the neighbourhood with the most listings shown in
// them.
func (r *runner) lastSearches(ctx context.Context) ([]search, string, error) {
	var out []search
	shown := map[int]int{}
	for d := r.Config.Days - 1; d >= 0 && len(out) < replaySessions; d-- {
		err := r.market.Day(ctx, d, func(s *demo.Session) error {
			if len(out) == replaySessions {
				return nil
			}
			q := search{user: s.User.ID}
			for _, im := range s.Impressions {
				q.listings = append(q.listings, im.Listing.ID)
				shown[im.Listing.Neighborhood]++
			}
			out = append(out, q)
			return nil
		})
		if err != nil {
			return nil, "", err
		}
	}
	if len(out) == 0 {
		return nil, "", fmt.Errorf("monitor: no search to replay")
	}
	for i := 0; len(out) < replaySessions; i++ {
		out = append(out, out[i])
	}
	best := 0
	for h, n := range shown {
		if n > shown[best] || (n == shown[best] && h < best) {
			best = h
		}
	}
	return out, demo.Neighborhoods[best].Name, nil
}

// replay ranks every search through the server.
func (r *runner) replay(ctx context.Context, url string, searches []search) error {
	for _, q := range searches {
		body, _ := json.Marshal(map[string]any{"context": map[string]any{"user_id": q.user}, "candidates": map[string]any{"listing_id": q.listings}})
		var out json.RawMessage
		if err := postJSON(ctx, url+"/v1/models/"+ModelName+"/rank", body, &out); err != nil {
			return err
		}
	}
	return nil
}

// listingSet and its columns (features/rentals.yaml).
var (
	listingSet     = "listing_profile"
	listingColumns = []string{"rent", "price_per_m2", "neighborhood"}
)

// shockRents multiplies rent and price_per_m2 of every listing of hood in
// the online store. The shocked rows keep their event time (a row of the
// same time overwrites), so that restore writes the materialized rows back
// exactly.
func (r *runner) shockRents(ctx context.Context, hood string) (int, func(context.Context) error, error) {
	st, err := r.Stores.Online()
	if err != nil {
		return 0, nil, err
	}
	var keys []online.Key
	for _, l := range r.market.Listings {
		if demo.Neighborhoods[l.Neighborhood].Name == hood {
			keys = append(keys, online.MustKey(l.ID))
		}
	}
	res := make([]online.Result, 1)
	if err := st.Read(ctx, []online.Query{{Set: listingSet, Features: listingColumns, Keys: keys}}, res); err != nil {
		return 0, nil, err
	}
	var shocked, orig []online.Row
	for j, k := range keys {
		if !res[0].Found[j] {
			continue
		}
		v := slices.Clone(res[0].Row(j))
		orig = append(orig, online.Row{Key: k, TS: res[0].TS[j], Values: slices.Clone(v)})
		for f := range 2 {
			if v[f].Kind() == online.KindFloat64 {
				v[f] = online.Float64(v[f].Float64() * shock)
			}
		}
		shocked = append(shocked, online.Row{Key: k, TS: res[0].TS[j], Values: v})
	}
	restore := func(ctx context.Context) error { return st.Write(ctx, listingSet, listingColumns, orig) }
	return len(shocked), restore, st.Write(ctx, listingSet, listingColumns, shocked)
}

// rentByNeighbourhood compares the rents served per neighbourhood between
// [start, mid) and [mid, end), and returns the neighbourhoods that drift.
func rentByNeighbourhood(ctx context.Context, dir string, start, mid, end time.Time) ([]string, error) {
	rows, err := predlog.Read(ctx, dir, ModelName, start, end)
	if err != nil {
		return nil, err
	}
	before, after := map[string][]float64{}, map[string][]float64{}
	for _, row := range rows {
		h := row.Categorical["neighborhood"]
		rent, ok := row.Features["rent"]
		if h == "" || !ok {
			continue
		}
		if row.Time.Before(mid) {
			before[h] = append(before[h], rent)
		} else {
			after[h] = append(after[h], rent)
		}
	}
	var out []string
	for h, b := range before {
		res, err := drift.CompareNumeric(h, b, after[h], drift.Options{})
		if err == nil && res.Drift {
			out = append(out, fmt.Sprintf("%s (%s %.3g)", h, res.Method, res.Score))
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		out = []string{"none"}
	}
	return out, nil
}
