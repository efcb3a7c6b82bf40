package retrieval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/spec"
)

// materializeRequestJSON is the body of POST /materialize-incremental, Feast's
// shape: {"end_ts": "2026-11-25T06:00:00Z", "feature_views": ["set", ...]},
// plus "full" (see Materializer.Full). end_ts is any form spec.ParseTime reads;
// no feature_views means every set.
type materializeRequestJSON struct {
	EndTS        string   `json:"end_ts"`
	FeatureViews []string `json:"feature_views"`
	Full         bool     `json:"full"`
}

// materialize serves POST /materialize-incremental: materialization inside the
// server, which is how to materialize into an embedded store (Pebble) the
// server holds open.
func (a *API) materialize(w http.ResponseWriter, r *http.Request) {
	results, err := a.decodeAndMaterialize(w, r)
	if err != nil && len(results) == 0 {
		a.writeError(w, r, err)
		return
	}
	if results == nil {
		results = []MaterializeResult{}
	}
	body := map[string]any{"results": results}
	code := http.StatusOK
	if err != nil { // some sets done, then a failure: report both
		code = httpStatus(err)
		body["error"] = err.Error()
		if code >= 500 {
			a.opts.Logger.Error("online API", "path", r.URL.Path, "request_id", server.RequestID(r.Context()), "error", err)
			body["error"] = server.InternalErrorMessage(r.Context())
		}
	}
	server.WriteJSON(w, code, body)
}

func (a *API) decodeAndMaterialize(w http.ResponseWriter, r *http.Request) ([]MaterializeResult, error) {
	if a.opts.Materializer == nil {
		return nil, fmt.Errorf("%w: this server has no offline store to materialize from", ErrNotSupported)
	}
	buf := buffers.Get().(*bytes.Buffer)
	defer buffers.Put(buf)
	body, err := a.readBody(w, r, buf)
	if err != nil {
		return nil, err
	}
	var req materializeRequestJSON
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, jsonError("materialize-incremental", body, err)
	}
	end, err := spec.ParseTime(req.EndTS, time.Now())
	if err != nil {
		return nil, fmt.Errorf("%w: end_ts: %v", ErrInvalidRequest, err)
	}
	var sets []SetDef
	if len(req.FeatureViews) == 0 {
		for _, s := range a.online.cat.order {
			sets = append(sets, s.SetDef)
		}
	}
	for i, name := range req.FeatureViews {
		s := a.online.cat.sets[name]
		if s == nil {
			return nil, fmt.Errorf("%w: feature_views[%d]: feature set %q is not defined", ErrUnknownFeature, i, name)
		}
		sets = append(sets, s.SetDef)
	}
	a.materializing.Lock()
	defer a.materializing.Unlock()
	m := *a.opts.Materializer
	m.Full = req.Full
	m.Progress = nil
	return m.Materialize(r.Context(), sets, end)
}
