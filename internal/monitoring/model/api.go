package model

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atrium-ml/atrium/internal/monitoring/alert"
	"github.com/atrium-ml/atrium/internal/monitoring/labels"
	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/spec"
)

// API serves the monitoring endpoints:
//
//	POST /v1/labels                     delayed labels (features:push: the product's backend sends them with the features it pushes)
//	GET  /v1/monitoring/models/{name}   a model's report (?window=24h&version=3)
//	GET  /v1/monitoring/alerts          every monitor's alert state
//
// It is a prometheus.Collector of the monitor's and the evaluator's metrics.
type API struct {
	Monitor *Monitor
	Labels  *labels.Store
	// Alerts, when set, serves the alert states.
	Alerts *alert.Evaluator
	Logger *slog.Logger
}

// Routes of the API.
var (
	RouteLabels = "POST /v1/labels"
	RouteModel  = "GET /v1/monitoring/models/{name}"
	RouteAlerts = "GET /v1/monitoring/alerts"
)

// MaxLabels bounds the labels of one request.
const MaxLabels = 10000

// MaxWindow bounds a report's window (its rows are read into memory).
const MaxWindow = 31 * 24 * time.Hour

// Routes implements server.API.
func (a *API) Routes() []server.Route {
	routes := []server.Route{
		{Pattern: RouteLabels, Permission: server.PushFeatures, Handler: http.HandlerFunc(a.postLabels)},
		{Pattern: RouteModel, Permission: server.Read, Handler: http.HandlerFunc(a.getModel)},
	}
	if a.Alerts != nil {
		routes = append(routes, server.Route{Pattern: RouteAlerts, Permission: server.Read, Handler: http.HandlerFunc(a.getAlerts)})
	}
	return routes
}

// Describe implements prometheus.Collector.
func (a *API) Describe(ch chan<- *prometheus.Desc) {
	a.Monitor.Describe(ch)
	if a.Alerts != nil {
		a.Alerts.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (a *API) Collect(ch chan<- prometheus.Metric) {
	a.Monitor.Collect(ch)
	if a.Alerts != nil {
		a.Alerts.Collect(ch)
	}
}

// errInput is a client mistake (400); errTooLarge a body over a limit (413).
var (
	errInput    = errors.New("invalid request")
	errTooLarge = errors.New("request too large")
)

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	msg := err.Error()
	switch {
	case errors.Is(err, errTooLarge):
		code = http.StatusRequestEntityTooLarge
	case errors.Is(err, errInput):
		code = http.StatusBadRequest
		msg = strings.TrimPrefix(msg, errInput.Error()+": ")
	case errors.Is(err, ErrUnknownModel):
		code = http.StatusNotFound
	case errors.Is(err, context.DeadlineExceeded):
		code = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "1")
	default:
		if a.Logger != nil {
			a.Logger.Error("monitoring: request failed", "path", r.URL.Path, "request_id", server.RequestID(r.Context()), "err", err)
		}
		msg = server.InternalErrorMessage(r.Context())
	}
	server.WriteJSON(w, code, map[string]string{"error": msg})
}

// labelJSON is a label as POST /v1/labels takes it.
type labelJSON struct {
	Model     string            `json:"model"`
	RequestID string            `json:"request_id"`
	Row       *int              `json:"row"`
	Entities  map[string]string `json:"entities"`
	Time      string            `json:"time"`
	Horizon   string            `json:"horizon"`
	Label     *float64          `json:"label"`
}

