package serving

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/atrium-ml/atrium/internal/data/online/pebble"
	"github.com/atrium-ml/atrium/internal/data/retrieval"
	"github.com/atrium-ml/atrium/internal/serving/oip"
	"github.com/atrium-ml/atrium/internal/tracking"
)

// vetSetup is the feature world's registry with the ranker (service
// ranker_fs) at champion, a Service logging to logs, and its endpoints.
type vetSetup struct {
	w       *world
	svc     *Service
	e       *Endpoints
	logs    *lockedBuffer
	rankerV string
}

func newVetSetup(t *testing.T, models ...ModelConfig) *vetSetup {
	t.Helper()
	w := newWorld(t)
	rv := w.registerModel(t, "ranker", trainModel(t, "binary", rankerFeatures, 1, 5), "ranker_fs")
	w.alias(t, "ranker", "champion", rv)
	o, _ := featureWorld(t)
	logs := &lockedBuffer{}
	svc := New(w.loader, Options{PollInterval: 10 * time.Millisecond, Models: models, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	svc.Start(context.Background())
	t.Cleanup(func() { svc.Close() })
	e, err := NewEndpoints(svc, EndpointOptions{Online: o})
	if err != nil {
		t.Fatal(err)
	}
	return &vetSetup{w: w, svc: svc, e: e, logs: logs, rankerV: rv}
}

const vetRankBody = `{"context": {"user_id": "u1"}, "candidates": {"listing_id": ["l1", "l2"]}}`

// A deploy to a version its feature service cannot serve (the service is
// not defined, or provides none of its inputs: a model trained on an
// array) is refused as a corrupt file is: the previous version keeps
// serving predict and rank, the alias's readiness says why, without
// Retry-After, and the failure is logged and counted. Before, the version
// was swapped in: every rank failed with 503 and Retry-After while /ready
// said ready, or answered 200 with every input missing.
func TestDeployRefusesAVersionItsFeatureServiceCannotServe(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   func(t *testing.T) map[string][]byte
		service string
		says    []string
	}{
		{"undefined service",
			func(t *testing.T) map[string][]byte {
				files, err := MLmodelFiles(trainModel(t, "binary", rankerFeatures, 2, 5), timeZero)
				if err != nil {
					t.Fatal(err)
				}
				return files
			},
			"personalised_ranker",
			[]string{`feature service "personalised_ranker" (from the version's atrium.feature_service tag)`, `feature_service "personalised_ranker" is not defined`, "restart", "defined services: ranker_fs, visit_fs"}},
		{"no input from the service",
			// LightGBM trained on an array: inputs named by position.
			func(t *testing.T) map[string][]byte {
				return flavorDir("lightgbm", "model.lgb", fixture(t, "lightgbm_binary.txt"), "")
			},
			"ranker_fs",
			[]string{`feature service "ranker_fs"`, "none of the version's 4 inputs (x0, x1, x2, ... 4 in all)", "budget, rent, rooms", "trained without feature names", "DataFrame"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newVetSetup(t)
			ts := serve(t, s.e)
			ctx := context.Background()
			if got := servingVersion(s.svc, "ranker"); got != s.rankerV {
				t.Fatalf("serving %s", got)
			}
			bad := s.w.register(t, "ranker", tc.files(t), tracking.KV{Key: FeatureServiceTag, Value: tc.service})
			s.w.alias(t, "ranker", "champion", bad)
			eventually(t, "the refused load", func() bool {
				st, _ := s.svc.Status("ranker")
				return st[0].Target == bad && st[0].Error != ""
			})
			var got rankAnswer
			if code, _, raw := post(t, ts, "/v1/models/ranker/rank", vetRankBody, nil, &got); code != http.StatusOK || got.ModelVersion != s.rankerV {
				t.Fatalf("rank: %d %s, want 200 from version %s", code, raw, s.rankerV)
			}
			err := s.svc.Ready(ctx, "ranker")
			if !errors.Is(err, ErrModelFormat) || errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "version "+s.rankerV+" still serves") {
				t.Fatalf("Ready = %v, want ErrModelFormat naming the version still serving", err)
			}
			for _, want := range tc.says {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Ready = %v, want it to say %q", err, want)
				}
			}
			if ok, err := NewBackend(s.svc).ModelReady(ctx, "ranker", ""); ok || !errors.Is(err, oip.ErrModelUnusable) {
				t.Fatalf("ModelReady = %v, %v, want oip.ErrModelUnusable (503 without Retry-After, FAILED_PRECONDITION)", ok, err)
			}
			// By number: refused too, by the broken cache (not loaded again).
			failures := testutil.ToFloat64(s.svc.m.failures.WithLabelValues("ranker"))
			if failures < 1 {
				t.Fatalf("load failures = %v", failures)
			}
			code, h, raw := post(t, ts, "/v1/models/ranker/rank?version="+bad, vetRankBody, nil, nil)
			if code != http.StatusServiceUnavailable || h.Get("Retry-After") != "" || !strings.Contains(raw, tc.service) {
				t.Fatalf("rank version %s: %d (Retry-After %q) %s, want 503 without Retry-After", bad, code, h.Get("Retry-After"), raw)
			}
			if n := testutil.ToFloat64(s.svc.m.failures.WithLabelValues("ranker")); n != failures {
				t.Fatalf("load failures went from %v to %v", failures, n)
			}
			if logs := s.logs.String(); !strings.Contains(logs, "serving: load failed") || !strings.Contains(logs, "the version an alias moved to failed to load") {
				t.Fatalf("logs:\n%s", logs)
			}
		})
	}
}

