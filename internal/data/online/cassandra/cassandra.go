// Package cassandra is the online store on Apache Cassandra (or a
// CQL-compatible cluster), for serving fleets and data sizes one Redis
// cannot hold:
//
//	cassandra://[user:password@]host1,host2[:port]/keyspace[?options]
//
// Options: consistency (default LOCAL_QUORUM; any CQL level such as ONE,
// LOCAL_ONE, QUORUM), dc (the local data center: routing prefers its
// replicas, other data centers are a fallback), timeout (per request, Go
// duration, default DefaultTimeout; a caller's earlier deadline wins),
// connect_timeout (default DefaultConnectTimeout), prefix (prepended to set
// names, so stores can share a keyspace), key_ttl (each written row expires
// that long after its write, or earlier with its set's ttl, see rowTTL;
// default none), create_keyspace=true with
// replication_factor=N (default 1: create the keyspace with SimpleStrategy
// when it is missing, for development and tests; in production creating the
// keyspace with its replication is the operator's job).
//
// Layout (schema version 1, kept in <keyspace>.atrium_schema and migrated
// by Open, so `atrium apply` and `atrium materialize` leave the tables at
// this binary's version and nobody writes CQL by hand):
//
//	online_rows     PRIMARY KEY ((feature_set, entity_key), event_ns, tomb)
//	                CLUSTERING ORDER BY (event_ns DESC, tomb DESC)
//	                layout bigint, vals blob
//	online_layouts  PRIMARY KEY (feature_set, id), features list<text>
//
// One partition per (set, entity key). The event-time guard is the
// clustering order, not a read-before-write: a row is inserted under its
// event time (unix nanoseconds; CQL timestamps keep only milliseconds) and a
// read takes the first row of the partition (LIMIT 1), the newest. An older
// row lands below a newer one and can never be read in its place, whatever
// order writers in any number of processes run in; a row of the same event
// time is the same clustering row and overwrites. The same batch range-
// deletes the rows older than the one it writes, so a partition holds one
// live row (and tombstones until compaction drops them). vals is
// online.AppendValue's encoding of the values in the order of layout, the
// FNV-64a id of the feature names, whose names are in online_layouts.
//
// A delete (online.Deleter) deletes the partition and inserts a tombstone
// row (tomb=1) at the delete's time, one write timestamp later: a row written
// afterwards at or before that time sorts below the tombstone (tomb DESC
// puts it first at equal times), so it does not resurrect the key.
// docs/scale-out.md argues this layout against USING TIMESTAMP writes.
package cassandra

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/atrium-ml/atrium/internal/data/online"
)

func init() {
	online.Register("cassandra", func(ctx context.Context, u *url.URL, opts online.OpenOptions) (online.Store, error) {
		return Open(ctx, u, opts)
	})
}

// Defaults of Open's URL options.
const (
	// DefaultTimeout bounds one request to the cluster when the caller's
	// context has no earlier deadline: a node that stopped answering fails
	// the request after this long instead of the driver's 11 s.
	DefaultTimeout = 2 * time.Second
	// DefaultConnectTimeout bounds connecting to a node.
	DefaultConnectTimeout = 5 * time.Second
	// DefaultConsistency is the consistency level of reads and writes.
	DefaultConsistency = gocql.LocalQuorum
)

// SchemaVersion is the version of the tables this binary reads and writes.
const SchemaVersion = 1

// concurrency bounds the requests one Read or Write has in flight. The
// driver multiplexes them over its connections (many streams per
// connection), so one call costs about one round trip per node.
const concurrency = 64

