package wire

import (
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/atrium-ml/atrium/internal/platform/server"
)

// Prefixes are the two roots MLflow serves its REST API under: /api for clients,
// /ajax-api for the web UI.
var Prefixes = []string{"/api/2.0/mlflow", "/ajax-api/2.0/mlflow"}

// Handler serves one RPC: it returns the response object (written as JSON with
// status 200; nil means {}) or an error (written by WriteError).
type Handler func(r *http.Request) (any, error)

// RawJSON is a response that writes its own JSON. Serve sends its bytes as they
// are, skipping encoding/json's re-validation of Marshaler output (for a
// 100,000-point metric history that pass costs three times the encoding).
// AppendJSON must append valid JSON, and must not keep b: Serve appends into a
// pooled buffer.
type RawJSON interface {
	AppendJSON(b []byte) []byte
}

// JSON is a response already encoded, written as it is (valid JSON).
type JSON []byte

// AppendJSON appends j to b (RawJSON).
func (j JSON) AppendJSON(b []byte) []byte { return append(b, j...) }

// respBufs holds the buffers RawJSON responses are appended to. A search_runs
// page of 1,000 runs is about 700 kB: allocated afresh, every request would
// have the runtime zero 700 kB and the GC collect it.
var respBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledResp bounds the buffers kept in respBufs, so a rare 50,000-run page
// (35 MB) is not kept alive for the next small answer.
const maxPooledResp = 4 << 20

// writeRawJSON writes a RawJSON response with status 200.
func writeRawJSON(w http.ResponseWriter, rj RawJSON) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if j, ok := rj.(JSON); ok {
		_, _ = w.Write(j)
		return
	}
	bp := respBufs.Get().(*[]byte)
	b := rj.AppendJSON((*bp)[:0])
	_, _ = w.Write(b) // a Writer does not keep b
	if cap(b) <= maxPooledResp {
		*bp = b[:0]
		respBufs.Put(bp)
	}
}

// Route is one RPC endpoint. Path is relative to the prefixes ("/runs/get") and may
// hold {wildcards}.
type Route struct {
	Method string
	Path   string
	// Permission the caller needs (see server.Route); required.
	Permission server.Permission
	Handler    Handler
	// MaxBody bounds the request body in bytes. Default DefaultMaxBody.
	MaxBody int64
}

// Routes returns routes as server routes under every prefix of Prefixes, each
// keeping its permission.
func Routes(log *slog.Logger, routes []Route) []server.Route {
	out := make([]server.Route, 0, len(routes)*len(Prefixes))
	for _, rt := range routes {
		h := Serve(log, rt)
		for _, p := range Prefixes {
			out = append(out, server.Route{Pattern: rt.Method + " " + p + rt.Path, Permission: rt.Permission, Handler: h})
		}
	}
	return out
}

// Serve adapts a Route to an http.Handler: it bounds the body, runs the handler
// and writes its result or error in MLflow's format.
func Serve(log *slog.Logger, rt Route) http.Handler {
	limit := rt.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		if err := CheckPath(r); err != nil {
			WriteError(w, r, log, err)
			return
		}
		resp, err := rt.Handler(r)
		if err != nil {
			WriteError(w, r, log, err)
			return
		}
		if rj, ok := resp.(RawJSON); ok {
			writeRawJSON(w, rj)
			return
		}
		if resp == nil {
			resp = struct{}{}
		}
		server.WriteJSON(w, http.StatusOK, resp)
	})
}

// NotFound returns the handler for paths under the prefixes that no route
// matches (mount it on "<prefix>/"): ENDPOINT_NOT_FOUND with 404, or with 405
// and an Allow header when one of known serves the path under other methods
// (MLflow's server answers 405 there too). known are the routes served next
// to it (their handlers are not called).
func NotFound(known []server.Route) http.HandlerFunc {
	mux := http.NewServeMux()
	for _, rt := range known {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if m == r.Method {
				continue
			}
			// Route patterns carry their method; the catch-all does not.
			if _, pattern := mux.Handler(&http.Request{Method: m, URL: r.URL, Host: r.Host}); strings.HasPrefix(pattern, m+" ") {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			server.WriteJSON(w, http.StatusMethodNotAllowed, body{
				ErrorCode: EndpointNotFound,
				Message:   "Method " + r.Method + " is not allowed for " + r.URL.Path + "; use " + strings.Join(allow, " or "),
			})
			return
		}
		server.WriteJSON(w, http.StatusNotFound, body{
			ErrorCode: EndpointNotFound,
			Message:   "No API endpoint found for " + r.Method + " " + r.URL.Path,
		})
	}
}

// EncodeOffset returns MLflow's page token for a result offset: base64 of {"offset": n}.
func EncodeOffset(offset int) string {
	b, _ := json.Marshal(map[string]int{"offset": offset})
	return base64.StdEncoding.EncodeToString(b)
}

// DecodeOffset parses a page token made by EncodeOffset ("" is offset 0).
func DecodeOffset(token string) (int, error) {
	if token == "" {
		return 0, nil
	}
	raw, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		if raw, err = base64.URLEncoding.DecodeString(token); err != nil {
			return 0, Invalidf("Invalid page token, could not base64-decode")
		}
	}
	var parsed map[string]json.RawMessage
	if err := json.Unmarshal(raw, &parsed); err != nil {
		return 0, Invalidf("Invalid page token, decoded value=%s", raw)
	}
	v, ok := parsed["offset"]
	if !ok {
		return 0, Invalidf("Invalid page token, parsed value=%s", raw)
	}
	var n Int64
	if err := n.UnmarshalJSON(v); err != nil || n < 0 || int64(n) > int64(^uint32(0)>>1) {
		return 0, Invalidf("Invalid page token, not stringable %s", v)
	}
	return int(n), nil
}

// Itoa formats an id the way the wire carries it.
func Itoa(n int64) string { return strconv.FormatInt(n, 10) }
