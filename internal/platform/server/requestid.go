package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"sync/atomic"
)

// RequestIDHeader carries a request's id: taken from the request when the
// client (or a proxy in front) sent a usable one, else made by the server,
// and always returned on the response. Logs of a request carry it as
// request_id, and a 5xx answer names it instead of the internal error.
const RequestIDHeader = "X-Request-Id"

// maxRequestIDLen bounds an id taken from a request: it is logged and echoed.
const maxRequestIDLen = 128

type requestIDKey struct{}

// RequestID returns the id of the request ctx belongs to ("" outside a
// request the server handles).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
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

// usableRequestID reports whether a client's id can be logged and echoed as
// is: not empty, bounded, and printable ASCII without spaces or quotes.
func usableRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
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
// response and returns the request carrying it in its context.
func (g *requestIDs) withRequestID(w http.ResponseWriter, r *http.Request) *http.Request {
	id := r.Header.Get(RequestIDHeader)
	if !usableRequestID(id) {
		id = g.next()
	}
	w.Header().Set(RequestIDHeader, id)
	return r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
}
