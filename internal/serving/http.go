package serving

// The HTTP API of the feature-aware endpoints:
//
//	POST /v1/models/{name}/predict   entity keys in, predictions out
//	POST /v1/models/{name}/rank      a context and candidates in, candidates by score out
//	POST /v1/rankers/{name}/rank     the same, scored by a ranker's models
//
// Errors are {"error": "..."} with 400 (the request part at fault named),
// 404 (unknown model, version or ranker), 413 (too many candidates, too large
// a body) and 503 (a model that cannot load, an online store that does not
// answer); a 500 is a bug, its cause in the log under the request id.

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/platform/jsonw"
	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/serving/oip"
)

// Routes are the endpoints' routes, each scoring with a served model:
// server.Infer.
func (e *Endpoints) Routes() []server.Route {
	return []server.Route{
		{Pattern: "POST /v1/models/{name}/predict", Permission: server.Infer, Handler: http.HandlerFunc(e.handlePredict)},
		{Pattern: "POST /v1/models/{name}/rank", Permission: server.Infer, Handler: http.HandlerFunc(e.handleRank)},
		{Pattern: "POST /v1/rankers/{name}/rank", Permission: server.Infer, Handler: http.HandlerFunc(e.handleRanker)},
	}
}

// RoutePatterns are the patterns of Routes (the server's route classes name
// them: scoring is a read).
var RoutePatterns = []string{"POST /v1/models/{name}/predict", "POST /v1/models/{name}/rank", "POST /v1/rankers/{name}/rank"}

func (e *Endpoints) handlePredict(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	req := &PredictRequest{RequestID: server.RequestID(r.Context()), Time: arrived}
	var bodyVersion string
	err := readBody(r, func(dec *jsontext.Decoder, name string) (bool, error) {
		var err error
		switch name {
		case "entities":
			req.Entities, err = readColumns(dec, name, true, e.opts.MaxCandidates)
		case "return_features":
			req.ReturnFeatures, err = readBool(dec, name)
		default:
			return e.sharedMember(dec, name, &req.Features, &bodyVersion, &req.RoutingKey)
		}
		return true, err
	})
	if err == nil {
		req.Version, err = version(r, bodyVersion)
	}
	if err != nil {
		e.failed("predict", r.PathValue("name"), err)
		e.writeError(w, r, err)
		return
	}
	resp, err := e.Predict(r.Context(), r.PathValue("name"), req)
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	out := append(make([]byte, 0, 64+16*len(resp.Predictions)), `{"model_name":`...)
	out = jsonw.AppendString(out, resp.Model)
	out = append(out, `,"model_version":`...)
	out = jsonw.AppendString(out, resp.Version)
	out = append(out, `,"request_id":`...)
	out = jsonw.AppendString(out, req.RequestID)
	out = append(out, `,"predictions":[`...)
	k := max(resp.Outputs, 1)
	for i := 0; i < len(resp.Predictions); i += k {
		if i > 0 {
			out = append(out, ',')
		}
		if k == 1 {
			out = jsonw.AppendFloat(out, resp.Predictions[i])
			continue
		}
		out = append(out, '[')
		for c := range k {
			if c > 0 {
				out = append(out, ',')
			}
			out = jsonw.AppendFloat(out, resp.Predictions[i+c])
		}
		out = append(out, ']')
	}
	out = append(out, ']')
	out = appendMissing(out, resp.Missing)
	if resp.Features != nil {
		out = appendFeatures(out, resp.Features)
	}
	writeBody(w, append(out, '}', '\n'))
}

// sharedMember reads a body member predict and rank share (request values,
// a pinned version, a routing key) and reports whether name is one.
func (e *Endpoints) sharedMember(dec *jsontext.Decoder, name string, features *map[string]Column, version, routingKey *string) (bool, error) {
	var err error
	switch name {
	case "features":
		*features, err = readColumns(dec, name, true, e.opts.MaxCandidates)
	case "version":
		*version, err = readString(dec, name)
	case "routing_key":
		*routingKey, err = readString(dec, name)
		if err == nil && len(*routingKey) > oip.MaxRoutingKeyLen {
			err = errInput("%s: want at most %d bytes, got %d", name, oip.MaxRoutingKeyLen, len(*routingKey))
		}
	default:
		return false, nil
	}
	return true, err
}

