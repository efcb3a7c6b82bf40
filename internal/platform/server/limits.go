package server

// Limits against hostile (or merely overeager) clients, applied to every
// request before its API sees it:
//
//   - a request body larger than MaxBodyBytes, by its Content-Length, is
//     answered 413 before a byte of it is read; a body without a length is cut
//     off at MaxBodyBytes while it is read (http.MaxBytesReader);
//   - the bodies in flight across the server share a budget of
//     InFlightBodyBytes: a request whose body does not fit is answered 503
//     with Retry-After instead of being read;
//   - each route class (reads, writes, heavy jobs, streamed uploads) has a
//     bound on concurrent requests, beyond which requests are answered 503
//     with Retry-After;
//   - a body must keep arriving: every BodyTimeout it must have delivered
//     another bodyProgressBytes, or its reads fail and the connection closes
//     (a body sent one byte every 5 s does not hold a connection);
//   - every request carries a deadline in its context (RequestTimeout, or
//     LongRequestTimeout for heavy and streamed routes), which reaches the
//     stores the handlers call;
//   - every response has a write deadline, so a client that does not read
//     its answer cannot hold a connection and a handler: BodyTimeout past the
//     request's deadline (time for the answer of a request that ran out of
//     it), and for streamed routes, once the answer has started, the same
//     progress rule as bodies (another 64 KiB taken within each BodyTimeout),
//     so a download at any fair rate runs as long as it needs.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Class is the kind of work a route does; each class has its own bound on
// concurrent requests, so a flood of one kind cannot starve the others.
type Class uint8

const (
	// ClassRead: cheap reads (GET, online feature reads, searches).
	ClassRead Class = iota
	// ClassWrite: requests that change state and whose body is read whole.
	ClassWrite
	// ClassHeavy: long jobs inside the server (materialization).
	ClassHeavy
	// ClassStream: uploads streamed to a store, never held whole in memory:
	// exempt from MaxBodyBytes (their API bounds them) and counted against the
	// body budget as StreamReserveBytes each.
	ClassStream
	numClasses
)

var classNames = [numClasses]string{"read", "write", "heavy", "stream"}

func (c Class) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// bodyProgressBytes is what a body must deliver per BodyTimeout to keep its
// connection: 64 KiB per 30 s (the default) is 2 KiB/s, far below any real
// client and far above a trickle.
const bodyProgressBytes = 64 << 10

// Limits bound what clients can make the server hold. The zero value means
// every default.
type Limits struct {
	// MaxBodyBytes bounds a request body of every route but streamed uploads.
	// APIs may set lower limits per route. Default 64 MiB (the largest body an
	// API accepts: MLflow's log-inputs).
	MaxBodyBytes int64
	// InFlightBodyBytes is the budget of request bodies being read or held
	// across the server: a body counts its Content-Length (or MaxBodyBytes
	// when it has none, or StreamReserveBytes for a streamed upload) from
	// admission until its handler returns. Default 256 MiB.
	InFlightBodyBytes int64
	// StreamReserveBytes is what a streamed upload counts against the budget
	// (its buffers, not its size). Default 1 MiB.
	StreamReserveBytes int64
	// Concurrency bounds the requests of each class in flight, indexed by
	// Class. Defaults: read 1024, write 256, heavy 2, stream 32.
	Concurrency [numClasses]int
	// RetryAfter is the Retry-After of a 503 for lack of capacity. Default 1s.
	RetryAfter time.Duration
	// RequestTimeout is the deadline of a read or write request. Default 30s.
	RequestTimeout time.Duration
	// LongRequestTimeout is the deadline of a heavy or streamed request.
	// Default 1h.
	LongRequestTimeout time.Duration
	// BodyTimeout: a request body must deliver 64 KiB (or end) within each
	// BodyTimeout, else reading it fails and the connection is closed. It
	// also bounds answers: each is written within BodyTimeout past its
	// request's deadline, and a streamed one (ClassStream) taken 64 KiB per
	// BodyTimeout from its first byte. Default 30s.
	BodyTimeout time.Duration
	// ReadHeaderTimeout bounds reading a request's headers. Default 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle that long. Default 2m.
	IdleTimeout time.Duration
	// Classes maps route patterns, exactly as their API registers them
	// ("POST /get-online-features"), to their class. A route not listed is
	// ClassRead for GET and HEAD, ClassWrite otherwise.
	Classes map[string]Class
}