// migrations[v-1] brings the keyspace from version v-1 to v. Each statement
// is idempotent (IF NOT EXISTS), so two processes migrating at once agree.
// %[1]s is the keyspace.
var migrations = [][]string{
	{
		`CREATE TABLE IF NOT EXISTS %[1]s.online_rows (
			feature_set text, entity_key blob, event_ns bigint, tomb tinyint, layout bigint, vals blob,
			PRIMARY KEY ((feature_set, entity_key), event_ns, tomb)
		) WITH CLUSTERING ORDER BY (event_ns DESC, tomb DESC)`,
		`CREATE TABLE IF NOT EXISTS %[1]s.online_layouts (
			feature_set text, id bigint, features list<text>, PRIMARY KEY (feature_set, id))`,
	},
}

// Store is an online.Store on Cassandra.
type Store struct {
	session  *gocql.Session
	keyspace string
	prefix   string
	keyTTL   int // seconds, 0 for none
	// setTTL is each set's max age (online.OpenOptions.TTL), by set name
	// without the prefix; read only.
	setTTL      map[string]time.Duration
	timeout     time.Duration
	consistency gocql.Consistency
	log         *slog.Logger

	gate online.Gate

	// Statements, formatted once with the keyspace; the driver prepares
	// each on first use and caches it.
	qInsert, qTrim, qRead, qDelete, qTomb, qLayoutPut, qLayoutGet string

	// layouts caches layouts this process wrote or read, by prefixed set
	// and id (online.LayoutID; a CQL bigint holds its bits).
	layouts online.LayoutCache
}

type layoutKey struct {
	set string
	id  int64
}

var (
	_ online.Store   = (*Store)(nil)
	_ online.Deleter = (*Store)(nil)
)

var identRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,47}$`)

// config is what Open reads from the URL.
type config struct {
	hosts          []string
	keyspace       string
	consistency    gocql.Consistency
	dc             string
	timeout        time.Duration
	connectTimeout time.Duration
	prefix         string
	keyTTL         time.Duration
	createKeyspace bool
	replication    int
	user, password string
}

// parseURL reads every option, reporting all problems at once.
func parseURL(u *url.URL) (config, error) {
	c := config{consistency: DefaultConsistency, timeout: DefaultTimeout, connectTimeout: DefaultConnectTimeout, replication: 1}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for h := range strings.SplitSeq(u.Host, ",") {
		if h == "" {
			bad("host list %q: an empty host", u.Host)
			continue
		}
		c.hosts = append(c.hosts, h)
	}
	c.keyspace = strings.Trim(u.Path, "/")
	if !identRE.MatchString(c.keyspace) {
		bad("keyspace %q (the URL path): want a CQL name of letters, digits and _ starting with a letter", c.keyspace)
	}
	if u.User != nil {
		c.user = u.User.Username()
		c.password, _ = u.User.Password()
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "consistency", "dc", "timeout", "connect_timeout", "prefix", "key_ttl", "create_keyspace", "replication_factor":
		default:
			bad("unknown option %q: want consistency, dc, timeout, connect_timeout, prefix, key_ttl, create_keyspace or replication_factor", k)
		}
	}
	if v := q.Get("consistency"); v != "" {
		cl, err := gocql.ParseConsistencyWrapper(strings.ToUpper(v))
		if err != nil {
			bad("consistency=%q: want a CQL consistency level such as ONE, LOCAL_ONE, LOCAL_QUORUM, QUORUM", v)
		}
		c.consistency = cl
	}
	c.dc = q.Get("dc")
	durations := []struct {
		name string
		dst  *time.Duration
	}{{"timeout", &c.timeout}, {"connect_timeout", &c.connectTimeout}, {"key_ttl", &c.keyTTL}}
	for _, d := range durations {
		v := q.Get(d.name)
		if v == "" {
			continue
		}
		dur, err := time.ParseDuration(v)
		if err != nil || dur <= 0 {
			bad("%s=%q: want a positive Go duration such as 2s or 720h", d.name, v)
			continue
		}
		*d.dst = dur
	}
	if c.keyTTL != 0 && (c.keyTTL < time.Second || c.keyTTL > maxTTL) {
		bad("key_ttl=%q: want between 1s and 20 years (Cassandra's TTL is in seconds, at most 20 years)", q.Get("key_ttl"))
	}
	c.prefix = q.Get("prefix")
	if v := q.Get("create_keyspace"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad("create_keyspace=%q: want true or false", v)
		}
		c.createKeyspace = b
	}
	if v := q.Get("replication_factor"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			bad("replication_factor=%q: want a positive integer", v)
		}
		c.replication = n
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("%w: %w", online.ErrInvalid, err)
	}
	return c, nil
}

// Open connects to the cluster named by u, creates the keyspace when asked,
// and migrates the tables to SchemaVersion. ctx bounds the opening. Rows of
// the sets in opts.TTL expire with their max age (see rowTTL).
func Open(ctx context.Context, u *url.URL, opts online.OpenOptions) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for set, d := range opts.TTL {
		if d < 0 {
			return nil, fmt.Errorf("%w: feature set %s: negative ttl %s", online.ErrInvalid, set, d)
		}
	}
	c, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	cluster := gocql.NewCluster(c.hosts...)
	cluster.Consistency = c.consistency
	cluster.SerialConsistency = gocql.LocalSerial
	cluster.Timeout = c.timeout
	cluster.ConnectTimeout = c.connectTimeout
	// Reconnect to a node that was down every few seconds, not the
	// driver's minute, so reads recover soon after it returns.
	cluster.ReconnectInterval = 5 * time.Second
	// No write coalescing: the driver's default (wait 200 us to batch
	// frames into one socket write) made a one-key read take 1.3-1.4 ms
	// instead of 0.3 ms on the CI node (BenchmarkRead), and did not make
	// 100-key reads measurably faster.
	cluster.WriteCoalesceWaitTime = 0
	// Token-aware routing sends each request to a replica of its partition
	// (the driver computes the partition key from the prepared statement);
	// with dc=, replicas of the local data center first.
	fallback := gocql.RoundRobinHostPolicy()
	if c.dc != "" {
		fallback = gocql.DCAwareRoundRobinPolicy(c.dc)
	}
	cluster.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(fallback)
	if c.user != "" {
		cluster.Authenticator = gocql.PasswordAuthenticator{Username: c.user, Password: c.password}
	}
	// Session creation has no context in the driver; its bounds are
	// ConnectTimeout and Timeout. Run it so that ctx can still end the wait.
	type opened struct {
		s   *gocql.Session
		err error
	}
	done := make(chan opened, 1)
	go func() {
		s, err := cluster.CreateSession()
		done <- opened{s, err}
	}()
	var session *gocql.Session
	select {
	case o := <-done:
		if o.err != nil {
			return nil, fmt.Errorf("connect to %s: %w", strings.Join(c.hosts, ","), unavailable(o.err))
		}
		session = o.s
	case <-ctx.Done():
		go func() {
			if o := <-done; o.s != nil {
				o.s.Close()
			}
		}()
		return nil, fmt.Errorf("connect to %s: %w", strings.Join(c.hosts, ","), ctx.Err())
	}
	s := &Store{
		session: session, keyspace: c.keyspace, prefix: c.prefix, keyTTL: int(c.keyTTL / time.Second), setTTL: opts.TTL,
		timeout: c.timeout, consistency: c.consistency, log: log,
	}
	ks := c.keyspace
	s.qInsert = `INSERT INTO ` + ks + `.online_rows (feature_set, entity_key, event_ns, tomb, layout, vals) VALUES (?, ?, ?, 0, ?, ?) USING TTL ?`
	s.qTrim = `DELETE FROM ` + ks + `.online_rows WHERE feature_set = ? AND entity_key = ? AND event_ns < ?`
	s.qRead = `SELECT event_ns, tomb, layout, vals FROM ` + ks + `.online_rows WHERE feature_set = ? AND entity_key = ? LIMIT 1`
	s.qDelete = `DELETE FROM ` + ks + `.online_rows USING TIMESTAMP ? WHERE feature_set = ? AND entity_key = ?`
	s.qTomb = `INSERT INTO ` + ks + `.online_rows (feature_set, entity_key, event_ns, tomb) VALUES (?, ?, ?, 1) USING TIMESTAMP ? AND TTL ?`
	s.qLayoutPut = `INSERT INTO ` + ks + `.online_layouts (feature_set, id, features) VALUES (?, ?, ?) IF NOT EXISTS`
	s.qLayoutGet = `SELECT features FROM ` + ks + `.online_layouts WHERE feature_set = ? AND id = ?`
	if err := s.migrate(ctx, c); err != nil {
		session.Close()
		return nil, err
	}
	return s, nil
}

// migrate creates the keyspace when asked and brings its tables to
// SchemaVersion; a keyspace at a newer version is refused (ErrFormat).
func (s *Store) migrate(ctx context.Context, c config) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute) // DDL waits for schema agreement
	defer cancel()
	ks := s.keyspace
	if c.createKeyspace {
		stmt := fmt.Sprintf(`CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': %d}`, ks, c.replication)
		if err := s.migration(stmt).ExecContext(ctx); err != nil {
			return fmt.Errorf("create keyspace %s: %w", ks, unavailable(err))
		}
	}
	// system_schema, not the driver's metadata cache: that learns of a
	// keyspace created a moment ago only later, from an event.
	var name string
	err := s.migration(`SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?`, ks).ScanContext(ctx, &name)
	switch {
	case errors.Is(err, gocql.ErrNotFound):
		return fmt.Errorf("%w: keyspace %s does not exist: create it with the replication your cluster needs, or add create_keyspace=true to the URL (SimpleStrategy, for development)", online.ErrInvalid, ks)
	case err != nil:
		return fmt.Errorf("keyspace %s: %w", ks, unavailable(err))
	}
	if err := s.migration(`CREATE TABLE IF NOT EXISTS ` + ks + `.atrium_schema (component text PRIMARY KEY, version int)`).ExecContext(ctx); err != nil {
		return fmt.Errorf("create %s.atrium_schema: %w", ks, unavailable(err))
	}
	var version int
	err = s.migration(`SELECT version FROM `+ks+`.atrium_schema WHERE component = 'online'`).ScanContext(ctx, &version)
	if err != nil && !errors.Is(err, gocql.ErrNotFound) {
		return fmt.Errorf("read schema version from %s.atrium_schema: %w", ks, unavailable(err))
	}
	if version > SchemaVersion {
		return fmt.Errorf("%w: keyspace %s holds online store schema version %d; this binary knows up to %d (upgrade atrium)", online.ErrFormat, ks, version, SchemaVersion)
	}
	for v := version + 1; v <= SchemaVersion; v++ {
		for _, stmt := range migrations[v-1] {
			if err := s.migration(fmt.Sprintf(stmt, ks)).ExecContext(ctx); err != nil {
				return fmt.Errorf("migrate keyspace %s to schema version %d: %w", ks, v, unavailable(err))
			}
		}
		if err := s.migration(`INSERT INTO `+ks+`.atrium_schema (component, version) VALUES ('online', ?)`, v).ExecContext(ctx); err != nil {
			return fmt.Errorf("record schema version %d in %s.atrium_schema: %w", v, ks, unavailable(err))
		}
		s.log.Info("migrated the Cassandra online store", "keyspace", ks, "schema_version", v)
	}
	return nil
}

