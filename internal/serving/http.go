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
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/platform/jsonw"
	"github.com/atrium-ml/atrium/internal/platform/server"
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

type predictBody struct {
	Entities       map[string]json.RawMessage `json:"entities"`
	Features       map[string]json.RawMessage `json:"features"`
	ReturnFeatures bool                       `json:"return_features"`
	Version        string                     `json:"version"`
	RoutingKey     string                     `json:"routing_key"`
}

type rankBody struct {
	Context    map[string]json.RawMessage `json:"context"`
	Candidates map[string]json.RawMessage `json:"candidates"`
	Features   map[string]json.RawMessage `json:"features"`
	TopK       int                        `json:"top_k"`
	Version    string                     `json:"version"`
	RoutingKey string                     `json:"routing_key"`
}

func (e *Endpoints) handlePredict(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	var b predictBody
	if err := readJSON(r, &b); err != nil {
		e.failed("predict", r.PathValue("name"), err)
		e.writeError(w, r, err)
		return
	}
	req := &PredictRequest{ReturnFeatures: b.ReturnFeatures, RoutingKey: b.RoutingKey, RequestID: server.RequestID(r.Context()), Time: arrived}
	var err error
	if req.Version, err = version(r, b.Version); err == nil {
		if req.Entities, err = columns("entities", b.Entities, true, e.opts.MaxCandidates); err == nil {
			req.Features, err = columns("features", b.Features, true, e.opts.MaxCandidates)
		}
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
	var b rankBody
	if err := readJSON(r, &b); err != nil {
		e.failed(route, r.PathValue("name"), err)
		e.writeError(w, r, err)
		return
	}
	req := &RankRequest{TopK: b.TopK, RoutingKey: b.RoutingKey, RequestID: server.RequestID(r.Context()), Time: arrived}
	var err error
	if req.Version, err = version(r, b.Version); err == nil && ranker && req.Version != "" {
		err = errInput("version: a ranker's models each follow their alias; pin versions with aliases in serving.rankers")
	}
	if err == nil {
		req.Context, err = contextValues(b.Context)
	}
	if err == nil {
		req.Candidates, err = columns("candidates", b.Candidates, false, e.opts.MaxCandidates)
	}
	if err == nil {
		req.Features, err = columns("features", b.Features, true, e.opts.MaxCandidates)
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

// readJSON decodes a request body strictly: unknown members are refused (a
// misspelled "candidate" would otherwise rank nothing).
func readJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fmt.Errorf("%w: body larger than %d bytes", ErrTooLarge, tooBig.Limit)
		}
		return errInput("body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errInput("body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return errInput("body: more than one JSON value")
	}
	return nil
}

// ErrTooLarge means a request body is larger than the server accepts (413).
var ErrTooLarge = errors.New("request body too large")

// columns decodes a member of per-row values: each a list (one value per
// row) or, when scalars, a single value for every row. A list of more than
// limit values is refused (ErrTooMany) before any of it is decoded: a body
// of one long list would otherwise cost tens of bytes of heap per value
// before the row count is checked.
func columns(part string, raw map[string]json.RawMessage, scalars bool, limit int) (map[string]Column, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	out := make(map[string]Column, len(raw))
	for n, msg := range raw {
		msg = bytes.TrimSpace(msg)
		if len(msg) > 0 && msg[0] == '[' {
			count := 0
			eachElement(msg, func([]byte) error { count++; return nil })
			if count > limit {
				return nil, fmt.Errorf("%w: %s.%s has %d values, at most %d per request (serving.max_candidates)", ErrTooMany, part, n, count, limit)
			}
			c := Column{Values: make([]any, 0, count)}
			err := eachElement(msg, func(it []byte) error {
				v, err := scalar(it)
				if err != nil {
					return errInput("%s.%s[%d]: %v", part, n, len(c.Values), err)
				}
				c.Values = append(c.Values, v)
				return nil
			})
			if err != nil {
				return nil, err
			}
			out[n] = c
			continue
		}
		if !scalars {
			return nil, errInput("%s.%s: want a list, one value per candidate", part, n)
		}
		v, err := scalar(msg)
		if err != nil {
			return nil, errInput("%s.%s: %v", part, n, err)
		}
		out[n] = Column{Values: []any{v}, Broadcast: true}
	}
	return out, nil
}

// eachElement calls fn with each element of the JSON array msg, stopping at
// fn's first error. msg must be valid JSON (a json.RawMessage the decoder
// has checked), so counting brackets outside strings finds the elements
// without allocating.
func eachElement(msg []byte, fn func(el []byte) error) error {
	depth, start := 0, 0
	inString, escaped := false, false
	for i, c := range msg {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			if depth == 1 {
				start = i + 1
			}
		case ']', '}':
			depth--
			if depth == 0 {
				if el := bytes.TrimSpace(msg[start:i]); len(el) > 0 {
					return fn(el)
				}
				return nil
			}
		case ',':
			if depth == 1 {
				if err := fn(bytes.TrimSpace(msg[start:i])); err != nil {
					return err
				}
				start = i + 1
			}
		}
	}
	return nil
}

// contextValues decodes rank's context: one value per key.
func contextValues(raw map[string]json.RawMessage) (map[string]any, error) {
	out := make(map[string]any, len(raw))
	for n, msg := range raw {
		v, err := scalar(msg)
		if err != nil {
			return nil, errInput("context.%s: %v", n, err)
		}
		if v == nil {
			return nil, errInput("context.%s: null, want the key's value", n)
		}
		out[n] = v
	}
	return out, nil
}

// scalar decodes one JSON value: a string, a number (int64 when it is a
// whole number that fits, else float64), a boolean or null.
func scalar(msg json.RawMessage) (any, error) {
	msg = bytes.TrimSpace(msg)
	if len(msg) == 0 {
		return nil, errors.New("empty value")
	}
	switch c := msg[0]; {
	case c == '"':
		if s, ok := plainString(msg); ok {
			return s, nil // candidate ids: no escapes to undo
		}
		var s string
		if err := json.Unmarshal(msg, &s); err != nil {
			return nil, err
		}
		return s, nil
	case c == 't' || c == 'f':
		var b bool
		if err := json.Unmarshal(msg, &b); err != nil {
			return nil, err
		}
		return b, nil
	case c == 'n':
		return nil, nil
	case c == '-' || (c >= '0' && c <= '9'):
		if n, err := strconv.ParseInt(string(msg), 10, 64); err == nil {
			return n, nil
		}
		f, err := strconv.ParseFloat(string(msg), 64)
		if err != nil {
			return nil, fmt.Errorf("%s is not a number", msg)
		}
		return f, nil
	}
	return nil, fmt.Errorf("want a string, a number, a boolean or null, got %.40s", msg)
}

// plainString is the text of a JSON string without escapes or control
// characters, in valid UTF-8: its bytes between the quotes, as they are.
func plainString(msg []byte) (string, bool) {
	n := len(msg)
	if n < 2 || msg[n-1] != '"' {
		return "", false
	}
	body := msg[1 : n-1]
	for _, b := range body {
		if b < 0x20 || b == '"' || b == '\\' {
			return "", false
		}
	}
	if !utf8.Valid(body) {
		return "", false
	}
	return string(body), true
}

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
