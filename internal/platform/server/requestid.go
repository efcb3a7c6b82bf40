package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
)

// RequestIDHeader carries a request's id: taken from the request when the
// client (or a proxy in front) sent a usable one, else made by the server,
// and always returned on the response. Logs of a request carry it as
// request_id, and a 5xx answer names it instead of the internal error.
const RequestIDHeader = "X-Request-Id"

// MaxRequestIDLen bounds an id taken from a request: it is logged (the
// access log, the prediction log) and echoed.
const MaxRequestIDLen = 128

type requestIDKey struct{}

// RequestID returns the id of the request ctx belongs to ("" outside a
// request the server handles).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// WithRequestID returns ctx carrying id as its request's id, which
// RequestID reads. The HTTP server sets it for every request; other
// transports (the gRPC server) set the id they chose, so that code below
// them (the prediction log, internal errors' answers) names the same id on
// every transport. The caller checks id with UsableRequestID.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// InternalErrorMessage is what a 5xx answer says instead of the error behind
// it, whose text (a database's or filesystem's words, addresses, paths) stays
// in the log under the same request id.
func InternalErrorMessage(ctx context.Context) string {
	return "internal error (request id " + RequestID(ctx) + "); the server log has the details"
}

// requestIDs makes request ids: a random prefix per server and a counter,
// unique without a random read per request.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand's contract since Go 1.24)
	return &requestIDs{prefix: hex.EncodeToString(b[:]) + "-"}
}

func (g *requestIDs) next() string {
	return g.prefix + strconv.FormatUint(g.n.Add(1), 10)
}

// UsableRequestID reports whether a client's id can be logged and echoed as
// is: not empty, at most MaxRequestIDLen bytes, and printable ASCII without
// spaces, quotes or backslashes (it goes into log lines, headers and
// messages unescaped). Every transport applies this one rule.
func UsableRequestID(id string) bool {
	if id == "" || len(id) > MaxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// withRequestID gives r its id (the client's, or a new one), sets it on the
// response and returns the request carrying it in its context. A client's
// id that is replaced is logged at DEBUG: the client sees another id echoed,
// and its rows are not under the id it sent.
func (g *requestIDs) withRequestID(w http.ResponseWriter, r *http.Request, log *slog.Logger) *http.Request {
	sent := r.Header.Get(RequestIDHeader)
	id := sent
	if !UsableRequestID(id) {
		id = g.next()
		if sent != "" {
			LogReplacedRequestID(r.Context(), log, "http", sent, id)
		}
	}
	w.Header().Set(RequestIDHeader, id)
	return r.WithContext(WithRequestID(r.Context(), id))
}

var replacedRequestIDMessage = "request id replaced: the client's is not at most " + strconv.Itoa(MaxRequestIDLen) +
	" bytes of printable ASCII without spaces, quotes or backslashes"

// LogReplacedRequestID logs at DEBUG that a client's request id (sent) was
// not usable and the request got id instead. The client's value is cut to
// MaxRequestIDLen bytes (it may be of any length); the handler escapes what
// it holds.
func LogReplacedRequestID(ctx context.Context, log *slog.Logger, transport, sent, id string) {
	if !log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	shown := sent
	if len(shown) > MaxRequestIDLen {
		shown = shown[:MaxRequestIDLen]
	}
	log.DebugContext(ctx, replacedRequestIDMessage, "transport", transport, "sent", shown, "sent_bytes", len(sent), "request_id", id)
}