func (a *API) postLabels(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.fail(w, r, fmt.Errorf("%w: body larger than %d bytes", errTooLarge, tooBig.Limit))
			return
		}
		a.fail(w, r, fmt.Errorf("%w: body: %v", errInput, err))
		return
	}
	var req struct {
		Labels []json.RawMessage `json:"labels"`
	}
	if err := strictJSON(body, &req); err != nil {
		a.fail(w, r, fmt.Errorf(`%w: body: %v, expected {"labels": [{"model": ..., "request_id": ..., "label": ...}]}`, errInput, err))
		return
	}
	if len(req.Labels) == 0 {
		a.fail(w, r, fmt.Errorf("%w: labels: empty, expected at least one label", errInput))
		return
	}
	if len(req.Labels) > MaxLabels {
		a.fail(w, r, fmt.Errorf("%w: labels: %d labels, at most %d per request", errTooLarge, len(req.Labels), MaxLabels))
		return
	}
	ls := make([]labels.Label, len(req.Labels))
	known := map[string]error{}
	for i, raw := range req.Labels {
		l, err := decodeLabel(raw)
		if err == nil {
			err = l.Check()
		}
		if err != nil {
			a.fail(w, r, fmt.Errorf("%w: labels[%d]: %v", errInput, i, err))
			return
		}
		if _, seen := known[l.Model]; !seen {
			_, err := a.Monitor.opts.Registry.GetRegisteredModel(r.Context(), l.Model)
			if err != nil {
				err = registryError(err, l.Model, "")
			}
			known[l.Model] = err
		}
		if err := known[l.Model]; err != nil {
			if errors.Is(err, ErrUnknownModel) {
				err = fmt.Errorf("%w: labels[%d].model: %v", errInput, i, err)
			}
			a.fail(w, r, err)
			return
		}
		ls[i] = l
	}
	res, err := a.Labels.Put(r.Context(), ls)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	server.WriteJSON(w, http.StatusOK, res)
}

func strictJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}

func decodeLabel(raw json.RawMessage) (labels.Label, error) {
	var j labelJSON
	if err := strictJSON(raw, &j); err != nil {
		return labels.Label{}, err
	}
	if j.Label == nil {
		return labels.Label{}, errors.New("label: missing, expected a number (1 or 0 for a click, a relevance grade, a price)")
	}
	l := labels.Label{Model: j.Model, RequestID: j.RequestID, Row: j.Row, Entities: j.Entities, Value: *j.Label}
	if j.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, j.Time)
		if err != nil {
			return l, fmt.Errorf("time: %q, expected an RFC 3339 time such as 2026-12-05T10:00:00Z", j.Time)
		}
		l.Time = t.UTC()
	}
	if j.Horizon != "" {
		d, err := spec.ParseDuration(j.Horizon)
		if err != nil || d <= 0 {
			return l, fmt.Errorf("horizon: %q, expected a positive duration such as 24h or 7d", j.Horizon)
		}
		if j.RequestID != "" {
			return l, errors.New("horizon: only for labels by entities and time")
		}
		l.Horizon = d.D()
	}
	return l, nil
}

func (a *API) getModel(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := Request{Model: r.PathValue("name"), Version: q.Get("version"), Window: 24 * time.Hour}
	if s := q.Get("window"); s != "" {
		d, err := spec.ParseDuration(s)
		if err != nil || d <= 0 || d.D() > MaxWindow {
			a.fail(w, r, fmt.Errorf("%w: window %q: expected a positive duration up to 31d, such as 1h, 24h or 7d", errInput, s))
			return
		}
		req.Window = d.D()
	}
	rep, err := a.Monitor.Compute(r.Context(), req)
	if err != nil && !errors.Is(err, ErrNoReference) {
		a.fail(w, r, err)
		return
	}
	// Without a reference the report holds the volume and a note saying
	// how to get one.
	server.WriteJSON(w, http.StatusOK, rep)
}

// alertJSON is one monitor's state in GET /v1/monitoring/alerts.
type alertJSON struct {
	alert.State
	Value *float64 `json:"value"`
}

func (a *API) getAlerts(w http.ResponseWriter, r *http.Request) {
	states, err := a.Alerts.States(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]alertJSON, len(states))
	for i, s := range states {
		out[i].State = s
		if !math.IsNaN(s.Value) {
			v := s.Value
			out[i].Value = &v
		}
	}
	server.WriteJSON(w, http.StatusOK, map[string]any{"alerts": out})
}
