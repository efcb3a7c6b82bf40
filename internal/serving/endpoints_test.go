package serving

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/atrium-ml/atrium/internal/serving/predlog"
)

// rankSetup is a registry with the ranker (binary, service ranker_fs) and
// the visit model (regression, service visit_fs) at champion, a Service
// following them, the endpoints over the feature world, and the prediction
// log they write to.
type rankSetup struct {
	w       *world
	svc     *Service
	e       *Endpoints
	store   *countingStore
	logDir  string
	log     *predlog.Writer
	ranker  *Deployed
	visit   *Deployed
	rankerV string
}

func newRankSetup(t *testing.T, opts EndpointOptions, models ...ModelConfig) *rankSetup {
	t.Helper()
	ctx := context.Background()
	w := newWorld(t)
	rv := w.registerModel(t, "ranker", trainModel(t, "binary", rankerFeatures, 1, 20), "ranker_fs")
	w.alias(t, "ranker", "champion", rv)
	vv := w.registerModel(t, "visit", trainModel(t, "regression", []string{"rent", "rooms"}, 2, 10), "visit_fs")
	w.alias(t, "visit", "champion", vv)
	o, store := featureWorld(t)
	dir := t.TempDir()
	lw, err := predlog.Open(ctx, predlog.Options{Dir: dir, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lw.Close(context.Background()) })
	svc := New(w.loader, Options{PollInterval: 10 * time.Millisecond, PredictionLog: lw, Models: models})
	svc.Start(ctx)
	t.Cleanup(func() { svc.Close() })
	opts.Online = o
	e, err := NewEndpoints(svc, opts)
	if err != nil {
		t.Fatal(err)
	}
	s := &rankSetup{w: w, svc: svc, e: e, store: store.(*countingStore), logDir: dir, log: lw, rankerV: rv}
	if s.ranker, err = svc.Resolve(ctx, "ranker", "", ""); err != nil {
		t.Fatal(err)
	}
	if s.visit, err = svc.Resolve(ctx, "visit", "", ""); err != nil {
		t.Fatal(err)
	}
	return s
}

// offline scores the rows expectedRows builds: what the endpoints must
// answer.
func offline(t *testing.T, d *Deployed, users, ids []string, promo float64) []float64 {
	t.Helper()
	p, err := d.Model().Predict(expectedRows(d, users, ids, promo))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type predictAnswer struct {
	ModelName    string           `json:"model_name"`
	ModelVersion string           `json:"model_version"`
	RequestID    string           `json:"request_id"`
	Predictions  []float64        `json:"predictions"`
	Missing      map[string]int   `json:"missing"`
	Features     map[string][]any `json:"features"`
}

// Predict fetches each row's user and listing features, computes the
// on-demand ones with the request's promo, and scores exactly what the same
// rows score offline; a listing without a row, and a category the model does
// not know, are missing values, counted.
func TestPredictEqualsOfflineRows(t *testing.T) {
	s := newRankSetup(t, EndpointOptions{})
	ts := serve(t, s.e)
	users := []string{"u1", "u1", "u2", "u2", "u1"}
	ids := []string{"l0", "l1", "l2", "nope", "l7"}
	body := `{"entities": {"user_id": ["u1", "u1", "u2", "u2", "u1"], "listing_id": ["l0", "l1", "l2", "nope", "l7"]},
		"features": {"promo": 100}, "return_features": true}`
	var got predictAnswer
	code, h, raw := post(t, ts, "/v1/models/ranker/predict", body, map[string]string{"X-Request-Id": "req-predict-1"}, &got)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, raw)
	}
	if got.ModelName != "ranker" || got.ModelVersion != s.rankerV || got.RequestID != "req-predict-1" || h.Get("X-Request-Id") != "req-predict-1" {
		t.Fatalf("answer names %s v%s request %s (header %s)", got.ModelName, got.ModelVersion, got.RequestID, h.Get("X-Request-Id"))
	}
	closeTo(t, "predict", got.Predictions, offline(t, s.ranker, users, ids, 100))
	// "nope" misses its listing's 3 features and the 2 on-demand ones
	// reading rent; l7's neighbourhood is unknown to the model.
	want := map[string]int{"rent": 1, "rooms": 1, "hood": 2, "rent_to_budget": 1, "rent_after_promo": 1}
	if fmt.Sprint(got.Missing) != fmt.Sprint(want) {
		t.Fatalf("missing = %v, want %v", got.Missing, want)
	}
	if n := testutil.ToFloat64(s.e.m.missing.WithLabelValues("ranker", s.rankerV, "hood")); n != 2 {
		t.Fatalf("missing-values metric for hood = %v, want 2", n)
	}
	rtb := got.Features["rent_to_budget"]
	if len(rtb) != 5 || rtb[0] != listings["l0"].rent/2000 || rtb[3] != nil || got.Features["hood"][4] != nil || got.Features["hood"][0] != listings["l0"].hood {
		t.Fatalf("features returned: %v", got.Features)
	}

	// Without the request value, rent_after_promo is missing on every row;
	// a scalar entity is every row's.
	body = `{"entities": {"user_id": "u2", "listing_id": ["l3", "l4"]}}`
	got = predictAnswer{}
	code, _, raw = post(t, ts, "/v1/models/ranker/predict", body, nil, &got)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, raw)
	}
	closeTo(t, "predict without promo", got.Predictions, offline(t, s.ranker, []string{"u2", "u2"}, []string{"l3", "l4"}, math.NaN()))
	if got.Missing["rent_after_promo"] != 2 || got.Features != nil {
		t.Fatalf("missing = %v, features %v", got.Missing, got.Features)
	}
}