func (e *Endpoints) handleRank(w http.ResponseWriter, r *http.Request) {
	e.rank(w, r, false)
}

func (e *Endpoints) handleRanker(w http.ResponseWriter, r *http.Request) {
	e.rank(w, r, true)
}

func (e *Endpoints) rank(w http.ResponseWriter, r *http.Request, ranker bool) {
	arrived := time.Now()
	route := "rank"
	if ranker {
		route = "ranker"
	}
	req := &RankRequest{RequestID: server.RequestID(r.Context()), Time: arrived}
	var bodyVersion string
	err := readBody(r, func(dec *jsontext.Decoder, name string) (bool, error) {
		var err error
		switch name {
		case "context":
			req.Context, err = readContext(dec)
		case "candidates":
			req.Candidates, err = readColumns(dec, name, false, e.opts.MaxCandidates)
		case "top_k":
			req.TopK, err = readInt(dec, name)
		default:
			return e.sharedMember(dec, name, &req.Features, &bodyVersion, &req.RoutingKey)
		}
		return true, err
	})
	if err == nil {
		if req.Version, err = version(r, bodyVersion); err == nil && ranker && req.Version != "" {
			err = errInput("version: a ranker's models each follow their alias; pin versions with aliases in serving.rankers")
		}
	}
	name := r.PathValue("name")
	if err != nil {
		e.failed(route, name, err)
		e.writeError(w, r, err)
		return
	}
	var resp *RankResponse
	if ranker {
		resp, err = e.RankWith(r.Context(), name, req)
	} else {
		resp, err = e.Rank(r.Context(), name, req)
	}
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	keys := sortedKeys(req.Candidates)
	out := make([]byte, 0, 128+len(resp.Ranked)*(40+16*len(resp.Models)))
	if ranker {
		out = append(out, `{"ranker":`...)
		out = jsonw.AppendString(out, resp.Model)
		out = append(out, `,"models":[`...)
		for i, m := range resp.Models {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, `{"name":`...)
			out = jsonw.AppendString(out, m.Name)
			out = append(out, `,"version":`...)
			out = jsonw.AppendString(out, m.Version)
			out = append(out, '}')
		}
		out = append(out, ']')
	} else {
		out = append(out, `{"model_name":`...)
		out = jsonw.AppendString(out, resp.Model)
		out = append(out, `,"model_version":`...)
		out = jsonw.AppendString(out, resp.Version)
	}
	out = append(out, `,"request_id":`...)
	out = jsonw.AppendString(out, req.RequestID)
	out = append(out, `,"ranked":[`...)
	for i, c := range resp.Ranked {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, '{')
		for _, k := range keys {
			out = jsonw.AppendString(out, k)
			out = append(out, ':')
			out = appendValue(out, req.Candidates[k].Values[c.Row])
			out = append(out, ',')
		}
		out = append(out, `"score":`...)
		out = jsonw.AppendFloat(out, c.Score)
		if ranker {
			out = append(out, `,"scores":{`...)
			for m, s := range c.Scores {
				if m > 0 {
					out = append(out, ',')
				}
				out = jsonw.AppendString(out, resp.Models[m].Name)
				out = append(out, ':')
				out = jsonw.AppendFloat(out, s)
			}
			out = append(out, '}')
		}
		out = append(out, '}')
	}
	out = append(out, ']')
	out = appendMissing(out, resp.Missing)
	writeBody(w, append(out, '}', '\n'))
}

