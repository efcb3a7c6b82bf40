package retrieval

// The online feature server's HTTP API, Feast's wire format:
//
//	POST /get-online-features  feature vectors (column-major response)
//	POST /push                 fresh rows into the online (and offline) store
//	POST /write-to-online-store  Feast's remote online store writing rows
//	POST /delete-online        delete entity keys of a set (tombstones)
//	POST /materialize-incremental  materialize inside the server (Feast's route)
//	GET  /health               Feast's liveness route (the server also has /healthz)

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/server"
)

// APIOptions configure the HTTP API.
type APIOptions struct {
	// Logger receives server-side errors. Default: discard.
	Logger *slog.Logger
	// MaxBodyBytes bounds a request body. Default 32 MiB.
	MaxBodyBytes int64
	// StoreTimeout bounds each online store read and write of a request
	// (pushes and deletes included) and the readiness check: a store that
	// does not answer in time makes the request fail with 503
	// (ErrStoreUnavailable) rather than wait. Default 500ms.
	StoreTimeout time.Duration
	// Offline receives rows pushed with "to": "offline" or "online_and_offline".
	// Nil: such pushes are refused with 501.
	Offline OfflineAppender
	// Materializer, when set, serves POST /materialize-incremental (Store and
	// Meta must be the API's). Nil: the route answers 501.
	Materializer *Materializer
	// Meta, when set, records the join-key types pushed rows reveal for sets
	// whose key types are not known yet (see LoadKeyTypes).
	Meta *meta.DB
	// PushMaxSkew bounds how far past the server's clock the event time of a
	// pushed row (or a delete) may be: a later one is refused, so no client can
	// pin a key with a far-future row the event-time guard would then keep
	// forever. Default DefaultPushMaxSkew (5 minutes); negative: none at all
	// (nothing later than the clock).
	PushMaxSkew time.Duration
	// Now is the server's clock. Default time.Now.
	Now func() time.Time
	// Metrics are the API's metrics (the API registers them as a
	// prometheus.Collector). Default: NewMetrics(), also used by the Online
	// when its own Options.Metrics is nil.
	Metrics *Metrics
}

// API serves online features over HTTP. It implements server.API,
// server.Readier and prometheus.Collector.
type API struct {
	online  *Online
	opts    APIOptions
	metrics *Metrics
	// materializing runs one materialization at a time: they are long and
	// heavy, and a second one of the same sets would only redo the first's
	// work.
	materializing sync.Mutex
}

var (
	_ server.API           = (*API)(nil)
	_ server.Readier       = (*API)(nil)
	_ prometheus.Collector = (*API)(nil)
)

// NewAPI returns the HTTP API of o.
func NewAPI(o *Online, opts APIOptions) *API {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PushMaxSkew == 0 {
		opts.PushMaxSkew = DefaultPushMaxSkew
	}
	opts.PushMaxSkew = max(opts.PushMaxSkew, 0)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 32 << 20
	}
	if opts.StoreTimeout <= 0 {
		opts.StoreTimeout = DefaultStoreTimeout
	}
	if opts.Metrics == nil {
		opts.Metrics = o.opts.Metrics
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	if o.opts.Metrics == nil {
		o.opts.Metrics = opts.Metrics
	}
	return &API{online: o, opts: opts, metrics: opts.Metrics}
}

// Routes implements server.API: each route with the permission it needs.
func (a *API) Routes() []server.Route {
	return []server.Route{
		{Pattern: "POST /get-online-features", Permission: server.ReadFeatures, Handler: http.HandlerFunc(a.getOnlineFeatures)},
		{Pattern: "POST /push", Permission: server.PushFeatures, Handler: http.HandlerFunc(a.push)},
		{Pattern: "POST /write-to-online-store", Permission: server.PushFeatures, Handler: http.HandlerFunc(a.writeToOnlineStore)},
		// A tombstone undoes a bad push: the same right as pushing.
		{Pattern: "POST /delete-online", Permission: server.PushFeatures, Handler: http.HandlerFunc(a.deleteOnline)},
		{Pattern: "POST /materialize-incremental", Permission: server.Materialize, Handler: http.HandlerFunc(a.materialize)},
		// Feast's liveness probe, public like /healthz.
		{Pattern: "GET /health", Permission: server.Public, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			server.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		})},
	}
}

// readyKey is looked up by Ready: any answer, found or not, means the store
// is reachable.
var readyKey = online.MustKey("readyz")

// Ready implements server.Readier: the online store answers a read within
// the store timeout.
func (a *API) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, a.opts.StoreTimeout)
	defer cancel()
	res := make([]online.Result, 1)
	err := a.online.store.Read(ctx, []online.Query{{Set: "atrium-readyz", Keys: []online.Key{readyKey}}}, res)
	if err != nil {
		return storeError(ctx, a.opts.StoreTimeout, fmt.Errorf("online store: %w", err))
	}
	return nil
}