type rankAnswer struct {
	ModelName    string                           `json:"model_name"`
	ModelVersion string                           `json:"model_version"`
	Ranker       string                           `json:"ranker"`
	Models       []struct{ Name, Version string } `json:"models"`
	RequestID    string                           `json:"request_id"`
	Ranked       []map[string]any                 `json:"ranked"`
	Missing      map[string]int                   `json:"missing"`
}

// Rank reads the user once and the candidates in the same single store
// read, and returns the candidates by the scores the same rows get offline.
func TestRankOrdersCandidatesByOfflineScore(t *testing.T) {
	s := newRankSetup(t, EndpointOptions{})
	ts := serve(t, s.e)
	ids := []string{"l0", "l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8", "nope"}
	body := `{"context": {"user_id": "u1"}, "candidates": {"listing_id": ["` + strings.Join(ids, `","`) + `"]},
		"features": {"promo": 50}, "top_k": 4}`
	reads, userKeys, listingKeys := s.store.counts()
	var got rankAnswer
	code, _, raw := post(t, ts, "/v1/models/ranker/rank", body, nil, &got)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, raw)
	}
	r, u, l := s.store.counts()
	if r, u, l := r-reads, u-userKeys, l-listingKeys; r != 1 || u != 1 || l != len(ids) {
		t.Fatalf("%d store reads, user keys %d, listing keys %d: want 1 read, the user once, each candidate once", r, u, l)
	}
	scores := offline(t, s.ranker, repeat("u1", len(ids)), ids, 50)
	order := make([]int, len(ids))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return scores[order[a]] > scores[order[b]] })
	if len(got.Ranked) != 4 || got.ModelVersion != s.rankerV || got.RequestID == "" {
		t.Fatalf("answer: %s", raw)
	}
	for i, c := range got.Ranked {
		want := order[i]
		if c["listing_id"] != ids[want] || math.Abs(c["score"].(float64)-scores[want]) > 1e-12 {
			t.Fatalf("ranked[%d] = %v, want %s with %v (all: %s)", i, c, ids[want], scores[want], raw)
		}
	}
	if got.Missing["rent"] != 1 || got.Missing["hood"] != 2 {
		t.Fatalf("missing = %v", got.Missing)
	}
}