// Concurrency returns per-class bounds in the layout of Limits.Concurrency.
func Concurrency(read, write, heavy, stream int) [numClasses]int {
	return [numClasses]int{ClassRead: read, ClassWrite: write, ClassHeavy: heavy, ClassStream: stream}
}

// DefaultLimits are the limits of the zero value.
var DefaultLimits = Limits{
	MaxBodyBytes:       64 << 20,
	InFlightBodyBytes:  256 << 20,
	StreamReserveBytes: 1 << 20,
	Concurrency:        [numClasses]int{ClassRead: 1024, ClassWrite: 256, ClassHeavy: 2, ClassStream: 32},
	RetryAfter:         time.Second,
	RequestTimeout:     30 * time.Second,
	LongRequestTimeout: time.Hour,
	BodyTimeout:        30 * time.Second,
	ReadHeaderTimeout:  10 * time.Second,
	IdleTimeout:        2 * time.Minute,
}

func (l *Limits) ensureDefaults() {
	d := &DefaultLimits
	def := func(v *int64, dv int64) {
		if *v == 0 {
			*v = dv
		}
	}
	defd := func(v *time.Duration, dv time.Duration) {
		if *v == 0 {
			*v = dv
		}
	}
	def(&l.MaxBodyBytes, d.MaxBodyBytes)
	def(&l.InFlightBodyBytes, d.InFlightBodyBytes)
	def(&l.StreamReserveBytes, d.StreamReserveBytes)
	for c := range l.Concurrency {
		if l.Concurrency[c] == 0 {
			l.Concurrency[c] = d.Concurrency[c]
		}
	}
	defd(&l.RetryAfter, d.RetryAfter)
	defd(&l.RequestTimeout, d.RequestTimeout)
	defd(&l.LongRequestTimeout, d.LongRequestTimeout)
	defd(&l.BodyTimeout, d.BodyTimeout)
	defd(&l.ReadHeaderTimeout, d.ReadHeaderTimeout)
	defd(&l.IdleTimeout, d.IdleTimeout)
}

// Validate reports every problem of l (after defaults) at once, one per line.
func (l *Limits) Validate() error {
	var ps []string
	if l.MaxBodyBytes < 0 {
		ps = append(ps, fmt.Sprintf("max body bytes: %d, want a positive size", l.MaxBodyBytes))
	}
	if l.InFlightBodyBytes < l.MaxBodyBytes {
		// Else a body of the allowed size could never be admitted.
		ps = append(ps, fmt.Sprintf("in-flight body bytes: %d, want at least the max body size (%d)", l.InFlightBodyBytes, l.MaxBodyBytes))
	}
	if l.StreamReserveBytes < 0 || l.StreamReserveBytes > l.InFlightBodyBytes {
		ps = append(ps, fmt.Sprintf("stream reserve bytes: %d, want 0 to the in-flight budget (%d)", l.StreamReserveBytes, l.InFlightBodyBytes))
	}
	for c, n := range l.Concurrency {
		if n < 0 {
			ps = append(ps, fmt.Sprintf("concurrency of %s requests: %d, want a positive count", Class(c), n))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"retry after", l.RetryAfter}, {"request timeout", l.RequestTimeout}, {"long request timeout", l.LongRequestTimeout},
		{"body timeout", l.BodyTimeout}, {"read header timeout", l.ReadHeaderTimeout}, {"idle timeout", l.IdleTimeout}} {
		if d.v < 0 {
			ps = append(ps, fmt.Sprintf("%s: %s, want a positive duration", d.name, d.v))
		}
	}
	for p, c := range l.Classes {
		if c >= numClasses {
			ps = append(ps, fmt.Sprintf("class of %q: %d is not a class", p, c))
		}
	}
	if len(ps) > 0 {
		return fmt.Errorf("server limits:\n%s", strings.Join(ps, "\n"))
	}
	return nil
}

// limiter applies Limits. Its counters are the only shared state: admission
// is an atomic add and, past a bound, its undo (never a lock or a queue: a
// request that cannot be served now is answered now).
type limiter struct {
	l          Limits
	mux        *http.ServeMux
	bodyBytes  atomic.Int64
	inFlight   [numClasses]atomic.Int64
	retryAfter string
}

func newLimiter(l Limits, mux *http.ServeMux) *limiter {
	secs := int64((l.RetryAfter + time.Second - 1) / time.Second)
	return &limiter{l: l, mux: mux, retryAfter: strconv.FormatInt(max(secs, 1), 10)}
}

