package scheduler

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atrium-ml/atrium/internal/platform/server"
)

// API serves the scheduler over HTTP: listing is a read, changing what runs
// needs the materialize permission (the class of running pipelines).
//
//	GET  /v1/jobs                   every job with its counts and why it waits
//	GET  /v1/jobs/{job}/runs        the job's history (?state=&trigger=&limit=)
//	POST /v1/jobs/{job}/trigger     {"start": RFC 3339, "end": RFC 3339} (default: the latest closed interval)
//	POST /v1/jobs/{job}/backfill    {"start", "end", "parallel"}
//	POST /v1/jobs/{job}/pause, /resume
type API struct {
	s *Scheduler
	// Check, when set, vets a backfill's range before anything is queued
	// (a range outside the source's data is refused).
	Check func(r *http.Request, job string, start, end time.Time) error
}

// NewAPI returns the HTTP API of s.
func NewAPI(s *Scheduler) *API { return &API{s: s} }

// Routes implements server.API.
func (a *API) Routes() []server.Route {
	return []server.Route{
		{Pattern: "GET /v1/jobs", Permission: server.Read, Handler: http.HandlerFunc(a.list)},
		{Pattern: "GET /v1/jobs/{job}/runs", Permission: server.Read, Handler: http.HandlerFunc(a.runs)},
		{Pattern: "POST /v1/jobs/{job}/trigger", Permission: server.Materialize, Handler: a.queue(TriggerManual)},
		{Pattern: "POST /v1/jobs/{job}/backfill", Permission: server.Materialize, Handler: a.queue(TriggerBackfill)},
		{Pattern: "POST /v1/jobs/{job}/pause", Permission: server.Materialize, Handler: a.pause(true)},
		{Pattern: "POST /v1/jobs/{job}/resume", Permission: server.Materialize, Handler: a.pause(false)},
	}
}

// Describe implements prometheus.Collector: the server registers the
// scheduler's metrics with its API.
func (a *API) Describe(ch chan<- *prometheus.Desc) {
	if m := a.s.opts.Metrics; m != nil {
		m.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (a *API) Collect(ch chan<- prometheus.Metric) {
	if m := a.s.opts.Metrics; m != nil {
		m.Collect(ch)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrUnknownJob):
		code = http.StatusNotFound
	case errors.Is(err, ErrBadRequest):
		code = http.StatusBadRequest
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	st, err := a.s.Status(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": st})
}

func (a *API) runs(w http.ResponseWriter, r *http.Request) {
	job := r.PathValue("job")
	if _, ok := a.s.Job(job); !ok {
		writeErr(w, fmt.Errorf("%w %q", ErrUnknownJob, job))
		return
	}
	f := RunFilter{Job: job, State: r.URL.Query().Get("state"), Trigger: r.URL.Query().Get("trigger")}
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 10000 {
			writeErr(w, fmt.Errorf("%w: limit %q, expected 1 to 10000", ErrBadRequest, l))
			return
		}
		f.Limit = n
	}
	runs, err := ListRuns(r.Context(), a.s.opts.DB, f)
	if err != nil {
		writeErr(w, err)
		return
	}
	if runs == nil {
		runs = []Run{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": runs})
}

// queueRequest is the body of trigger and backfill.
type queueRequest struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Parallel int       `json:"parallel"`
}

func (a *API) queue(trigger string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		job := r.PathValue("job")
		j, ok := a.s.Job(job)
		if !ok {
			writeErr(w, fmt.Errorf("%w %q", ErrUnknownJob, job))
			return
		}
		var req queueRequest
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if err == nil && len(body) > 0 {
			err = json.Unmarshal(body, &req)
		}
		if err != nil {
			writeErr(w, fmt.Errorf("%w: body: %v, expected {\"start\": \"2026-06-01T00:00:00Z\", \"end\": \"2026-06-08T00:00:00Z\", \"parallel\": 4}", ErrBadRequest, err))
			return
		}
		if req.Parallel < 0 || req.Parallel > 1000 {
			writeErr(w, fmt.Errorf("%w: parallel %d, expected 1 to 1000", ErrBadRequest, req.Parallel))
			return
		}
		var ivs []Interval
		switch {
		case req.Start.IsZero() && req.End.IsZero() && trigger == TriggerManual:
			if j.Calendar == nil {
				writeErr(w, fmt.Errorf("%w: %s has no schedule, expected start and end", ErrBadRequest, job))
				return
			}
			iv, ok := j.Calendar.LastClosed(a.s.opts.Clock.Now())
			if !ok {
				writeErr(w, fmt.Errorf("%w: %s has no closed interval yet", ErrBadRequest, job))
				return
			}
			ivs = []Interval{iv}
		default:
			if a.Check != nil {
				if err := a.Check(r, job, req.Start, req.End); err != nil {
					writeErr(w, err)
					return
				}
			}
			if ivs, err = a.s.Intervals(job, req.Start, req.End); err != nil {
				writeErr(w, err)
				return
			}
		}
		res, err := a.s.Trigger(r.Context(), job, ivs, trigger, req.Parallel)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusAccepted, res)
	})
}

func (a *API) pause(paused bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		job := r.PathValue("job")
		var err error
		if paused {
			err = a.s.Pause(r.Context(), job)
		} else {
			err = a.s.Resume(r.Context(), job)
		}
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"job": job, "paused": paused})
	})
}