// Bad requests are 4xx naming the part at fault; never a 500.
func TestEndpointErrors(t *testing.T) {
	s := newRankSetup(t, EndpointOptions{MaxCandidates: 5, Rankers: []RankerConfig{{Name: "r", Models: []RankerModel{{Name: "ranker"}}, Score: "ranker"}}})
	ts := serve(t, s.e)
	for _, tc := range []struct {
		name, path, body string
		code             int
		says             string
	}{
		{"too many candidates", "/v1/models/ranker/rank", `{"context": {"user_id": "u1"}, "candidates": {"listing_id": ["a","b","c","d","e","f"]}}`, 413, "at most 5"},
		{"too many rows", "/v1/models/ranker/predict", `{"entities": {"user_id": "u1", "listing_id": ["a","b","c","d","e","f"]}}`, 413, "at most 5"},
		{"too many request values", "/v1/models/ranker/predict", `{"entities": {"user_id": "u1", "listing_id": "l1"}, "features": {"promo": [1, 2, 3, 4, 5, 6]}}`, 413, "features.promo has 6 values, at most 5 per request (serving.max_candidates)"},
		{"missing context key", "/v1/models/ranker/rank", `{"candidates": {"listing_id": ["l1"]}}`, 400, "missing user_id"},
		{"missing entity key", "/v1/models/ranker/predict", `{"entities": {"listing_id": ["l1"]}}`, 400, "missing user_id"},
		{"no candidates", "/v1/models/ranker/rank", `{"context": {"user_id": "u1"}}`, 400, "candidates: missing"},
		{"scalar candidates", "/v1/models/ranker/rank", `{"context": {"user_id": "u1"}, "candidates": {"listing_id": "l1"}}`, 400, "candidates.listing_id"},
		{"ragged candidates", "/v1/models/ranker/rank", `{"context": {"user_id": "u1"}, "candidates": {"listing_id": ["l1"], "x": [1, 2]}}`, 400, "send one value per row"},
		{"number for a string key", "/v1/models/ranker/rank", `{"context": {"user_id": 7}, "candidates": {"listing_id": ["l1"]}}`, 400, "context.user_id: want strings"},
		{"null context", "/v1/models/ranker/rank", `{"context": {"user_id": null}, "candidates": {"listing_id": ["l1"]}}`, 400, "context.user_id"},
		{"unknown member", "/v1/models/ranker/rank", `{"context": {"user_id": "u1"}, "candidate": {"listing_id": ["l1"]}}`, 400, `unknown field`},
		{"malformed", "/v1/models/ranker/rank", `{"context": `, 400, "body"},
		{"malformed null", "/v1/models/ranker/predict", `{"entities": nul}`, 400, "body: "},
		{"malformed list", "/v1/models/ranker/rank", `{"context": {"user_id": "u1"}, "candidates": {"listing_id": ["l1" "l2"]}}`, 400, "candidates.listing_id[1]"},
		{"two values", "/v1/models/ranker/rank", `{"context": {"user_id": "u1"}, "candidates": {"listing_id": ["l1"]}} {}`, 400, "more than one JSON value"},
		{"not an object", "/v1/models/ranker/rank", `["l1"]`, 400, "body: want an object, got a list"},
		{"a member twice", "/v1/models/ranker/rank", `{"context": {"user_id": "u1", "user_id": "u2"}, "candidates": {"listing_id": ["l1"]}}`, 400, "duplicate"},
		{"invalid UTF-8", "/v1/models/ranker/rank", "{\"context\": {\"user_id\": \"u\xff\"}, \"candidates\": {\"listing_id\": [\"l1\"]}}", 400, "UTF-8"},
		{"fractional top_k", "/v1/models/ranker/rank", `{"context": {"user_id": "u1"}, "candidates": {"listing_id": ["l1"]}, "top_k": 1.5}`, 400, "top_k: want a whole number"},
		{"long routing key", "/v1/models/ranker/rank", `{"context": {"user_id": "u1"}, "candidates": {"listing_id": ["l1"]}, "routing_key": "` + strings.Repeat("u", 257) + `"}`, 400, "routing_key: want at most 256 bytes, got 257"},
		{"numeric version", "/v1/models/ranker/rank", `{"context": {"user_id": "u1"}, "candidates": {"listing_id": ["l1"]}, "version": 1}`, 400, "version: want a string"},
		{"text return_features", "/v1/models/ranker/predict", `{"entities": {"user_id": "u1", "listing_id": ["l1"]}, "return_features": "yes"}`, 400, "return_features: want true or false"},
		{"negative top_k", "/v1/models/ranker/rank", `{"context": {"user_id": "u1"}, "candidates": {"listing_id": ["l1"]}, "top_k": -1}`, 400, "top_k"},
		{"unknown request value", "/v1/models/ranker/rank", `{"context": {"user_id": "u1"}, "candidates": {"listing_id": ["l1"]}, "features": {"promo_code": 1}}`, 400, "features.promo_code"},
		{"text request value", "/v1/models/ranker/rank", `{"context": {"user_id": "u1"}, "candidates": {"listing_id": ["l1"]}, "features": {"promo": "ten"}}`, 400, "features.promo"},
		{"text for a numeric input", "/v1/models/ranker/predict", `{"entities": {"user_id": "u1", "listing_id": ["l1"]}, "features": {"rooms": "three"}}`, 400, "features.rooms"},
		{"nested value", "/v1/models/ranker/predict", `{"entities": {"user_id": "u1", "listing_id": [["l1"]]}}`, 400, "entities.listing_id[0]"},
		{"bad version", "/v1/models/ranker/predict?version=abc", `{"entities": {"user_id": "u1", "listing_id": ["l1"]}}`, 400, "version"},
		{"unknown version", "/v1/models/ranker/predict?version=99", `{"entities": {"user_id": "u1", "listing_id": ["l1"]}}`, 404, "99"},
		{"unknown model", "/v1/models/nobody/rank", `{"context": {"user_id": "u1"}, "candidates": {"listing_id": ["l1"]}}`, 404, "nobody"},
		{"unknown ranker", "/v1/rankers/nobody/rank", `{"context": {"user_id": "u1"}, "candidates": {"listing_id": ["l1"]}}`, 404, "declares r"},
		{"version on a ranker", "/v1/rankers/r/rank?version=1", `{"context": {"user_id": "u1"}, "candidates": {"listing_id": ["l1"]}}`, 400, "version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, raw := post(t, ts, tc.path, tc.body, nil, nil)
			if code != tc.code || !strings.Contains(raw, tc.says) {
				t.Fatalf("%d %s, want %d saying %q", code, raw, tc.code, tc.says)
			}
		})
	}
	if n := testutil.ToFloat64(s.e.m.errors.WithLabelValues("rank", "ranker", "input")); n != 20 {
		t.Fatalf("input errors of rank counted %v", n)
	}
}