// class returns the class of r's route (found the way the mux will route it).
func (lim *limiter) class(r *http.Request) Class {
	if len(lim.l.Classes) > 0 {
		if _, pattern := lim.mux.Handler(r); pattern != "" {
			if c, ok := lim.l.Classes[pattern]; ok {
				return c
			}
		}
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return ClassRead
	}
	return ClassWrite
}

// startWrite gives the response to r a write deadline before anything else
// is done with it: a connection's deadline outlives its request, so one left
// by the previous request on a keep-alive connection must not cut this one's
// answer (a refusal written before admit included).
func (lim *limiter) startWrite(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(lim.l.RequestTimeout + lim.l.BodyTimeout))
}

// admit applies the limits to r. When r may go on, it returns the request to
// serve (with its deadline and guarded body), the writer to answer it on
// (w, or for streamed routes w with progress-based write deadlines) and the
// function to call when its handler has returned; otherwise it has answered
// w and returns ok false.
func (lim *limiter) admit(w http.ResponseWriter, r *http.Request) (_ *http.Request, _ http.ResponseWriter, release func(), ok bool) {
	c := lim.class(r)
	hasBody := r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	var reserve int64
	if hasBody {
		switch {
		case c == ClassStream:
			reserve = lim.l.StreamReserveBytes
		case r.ContentLength > lim.l.MaxBodyBytes:
			// Refused by its declared size: not a byte of it is read.
			w.Header().Set("Connection", "close")
			WriteError(w, r, http.StatusRequestEntityTooLarge, "INVALID_PARAMETER_VALUE",
				fmt.Sprintf("request body of %d bytes is over the server's limit of %d bytes", r.ContentLength, lim.l.MaxBodyBytes))
			return nil, nil, nil, false
		case r.ContentLength > 0:
			reserve = r.ContentLength
		default:
			// Unknown length: it may grow to the limit, so it reserves the limit.
			reserve = lim.l.MaxBodyBytes
		}
	}
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && (r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics") {
		// The server's own probes are not counted: a saturated read class
		// must not fail a liveness probe (and get a busy server restarted).
		// They are cheap, and /readyz is bounded by the store timeout.
		ctx, cancel := context.WithTimeout(r.Context(), lim.l.RequestTimeout)
		return r.WithContext(ctx), w, cancel, true
	}
	if n := lim.inFlight[c].Add(1); n > int64(lim.l.Concurrency[c]) {
		lim.inFlight[c].Add(-1)
		lim.unavailable(w, r, fmt.Sprintf("the server is at its limit of %d concurrent %s requests; retry later", lim.l.Concurrency[c], c))
		return nil, nil, nil, false
	}
	if reserve > 0 {
		if n := lim.bodyBytes.Add(reserve); n > lim.l.InFlightBodyBytes {
			lim.bodyBytes.Add(-reserve)
			lim.inFlight[c].Add(-1)
			lim.unavailable(w, r, fmt.Sprintf("the server is at its limit of %d bytes of request bodies in flight; retry later", lim.l.InFlightBodyBytes))
			return nil, nil, nil, false
		}
	}
	timeout := lim.l.RequestTimeout
	if c == ClassHeavy || c == ClassStream {
		timeout = lim.l.LongRequestTimeout
		// Until the answer starts (an upload's body is read first), the long
		// deadline; startWrite set the short one.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(timeout + lim.l.BodyTimeout))
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	r = r.WithContext(ctx)
	if hasBody {
		body := r.Body
		if c != ClassStream {
			body = http.MaxBytesReader(w, body, lim.l.MaxBodyBytes)
		}
		r.Body = newProgressBody(w, body, lim.l.BodyTimeout)
	}
	if c == ClassStream {
		w = &progressWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: lim.l.BodyTimeout}
	}
	return r, w, func() {
		cancel()
		if reserve > 0 {
			lim.bodyBytes.Add(-reserve)
		}
		lim.inFlight[c].Add(-1)
	}, true
}

func (lim *limiter) unavailable(w http.ResponseWriter, r *http.Request, msg string) {
	w.Header().Set("Retry-After", lim.retryAfter)
	WriteError(w, r, http.StatusServiceUnavailable, "TEMPORARILY_UNAVAILABLE", msg)
}

// progressBody makes a body keep arriving: the connection's read deadline is
// BodyTimeout from the start, and moves BodyTimeout ahead each time another
// bodyProgressBytes have been read. A trickle never earns an extension, so its
// reads fail at the deadline (and the server closes the connection).
type progressBody struct {
	body    io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	credit  int
	// deadlines is false when the connection cannot take deadlines (an
	// HTTP/2 stream in some setups, a test recorder): the body is then read
	// without one, as before.
	deadlines bool
}

