package alert

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/meta/metatest"
	"github.com/atrium-ml/atrium/internal/spec"
)

var t0 = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

func monitor(forDur time.Duration, noData string) *spec.Monitor {
	return &spec.Monitor{Name: "ranker_drift", Measure: spec.MeasureFeatureDriftShare, Model: "ranker", Window: spec.Duration(24 * time.Hour),
		Comparison: ">=", Threshold: 0.5, Severity: spec.SeverityCritical, For: spec.Duration(forDur), NoData: noData}
}

func TestNext(t *testing.T) {
	type step struct {
		at     time.Duration // after t0
		value  float64       // NaN: no data
		status string
		due    string
	}
	nan := math.NaN()
	for _, c := range []struct {
		name   string
		forDur time.Duration
		noData string
		steps  []step
	}{
		{"fires at once without for", 0, spec.NoDataKeep, []step{
			{0, 0.1, StatusInactive, ""}, {time.Minute, 0.6, StatusFiring, StateFiring}, {2 * time.Minute, 0.2, StatusInactive, StateResolved}}},
		{"pending until for has passed", 10 * time.Minute, spec.NoDataKeep, []step{
			{0, 0.5, StatusPending, ""}, {9 * time.Minute, 0.7, StatusPending, ""}, {10 * time.Minute, 0.6, StatusFiring, StateFiring},
			{11 * time.Minute, 0.9, StatusFiring, ""}, {12 * time.Minute, 0.4, StatusInactive, StateResolved}}},
		{"pending that recovers owes nothing", 10 * time.Minute, spec.NoDataKeep, []step{
			{0, 0.5, StatusPending, ""}, {5 * time.Minute, 0.1, StatusInactive, ""}, {11 * time.Minute, 0.5, StatusPending, ""}}},
		{"no data keeps the state", 0, spec.NoDataKeep, []step{
			{0, 0.9, StatusFiring, StateFiring}, {time.Minute, nan, StatusFiring, ""}, {2 * time.Minute, 0.1, StatusInactive, StateResolved}}},
		{"no data alerts", time.Minute, spec.NoDataAlerting, []step{
			{0, nan, StatusPending, ""}, {time.Minute, nan, StatusFiring, StateFiring}, {2 * time.Minute, 0.1, StatusInactive, StateResolved}}},
		{"no data is ok", 0, spec.NoDataOK, []step{
			{0, 0.9, StatusFiring, StateFiring}, {time.Minute, nan, StatusInactive, StateResolved}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := monitor(c.forDur, c.noData)
			var s State
			for i, st := range c.steps {
				s = Next(s, m, Measurement{Value: st.value, NoData: math.IsNaN(st.value)}, t0.Add(st.at))
				if s.Status != st.status || s.Due() != st.due {
					t.Fatalf("step %d (%g at +%s): status %s, due %q; want %s, %q", i, st.value, st.at, s.Status, s.Due(), st.status, st.due)
				}
				// The evaluator marks what it notified.
				if d := s.Due(); d != "" {
					s.Notified = d
				}
			}
		})
	}
}

// script is a Measurer that returns the next scripted value of a monitor.
type script struct {
	mu     sync.Mutex
	values []float64
}

func (s *script) Measure(ctx context.Context, m *spec.Monitor, now time.Time) (Measurement, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.values[0]
	s.values = s.values[1:]
	if math.IsNaN(v) {
		return Measurement{NoData: true}, nil
	}
	return Measurement{Value: v, Detail: "version 3"}, nil
}

// recorder is a Notifier that records what it was sent and fails while fail is set.
type recorder struct {
	mu   sync.Mutex
	got  []Notification
	fail bool
}

func (r *recorder) Notify(ctx context.Context, n Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("receiver down")
	}
	r.got = append(r.got, n)
	return nil
}

func (r *recorder) states() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []string
	for _, n := range r.got {
		s = append(s, n.State)
	}
	return s
}