// version is the version a request pins: ?version= or the body's, which
// must agree.
func version(r *http.Request, body string) (string, error) {
	q := r.URL.Query().Get("version")
	switch {
	case q != "" && body != "" && q != body:
		return "", errInput("version: %q in the query but %q in the body", q, body)
	case q != "":
		body = q
	}
	if body != "" {
		if n, err := strconv.ParseUint(body, 10, 63); err != nil || n == 0 {
			return "", errInput("version: %q, want a version number (1, 2, ...)", body)
		}
	}
	return body, nil
}

// ErrTooLarge means a request body is larger than the server accepts (413).
var ErrTooLarge = errors.New("request body too large")

// appendValue appends a request value as JSON.
func appendValue(out []byte, v any) []byte {
	switch x := v.(type) {
	case string:
		return jsonw.AppendString(out, x)
	case int64:
		return jsonw.AppendInt(out, x)
	case float64:
		return jsonw.AppendFloat(out, x)
	case bool:
		return jsonw.AppendBool(out, x)
	}
	return append(out, "null"...)
}

func appendMissing(out []byte, missing map[string]int) []byte {
	out = append(out, `,"missing":{`...)
	for i, n := range sortedKeys(missing) {
		if i > 0 {
			out = append(out, ',')
		}
		out = jsonw.AppendString(out, n)
		out = append(out, ':')
		out = strconv.AppendInt(out, int64(missing[n]), 10)
	}
	return append(out, '}')
}

// appendFeatures appends the scored values by feature: numbers (null when
// missing), categories as their text.
func appendFeatures(out []byte, ds *ml.Dataset) []byte {
	out = append(out, `,"features":{`...)
	for i := range ds.Columns {
		c := &ds.Columns[i]
		if i > 0 {
			out = append(out, ',')
		}
		out = jsonw.AppendString(out, c.Name)
		out = append(out, ":["...)
		for r := range c.Values {
			if r > 0 {
				out = append(out, ',')
			}
			switch {
			case c.Kind == ml.Categorical && c.Values[r] == c.Values[r]:
				out = jsonw.AppendString(out, categoryText(c.Categories, c.Values[r]))
			case c.Kind == ml.Categorical:
				out = append(out, "null"...)
			case c.Float64 != nil:
				out = jsonw.AppendFloat(out, c.Float64[r])
			default:
				out = jsonw.AppendFloat(out, float64(c.Values[r]))
			}
		}
		out = append(out, ']')
	}
	return append(out, '}')
}

func writeBody(w http.ResponseWriter, out []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// status maps the endpoints' errors to HTTP, in one place.
func status(err error) int {
	switch {
	case errors.Is(err, ErrTooMany), errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrInvalidInput):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrNotReady), errors.Is(err, ErrFeatureStore), errors.Is(err, ErrModelFormat),
		errors.Is(err, ErrUnsupportedFlavor), errors.Is(err, context.DeadlineExceeded),
		// Canceled: the client went away (nobody reads the answer) or the
		// server is stopping; either way not a server fault worth a 500.
		errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func (e *Endpoints) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := status(err)
	msg := err.Error()
	id := server.RequestID(r.Context())
	switch {
	case code == http.StatusInternalServerError:
		e.opts.Logger.Error("serving: request failed", "path", r.URL.Path, "request_id", id, "err", err)
		msg = server.InternalErrorMessage(r.Context())
	case code == http.StatusServiceUnavailable:
		e.opts.Logger.Warn("serving: request failed", "path", r.URL.Path, "request_id", id, "err", err)
		if !errors.Is(err, ErrModelFormat) && !errors.Is(err, ErrUnsupportedFlavor) {
			// Transient: a retry may succeed. A version that cannot load
			// gets no Retry-After: no retry helps until its alias moves.
			w.Header().Set("Retry-After", "1")
		}
		if errors.Is(err, ErrFeatureStore) || errors.Is(err, context.DeadlineExceeded) {
			// The store's own words (addresses) stay in the log.
			msg = "the online store did not answer in time or is unreachable (request id " + id + ")"
		}
	}
	server.WriteJSON(w, code, map[string]string{"error": msg})
}
