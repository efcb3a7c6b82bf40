package predlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Options.
const (
	DefaultBufferRows    = 100_000
	DefaultFlushInterval = 10 * time.Second
)

// Options configure a Writer. Zero fields take their defaults.
type Options struct {
	// Dir is the offline store's directory; the log lives in Dir/predictions.
	// Required.
	Dir string
	// BufferRows bounds the rows held in memory, waiting or being written
	// (default 100,000). A record that does not fit is dropped.
	BufferRows int
	// SampleRate is the share of requests logged, in (0, 1] (default 1: all;
	// zero means the default). The decision hashes the request id: a request
	// is logged whole or not at all. To log nothing, do not open a Writer:
	// a nil *Writer logs nothing.
	SampleRate float64
	// FlushInterval is the longest a logged row waits before it is written
	// (default 10 s); it bounds what a crash loses.
	FlushInterval time.Duration
	// Logger receives flush errors (default: discarded).
	Logger *slog.Logger
	// Metrics receives the writer's metrics (default: fresh, unregistered
	// ones). Pass one shared Metrics to every Writer of a process.
	Metrics *Metrics
}

// EnsureDefaults fills the zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.BufferRows == 0 {
		o.BufferRows = DefaultBufferRows
	}
	if o.SampleRate == 0 {
		o.SampleRate = 1
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
}

// Validate reports every invalid field, one per line.
func (o *Options) Validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("predlog: dir: required (the offline store's directory)"))
	}
	if o.BufferRows < 0 {
		errs = append(errs, fmt.Errorf("predlog: buffer_rows: %d, want a positive number of rows", o.BufferRows))
	}
	if o.SampleRate < 0 || o.SampleRate > 1 || math.IsNaN(o.SampleRate) {
		errs = append(errs, fmt.Errorf("predlog: sample_rate: %v, want a share in (0, 1]", o.SampleRate))
	}
	if o.FlushInterval < 0 {
		errs = append(errs, fmt.Errorf("predlog: flush_interval: %v, want a positive duration", o.FlushInterval))
	}
	return errors.Join(errs...)
}

// Writer buffers records and writes them to Parquet in the background. Its
// methods are safe for concurrent use. A nil *Writer is a log that is off:
// Log returns false, Flush and Close return nil, so a server with the log
// disabled (serving.prediction_log.enabled: false, or sample_rate: 0) holds a
// nil Writer and calls it all the same.
type Writer struct {
	opts Options
	dir  string // Dir/predictions
	m    *Metrics
	// threshold is the hash value below which a request is sampled in.
	threshold uint64

	mu      sync.Mutex
	pending []Record // by value: appending allocates only when the slice grows
	closed  bool
	// held counts the rows pending or being written; Log reserves with it
	// before it takes mu, so a full buffer refuses without locking.
	held atomic.Int64

	// spare is the buffer the next flush puts in pending's place: the one
	// the flush before it took, emptied. Only flushes use it (under
	// sink.mu). It holds record headers only (their slices are cleared),
	// as many as the largest flush took: the memory the allocation per
	// flush held while writing, now kept between flushes.
	spare []Record
	// floats holds the Values of written records (*[]float64) for Floats
	// to hand out again: a logged request's feature values (200 rows x 30
	// features are 48 KB) would otherwise be allocated afresh, twice the
	// request path's own garbage at a high rate.
	floats sync.Pool

	kick chan struct{} // a non-blocking nudge: flush now
	stop chan struct{}
	done chan struct{}
	sink *sink
}

// Open starts a Writer on opts.Dir/predictions, removing first the temporary
// files of dead writers (those untouched for staleTempAge). Close it to write what it holds.
func Open(ctx context.Context, opts Options) (*Writer, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	dir := filepath.Join(opts.Dir, "predictions")
	if err := removeDeadTemps(dir, time.Now().Add(-staleTempAge(opts.FlushInterval))); err != nil {
		return nil, fmt.Errorf("prediction log %s: remove temporary files: %w", dir, err)
	}
	s, err := openSink(ctx, dir, opts.SampleRate)
	if err != nil {
		return nil, fmt.Errorf("prediction log %s: %w", dir, err)
	}
	w := &Writer{
		opts:      opts,
		dir:       dir,
		m:         opts.Metrics,
		threshold: sampleThreshold(opts.SampleRate),
		kick:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		sink:      s,
	}
	w.m.capacity.Add(float64(opts.BufferRows))
	go w.run()
	return w, nil
}

// sampleThreshold maps a rate to the hash values kept: h < threshold, or every
// hash when rate is 1.
func sampleThreshold(rate float64) uint64 {
	if rate >= 1 {
		return math.MaxUint64
	}
	return uint64(rate * math.MaxUint64)
}

// Sampled reports whether a request id is in the sample of rate: the same
// answer in every process, so a request is logged whole or not at all.
func Sampled(requestID string, rate float64) bool {
	return sampledHash(requestID, sampleThreshold(rate))
}

func sampledHash(id string, threshold uint64) bool {
	if threshold == math.MaxUint64 {
		return true
	}
	// FNV-1a, inline: hash/fnv's interface costs more than the hash here.
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return mix(h) < threshold
}

// mix spreads FNV's output over the whole range (splitmix64's finalizer):
// FNV-1a of similar ids differs mostly in low bits.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// Sampled reports whether Log would keep a record of requestID: callers ask
// before they build one, so that an unsampled request costs no copy of its
// rows (Log decides the same way, by the same hash).
func (w *Writer) Sampled(requestID string) bool {
	return w != nil && sampledHash(requestID, w.threshold)
}