func newEvaluator(t *testing.T, db *meta.DB, m *spec.Monitor, meas Measurer, rec Notifier) *Evaluator {
	t.Helper()
	e, err := New(Options{Monitors: &spec.Monitors{Monitors: []*spec.Monitor{m}}, Measurer: meas, Store: NewStore(db), Notifiers: map[string]Notifier{"hook": rec}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestTransitionsNotifyOnceAcrossRestarts(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		m := monitor(10*time.Minute, spec.NoDataKeep)
		meas := &script{values: []float64{0.6, 0.7, 0.8, 0.9, 0.95, 0.2, 0.1}}
		rec := &recorder{}
		e := newEvaluator(t, db, m, meas, rec)
		for i, at := range []time.Duration{0, 10 * time.Minute} { // pending, then firing
			if err := e.Evaluate(ctx, t0.Add(at)); err != nil {
				t.Fatalf("evaluation %d: %v", i, err)
			}
		}
		if got := rec.states(); len(got) != 1 || got[0] != StateFiring {
			t.Fatalf("after firing: notifications %v", got)
		}
		n := rec.got[0]
		if n.Rule != "ranker_drift" || n.Severity != "critical" || n.Value != 0.7 || n.Threshold != 0.5 || n.Labels["model"] != "ranker" ||
			!n.At.Equal(t0.Add(10*time.Minute)) || !strings.Contains(n.Summary, "model ranker: feature_drift_share over 1d = 0.7 (>= 0.5 for 10m) [version 3]") {
			t.Errorf("firing notification = %+v", n)
		}
		if v := testutil.ToFloat64(e.firing.WithLabelValues("ranker_drift", "critical")); v != 1 {
			t.Errorf("atrium_alert_firing = %g", v)
		}
		if v := testutil.ToFloat64(e.value.WithLabelValues("ranker_drift")); v != 0.7 {
			t.Errorf("atrium_monitor_value = %g", v)
		}

		// A restart: a new evaluator on the same database, still firing,
		// does not notify again.
		rec2 := &recorder{}
		e2 := newEvaluator(t, db, m, meas, rec2)
		for _, at := range []time.Duration{11 * time.Minute, 12 * time.Minute, 13 * time.Minute} {
			if err := e2.Evaluate(ctx, t0.Add(at)); err != nil {
				t.Fatal(err)
			}
		}
		if got := rec2.states(); len(got) != 0 {
			t.Fatalf("restarted evaluator notified again: %v", got)
		}
		// 0.2 at +14m resolves it: one resolved notification.
		if err := e2.Evaluate(ctx, t0.Add(14*time.Minute)); err != nil {
			t.Fatal(err)
		}
		st, err := e2.States(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st) != 1 || st[0].Status != StatusInactive || st[0].Notified != StateResolved || !st[0].ChangedAt.Equal(t0.Add(14*time.Minute)) {
			t.Errorf("stored state = %+v", st)
		}
		if got := rec2.states(); len(got) != 1 || got[0] != StateResolved {
			t.Fatalf("resolution: notifications %v", got)
		}
		if !strings.Contains(rec2.got[0].Summary, "= 0.2, no longer >= 0.5") {
			t.Errorf("resolved summary = %q", rec2.got[0].Summary)
		}
	}, Schema)
}

func TestFailedNotificationIsRetried(t *testing.T) {
	db := metatest.SQLite(t, Schema)
	ctx := context.Background()
	m := monitor(0, spec.NoDataKeep)
	rec := &recorder{fail: true}
	e := newEvaluator(t, db, m, &script{values: []float64{0.9, 0.9, 0.9}}, rec)
	if err := e.Evaluate(ctx, t0); err == nil || !strings.Contains(err.Error(), "receiver down") {
		t.Fatalf("failed delivery: err = %v", err)
	}
	rec.mu.Lock()
	rec.fail = false
	rec.mu.Unlock()
	for _, at := range []time.Duration{time.Minute, 2 * time.Minute} {
		if err := e.Evaluate(ctx, t0.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
	if got := rec.states(); len(got) != 1 || got[0] != StateFiring {
		t.Fatalf("notifications after the receiver came back: %v", got)
	}
	if v := testutil.ToFloat64(e.notifications.WithLabelValues("hook", "firing", "failed")); v != 1 {
		t.Errorf("failed notifications = %g", v)
	}
}

func TestConcurrentEvaluatorsNotifyOnce(t *testing.T) {
	metatest.ForEach(t, func(t *testing.T, db *meta.DB) {
		m := monitor(0, spec.NoDataKeep)
		rec := &recorder{}
		always := MeasurerFunc(func(context.Context, *spec.Monitor, time.Time) (Measurement, error) {
			return Measurement{Value: 1}, nil
		})
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			e := newEvaluator(t, db, m, always, rec)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < 5; j++ {
					if err := e.Evaluate(context.Background(), t0.Add(time.Duration(j)*time.Minute)); err != nil && !meta.IsConflict(err) {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		if got := rec.states(); len(got) != 1 {
			t.Fatalf("4 servers notified %d times: %v", len(got), got)
		}
	}, Schema)
}

func TestMeasureErrorKeepsState(t *testing.T) {
	db := metatest.SQLite(t, Schema)
	m := monitor(0, spec.NoDataKeep)
	bad := MeasurerFunc(func(context.Context, *spec.Monitor, time.Time) (Measurement, error) {
		return Measurement{}, errors.New(`unknown model "ranker"`)
	})
	e := newEvaluator(t, db, m, bad, &recorder{})
	err := e.Evaluate(context.Background(), t0)
	if err == nil || !strings.Contains(err.Error(), `monitor ranker_drift: unknown model "ranker"`) {
		t.Fatalf("err = %v", err)
	}
	if v := testutil.ToFloat64(e.evaluations.WithLabelValues("ranker_drift", "error")); v != 1 {
		t.Errorf("error evaluations = %g", v)
	}
}

func TestUnknownNotifier(t *testing.T) {
	m := monitor(0, spec.NoDataKeep)
	m.Notify = []string{"pager"}
	_, err := New(Options{Monitors: &spec.Monitors{Monitors: []*spec.Monitor{m}}})
	if err == nil || !strings.Contains(err.Error(), `notifier "pager" is not configured`) {
		t.Errorf("err = %v", err)
	}
}

func TestWebhook(t *testing.T) {
	n := Notification{Rule: "ranker_drift", Severity: "critical", State: StateFiring, Summary: "model ranker: feature_drift_share over 1d = 0.7 (>= 0.5)",
		Value: 0.7, Threshold: 0.5, Labels: map[string]string{"team": "search", "model": "ranker"}, At: t0}
	for _, c := range []struct {
		name     string
		format   string
		statuses []int // answered in turn; the last repeats
		attempts int
		wantErr  string
		wantBody string
	}{
		{"json after two 503s", spec.NotifyJSON, []int{503, 503, 200}, 3, "",
			`{"rule":"ranker_drift","severity":"critical","state":"firing","summary":"model ranker: feature_drift_share over 1d = 0.7 (>= 0.5)","threshold":0.5,"labels":{"model":"ranker","team":"search"},"at":"2026-12-05T10:00:00Z","value":0.7}`},
		{"slack after a 429", spec.NotifySlack, []int{429, 204}, 2, "",
			`{"text":"[FIRING] critical ranker_drift: model ranker: feature_drift_share over 1d = 0.7 (>= 0.5) (model=ranker, team=search)"}`},
		{"a 400 is not retried", spec.NotifyJSON, []int{400}, 1, "webhook refused the notification: 400 Bad Request: no such channel", ""},
		{"retries spent", spec.NotifyJSON, []int{500}, 4, "webhook hook: 500 Internal Server Error", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var calls atomic.Int32
			var body atomic.Value
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := int(calls.Add(1)) - 1
				b, _ := io.ReadAll(r.Body)
				body.Store(string(b))
				if ct := r.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("content type %q", ct)
				}
				code := c.statuses[min(i, len(c.statuses)-1)]
				w.WriteHeader(code)
				if code == 400 {
					io.WriteString(w, "no such channel")
				}
			}))
			defer srv.Close()
			w := &Webhook{Name: "hook", URL: srv.URL, Format: c.format, Attempts: 4, Backoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond}
			err := w.Notify(context.Background(), n)
			if int(calls.Load()) != c.attempts {
				t.Errorf("%d attempts, want %d", calls.Load(), c.attempts)
			}
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := body.Load().(string); got != c.wantBody {
				t.Errorf("body\n%s\nwant\n%s", got, c.wantBody)
			}
			var decoded map[string]any
			if err := json.Unmarshal([]byte(body.Load().(string)), &decoded); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestWebhookStopsWithContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(503)
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	w := &Webhook{Name: "hook", URL: srv.URL, Attempts: 3, Backoff: time.Millisecond, MaxBackoff: time.Hour}
	done := make(chan error, 1)
	go func() { done <- w.Notify(ctx, Notification{Rule: "r", State: StateFiring, Value: math.NaN()}) }()
	cancel()
	if err := <-done; err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
