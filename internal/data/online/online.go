// Package online is the online feature store: the latest feature row of every
// entity key of every feature set, read at serving time.
//
// A Store is opened by URL like a database/sql driver: backends register a URL
// scheme from an init function (pebble://dir, redis://host:port/db) and users
// blank-import the backends they want. The conformance suite in onlinetest runs
// against every backend.
//
// Stored values are typed (Value) and carry a format version (FormatVersion) so
// a newer binary can read what an older one wrote and an older binary refuses,
// with ErrFormat, what it cannot read.
package online

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Sentinel errors. Backends wrap them with context; check with errors.Is.
var (
	// ErrUnsupportedURL: no backend is registered for the URL's scheme.
	ErrUnsupportedURL = errors.New("unsupported online store URL")
	// ErrInvalid: a Write or Read argument breaks the contract (empty set name,
	// a row whose values don't match its features, a malformed key).
	ErrInvalid = errors.New("invalid online store request")
	// ErrFormat: stored data has a format this binary cannot read (written by a
	// newer atrium, or damaged).
	ErrFormat = errors.New("unreadable online store data")
	// ErrClosed: the store was used after Close.
	ErrClosed = errors.New("online store is closed")
	// ErrInUse: Open found an embedded store held open by another process
	// (`atrium serve`), which then is the way to reach it.
	ErrInUse = errors.New("online store is in use")
	// ErrUnavailable: the store's servers did not answer (down, paused,
	// too few replicas for the consistency level). Backends wrap their
	// client's errors of that kind with it, when those are neither context
	// nor net errors, so callers answer 503 and retry later.
	ErrUnavailable = errors.New("online store is unavailable")
)

// Store holds the latest row of each (feature set, entity key).
//
// Every method is safe for concurrent use. Close releases the store; calls after
// Close return ErrClosed, and a second Close returns nil.
type Store interface {
	// Write stores rows of set. features names the columns of every row's Values,
	// in order. A row replaces the stored row of its key as a whole (features it
	// does not name become absent) unless the stored row has a newer event time:
	// an older row never overwrites a newer one, whatever the order writes arrive
	// in; a row with the same event time does overwrite. Write is atomic per row
	// and durable when it returns; rows of one call are not one transaction.
	Write(ctx context.Context, set string, features []string, rows []Row) error

	// Read looks up every query and fills results[i] for queries[i] (len(results)
	// must equal len(queries)); see Result for the layout. Results are reused:
	// their slices are resized in place, so a caller that keeps Results across
	// calls reads without allocating them again. A key without a row is reported
	// as not found, never as an error. Backends answer all queries of one call in
	// one round trip per storage node, never one per key or per set.
	Read(ctx context.Context, queries []Query, results []Result) error

	// Close releases the store.
	Close() error
}

// Deleter is the optional capability of a Store to delete keys; every
// backend in this repository has it (found by type assertion, like
// database/sql's optional driver interfaces; a Store without it cannot delete,
// and callers report that as unsupported).
//
// Delete semantics (a tombstone): Delete(ctx, set, keys, at) removes the
// stored row of every key, whatever its event time: a delete is an operator's
// override, the one way to undo a row stamped far in the future. It leaves a
// tombstone stamped at, so the event-time guard keeps holding: a later Write
// of a row whose event time is at or before at is dropped (a replayed push or
// a materialization of old data does not resurrect the key), a row after at
// is stored as usual. Deleting a key that has no row still leaves the
// tombstone. A deleted key reads as not found. A second Delete replaces the
// tombstone with its own time. at must not be zero; Delete is atomic per key
// and durable when it returns.
type Deleter interface {
	Delete(ctx context.Context, set string, keys []Key, at time.Time) error
}

// CheckDelete validates Delete's arguments; backends call it first.
func CheckDelete(set string, keys []Key, at time.Time) error {
	if err := CheckSet(set); err != nil {
		return err
	}
	if at.IsZero() {
		return fmt.Errorf("%w: set %s: a delete needs a time", ErrInvalid, set)
	}
	for i, k := range keys {
		if err := k.Check(); err != nil {
			return fmt.Errorf("set %s: key %d: %w", set, i, err)
		}
	}
	return nil
}

// Row is one feature row of an entity key.
type Row struct {
	// Key is the encoded entity key (see Key).
	Key Key
	// TS is the row's event time; Write compares it to the stored row's.
	TS time.Time
	// Values are the feature values, in the order of Write's features.
	Values []Value
}

// Query asks for some features of some keys of one set.
type Query struct {
	Set      string
	Features []string
	Keys     []Key
}

// Result is what Read found for one Query.
type Result struct {
	// Found[j] reports whether Keys[j] has a row.
	Found []bool
	// TS[j] is the event time of Keys[j]'s row; the zero time when not found.
	TS []time.Time
	// Values holds len(Keys)*len(Features) values, key-major: the value of feature
	// f for key j is Values[j*len(Features)+f]. A key that is not found has Missing
	// values; a found row that holds no value for a feature (it was written before
	// the feature existed) has Missing for it; a stored NULL is Null.
	Values []Value
}

// Row returns the values of key j, in Query.Features order.
func (r *Result) Row(j int) []Value {
	n := len(r.Values) / max(len(r.Found), 1)
	return r.Values[j*n : (j+1)*n]
}