// A request of no rows answers no rows, also beside a key sent once for
// every row (the user of a ranking): that key's sets are then not read.
func TestEmptyRequestsAnswerEmpty(t *testing.T) {
	s := newRankSetup(t, EndpointOptions{Rankers: []RankerConfig{{Name: "r", Models: []RankerModel{{Name: "ranker"}}, Score: "ranker"}}})
	ts := serve(t, s.e)
	for _, tc := range []struct {
		name, path, body, list string
	}{
		{"rank", "/v1/models/ranker/rank", `{"context": {"user_id": "u1"}, "candidates": {"listing_id": []}, "top_k": 3}`, "ranked"},
		{"ranker", "/v1/rankers/r/rank", `{"context": {"user_id": "u1"}, "candidates": {"listing_id": []}}`, "ranked"},
		{"predict", "/v1/models/ranker/predict", `{"entities": {"user_id": "u1", "listing_id": []}}`, "predictions"},
		{"predict, a request value", "/v1/models/ranker/predict", `{"entities": {"user_id": "u1", "listing_id": "l1"}, "features": {"promo": []}}`, "predictions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got map[string]json.RawMessage
			code, _, raw := post(t, ts, tc.path, tc.body, nil, &got)
			if code != http.StatusOK || string(got[tc.list]) != "[]" {
				t.Fatalf("%d %s, want 200 with %s: []", code, raw, tc.list)
			}
		})
	}
}

// A ranker scores its models on the same rows (the union of their features,
// read once) and orders by its expression; each model's score is the one it
// gives alone.
func TestRankerCombinesModels(t *testing.T) {
	s := newRankSetup(t, EndpointOptions{Rankers: []RankerConfig{{Name: "search",
		Models: []RankerModel{{Name: "ranker"}, {Name: "visit"}}, Score: "0.7 * ranker + 0.3 * visit / 100.0"}}})
	ts := serve(t, s.e)
	ids := []string{"l3", "l9", "l11", "nope", "l14"}
	reads, _, _ := s.store.counts()
	var got rankAnswer
	code, _, raw := post(t, ts, "/v1/rankers/search/rank", `{"context": {"user_id": "u2"}, "candidates": {"listing_id": ["`+strings.Join(ids, `","`)+`"]}, "features": {"promo": 0}}`, nil, &got)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, raw)
	}
	if r, _, _ := s.store.counts(); r-reads != 1 {
		t.Fatalf("%d store reads for two models, want one", r-reads)
	}
	if got.Ranker != "search" || len(got.Models) != 2 || got.Models[0].Name != "ranker" || got.Models[1].Version != s.visit.Version {
		t.Fatalf("answer: %s", raw)
	}
	rs := offline(t, s.ranker, repeat("u2", len(ids)), ids, 0)
	vs := offline(t, s.visit, repeat("u2", len(ids)), ids, 0)
	prev := math.Inf(1)
	for _, c := range got.Ranked {
		i := slices.Index(ids, c["listing_id"].(string))
		sc := c["scores"].(map[string]any)
		want := 0.7*rs[i] + 0.3*vs[i]/100
		if math.Abs(sc["ranker"].(float64)-rs[i]) > 1e-12 || math.Abs(sc["visit"].(float64)-vs[i]) > 1e-12 || math.Abs(c["score"].(float64)-want) > 1e-12 {
			t.Fatalf("candidate %v, want ranker %v visit %v score %v", c, rs[i], vs[i], want)
		}
		if c["score"].(float64) > prev {
			t.Fatalf("not in score order: %s", raw)
		}
		prev = c["score"].(float64)
	}
	if len(got.Ranked) != len(ids) {
		t.Fatalf("%d ranked, want %d", len(got.Ranked), len(ids))
	}

	// A score expression that does not compile is refused with the ranker's name.
	_, err := NewEndpoints(s.svc, EndpointOptions{Rankers: []RankerConfig{{Name: "broken", Models: []RankerModel{{Name: "ranker"}}, Score: "ranker +"}}})
	if err == nil || !strings.Contains(err.Error(), "ranker broken") {
		t.Fatalf("bad expression: %v", err)
	}
}

