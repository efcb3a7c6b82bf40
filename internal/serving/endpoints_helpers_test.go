package serving

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/ondemand"
	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/online/pebble"
	"github.com/atrium-ml/atrium/internal/data/retrieval"
	"github.com/atrium-ml/atrium/internal/modeling/gbdt"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/tracking"
)

// The feature world of the endpoint tests, a small rental marketplace:
//
//	user_profile     user_id    -> budget (float64)
//	listing_profile  listing_id -> rent (float64), rooms (int64), hood (string)
//	user_listing     on-demand  -> rent_to_budget = rent / budget,
//	                               rent_after_promo = rent - promo (promo: a request value)
//	service ranker_fs = user_profile:budget, listing_profile, user_listing
//	service visit_fs  = listing_profile:rent, listing_profile:rooms
//
// Users u1, u2; listings l0..l19, l7 in a neighbourhood no model knows;
// "nope" has no row.
var (
	hoods    = []string{"Mitte", "Kreuzberg", "Neukölln", "Wedding"}
	budgets  = map[string]float64{"u1": 2000, "u2": 1200}
	listings = func() map[string]listing {
		m := map[string]listing{}
		r := rand.New(rand.NewPCG(7, 7))
		for i := range 20 {
			l := listing{rent: 500 + float64(r.IntN(2000)), rooms: int64(1 + r.IntN(5)), hood: hoods[r.IntN(len(hoods))]}
			if i == 7 {
				l.hood = "Unknownville"
			}
			m["l"+strconv.Itoa(i)] = l
		}
		return m
	}()
)

type listing struct {
	rent  float64
	rooms int64
	hood  string
}

// countingStore counts the reads of the online store and the keys each set
// was read with.
type countingStore struct {
	online.Store
	mu    sync.Mutex
	reads int
	keys  map[string]int
}

func (s *countingStore) Read(ctx context.Context, queries []online.Query, results []online.Result) error {
	s.mu.Lock()
	s.reads++
	for _, q := range queries {
		s.keys[q.Set] += len(q.Keys)
	}
	s.mu.Unlock()
	return s.Store.Read(ctx, queries, results)
}

// counts returns the reads so far and the keys read of two sets.
func (s *countingStore) counts() (reads, users, listings int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads, s.keys["user_profile"], s.keys["listing_profile"]
}