// migration is a statement of migrate: idempotent (IF NOT EXISTS, reads,
// the version's upsert), under migrationRetry.
func (s *Store) migration(stmt string, values ...any) *gocql.Query {
	return s.session.Query(stmt, values...).Idempotent(true).RetryPolicy(migrationRetry{})
}

// migrationRetry is the driver's retry policy for migrate's statements: one
// the node did not answer within the session's request timeout (a schema
// change on a busy node takes longer than a read's 2 s; the driver has one
// timeout per session, not per query) is sent again, to the same node,
// until the statement's context (migrate's minute) ends. Every statement
// of migrate is idempotent, so one that took effect without an answer is
// harmless to run again; any other error is returned at once.
type migrationRetry struct{}

func (migrationRetry) Attempt(q gocql.RetryableQuery) bool { return q.Context().Err() == nil }

func (migrationRetry) GetRetryType(err error) gocql.RetryType {
	if errors.Is(err, gocql.ErrTimeoutNoResponse) {
		return gocql.Retry
	}
	return gocql.Rethrow
}

// Close closes the connections.
func (s *Store) Close() error {
	return s.gate.Close(func() error {
		s.session.Close()
		return nil
	})
}

// unavailable marks the driver's errors that mean the cluster did not answer
// (no host, timed out, too few replicas, connection lost) with
// online.ErrUnavailable, so the retrieval layer answers 503. Context errors
// and net errors are left as they are: the retrieval layer knows them.
func unavailable(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var reqErr gocql.RequestError
	if errors.As(err, &reqErr) {
		switch reqErr.Code() {
		case gocql.ErrCodeUnavailable, gocql.ErrCodeOverloaded, gocql.ErrCodeBootstrapping,
			gocql.ErrCodeReadTimeout, gocql.ErrCodeWriteTimeout, gocql.ErrCodeReadFailure, gocql.ErrCodeWriteFailure:
			return fmt.Errorf("%w: %w", online.ErrUnavailable, err)
		}
		return err
	}
	var netErr net.Error
	switch {
	case errors.As(err, &netErr), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return err
	case errors.Is(err, gocql.ErrNoConnections), errors.Is(err, gocql.ErrTimeoutNoResponse),
		errors.Is(err, gocql.ErrConnectionClosed), errors.Is(err, gocql.ErrNoStreams),
		errors.Is(err, gocql.ErrNoConnectionsStarted), errors.Is(err, gocql.ErrUnavailable),
		errors.Is(err, gocql.ErrSessionClosed):
		return fmt.Errorf("%w: %w", online.ErrUnavailable, err)
	}
	return err
}