// Every scored request reaches the prediction log with its id, keys, the
// features scored and the scores: what a reader gets back is what was
// answered.
func TestScoredRequestsAreLogged(t *testing.T) {
	s := newRankSetup(t, EndpointOptions{})
	ts := serve(t, s.e)
	var pr predictAnswer
	if code, _, raw := post(t, ts, "/v1/models/ranker/predict", `{"entities": {"user_id": ["u1", "u2"], "listing_id": ["l1", "nope"]}, "features": {"promo": 10}}`,
		map[string]string{"X-Request-Id": "log-predict"}, &pr); code != 200 {
		t.Fatalf("predict %d %s", code, raw)
	}
	var rk rankAnswer
	if code, _, raw := post(t, ts, "/v1/models/ranker/rank", `{"context": {"user_id": "u1"}, "candidates": {"listing_id": ["l2", "l3", "l4"]}}`,
		map[string]string{"X-Request-Id": "log-rank"}, &rk); code != 200 {
		t.Fatalf("rank %d %s", code, raw)
	}
	if err := s.log.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := predlog.Read(context.Background(), s.logDir, "ranker", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	byReq := map[string][]predlog.Row{}
	for _, r := range rows {
		byReq[r.RequestID] = append(byReq[r.RequestID], r)
	}
	p := byReq["log-predict"]
	if len(p) != 2 {
		t.Fatalf("%d logged rows of the predict request, want 2 (all: %+v)", len(p), rows)
	}
	sort.Slice(p, func(a, b int) bool { return p[a].Row < p[b].Row })
	for i, r := range p {
		if r.Route != predlog.RoutePredict || r.Version != s.rankerV || len(r.Scores) != 1 || r.Scores[0] != pr.Predictions[i] {
			t.Fatalf("logged row %d: %+v, answered %v", i, r, pr.Predictions[i])
		}
	}
	if p[0].Entities["listing_id"] != "l1" || p[1].Entities["user_id"] != "u2" {
		t.Fatalf("logged entities %v %v", p[0].Entities, p[1].Entities)
	}
	if v := p[0].Features["rent_after_promo"]; v != listings["l1"].rent-10 {
		t.Fatalf("logged rent_after_promo %v (%T), want %v", v, v, listings["l1"].rent-10)
	}
	if v := p[1].Features["promo"]; v != 10 {
		t.Fatalf("the request value promo (read by on-demand features) is logged as %v, want 10", v)
	}
	if v, ok := p[1].Features["rent"]; ok {
		t.Fatalf("a missing listing's rent is logged as %v, want NULL", v)
	}
	r := byReq["log-rank"]
	if len(r) != 3 || r[0].Entities["user_id"] != "u1" || r[0].Route != predlog.RouteRank {
		t.Fatalf("logged rank rows: %+v", r)
	}
}

// Moving the alias while rank requests run: no request fails, and every
// answer's scores are all the scores of the version it names.
func TestHotSwapUnderRankLoad(t *testing.T) {
	s := newRankSetup(t, EndpointOptions{})
	ts := serve(t, s.e)
	v1 := s.rankerV
	v2 := s.w.registerModel(t, "ranker", trainModel(t, "binary", rankerFeatures, 5, 20), "ranker_fs")
	ctx := context.Background()
	d2, err := s.svc.Resolve(ctx, "ranker", v2, "")
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"l0", "l1", "l2", "l3", "l4", "l5", "l6", "l8", "l9", "l10", "l11", "l12"}
	want := map[string]map[string]float64{}
	for _, d := range []*Deployed{s.ranker, d2} {
		sc := offline(t, d, repeat("u1", len(ids)), ids, math.NaN())
		want[d.Version] = map[string]float64{}
		for i, id := range ids {
			want[d.Version][id] = sc[i]
		}
	}
	if fmt.Sprint(want[v1]) == fmt.Sprint(want[v2]) {
		t.Fatal("the two versions score alike: the test could not see mixing")
	}
	body := `{"context": {"user_id": "u1"}, "candidates": {"listing_id": ["` + strings.Join(ids, `","`) + `"]}}`
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	var failures []string
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var got rankAnswer
				code, _, raw := post(t, ts, "/v1/models/ranker/rank", body, nil, &got)
				mu.Lock()
				if code != http.StatusOK {
					failures = append(failures, fmt.Sprintf("%d %s", code, raw))
				} else {
					seen[got.ModelVersion]++
					for _, c := range got.Ranked {
						if w := want[got.ModelVersion][c["listing_id"].(string)]; math.Abs(c["score"].(float64)-w) > 1e-12 {
							failures = append(failures, fmt.Sprintf("version %s answered %v for %v (its score %v): mixed versions", got.ModelVersion, c["score"], c["listing_id"], w))
						}
					}
				}
				mu.Unlock()
			}
		}()
	}
	for i := range 6 {
		v := v2
		if i%2 == 1 {
			v = v1
		}
		s.w.alias(t, "ranker", "champion", v)
		deadline := time.Now().Add(5 * time.Second)
		for {
			d, err := s.svc.Resolve(ctx, "ranker", "", "")
			if err == nil && d.Version == v {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the alias moved to %s but the service did not follow", v)
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(30 * time.Millisecond) // requests run on the new version for a while
	}
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d failures, first: %s", len(failures), failures[0])
	}
	if seen[v1] == 0 || seen[v2] == 0 {
		t.Fatalf("answers by version %v: both versions should have answered", seen)
	}
}