// Reset sizes r for n keys of f features each, all not found, reusing its memory.
// Backends call it at the start of Read.
func (r *Result) Reset(n, f int) {
	r.Found = slices.Grow(r.Found[:0], n)[:n]
	r.TS = slices.Grow(r.TS[:0], n)[:n]
	r.Values = slices.Grow(r.Values[:0], n*f)[:n*f]
	clear(r.Found)
	clear(r.TS)
	for i := range r.Values {
		r.Values[i] = Missing
	}
}

// OpenOptions are what a program gives every store it opens, whatever the
// backend; the URL carries the backend's own settings.
type OpenOptions struct {
	// Logger receives the backend's own messages (Pebble's background
	// errors and, at debug level, its compactions). Nil: discard.
	Logger *slog.Logger

	// TTL is each feature set's ttl (its rows' max age), by set name: a
	// backend that can expire data (Cassandra) lets a row of such a set
	// expire once its event time plus the TTL has passed, when a read would
	// start reporting its values OUTSIDE_MAX_AGE (from then on the key reads
	// as not found, without the stale values other backends still return).
	// A set that is absent or 0 keeps its rows. Backends that cannot expire
	// rows ignore it.
	TTL map[string]time.Duration
}

// Opener opens a store from its parsed URL. The context bounds the opening
// only. opts.Logger is never nil.
type Opener func(ctx context.Context, u *url.URL, opts OpenOptions) (Store, error)

var (
	driversMu sync.RWMutex
	drivers   = map[string]Opener{}
)

// Register makes a backend available under a URL scheme. Call it from an init
// function; it panics when the scheme is registered twice (a programming error).
func Register(scheme string, open Opener) {
	driversMu.Lock()
	defer driversMu.Unlock()
	if _, dup := drivers[scheme]; dup {
		panic("online: Register called twice for scheme " + scheme)
	}
	drivers[scheme] = open
}

// Schemes lists the registered URL schemes, sorted.
func Schemes() []string {
	driversMu.RLock()
	defer driversMu.RUnlock()
	out := make([]string, 0, len(drivers))
	for s := range drivers {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Open opens the store named by rawURL with the backend registered for its scheme.
func Open(ctx context.Context, rawURL string, opts OpenOptions) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("online store URL %q: %w", rawURL, err)
	}
	driversMu.RLock()
	open, ok := drivers[u.Scheme]
	driversMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q: expected one of %s://", ErrUnsupportedURL, u.Redacted(), strings.Join(Schemes(), "://, "))
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := open(ctx, u, opts)
	if err != nil {
		return nil, fmt.Errorf("open online store %s: %w", u.Redacted(), err)
	}
	return s, nil
}

// CheckWrite validates Write's arguments; backends call it first so every
// backend rejects the same requests with the same errors.
func CheckWrite(set string, features []string, rows []Row) error {
	if err := CheckSet(set); err != nil {
		return err
	}
	seen := make(map[string]bool, len(features))
	for _, f := range features {
		if f == "" || strings.IndexByte(f, 0) >= 0 {
			return fmt.Errorf("%w: set %s: feature name %q: want a non-empty name without NUL bytes", ErrInvalid, set, f)
		}
		if seen[f] {
			return fmt.Errorf("%w: set %s: feature %q named twice", ErrInvalid, set, f)
		}
		seen[f] = true
	}
	for i := range rows {
		r := &rows[i]
		if len(r.Values) != len(features) {
			return fmt.Errorf("%w: set %s: row %d has %d values for %d features", ErrInvalid, set, i, len(r.Values), len(features))
		}
		if err := r.Key.Check(); err != nil {
			return fmt.Errorf("set %s: row %d: %w", set, i, err)
		}
		if r.TS.IsZero() {
			return fmt.Errorf("%w: set %s: row %d has no event time", ErrInvalid, set, i)
		}
		for f, v := range r.Values {
			if v.kind == KindMissing || v.kind > maxKind {
				return fmt.Errorf("%w: set %s: row %d: feature %s: a written value must be a value or Null, not Missing", ErrInvalid, set, i, features[f])
			}
		}
	}
	return nil
}

// CheckSet validates a set name.
func CheckSet(set string) error {
	if set == "" || strings.IndexByte(set, 0) >= 0 {
		return fmt.Errorf("%w: set name %q: want a non-empty name without NUL bytes", ErrInvalid, set)
	}
	return nil
}

// CheckRead validates Read's arguments.
func CheckRead(queries []Query, results []Result) error {
	if len(results) != len(queries) {
		return fmt.Errorf("%w: %d results for %d queries", ErrInvalid, len(results), len(queries))
	}
	for _, q := range queries {
		if err := CheckSet(q.Set); err != nil {
			return err
		}
		for _, k := range q.Keys {
			if err := k.Check(); err != nil {
				return fmt.Errorf("set %s: %w", q.Set, err)
			}
		}
	}
	return nil
}

// Gate makes a backend's Close safe: calls Enter before using the connection
// and Leave after; Close waits for calls in flight, closes once, and makes
// later Enters fail with ErrClosed. The zero Gate is open.
type Gate struct {
	mu     sync.RWMutex
	closed bool
}

// Enter admits a call, or returns ErrClosed. Pair it with Leave.
func (g *Gate) Enter() error {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// Leave ends a call admitted by Enter.
func (g *Gate) Leave() { g.mu.RUnlock() }

// Close runs release once, after the calls in flight, and returns its error;
// later Closes return nil.
func (g *Gate) Close(release func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	return release()
}