// DefaultStoreTimeout is the default of APIOptions.StoreTimeout.
const DefaultStoreTimeout = 500 * time.Millisecond

// ErrStoreUnavailable: the online store did not answer in time or could not
// be reached. Requests fail with 503 and Retry-After; nothing needs to be
// reset when the store returns (the next request reaches it).
var ErrStoreUnavailable = errors.New("online store unavailable")

// storeUnavailableError is ErrStoreUnavailable with the public words of why:
// its Error is safe to answer to a client, the cause is for the log.
type storeUnavailableError struct {
	public string
	cause  error
}

func (e *storeUnavailableError) Error() string        { return e.public + ": " + e.cause.Error() }
func (e *storeUnavailableError) Unwrap() error        { return e.cause }
func (e *storeUnavailableError) Is(target error) bool { return target == ErrStoreUnavailable }

// storeError classifies err, an online store's error under ctx (which carries
// the store timeout): when the store did not answer in time or cannot be
// reached it becomes a storeUnavailableError, otherwise err is returned as
// is. A cancellation by the client stays a cancellation.
func storeError(ctx context.Context, timeout time.Duration, err error) error {
	var netErr net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		// A client library that sets the connection's deadline from ctx (as
		// go-redis does) sees the socket time out at the same instant, and
		// ctx.Err() may not be set yet when it returns: a net timeout is the
		// same event.
		// The deadline may be the request's (shorter than the store timeout
		// when little of it is left); the words name the store timeout, the
		// bound an operator configures.
		return &storeUnavailableError{public: "online store did not answer within " + timeout.String(), cause: err}
	case errors.As(err, &netErr), errors.Is(err, online.ErrUnavailable), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &storeUnavailableError{public: "online store is unreachable", cause: err}
	}
	return err
}

// Describe implements prometheus.Collector.
func (a *API) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range a.metrics.Collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (a *API) Collect(ch chan<- prometheus.Metric) {
	for _, c := range a.metrics.Collectors() {
		c.Collect(ch)
	}
}

// httpStatus is the one place errors become HTTP status codes.
func httpStatus(err error) int {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrInvalidRequest), errors.Is(err, online.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrCheckFailed):
		return http.StatusUnprocessableEntity
	case errors.Is(err, ErrUnknownFeature):
		return http.StatusNotFound
	case errors.Is(err, ErrNotSupported):
		return http.StatusNotImplemented
	case errors.Is(err, ErrStoreUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled):
		return 499 // the client went away (nginx's code); nobody reads the answer
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, online.ErrClosed):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var netErr net.Error
	switch {
	case errors.Is(err, ErrStoreUnavailable):
	case errors.Is(err, context.DeadlineExceeded):
		// The request's deadline (the server's request timeout) passed in a
		// backend call: the backend is slow or gone, a 503 the client may
		// retry.
		err = &storeUnavailableError{public: "a backend did not answer before the request's deadline", cause: err}
	case errors.As(err, &netErr), errors.Is(err, syscall.ECONNREFUSED):
		// A write's backend (online store, offline store, metadata DB) is
		// unreachable: a 503 the client may retry, not a 500.
		err = &storeUnavailableError{public: "a backend is unreachable", cause: err}
	}
	code := httpStatus(err)
	msg := err.Error()
	var unavailable *storeUnavailableError
	if errors.As(err, &unavailable) {
		// The answer says which backend and why in public words; the driver's
		// words (addresses) stay in the log.
		a.opts.Logger.Warn("online API", "path", r.URL.Path, "request_id", server.RequestID(r.Context()), "error", err)
		w.Header().Set("Retry-After", "1")
		server.WriteJSON(w, code, map[string]string{"error": unavailable.public + " (request id " + server.RequestID(r.Context()) + ")"})
		return
	}
	if code >= 500 && code != http.StatusNotImplemented {
		// A store's or the engine's words stay in the log.
		a.opts.Logger.Error("online API", "path", r.URL.Path, "request_id", server.RequestID(r.Context()), "error", err)
		msg = server.InternalErrorMessage(r.Context())
	}
	// Messages quote client input with %q: bound every quoted value here,
	// whichever call site built the message.
	server.WriteJSON(w, code, map[string]string{"error": server.ClipQuoted(msg)})
}

// buffers pools request bodies and responses.
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBytes bounds the buffers kept in pools: a large body's memory goes
// back to the runtime when its request ends instead of staying in a pool.
const maxPooledBytes = 1 << 20