// A version whose feature service provides some of its inputs loads and
// serves; the inputs the service does not provide are named in a warning
// at load (requests must send them). A version without a feature service
// loads and serves OIP infer as before.
func TestVetWarnsOfInputsTheServiceDoesNotProvide(t *testing.T) {
	s := newVetSetup(t)
	ctx := context.Background()
	partial := s.w.registerModel(t, "visit", trainModel(t, "regression", []string{"rent", "rooms", "floor"}, 3, 5), "visit_fs")
	d, err := s.svc.Resolve(ctx, "visit", partial, "")
	if err != nil {
		t.Fatal(err)
	}
	logs := s.logs.String()
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "feature_service=visit_fs inputs=floor") {
		t.Fatalf("no warning naming floor:\n%s", logs)
	}
	if strings.Contains(logs, "rent,") || strings.Contains(logs, "inputs=rent") {
		t.Fatalf("the warning names a provided input:\n%s", logs)
	}
	if d.Version != partial {
		t.Fatalf("version %s", d.Version)
	}

	plain := s.w.register(t, "plain", flavorDir("lightgbm", "model.lgb", fixture(t, "lightgbm_binary.txt"), ""))
	s.w.alias(t, "plain", "champion", plain)
	b := NewBackend(s.svc)
	if ok, err := b.ModelReady(ctx, "plain", ""); !ok || err != nil {
		t.Fatalf("ModelReady(plain) = %v, %v", ok, err)
	}
	res, err := b.Infer(ctx, "plain", "", &oip.InferRequest{Inputs: []oip.Tensor{{Name: "input", Datatype: oip.FP64, Shape: []int64{1, 4}, FP64: []float64{1, 2, 3, 0}}}})
	if err != nil || res.ModelVersion != plain {
		t.Fatalf("Infer(plain) = %+v, %v", res, err)
	}
}