// featureWorld opens a Pebble online store holding the world's rows and the
// online retrieval over it.
func featureWorld(t testing.TB) (*retrieval.Online, online.Store) {
	t.Helper()
	store, err := pebble.Open(filepath.Join(t.TempDir(), "online"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctx := context.Background()
	ts := time.Now().Add(-time.Hour)
	var users []online.Row
	for u, b := range budgets {
		users = append(users, online.Row{Key: online.MustKey(u), TS: ts, Values: []online.Value{online.Float64(b)}})
	}
	if err := store.Write(ctx, "user_profile", []string{"budget"}, users); err != nil {
		t.Fatal(err)
	}
	var rows []online.Row
	for id, l := range listings {
		rows = append(rows, online.Row{Key: online.MustKey(id), TS: ts,
			Values: []online.Value{online.Float64(l.rent), online.Int64(l.rooms), online.String(l.hood)}})
	}
	if err := store.Write(ctx, "listing_profile", []string{"rent", "rooms", "hood"}, rows); err != nil {
		t.Fatal(err)
	}
	prg, err := ondemand.Compile(
		[]ondemand.Var{{Name: "rent", Kind: online.KindFloat64}, {Name: "budget", Kind: online.KindFloat64}, {Name: "promo", Kind: online.KindFloat64}},
		[]ondemand.Expr{{Name: "rent_to_budget", Kind: online.KindFloat64, Source: "rent / budget"},
			{Name: "rent_after_promo", Kind: online.KindFloat64, Source: "rent - promo"}})
	if err != nil {
		t.Fatal(err)
	}
	defs := retrieval.Definitions{
		Sets: []retrieval.SetDef{
			{Name: "user_profile", JoinKeys: []retrieval.JoinKeyDef{{Name: "user_id", Type: retrieval.KeyString}},
				Features: []retrieval.FeatureDef{{Name: "budget", Type: online.KindFloat64}}},
			{Name: "listing_profile", JoinKeys: []retrieval.JoinKeyDef{{Name: "listing_id", Type: retrieval.KeyString}},
				Features: []retrieval.FeatureDef{{Name: "rent", Type: online.KindFloat64}, {Name: "rooms", Type: online.KindInt64}, {Name: "hood", Type: online.KindString}}},
		},
		OnDemand: []retrieval.OnDemandDef{{Name: "user_listing", Program: prg, Inputs: []string{"listing_profile:rent", "user_profile:budget", ""}}},
		Services: []retrieval.ServiceDef{
			{Name: "ranker_fs", Features: []string{"user_profile:budget", "listing_profile", "user_listing"}},
			{Name: "visit_fs", Features: []string{"listing_profile:rent", "listing_profile:rooms"}},
		},
	}
	cs := &countingStore{Store: store, keys: map[string]int{}}
	o, err := retrieval.NewOnline(cs, defs, retrieval.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return o, cs
}

// rankerFeatures are the ranker's inputs, in order.
var rankerFeatures = []string{"budget", "rent", "rooms", "hood", "rent_to_budget", "rent_after_promo"}

// trainModel fits a small GBDT on synthetic rows of the named features
// (hood categorical, the others numeric); seed changes the label, so two
// seeds give two models that score differently.
func trainModel(t testing.TB, objective string, features []string, seed uint64, iterations int) *modelfile.Model {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	const n = 600
	ds := &ml.Dataset{Label: make([]float64, n)}
	for _, f := range features {
		c := ml.Column{Name: f, Values: make([]float32, n)}
		if f == "hood" {
			c.Kind, c.Categories = ml.Categorical, hoods
		}
		ds.Columns = append(ds.Columns, c)
	}
	for i := range n {
		budget, rent, rooms, hood := 800+r.Float64()*2000, 500+r.Float64()*2000, float64(1+r.IntN(5)), r.IntN(len(hoods))
		vals := map[string]float64{"budget": budget, "rent": rent, "rooms": rooms, "hood": float64(hood),
			"rent_to_budget": rent / budget, "rent_after_promo": rent - 100*r.Float64()}
		for j, f := range features {
			ds.Columns[j].Values[i] = float32(vals[f])
		}
		z := -2*vals["rent"]/1000 + 0.4*rooms + float64(hood%2) + float64(seed%3) + r.NormFloat64()
		if objective == "binary" {
			if z > -1 {
				ds.Label[i] = 1
			}
		} else {
			ds.Label[i] = z
		}
	}
	p, err := gbdt.ParseParams(map[string]string{"objective": objective, "num_iterations": strconv.Itoa(iterations), "num_leaves": "15",
		"min_data_in_leaf": "5", "min_data_per_group": "5", "cat_smooth": "1", "seed": strconv.Itoa(int(seed))})
	if err != nil {
		t.Fatal(err)
	}
	gm, err := gbdt.Train(context.Background(), ds, nil, p, gbdt.TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := modelfile.NewGBDT(gm, ds)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// registerModel registers m as a new version of name with its feature
// service tag.
func (w *world) registerModel(t testing.TB, name string, m *modelfile.Model, service string) string {
	t.Helper()
	files, err := MLmodelFiles(m, timeZero)
	if err != nil {
		t.Fatal(err)
	}
	return w.register(t, name, files, tracking.KV{Key: FeatureServiceTag, Value: service})
}

// expectedRows builds, by hand from the world's values, the rows a model
// scores for (user, listing) pairs with a promo request value (NaN: none):
// the offline twin of what the endpoints fetch.
func expectedRows(d *Deployed, users, ids []string, promo float64) *ml.Dataset {
	ds := d.NewDataset(len(ids))
	for r, id := range ids {
		l, found := listings[id]
		budget, hasUser := budgets[users[r]]
		vals := map[string]float64{}
		if hasUser {
			vals["budget"] = budget
		}
		if found {
			vals["rent"], vals["rooms"] = l.rent, float64(l.rooms)
			if hasUser {
				vals["rent_to_budget"] = l.rent / budget
			}
			if !math.IsNaN(promo) {
				vals["rent_after_promo"] = l.rent - promo
			}
		}
		for j, in := range d.Inputs {
			c := &ds.Columns[j]
			if in.Kind == ml.Categorical {
				for code, h := range hoods {
					if found && l.hood == h {
						c.Values[r] = float32(code)
					}
				}
				continue
			}
			if v, ok := vals[in.Name]; ok {
				c.Float64[r] = v
			}
		}
	}
	return ds
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// serve mounts the endpoints on the real server (request ids, routing).
func serve(t testing.TB, e *Endpoints) *httptest.Server {
	t.Helper()
	srv := server.New(server.Options{Logger: slog.New(slog.DiscardHandler)}, e)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

// post sends a JSON body and decodes the answer into out (when not nil).
func post(t testing.TB, ts *httptest.Server, path, body string, header map[string]string, out any) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("POST", ts.URL+path, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %v: %s", path, err, b)
		}
	}
	return resp.StatusCode, resp.Header, string(b)
}