// A ranker's model with an alias of its own follows that alias, not the
// model's champion, and moves with it.
func TestRankerFollowsItsAlias(t *testing.T) {
	s := newRankSetup(t, EndpointOptions{Rankers: []RankerConfig{{Name: "search",
		Models: []RankerModel{{Name: "ranker"}, {Name: "visit", Alias: "challenger"}}, Score: "ranker + visit"}}})
	ts := serve(t, s.e)
	v2 := s.w.registerModel(t, "visit", trainModel(t, "regression", []string{"rent", "rooms"}, 3, 10), "visit_fs")
	v3 := s.w.registerModel(t, "visit", trainModel(t, "regression", []string{"rent", "rooms"}, 4, 10), "visit_fs")
	body := `{"context": {"user_id": "u1"}, "candidates": {"listing_id": ["l1", "l2"]}}`
	if code, _, raw := post(t, ts, "/v1/rankers/search/rank", body, nil, nil); code != http.StatusNotFound || !strings.Contains(raw, `has no alias`) {
		t.Fatalf("without the alias: %d %s", code, raw)
	}
	s.w.alias(t, "visit", "challenger", v2)
	version := func() string {
		var got rankAnswer
		if code, _, raw := post(t, ts, "/v1/rankers/search/rank", body, nil, &got); code != http.StatusOK {
			t.Fatalf("%d %s", code, raw)
		}
		return got.Models[1].Version
	}
	if v := version(); v != v2 {
		t.Fatalf("visit answered with version %s, challenger is %s (champion %s)", v, v2, s.visit.Version)
	}
	s.w.alias(t, "visit", "challenger", v3)
	deadline := time.Now().Add(5 * time.Second)
	for version() != v3 {
		if time.Now().After(deadline) {
			t.Fatalf("challenger moved to %s, the ranker did not follow", v3)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st, _ := s.svc.Status("visit"); len(st) != 2 || st[1].Role != "alias" || st[1].Serving != v3 {
		t.Fatalf("status %+v", st)
	}
}

// A canary splits rank requests by their context (the user): the same user
// always gets the same version, and both versions answer some users.
func TestRankCanaryByUser(t *testing.T) {
	s := newRankSetup(t, EndpointOptions{}, ModelConfig{Name: "ranker", Canary: &Canary{Alias: "challenger", Weight: 0.5}})
	ts := serve(t, s.e)
	v2 := s.w.registerModel(t, "ranker", trainModel(t, "binary", rankerFeatures, 6, 20), "ranker_fs")
	s.w.alias(t, "ranker", "challenger", v2)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if st, _ := s.svc.Status("ranker"); len(st) == 2 && st[1].Serving == v2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the canary's version did not load")
		}
		time.Sleep(10 * time.Millisecond)
	}
	byVersion := map[string]int{}
	for u := range 40 {
		user := fmt.Sprintf("user-%d", u)
		var first string
		for range 3 {
			var got rankAnswer
			if code, _, raw := post(t, ts, "/v1/models/ranker/rank", `{"context": {"user_id": "`+user+`"}, "candidates": {"listing_id": ["l1"]}}`, nil, &got); code != http.StatusOK {
				t.Fatalf("%d %s", code, raw)
			}
			if first != "" && got.ModelVersion != first {
				t.Fatalf("%s got version %s, then %s", user, first, got.ModelVersion)
			}
			first = got.ModelVersion
		}
		byVersion[first]++
	}
	if byVersion[s.rankerV] == 0 || byVersion[v2] == 0 {
		t.Fatalf("users by version %v: a 50%% canary should serve both", byVersion)
	}
}