// A feature service named in atrium.yaml that is not defined refuses the
// model's versions; so does a version the service cannot serve that was
// loaded at start, before the endpoints (which know the definitions)
// existed: it stops serving when they are created.
func TestVetRefusesAtStart(t *testing.T) {
	t.Run("config names an undefined service", func(t *testing.T) {
		s := newVetSetup(t, ModelConfig{Name: "ranker", FeatureService: "no_such_service"})
		ts := serve(t, s.e)
		code, h, raw := post(t, ts, "/v1/models/ranker/rank", vetRankBody, nil, nil)
		if code != http.StatusServiceUnavailable || h.Get("Retry-After") != "" ||
			!strings.Contains(raw, `feature service \"no_such_service\" (from serving.models[].feature_service in atrium.yaml)`) {
			t.Fatalf("rank: %d (Retry-After %q) %s, want 503 without Retry-After naming the service and atrium.yaml", code, h.Get("Retry-After"), raw)
		}
		if err := s.svc.Ready(context.Background(), "ranker"); !errors.Is(err, ErrModelFormat) {
			t.Fatalf("Ready = %v", err)
		}
	})
	t.Run("loaded before the endpoints", func(t *testing.T) {
		w := newWorld(t)
		v := w.registerModel(t, "ranker", trainModel(t, "binary", rankerFeatures, 1, 5), "personalised_ranker")
		w.alias(t, "ranker", "champion", v)
		svc := newService(t, w, Options{Models: []ModelConfig{{Name: "ranker", LoadAtStart: true}}})
		if got := servingVersion(svc, "ranker"); got != v {
			t.Fatalf("serving %s before the endpoints", got)
		}
		o, _ := featureWorld(t)
		if _, err := NewEndpoints(svc, EndpointOptions{Online: o}); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for _, version := range []string{"", v} {
			if _, err := svc.Resolve(ctx, "ranker", version, ""); !errors.Is(err, ErrModelFormat) || !strings.Contains(err.Error(), "personalised_ranker") {
				t.Fatalf("Resolve(%q) after the endpoints = %v, want ErrModelFormat naming the service", version, err)
			}
		}
		if err := svc.Ready(ctx, "ranker"); !errors.Is(err, ErrModelFormat) {
			t.Fatalf("Ready = %v", err)
		}
		if n := testutil.ToFloat64(svc.m.failures.WithLabelValues("ranker")); n != 1 {
			t.Fatalf("load failures = %v, want 1", n)
		}
	})
}

// A server without any feature service defined (no definitions applied)
// has nothing to check a version's service against: a version registered
// with one (atrium fit --feature-service) loads and serves OIP infer, as it
// did, with a warning; its rank answers 503 without Retry-After.
func TestVetWithoutDefinitions(t *testing.T) {
	store, err := pebble.Open(filepath.Join(t.TempDir(), "online"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	none, err := retrieval.NewOnline(store, retrieval.Definitions{}, retrieval.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		online *retrieval.Online
	}{{"none applied", none}, {"no online retrieval", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			v := w.register(t, "churn", flavorDir("lightgbm", "model.lgb", fixture(t, "lightgbm_binary.txt"), ""), tracking.KV{Key: FeatureServiceTag, Value: "churn_v1"})
			w.alias(t, "churn", "champion", v)
			logs := &lockedBuffer{}
			svc := newService(t, w, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
			e, err := NewEndpoints(svc, EndpointOptions{Online: tc.online})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			b := NewBackend(svc)
			res, err := b.Infer(ctx, "churn", "", &oip.InferRequest{Inputs: []oip.Tensor{{Name: "input", Datatype: oip.FP64, Shape: []int64{1, 4}, FP64: []float64{1, 2, 3, 0}}}})
			if err != nil || res.ModelVersion != v {
				t.Fatalf("Infer = %+v, %v", res, err)
			}
			if ok, err := b.ModelReady(ctx, "churn", ""); !ok || err != nil {
				t.Fatalf("ModelReady = %v, %v", ok, err)
			}
			if l := logs.String(); !strings.Contains(l, "no feature service is defined") || !strings.Contains(l, "feature_service=churn_v1") {
				t.Fatalf("no warning:\n%s", l)
			}
			code, h, raw := post(t, serve(t, e), "/v1/models/churn/predict", `{"entities": {"user_id": ["u1"]}}`, nil, nil)
			if code != http.StatusServiceUnavailable || h.Get("Retry-After") != "" || !strings.Contains(raw, "churn_v1") {
				t.Fatalf("predict: %d (Retry-After %q) %s, want 503 without Retry-After naming the service", code, h.Get("Retry-After"), raw)
			}
		})
	}
}