// storeLayout makes sure the cluster holds the layout of features before
// rows name it, once per process and layout.
func (s *Store) storeLayout(ctx context.Context, set string, features []string) (int64, error) {
	id := online.LayoutID(features)
	if known, err := s.layouts.Known(set, id, features); known || err != nil {
		return int64(id), err
	}
	// A lightweight transaction: of two processes storing the same id
	// at once, one inserts and the other reads back what it inserted.
	prev := map[string]any{}
	applied, err := s.query(s.qLayoutPut, set, int64(id), features).MapScanCASContext(ctx, prev)
	if err != nil {
		return 0, unavailable(err)
	}
	if stored, _ := prev["features"].([]string); !applied && !slices.Equal(stored, features) {
		return 0, online.LayoutCollision(set, id)
	}
	s.layouts.Put(set, id, online.NewLayout(features))
	return int64(id), nil
}

// query is stmt at the store's consistency; run it with a ...Context method.
func (s *Store) query(stmt string, args ...any) *gocql.Query {
	return s.session.Query(stmt, args...).Consistency(s.consistency)
}

// withTimeout bounds ctx by the store's request timeout.
func (s *Store) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// parallel runs fn(0..n-1) on up to concurrency goroutines and returns the
// first error; after one, the remaining calls are not started and the
// context given to the running ones is canceled.
func parallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	if n == 1 {
		return fn(ctx, 0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range min(n, concurrency) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		// Canceled from outside before every call ran.
		return ctx.Err()
	}
	return firstErr
}

