package oip

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/atrium-ml/atrium/internal/platform/jsonw"
	"github.com/atrium-ml/atrium/internal/platform/server"
)

// Extensions are the protocol extensions Atrium serves, listed by GET /v2
// and ServerMetadata.
var Extensions = []string{"binary_tensor_data"}

// Options configure the transports.
type Options struct {
	// ServerName is the name GET /v2 and ServerMetadata answer. Default "atrium".
	ServerName string
	// ServerVersion is the version they answer (the binary's). Default "dev".
	ServerVersion string
	// MaxBodyBytes bounds an inference request's body (the server's own
	// limit applies first). Default 64 MiB.
	MaxBodyBytes int64
	// Logger receives internal errors (their cause, which answers do not
	// carry). Default: discard.
	Logger *slog.Logger
}

func (o *Options) ensureDefaults() {
	if o.ServerName == "" {
		o.ServerName = "atrium"
	}
	if o.ServerVersion == "" {
		o.ServerVersion = "dev"
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 64 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// InferPatterns are the inference routes' patterns: POSTs that change
// nothing, which `atrium serve` should class as reads for its concurrency
// limits (server.Limits.Classes), like /get-online-features.
var InferPatterns = []string{"POST /v2/models/{name}/infer", "POST /v2/models/{name}/versions/{version}/infer"}

// API is the protocol's REST endpoints over a Backend (a server.API).
type API struct {
	b    Backend
	opts Options
}

// NewAPI returns the REST endpoints serving b.
func NewAPI(b Backend, opts Options) *API {
	opts.ensureDefaults()
	return &API{b: b, opts: opts}
}

// Routes returns the REST endpoints serving b (NewAPI(b, opts).Routes()).
func Routes(b Backend, opts Options) []server.Route { return NewAPI(b, opts).Routes() }

// Routes implements server.API. Health is public (probes carry no
// credential); metadata and inference need server.Infer.
func (a *API) Routes() []server.Route {
	h := func(f http.HandlerFunc) http.Handler { return f }
	return []server.Route{
		{Pattern: "GET /v2/health/live", Permission: server.Public, Handler: h(a.live)},
		{Pattern: "GET /v2/health/ready", Permission: server.Public, Handler: h(a.ready)},
		{Pattern: "GET /v2", Permission: server.Infer, Handler: h(a.serverMetadata)},
		{Pattern: "GET /v2/models/{name}", Permission: server.Infer, Handler: h(a.modelMetadata)},
		{Pattern: "GET /v2/models/{name}/versions/{version}", Permission: server.Infer, Handler: h(a.modelMetadata)},
		{Pattern: "GET /v2/models/{name}/ready", Permission: server.Infer, Handler: h(a.modelReady)},
		{Pattern: "GET /v2/models/{name}/versions/{version}/ready", Permission: server.Infer, Handler: h(a.modelReady)},
		{Pattern: InferPatterns[0], Permission: server.Infer, Handler: h(a.infer)},
		{Pattern: InferPatterns[1], Permission: server.Infer, Handler: h(a.infer)},
	}
}

func (a *API) live(w http.ResponseWriter, r *http.Request) {
	server.WriteJSON(w, http.StatusOK, map[string]bool{"live": true})
}

// ready answers 200 when the backend can serve and 503 when it cannot, so
// a probe (and tritonclient's is_server_ready, which reads the status) sees
// it either way.
func (a *API) ready(w http.ResponseWriter, r *http.Request) {
	ok := a.b.ServerReady(r.Context())
	server.WriteJSON(w, readyStatus(ok), map[string]bool{"ready": ok})
}

func readyStatus(ok bool) int {
	if ok {
		return http.StatusOK
	}
	return http.StatusServiceUnavailable
}

func (a *API) serverMetadata(w http.ResponseWriter, r *http.Request) {
	server.WriteJSON(w, http.StatusOK, map[string]any{"name": a.opts.ServerName, "version": a.opts.ServerVersion, "extensions": Extensions})
}

func (a *API) modelMetadata(w http.ResponseWriter, r *http.Request) {
	md, err := a.b.ModelMetadata(r.Context(), r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	server.WriteJSON(w, http.StatusOK, md)
}

func (a *API) modelReady(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ok, err := a.b.ModelReady(r.Context(), name, r.PathValue("version"))
	if err != nil {
		code, msg := a.errorAnswer(w, r, err)
		if code != http.StatusServiceUnavailable {
			writeErrorBody(w, code, []byte(`{"error":`), msg)
			return
		}
		// Known but not ready (a version that failed to load, a load
		// past the deadline): a readiness answer, with the reason.
		head := append(jsonw.AppendString([]byte(`{"name":`), name), `,"ready":false,"error":`...)
		writeErrorBody(w, code, head, msg)
		return
	}
	server.WriteJSON(w, readyStatus(ok), map[string]any{"name": name, "ready": ok})
}

// inferState is the pooled memory of one inference request.
type inferState struct {
	body  bytes.Buffer
	out   []byte
	specs []inputSpec
	req   InferRequest
}

var inferStates = sync.Pool{New: func() any { return new(inferState) }}

// maxPooledBytes bounds the buffers kept in the pool: a large request's
// memory goes back to the runtime when it ends.
const maxPooledBytes = 1 << 20

// HeaderContentLength is the binary-data extension's header: the length of
// the JSON document that starts the body, the raw tensors following it.
const HeaderContentLength = "Inference-Header-Content-Length"

var (
	jsonContentType   = []string{"application/json"}
	binaryContentType = []string{"application/octet-stream"}
)

func (a *API) infer(w http.ResponseWriter, r *http.Request) {
	st := inferStates.Get().(*inferState)
	defer func() {
		if st.body.Cap() > maxPooledBytes {
			st.body = bytes.Buffer{}
		}
		if cap(st.out) > maxPooledBytes {
			st.out = nil
		}
		st.req = InferRequest{}
		inferStates.Put(st)
	}()
	headerLen := -1
	if v := r.Header.Get(HeaderContentLength); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			a.writeError(w, r, fmt.Errorf("%w: header %s: want the JSON header's length in bytes, got %s", ErrInvalidInput, HeaderContentLength, server.Quote(v)))
			return
		}
		headerLen = n
	}
	if err := a.readBody(w, r, &st.body); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := decodeRequest(st.body.Bytes(), headerLen, &st.req, &st.specs); err != nil {
		a.writeError(w, r, err)
		return
	}
	resp, err := a.b.Infer(r.Context(), r.PathValue("name"), r.PathValue("version"), &st.req)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if resp.ID == "" {
		resp.ID = st.req.ID
	}
	var hl int
	st.out, hl = appendResponse(st.out[:0], resp, &st.req)
	h := w.Header()
	if hl >= 0 {
		h[HeaderContentLength] = []string{strconv.Itoa(hl)}
		h["Content-Type"] = binaryContentType
	} else {
		h["Content-Type"] = jsonContentType
	}
	h.Set("Content-Length", strconv.Itoa(len(st.out)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(st.out)
}

// maxPreGrow bounds the buffer reserved from a request's Content-Length
// before its bytes arrive.
const maxPreGrow = 1 << 20

// readBody reads r's body into buf, bounded by MaxBodyBytes; a declared
// length up to maxPreGrow is read into a buffer of that size, not grown by
// doubling. A body sent with Content-Encoding gzip or deflate (tritonclient's
// request_compression_algorithm) is decompressed, its decompressed size
// bounded by MaxBodyBytes too (a small bomb cannot grow past it).
func (a *API) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) error {
	buf.Reset()
	if r.ContentLength > a.opts.MaxBodyBytes {
		return &http.MaxBytesError{Limit: a.opts.MaxBodyBytes}
	}
	body := io.Reader(http.MaxBytesReader(w, r.Body, a.opts.MaxBodyBytes))
	enc := r.Header.Get("Content-Encoding")
	switch strings.ToLower(enc) {
	case "", "identity":
		// The declared length sizes the buffer only up to maxPreGrow: a
		// client declaring 64 MiB and sending nothing must not reserve
		// 64 MiB per connection; past it the buffer grows as bytes arrive.
		if r.ContentLength > 0 {
			buf.Grow(int(min(r.ContentLength, maxPreGrow)) + bytes.MinRead)
		}
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return fmt.Errorf("%w: Content-Encoding gzip: the body is not gzip data: %v", ErrInvalidInput, err)
		}
		body = zr
	case "deflate":
		zr, err := zlib.NewReader(body)
		if err != nil {
			return fmt.Errorf("%w: Content-Encoding deflate: the body is not zlib data: %v", ErrInvalidInput, err)
		}
		body = zr
	default:
		return fmt.Errorf("%w: Content-Encoding %s: want gzip, deflate or none", ErrInvalidInput, server.Quote(enc))
	}
	n, err := buf.ReadFrom(io.LimitReader(body, a.opts.MaxBodyBytes+1))
	if n > a.opts.MaxBodyBytes {
		return &http.MaxBytesError{Limit: a.opts.MaxBodyBytes}
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		if enc != "" && !strings.EqualFold(enc, "identity") {
			// The decompressor's error (unexpected EOF, a bad checksum) is
			// about the compressed stream, not the JSON in it.
			return fmt.Errorf("%w: Content-Encoding %s: the compressed body is cut or corrupt: %v", ErrInvalidInput, strings.ToLower(enc), err)
		}
		return fmt.Errorf("%w: reading the body: %v", ErrInvalidInput, err)
	}
	return nil
}

// status is the one place errors become HTTP status codes.
func httpStatus(err error) int {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrInvalidInput):
		return http.StatusBadRequest
	case errors.Is(err, ErrModelNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrModelUnusable), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled):
		return 499 // the client went away (nginx's code); nobody reads the answer
	}
	return http.StatusInternalServerError
}