// A shadow scores a rank request's rows off the response path; its rows go
// to the prediction log under the request's id, next to the primary's.
func TestRankShadowIsLogged(t *testing.T) {
	s := newRankSetup(t, EndpointOptions{}, ModelConfig{Name: "ranker", ShadowAlias: "shadow"})
	ts := serve(t, s.e)
	v2 := s.w.registerModel(t, "ranker", trainModel(t, "binary", rankerFeatures, 8, 20), "ranker_fs")
	s.w.alias(t, "ranker", "shadow", v2)
	deadline := time.Now().Add(5 * time.Second)
	for s.svc.ShadowOf(s.ranker) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the shadow version did not load")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var got rankAnswer
	if code, _, raw := post(t, ts, "/v1/models/ranker/rank", `{"context": {"user_id": "u2"}, "candidates": {"listing_id": ["l4", "l5"]}}`,
		map[string]string{"X-Request-Id": "shadowed"}, &got); code != http.StatusOK || got.ModelVersion != s.rankerV {
		t.Fatalf("%d %s", code, raw)
	}
	for testutil.ToFloat64(s.svc.m.shadow.WithLabelValues("ranker", "scored")) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the shadow did not score")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.log.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := predlog.Read(context.Background(), s.logDir, "ranker", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := offline(t, mustResolve(t, s.svc, v2), []string{"u2", "u2"}, []string{"l4", "l5"}, math.NaN())
	var shadow []predlog.Row
	for _, r := range rows {
		if r.RequestID == "shadowed" && r.Route == predlog.RouteShadow {
			shadow = append(shadow, r)
		}
	}
	sort.Slice(shadow, func(a, b int) bool { return shadow[a].Row < shadow[b].Row })
	if len(shadow) != 2 || shadow[0].Version != v2 || shadow[0].Entities["user_id"] != "u2" || shadow[1].Entities["listing_id"] != "l5" {
		t.Fatalf("shadow rows %+v", shadow)
	}
	for i, r := range shadow {
		if math.Abs(r.Scores[0]-want[i]) > 1e-12 {
			t.Fatalf("shadow row %d logged %v, the shadow version scores %v", i, r.Scores, want[i])
		}
	}
}

func mustResolve(t *testing.T, svc *Service, version string) *Deployed {
	t.Helper()
	d, err := svc.Resolve(context.Background(), "ranker", version, "")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// When every join key is a single value but the request has several rows
// (one user and listing with several request values, or candidates that
// differ only in non-key values), each row is that entity's: the store
// answers one row per request row, not one row for all.
func TestSingleEntitySeveralRows(t *testing.T) {
	s := newRankSetup(t, EndpointOptions{})
	ts := serve(t, s.e)
	var got predictAnswer
	code, _, raw := post(t, ts, "/v1/models/ranker/predict", `{"entities": {"user_id": "u1", "listing_id": "l1"}, "features": {"promo": [0, 500, 1500]}, "return_features": true}`, nil, &got)
	if code != http.StatusOK || len(got.Predictions) != 3 {
		t.Fatalf("predict: %d %s", code, raw)
	}
	for i, promo := range []float64{0, 500, 1500} {
		closeTo(t, fmt.Sprintf("predict promo %v", promo), got.Predictions[i:i+1], offline(t, s.ranker, []string{"u1"}, []string{"l1"}, promo))
		if want := listings["l1"].rent - promo; got.Features["rent_after_promo"][i] != want {
			t.Fatalf("row %d: rent_after_promo %v, want %v", i, got.Features["rent_after_promo"][i], want)
		}
	}

	var ranked rankAnswer
	code, _, raw = post(t, ts, "/v1/models/ranker/rank", `{"context": {"user_id": "u1", "listing_id": "l1"}, "candidates": {"slot": [1, 2, 3]}}`, nil, &ranked)
	if code != http.StatusOK || len(ranked.Ranked) != 3 {
		t.Fatalf("rank: %d %s", code, raw)
	}
	want := offline(t, s.ranker, []string{"u1"}, []string{"l1"}, math.NaN())
	for i, r := range ranked.Ranked {
		closeTo(t, fmt.Sprintf("rank candidate %d", i), []float64{r["score"].(float64)}, want)
	}
}

// topK keeps equal scores in request order, among many ties (where an
// unstable sort would mix them up without its tie-break on the row).
func TestTopKTiesInRequestOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	levels := []float64{0.1, 0.2, 0.3, math.NaN()}
	in := make([]Ranked, 500)
	for i := range in {
		in[i] = Ranked{Row: i, Score: levels[r.IntN(len(levels))]}
	}
	got := topK(slices.Clone(in), 0)
	prev := got[0]
	for _, c := range got[1:] {
		pn, cn := math.IsNaN(prev.Score), math.IsNaN(c.Score)
		switch {
		case pn && !cn, !pn && !cn && c.Score > prev.Score:
			t.Fatalf("row %d (%v) after row %d (%v)", c.Row, c.Score, prev.Row, prev.Score)
		case (pn && cn || c.Score == prev.Score) && c.Row < prev.Row:
			t.Fatalf("tie at %v: row %d after row %d", c.Score, c.Row, prev.Row)
		}
		prev = c
	}
}