// Write implements online.Store: per row, one single-partition batch that
// inserts the row under its event time and range-deletes the older rows of
// its key; rows go concurrently.
func (s *Store) Write(ctx context.Context, set string, features []string, rows []online.Row) error {
	if err := online.CheckWrite(set, features, rows); err != nil {
		return err
	}
	if err := s.gate.Enter(); err != nil {
		return err
	}
	defer s.gate.Leave()
	if len(rows) == 0 {
		return nil
	}
	pset := s.prefix + set
	lctx, cancel := s.withTimeout(ctx)
	id, err := s.storeLayout(lctx, pset, features)
	cancel()
	if err != nil {
		return fmt.Errorf("write %s: store layout: %w", set, err)
	}
	now := time.Now()
	return parallel(ctx, len(rows), func(ctx context.Context, i int) error {
		r := &rows[i]
		var vals []byte
		for _, v := range r.Values {
			vals = online.AppendValue(vals, v)
		}
		ns := r.TS.UnixNano()
		ctx, cancel := s.withTimeout(ctx)
		defer cancel()
		b := s.session.Batch(gocql.UnloggedBatch).Consistency(s.consistency)
		b.Query(s.qInsert, pset, []byte(r.Key), ns, id, vals, s.rowTTL(set, r.TS, now))
		b.Query(s.qTrim, pset, []byte(r.Key), ns)
		if err := b.ExecContext(ctx); err != nil {
			return fmt.Errorf("write %s %s: %w", set, r.Key, unavailable(err))
		}
		return nil
	})
}

// Delete implements online.Deleter: per key, one single-partition batch
// that deletes the partition at write timestamp T and inserts the tombstone
// row at T+1 (a partition deletion shadows every cell written at or before
// its timestamp, the tombstone row's included, were they equal).
func (s *Store) Delete(ctx context.Context, set string, keys []online.Key, at time.Time) error {
	if err := online.CheckDelete(set, keys, at); err != nil {
		return err
	}
	if err := s.gate.Enter(); err != nil {
		return err
	}
	defer s.gate.Leave()
	pset := s.prefix + set
	ns := at.UnixNano()
	ttl := s.rowTTL(set, at, time.Now())
	return parallel(ctx, len(keys), func(ctx context.Context, i int) error {
		ctx, cancel := s.withTimeout(ctx)
		defer cancel()
		now := time.Now().UnixMicro()
		b := s.session.Batch(gocql.UnloggedBatch).Consistency(s.consistency)
		b.DefaultTimestamp(false)
		b.Query(s.qDelete, now, pset, []byte(keys[i]))
		b.Query(s.qTomb, pset, []byte(keys[i]), ns, now+1, ttl)
		if err := b.ExecContext(ctx); err != nil {
			return fmt.Errorf("delete %s %s: %w", set, keys[i], unavailable(err))
		}
		return nil
	})
}

// maxTTL is the longest TTL Cassandra accepts (20 years).
const maxTTL = 20 * 365 * 24 * time.Hour

// rowTTL is the CQL TTL, in seconds, of a row (or tombstone) of set stamped
// at event and written at now: the earlier of the set's expiry (event time
// plus its ttl, when it has one) and key_ttl after the write; 0 (never) when
// neither applies. It rounds up, so a row never goes before a read would
// report it OUTSIDE_MAX_AGE. A row already past its expiry still gets 1 s,
// not 0 (which would keep it for ever): it is still written, so its batch
// trims the older rows of its key as always, and it goes a second later.
//
// A tombstone expiring with the set's ttl from its time is safe: a row it
// must keep from resurrecting the key is stamped at or before the
// tombstone, so it expires no later than the tombstone does. With key_ttl
// alone, a row stamped before a delete but written more than key_ttl after
// it outlives the tombstone (docs/scale-out.md says so).
func (s *Store) rowTTL(set string, event, now time.Time) int {
	ttl := s.keyTTL
	if d := s.setTTL[set]; d > 0 {
		left := min(max(event.Add(d).Sub(now), time.Second), maxTTL)
		secs := int((left + time.Second - 1) / time.Second)
		if ttl == 0 || secs < ttl {
			ttl = secs
		}
	}
	return ttl
}

