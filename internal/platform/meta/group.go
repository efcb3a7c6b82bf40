package meta

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"time"
)

// Group commit on SQLite.
//
// SQLite has one writer at a time, and a commit's cost is mostly the pages it
// writes to the WAL: a log-batch of 500 metric keys into one run changes ~500
// pages, and twenty such batches from twenty clients change the same ~500
// pages again and again. Transactions that queue for the write lock therefore
// run together: whoever takes the lock (the leader) runs every queued
// transaction in one SQLite transaction, each in a savepoint of its own, and
// commits once; the pages shared by the group are written once.
//
// Each transaction keeps its own outcome. A function that fails rolls back to
// its savepoint, leaving the others' writes in place. If the group itself fails
// (the commit, a savepoint, or an error that ended the whole SQLite
// transaction), nothing of it is kept and each transaction is run again alone,
// so one bad transaction never fails another; InTx's contract already says fn
// may run more than once.

// maxGroup bounds the transactions committed together, so a long queue does
// not make one commit (and the latency of its first member) unbounded.
const maxGroup = 64

// txRequest is a transaction waiting for the SQLite write lock.
type txRequest struct {
	ctx  context.Context
	fn   func(tx *Tx) error
	done chan error // receives the outcome once; buffered
}

// inGroup queues fn and waits until it ran, leading a group if the write lock
// is free.
func (db *DB) inGroup(ctx context.Context, fn func(tx *Tx) error) error {
	req := &txRequest{ctx: ctx, fn: fn, done: make(chan error, 1)}
	db.queueMu.Lock()
	db.queue = append(db.queue, req)
	db.queueMu.Unlock()

	// Wait as long as SQLite's busy timeout would have: a transaction that
	// never ends (or one nested in another) fails as SQLite would, not hangs.
	wait := time.NewTimer(sqliteBusyTimeout)
	defer wait.Stop()
	for {
		select {
		case err := <-req.done:
			return rethrow(err)
		case db.writers <- struct{}{}:
			// Leader. Results are sent before the lock is released, so a
			// request taken by an earlier leader is already done.
			func() {
				defer func() { <-db.writers }()
				db.runQueue()
			}()
			select {
			case err := <-req.done:
				return rethrow(err)
			default:
				// Queued after this leader took the queue: wait for the next
				// group (or lead it).
			}
		case <-ctx.Done():
			if db.withdraw(req) {
				return ctx.Err()
			}
			return rethrow(<-req.done) // a leader is running it
		case <-wait.C:
			if db.withdraw(req) {
				return fmt.Errorf("metadata store %s: %w: other transactions of this process held the write lock for %v", db.URL, ErrBusy, sqliteBusyTimeout)
			}
			return rethrow(<-req.done)
		}
	}
}

// withdraw removes req from the queue; false means a leader already took it.
func (db *DB) withdraw(req *txRequest) bool {
	db.queueMu.Lock()
	defer db.queueMu.Unlock()
	i := slices.Index(db.queue, req)
	if i < 0 {
		return false
	}
	db.queue = slices.Delete(db.queue, i, i+1)
	return true
}

// runQueue takes up to maxGroup queued requests and runs them; the caller
// holds db.writers. Every request taken gets its outcome.
func (db *DB) runQueue() {
	db.queueMu.Lock()
	n := min(len(db.queue), maxGroup)
	group := slices.Clone(db.queue[:n])
	db.queue = slices.Delete(db.queue, 0, n)
	db.queueMu.Unlock()
	if len(group) > 1 {
		results, err := db.commitGroup(group)
		if err == nil {
			for i, r := range group {
				r.done <- results[i]
			}
			return
		}
	}
	for _, r := range group {
		r.done <- db.retry(r.ctx, func() error { return db.inTxOnce(r.ctx, r.fn) })
	}
}

// commitGroup runs the requests in one transaction, each in a savepoint, and
// commits. It returns each request's outcome, or an error if the group as a
// whole failed (then nothing of it was kept).
func (db *DB) commitGroup(group []*txRequest) (results []error, err error) {
	// The transaction outlives any one member: no member's cancellation may
	// end it (a member's own statements still obey its context).
	raw, err := db.tx.BeginTx(context.Background(), nil)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = raw.Rollback()
		}
	}()
	results = make([]error, len(group))
	for i, r := range group {
		if err := r.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		if _, err := raw.Exec(`SAVEPOINT atrium_group`); err != nil {
			return nil, err
		}
		if results[i] = call(r.fn, &Tx{tx: raw, db: db}); results[i] != nil {
			if retryable(results[i]) {
				return nil, results[i] // run alone, with retries
			}
			if _, err := raw.Exec(`ROLLBACK TO atrium_group`); err != nil {
				return nil, err
			}
		}
		if _, err := raw.Exec(`RELEASE atrium_group`); err != nil {
			return nil, err
		}
	}
	if err := raw.Commit(); err != nil {
		return nil, err
	}
	return results, nil
}

// panicError is a panic of a transaction's function, caught where the function
// ran (a leader may run other goroutines' functions) and raised again in the
// goroutine that called InTx. Catching it lets the leader roll back, release
// the write lock and give every other member its outcome: otherwise one panic
// would leave the write connection in a transaction and every later writer
// waiting for the lock.
type panicError struct {
	value any
	stack []byte // where fn panicked
}

func (p *panicError) Error() string {
	return fmt.Sprintf("panic in a metadata store transaction: %v\n\n%s", p.value, p.stack)
}

// call runs fn, returning a panic as a *panicError.
func call(fn func(tx *Tx) error, tx *Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{value: p, stack: debug.Stack()}
		}
	}()
	return fn(tx)
}

// rethrow panics, in the caller's goroutine, with a transaction function's
// panic, and returns any other outcome.
func rethrow(err error) error {
	if p, ok := err.(*panicError); ok {
		panic(p)
	}
	return err
}