// Log queues rec for writing and reports whether it was kept: false when the
// request is not in the sample, the buffer is full, rec is malformed or the
// Writer is closed. It never blocks on I/O nor waits for a flush. A kept
// record's slices belong to the Writer: the caller must not modify them.
func (w *Writer) Log(rec Record) bool {
	if w == nil {
		return false
	}
	if !sampledHash(rec.RequestID, w.threshold) {
		return false
	}
	if err := rec.check(); err != nil {
		w.m.dropped.WithLabelValues(rec.Model, "invalid").Add(float64(max(rec.Rows, 0)))
		w.opts.Logger.Warn("prediction log: record refused", "err", err)
		return false
	}
	n := int64(rec.Rows)
	held := w.held.Add(n)
	if held > int64(w.opts.BufferRows) {
		w.held.Add(-n)
		w.m.dropped.WithLabelValues(rec.Model, "buffer_full").Add(float64(n))
		return false
	}
	// Crossing half full: flush early rather than drop at the next peak.
	crossed := held > int64(w.opts.BufferRows)/2 && held-n <= int64(w.opts.BufferRows)/2
	if rec.Time.IsZero() {
		rec.Time = time.Now()
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.held.Add(-n)
		w.m.dropped.WithLabelValues(rec.Model, "closed").Add(float64(n))
		return false
	}
	w.pending = append(w.pending, rec)
	// Under mu, so that the flush taking rec subtracts after this adds.
	w.m.buffered.Add(float64(n))
	w.mu.Unlock()
	if crossed {
		// Only now that rec is pending: a kick sent before the append could
		// be taken by a flush that finds nothing, leaving rec to the interval.
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return true
}

// Floats returns a slice of n values for a record's Values, reusing those
// of records already written when one is large enough. Its contents are
// arbitrary: the caller sets every element. A nil Writer allocates.
func (w *Writer) Floats(n int) []float64 {
	if w != nil {
		if p, ok := w.floats.Get().(*[]float64); ok && cap(*p) >= n {
			return (*p)[:n]
		}
	}
	return make([]float64, n)
}

// flusherPriority is lowerFlusherPriority; the package's tests keep their
// flushers at normal priority (a SCHED_IDLE thread on a machine saturated
// by other tests waited a minute for a core), TestFlusherPriority checks
// the policy.
var flusherPriority = lowerFlusherPriority

// run flushes on the interval, on a kick, and one last time at stop.
func (w *Writer) run() {
	defer close(w.done)
	flusherPriority()
	t := time.NewTicker(w.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-w.kick:
		case <-w.stop:
			// The last flush, which Close waits for, runs at normal
			// priority: on a busy machine the flusher's thread would wait
			// for an idle core.
			last := make(chan struct{})
			go func() {
				defer close(last)
				w.flush(context.Background())
			}()
			<-last
			return
		}
		w.flush(context.Background())
	}
}

// Flush writes what is buffered now and returns when it is published (or
// failed). Tests and Close use it; serving relies on the background flusher.
func (w *Writer) Flush(ctx context.Context) error {
	if w == nil {
		return nil
	}
	return w.flush(ctx)
}

// flush takes the pending records and writes them. Flushes are serialised by
// the sink's lock, so files of one flush are all published before the next
// starts.
func (w *Writer) flush(ctx context.Context) error {
	w.sink.mu.Lock()
	defer w.sink.mu.Unlock()
	// The swap allocates nothing while it holds mu: the flusher's thread is
	// SCHED_IDLE, and a request logging while that thread waits for an idle
	// core inside the lock would wait with it. The previous flush's buffer,
	// already as large as the traffic made it, becomes the next one.
	w.mu.Lock()
	taken := w.pending
	w.pending = w.spare
	w.mu.Unlock()
	defer func() {
		for i := range taken {
			if v := taken[i].Values; cap(v) > 0 {
				w.floats.Put(&v)
			}
		}
		clear(taken) // the records' other slices go to the collector
		w.spare = taken[:0]
	}()
	if len(taken) == 0 {
		return nil
	}
	rows := 0
	recs := make([]*Record, len(taken))
	for i := range taken {
		recs[i] = &taken[i]
		rows += taken[i].Rows
	}
	start := time.Now()
	res := w.sink.write(ctx, recs)
	w.m.flushDuration.Observe(time.Since(start).Seconds())
	for _, f := range res.failed {
		w.m.dropped.WithLabelValues(f.model, f.reason).Add(float64(f.rows))
		w.opts.Logger.Error("prediction log: rows dropped", "model", f.model, "rows", f.rows, "reason", f.reason, "err", f.err)
	}
	for model, n := range res.written {
		w.m.rows.WithLabelValues(model).Add(float64(n))
	}
	w.m.files.Add(float64(res.files))
	w.held.Add(-int64(rows))
	w.m.buffered.Sub(float64(rows))
	return res.err()
}

// Close stops the flusher after a last flush of everything logged before it,
// and releases DuckDB. Records logged after Close are dropped ("closed").
// Closing twice is not an error. If ctx ends first, Close returns its error
// and the last flush goes on in the background.
func (w *Writer) Close(ctx context.Context) error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	select {
	case <-w.done:
	case <-ctx.Done():
		go func() {
			<-w.done
			w.m.capacity.Sub(float64(w.opts.BufferRows))
			_ = w.sink.close()
		}()
		return fmt.Errorf("prediction log: close: %w", ctx.Err())
	}
	w.m.capacity.Sub(float64(w.opts.BufferRows))
	return w.sink.close()
}

// modelDir is the partition directory of a model: bytes outside
// [A-Za-z0-9_-], and a leading '.', percent-encoded, so that any registered
// name is one safe path element.
func modelDir(name string) string {
	var b strings.Builder
	b.WriteString("model=")
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.' && i > 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}