// topK orders as a sort of the candidates by the rule does (score
// descending, NaN and ±Inf last, ties by row; -0 ties with 0), over
// negative and positive scores, both zeros, subnormals and the extremes,
// for every k, past the size topK sorts on the stack.
func TestTopKAgreesWithTheRule(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	special := []float64{0, math.Copysign(0, -1), 5e-324, -5e-324, math.MaxFloat64, -math.MaxFloat64,
		math.SmallestNonzeroFloat64, math.Inf(1), math.Inf(-1), math.NaN(), 1, -1}
	rule := func(a, b Ranked) int {
		an, bn := math.IsNaN(a.Score) || math.IsInf(a.Score, 0), math.IsNaN(b.Score) || math.IsInf(b.Score, 0)
		switch {
		case an && !bn:
			return 1
		case bn && !an:
			return -1
		case !an && a.Score != b.Score:
			return cmp.Compare(b.Score, a.Score)
		}
		return cmp.Compare(a.Row, b.Row)
	}
	for _, n := range []int{1, 2, 7, 200, 256, 257, 600} {
		in := make([]Ranked, n)
		for i := range in {
			s := special[r.IntN(len(special))]
			if r.IntN(3) > 0 {
				s = r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20))
			}
			in[i] = Ranked{Row: r.IntN(1000000), Score: s}
		}
		want := slices.Clone(in)
		slices.SortStableFunc(want, rule)
		for _, k := range []int{0, 1, n / 2, n, n + 1} {
			got := topK(slices.Clone(in), k)
			wantK := want
			if k > 0 && k < n {
				wantK = want[:k]
			}
			if len(got) != len(wantK) {
				t.Fatalf("n=%d k=%d: %d candidates, want %d", n, k, len(got), len(wantK))
			}
			for i := range got {
				if got[i].Row != wantK[i].Row {
					t.Fatalf("n=%d k=%d: position %d is row %d (score %v), want row %d (score %v)", n, k, i, got[i].Row, got[i].Score, wantK[i].Row, wantK[i].Score)
				}
			}
		}
	}
}

// topK ranks a non-finite score (written as null) with the missing ones,
// last, never first.
func TestTopKNonFiniteLast(t *testing.T) {
	in := []Ranked{{Row: 0, Score: 1}, {Row: 1, Score: math.Inf(1)}, {Row: 2, Score: math.NaN()}, {Row: 3, Score: math.Inf(-1)}, {Row: 4, Score: 2}}
	got := topK(in, 0)
	var rows []int
	for _, r := range got {
		rows = append(rows, r.Row)
		if math.IsInf(r.Score, 0) {
			t.Fatalf("row %d keeps score %v", r.Row, r.Score)
		}
	}
	if fmt.Sprint(rows) != "[4 0 1 2 3]" {
		t.Fatalf("order %v, want [4 0 1 2 3]", rows)
	}
	if top := topK([]Ranked{{Row: 0, Score: math.Inf(1)}, {Row: 1, Score: 0.5}}, 1); top[0].Row != 1 {
		t.Fatalf("top 1 is row %d", top[0].Row)
	}
}

// A client's mistakes count as input errors, whichever part was at fault;
// only the server's own faults count as internal.
func TestErrorReasons(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: body larger than 10 bytes", ErrTooLarge), "input"},
		{fmt.Errorf("%w: 6 candidates", ErrTooMany), "input"},
		{errInput("top_k: -1"), "input"},
		{fmt.Errorf("model x: %w", ErrNotFound), "not_found"},
		{fmt.Errorf("read: %w", context.DeadlineExceeded), "unavailable"},
		{errors.New("index out of range"), "internal"},
	} {
		if got := reason(tc.err); got != tc.want {
			t.Errorf("reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// A compressed body is refused naming its Content-Encoding, not read as
// JSON that fails on its first byte; identity is no encoding.
func TestBodyContentEncoding(t *testing.T) {
	s := newRankSetup(t, EndpointOptions{})
	ts := serve(t, s.e)
	body := `{"context": {"user_id": "u1"}, "candidates": {"listing_id": ["l1"]}}`
	for _, tc := range []struct {
		enc  string
		code int
		says string
	}{
		{"gzip", 400, `Content-Encoding \"gzip\": predict and rank take an uncompressed JSON body`},
		{"br", 400, `Content-Encoding \"br\"`},
		{"identity", 200, ""},
	} {
		code, _, raw := post(t, ts, "/v1/models/ranker/rank", body, map[string]string{"Content-Encoding": tc.enc}, nil)
		if code != tc.code || !strings.Contains(raw, tc.says) {
			t.Errorf("Content-Encoding %s: %d %s, want %d saying %q", tc.enc, code, raw, tc.code, tc.says)
		}
	}
}