// fetched is the newest row of one (query, key), as read.
type fetched struct {
	found  bool
	ns     int64
	layout int64
	vals   []byte
}

// Read implements online.Store: one single-partition SELECT ... LIMIT 1 per
// (query, key), all issued concurrently (up to concurrency in flight) and
// routed to a replica of their partition, then one more round trip for
// layouts this process has not seen.
func (s *Store) Read(ctx context.Context, queries []online.Query, results []online.Result) error {
	if err := online.CheckRead(queries, results); err != nil {
		return err
	}
	if err := s.gate.Enter(); err != nil {
		return err
	}
	defer s.gate.Leave()
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	type slot struct{ q, k int }
	var slots []slot
	for i := range queries {
		results[i].Reset(len(queries[i].Keys), len(queries[i].Features))
		for j := range queries[i].Keys {
			slots = append(slots, slot{i, j})
		}
	}
	if len(slots) == 0 {
		return nil
	}
	rows := make([]fetched, len(slots))
	err := parallel(ctx, len(slots), func(ctx context.Context, i int) error {
		q := &queries[slots[i].q]
		k := q.Keys[slots[i].k]
		var tomb int8
		r := &rows[i]
		err := s.query(s.qRead, s.prefix+q.Set, []byte(k)).ScanContext(ctx, &r.ns, &tomb, &r.layout, &r.vals)
		switch {
		case errors.Is(err, gocql.ErrNotFound):
			return nil
		case err != nil:
			return fmt.Errorf("read %s %s: %w", q.Set, k, unavailable(err))
		}
		r.found = tomb == 0
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.fetchLayouts(ctx, queries, rows, func(i int) int { return slots[i].q }); err != nil {
		return err
	}
	projs := map[layoutKey]*online.Projection{}
	var scratch []online.Value
	for i, r := range rows {
		if !r.found {
			continue
		}
		qi, j := slots[i].q, slots[i].k
		q, res := &queries[qi], &results[qi]
		l := s.layouts.Get(s.prefix+q.Set, uint64(r.layout))
		// Projections are per query: the key's set is the query's index.
		pk := layoutKey{strconv.Itoa(qi), r.layout}
		p := projs[pk]
		if p == nil {
			p = new(online.Projection)
			p.Project(l, q.Features)
			projs[pk] = p
		}
		nf := len(q.Features)
		if scratch, err = online.DecodeValues(r.vals, l, p, res.Values[j*nf:(j+1)*nf], scratch); err != nil {
			return fmt.Errorf("read %s %s: %w", q.Set, q.Keys[j], err)
		}
		res.Found[j] = true
		res.TS[j] = time.Unix(0, r.ns).UTC()
	}
	return nil
}

// fetchLayouts loads, concurrently, the layouts rows name that the cache
// lacks; queryOf maps a row to its query.
func (s *Store) fetchLayouts(ctx context.Context, queries []online.Query, rows []fetched, queryOf func(int) int) error {
	var missing []layoutKey
	for i, r := range rows {
		if !r.found {
			continue
		}
		k := layoutKey{s.prefix + queries[queryOf(i)].Set, r.layout}
		if s.layouts.Get(k.set, uint64(k.id)) == nil && !slices.Contains(missing, k) {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return parallel(ctx, len(missing), func(ctx context.Context, i int) error {
		k := missing[i]
		set := strings.TrimPrefix(k.set, s.prefix)
		var features []string
		err := s.query(s.qLayoutGet, k.set, k.id).ScanContext(ctx, &features)
		switch {
		case errors.Is(err, gocql.ErrNotFound):
			return fmt.Errorf("%w: set %s: rows name layout %016x, which is not stored", online.ErrFormat, set, uint64(k.id))
		case err != nil:
			return fmt.Errorf("read layout %016x of %s: %w", uint64(k.id), set, unavailable(err))
		}
		s.layouts.Put(k.set, uint64(k.id), online.NewLayout(features))
		return nil
	})
}