// readBody reads r's body into buf, never past MaxBodyBytes: a declared
// length over it is refused before reading, a known length is read into a
// buffer of exactly that size (not grown by doubling), and a body without a
// length is cut off at the limit while read. A buffer grown past
// maxPooledBytes is detached from buf (which the caller pools) and the
// returned bytes are the only reference to it.
func (a *API) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) ([]byte, error) {
	buf.Reset()
	if r.ContentLength > a.opts.MaxBodyBytes {
		return nil, fmt.Errorf("%w: body larger than %d bytes (%d declared)", &http.MaxBytesError{Limit: a.opts.MaxBodyBytes}, a.opts.MaxBodyBytes, r.ContentLength)
	}
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, a.opts.MaxBodyBytes))
	body := buf.Bytes()
	if buf.Cap() > maxPooledBytes {
		*buf = bytes.Buffer{}
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, fmt.Errorf("%w: body larger than %d bytes", tooBig, a.opts.MaxBodyBytes)
		}
		// The transport's words name addresses: the answer says what went
		// wrong in the client's terms only.
		return nil, fmt.Errorf("%w: reading body: %s", ErrInvalidRequest, bodyReadProblem(err))
	}
	return body, nil
}

var jsonContentType = []string{"application/json"}

// getState is the pooled memory of one get-online-features request.
type getState struct {
	body    bytes.Buffer
	out     []byte
	decoded getRequest
	req     Request
}

var getStates = sync.Pool{New: func() any { return new(getState) }}

func (a *API) getOnlineFeatures(w http.ResponseWriter, r *http.Request) {
	st := getStates.Get().(*getState)
	defer getStates.Put(st)
	v, err := a.decodeAndRead(w, r, st)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	st.out = appendResponse(st.out[:0], v)
	v.Release()
	h := w.Header()
	h["Content-Type"] = jsonContentType // shared, never modified: spares Set's allocation
	// The whole body is in hand: a length spares the client chunked decoding.
	h.Set("Content-Length", strconv.Itoa(len(st.out)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(st.out)
	if cap(st.out) > maxPooledBytes {
		st.out = nil
	}
}

func (a *API) decodeAndRead(w http.ResponseWriter, r *http.Request, st *getState) (*Vectors, error) {
	body, err := a.readBody(w, r, &st.body)
	if err != nil {
		return nil, err
	}
	d := &st.decoded
	if err := decodeGetRequest(body, d); err != nil {
		return nil, err
	}
	if d.hasService && d.service == "" {
		return nil, fmt.Errorf("%w: feature_service: empty name", ErrInvalidRequest)
	}
	v := vectorsPool.Get().(*Vectors)
	p, scratch, err := a.online.planJSON(d.features, d.service, d.fullNames, v.scratch)
	v.scratch = scratch
	if err != nil {
		v.Release()
		return nil, err
	}
	if err := a.readEntities(r.Context(), p, d, &st.req, v); err != nil {
		v.Release()
		return nil, err
	}
	return v, nil
}

// readEntities parses the entity columns the plan needs, typed by its join
// keys, and reads the features.
func (a *API) readEntities(ctx context.Context, p *plan, d *getRequest, req *Request, v *Vectors) error {
	if len(d.entities) == 0 {
		return fmt.Errorf("%w: entities: empty; want one list of values per join key (%s)", ErrInvalidRequest, p.joinKeyList())
	}
	req.Entities.reset()
	for _, col := range d.entities {
		typ, known := KeyAny, false
		for _, k := range p.joinKeys {
			if k.Name == col.name {
				typ, known = k.Type, true
			}
		}
		if !known {
			return fmt.Errorf("%w: entities: %s is not a join key of the requested features (want %s)", ErrInvalidRequest, server.Quote(col.name), p.joinKeyList())
		}
		c := req.Entities.col(col.name)
		if err := parseKeyColumnMax("entities."+col.name, col.raw, typ, c, a.online.opts.MaxEntities); err != nil {
			return err
		}
	}
	req.Context = nil
	if len(d.context) > 0 {
		req.Context = map[string][]online.Value{}
		for _, col := range d.context {
			k, declared := p.requestKind(col.name)
			if !declared {
				continue // Feast's clients send values for transformations elsewhere too
			}
			vals, err := parseContextColumn(col.name, col.raw, k)
			if err != nil {
				return err
			}
			if n := req.Entities.rows(); len(vals) != n {
				return fmt.Errorf("%w: request_context.%s has %d values, want one per entity row (%d)", ErrInvalidRequest, col.name, len(vals), n)
			}
			req.Context[col.name] = vals
		}
	}
	// The store read, not the whole request, gets the store timeout: decoding
	// and planning are bounded by the request's size, the store by nothing
	// else.
	sctx, cancel := context.WithTimeout(ctx, a.opts.StoreTimeout)
	defer cancel()
	if err := a.online.read(sctx, p, req, v); err != nil {
		return storeError(sctx, a.opts.StoreTimeout, err)
	}
	return nil
}

// bodyReadProblem says why a request body could not be read, without the
// transport's details (addresses, file descriptors).
func bodyReadProblem(err error) string {
	var netErr net.Error
	switch {
	case errors.As(err, &netErr) && netErr.Timeout():
		return "the body did not arrive in time (server.body_timeout)"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "the body ended before its declared length"
	}
	return "the connection failed while the body was sent"
}