func newProgressBody(w http.ResponseWriter, body io.ReadCloser, timeout time.Duration) *progressBody {
	p := &progressBody{body: body, rc: http.NewResponseController(w), timeout: timeout}
	p.deadlines = p.rc.SetReadDeadline(time.Now().Add(timeout)) == nil
	return p
}

func (p *progressBody) Read(b []byte) (int, error) {
	n, err := p.body.Read(b)
	if p.deadlines {
		p.credit += n
		if p.credit >= bodyProgressBytes {
			p.credit = 0
			_ = p.rc.SetReadDeadline(time.Now().Add(p.timeout))
		}
	}
	return n, err
}

func (p *progressBody) Close() error { return p.body.Close() }

// progressWriter makes a streamed answer keep being taken: from its first
// byte the connection's write deadline is BodyTimeout ahead, and moves
// BodyTimeout ahead each time another bodyProgressBytes have been written.
// A client that stops reading (or reads a byte now and then) fails the
// handler's writes at the deadline, which ends the handler and closes the
// connection; one that reads at any fair rate is never cut.
type progressWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	credit  int
	started bool
}

func (p *progressWriter) Write(b []byte) (int, error) {
	if !p.started {
		p.started = true
		_ = p.rc.SetWriteDeadline(time.Now().Add(p.timeout))
	}
	n, err := p.ResponseWriter.Write(b)
	if p.credit += n; p.credit >= bodyProgressBytes {
		p.credit = 0
		_ = p.rc.SetWriteDeadline(time.Now().Add(p.timeout))
	}
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (p *progressWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// MaxEchoedBytes bounds what an error message repeats of one client input.
const MaxEchoedBytes = 64

// Quote renders client input for an error message: quoted, and cut to a
// bounded length so an answer never echoes an unbounded value back.
func Quote(s string) string {
	if len(s) <= MaxEchoedBytes {
		return strconv.Quote(s)
	}
	head, n := clipped(s)
	return strconv.Quote(head) + n
}

// Clip is Quote without the quotes, for messages that quote input their own
// way (MLflow's 'name', id=...): s itself when short, else its first
// MaxEchoedBytes bytes (whole runes) and how long it was.
func Clip(s string) string {
	if len(s) <= MaxEchoedBytes {
		return s
	}
	head, n := clipped(s)
	return head + n
}

// clipped splits a long s into its head, cut on a rune boundary at most
// MaxEchoedBytes long, and the note saying how long s was.
func clipped(s string) (string, string) {
	cut := MaxEchoedBytes
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut], "... (" + strconv.Itoa(len(s)) + " bytes)"
}

// ClipQuoted bounds every Go-quoted string (as %q writes it) in msg: one
// whose value is longer than MaxEchoedBytes is replaced by its Quote. Error
// writers apply it to messages built from client input with %q, so that no
// call site can echo an unbounded value by forgetting Quote.
func ClipQuoted(msg string) string {
	if len(msg) <= MaxEchoedBytes {
		return msg
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(msg, '"')
		if i < 0 {
			b.WriteString(msg)
			return b.String()
		}
		b.WriteString(msg[:i])
		msg = msg[i:]
		lit, err := strconv.QuotedPrefix(msg)
		if err != nil {
			// A lone quote: keep it and look past it.
			b.WriteByte('"')
			msg = msg[1:]
			continue
		}
		if v, err := strconv.Unquote(lit); err == nil && len(v) > MaxEchoedBytes {
			b.WriteString(Quote(v))
		} else {
			b.WriteString(lit)
		}
		msg = msg[len(lit):]
	}
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// unroutedClasses lists the patterns of Limits.Classes that mux does not route
// to that same pattern (a typo, or a route an API no longer registers): their
// class would silently not apply.
func (lim *limiter) unroutedClasses() []string {
	var bad []string
	for pattern := range lim.l.Classes {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok || !strings.HasPrefix(path, "/") {
			bad = append(bad, pattern)
			continue
		}
		// A request the pattern matches: each wildcard becomes one segment.
		segs := strings.Split(path, "/")
		for i, seg := range segs {
			if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
				segs[i] = "x"
			}
		}
		r, err := http.NewRequest(method, strings.Join(segs, "/"), nil)
		if err != nil {
			bad = append(bad, pattern)
			continue
		}
		if _, got := lim.mux.Handler(r); got != pattern {
			bad = append(bad, pattern)
		}
	}
	slices.Sort(bad)
	return bad
}