// writeError answers err in the protocol's shape, {"error": "..."}. An
// internal error's cause goes to the log under the request id, which the
// answer names instead.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := a.errorAnswer(w, r, err)
	writeErrorBody(w, code, []byte(`{"error":`), msg)
}

// errorAnswer is the status and message answering err: it logs what the
// answer does not carry and sets Retry-After when a retry may succeed.
func (a *API) errorAnswer(w http.ResponseWriter, r *http.Request, err error) (code int, msg string) {
	code = httpStatus(err)
	msg = err.Error()
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		msg = fmt.Sprintf("request body over the limit of %d bytes", tooBig.Limit)
	case errors.Is(err, ErrModelUnusable):
		// Not transient: no Retry-After, so that clients do not retry a
		// model that cannot load until its alias moves.
		a.opts.Logger.Warn("inference", "path", r.URL.Path, "request_id", server.RequestID(r.Context()), "err", err)
	case code == http.StatusServiceUnavailable && !errors.Is(err, ErrUnavailable):
		// The request's deadline passed in the backend (a store or a load
		// too slow): the cause's words stay in the log.
		a.opts.Logger.Warn("inference", "path", r.URL.Path, "request_id", server.RequestID(r.Context()), "err", err)
		w.Header().Set("Retry-After", "1")
		msg = "the model did not answer before the request's deadline (request id " + server.RequestID(r.Context()) + ")"
	case code == http.StatusServiceUnavailable:
		a.opts.Logger.Warn("inference", "path", r.URL.Path, "request_id", server.RequestID(r.Context()), "err", err)
		w.Header().Set("Retry-After", "1")
	case code >= 500:
		a.opts.Logger.Error("inference", "path", r.URL.Path, "request_id", server.RequestID(r.Context()), "err", err)
		msg = server.InternalErrorMessage(r.Context())
	}
	return code, msg
}

// writeErrorBody answers head (an object's opening up to the "error"
// member's colon), msg and the object's end with status code.
func writeErrorBody(w http.ResponseWriter, code int, head []byte, msg string) {
	body := append(jsonw.AppendString(head, msg), "}\n"...)
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
