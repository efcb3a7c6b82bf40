package meta

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
)

// TestGroupCommit: SQLite transactions that queue behind a running one commit
// together, each with its own outcome: a failing one keeps none of its writes,
// the others keep all of theirs, whatever the last member of the group does:
// succeed, end the whole SQLite transaction (the group runs again one by one,
// with the same outcomes), panic (the panic reaches its own caller, the lock
// and the connection are free again), fail once on a busy database (the group
// runs again one by one, it is retried), or give up while queued.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(ctx, `CREATE TABLE g (k TEXT PRIMARY KEY, v BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	errOdd := errors.New("odd")
	insertLast := func(ctx context.Context, tx *Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO g (k, v) VALUES ('last', 1)`)
		return err
	}
	for _, tc := range []struct {
		name string
		// last is the group's last member; calls counts its runs.
		last      func(ctx context.Context, tx *Tx, calls int) error
		cancel    bool                 // the last member's context ends while it is queued
		wantLast  func(err error) bool // its outcome
		wantPanic string               // or its panic
		wantRow   bool                 // its row is stored
		wantCalls int32                // its function's runs
	}{
		{name: "savepoints",
			last:     func(ctx context.Context, tx *Tx, _ int) error { return insertLast(ctx, tx) },
			wantLast: func(err error) bool { return err == nil }, wantRow: true, wantCalls: 1},
		{name: "whole transaction rolled back",
			last: func(ctx context.Context, tx *Tx, _ int) error {
				if err := insertLast(ctx, tx); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `ROLLBACK`)
				if err == nil {
					err = errors.New("rolled back")
				}
				return err
			},
			wantLast: func(err error) bool { return err != nil && err.Error() == "rolled back" }, wantCalls: 2},
		{name: "panic",
			last: func(ctx context.Context, tx *Tx, _ int) error {
				if err := insertLast(ctx, tx); err != nil {
					return err
				}
				panic("boom")
			},
			wantPanic: "boom", wantCalls: 1},
		{name: "busy once",
			last: func(ctx context.Context, tx *Tx, calls int) error {
				if err := insertLast(ctx, tx); err != nil {
					return err
				}
				if calls == 1 {
					return fmt.Errorf("wrapped: %w", sqlite3.Error{Code: sqlite3.ErrBusy})
				}
				return nil
			},
			wantLast: func(err error) bool { return err == nil }, wantRow: true, wantCalls: 2},
		{name: "cancelled while queued",
			last:     func(ctx context.Context, tx *Tx, _ int) error { return insertLast(ctx, tx) },
			cancel:   true,
			wantLast: func(err error) bool { return errors.Is(err, context.Canceled) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := db.Exec(ctx, `DELETE FROM g`); err != nil {
				t.Fatal(err)
			}
			release := make(chan struct{})
			started := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // holds the write lock until released
				defer wg.Done()
				err := db.InTx(ctx, func(tx *Tx) error {
					close(started)
					<-release
					_, err := tx.Exec(ctx, `INSERT INTO g (k, v) VALUES ('first', 0)`)
					return err
				})
				if err != nil {
					t.Error(err)
				}
			}()
			<-started
			const n = 10
			errs := make([]error, n+1)
			var lastCalls atomic.Int32
			var lastPanic any
			lastCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			for i := range n + 1 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if i == n {
						defer func() { lastPanic = recover() }()
						errs[i] = db.InTx(lastCtx, func(tx *Tx) error {
							return tc.last(lastCtx, tx, int(lastCalls.Add(1)))
						})
						return
					}
					errs[i] = db.InTx(ctx, func(tx *Tx) error {
						if _, err := tx.Exec(ctx, `INSERT INTO g (k, v) VALUES (?, ?)`, fmt.Sprint("k", i), i); err != nil {
							return err
						}
						if i%2 == 1 {
							return errOdd
						}
						return nil
					})
				}()
			}
			waitQueued := func(want int) {
				t.Helper()
				for deadline := time.Now().Add(5 * time.Second); ; {
					db.queueMu.Lock()
					queued := len(db.queue)
					db.queueMu.Unlock()
					if queued == want {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("%d transactions queued, want %d", queued, want)
					}
					time.Sleep(time.Millisecond)
				}
			}
			waitQueued(n + 1)
			if tc.cancel {
				cancel()
				waitQueued(n)
			}
			close(release)
			wg.Wait()
			for i := range n {
				if odd := i%2 == 1; odd && !errors.Is(errs[i], errOdd) || !odd && errs[i] != nil {
					t.Errorf("transaction %d: error %v", i, errs[i])
				}
			}
			if c := lastCalls.Load(); c != tc.wantCalls {
				t.Errorf("the last transaction ran %d times, want %d", c, tc.wantCalls)
			}
			if tc.wantPanic != "" {
				if p, ok := lastPanic.(error); !ok || !strings.Contains(p.Error(), tc.wantPanic) {
					t.Errorf("the last transaction's panic = %v, want %q", lastPanic, tc.wantPanic)
				}
			} else if lastPanic != nil || !tc.wantLast(errs[n]) {
				t.Errorf("the last transaction's error = %v, panic %v", errs[n], lastPanic)
			}
			want := map[string]int64{"first": 0}
			for i := 0; i < n; i += 2 {
				want[fmt.Sprint("k", i)] = int64(i)
			}
			if tc.wantRow {
				want["last"] = 1
			}
			if got := groupRows(t, db); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("rows = %v, want %v", got, want)
			}
			// The write lock and the write connection are free.
			tctx, tcancel := context.WithTimeout(ctx, 5*time.Second)
			defer tcancel()
			if err := db.InTx(tctx, func(tx *Tx) error {
				_, err := tx.Exec(tctx, `INSERT INTO g (k, v) VALUES ('after', 2)`)
				return err
			}); err != nil {
				t.Errorf("a transaction after the group: %v", err)
			}
		})
	}
}

// TestInTxPanic: a panic in a transaction that runs alone reaches the caller,
// and its writes are rolled back, on both engines' paths.
func TestInTxPanic(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(ctx, `CREATE TABLE g (k TEXT PRIMARY KEY, v BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for range 3 { // the lock and the connection are free after each
		func() {
			defer func() {
				if p, ok := recover().(error); !ok || !strings.Contains(p.Error(), "boom") {
					t.Errorf("panic = %v, want boom", p)
				}
			}()
			_ = db.InTx(ctx, func(tx *Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO g (k, v) VALUES ('x', 1)`); err != nil {
					return err
				}
				panic("boom")
			})
		}()
	}
	if got := groupRows(t, db); len(got) != 0 {
		t.Errorf("rows = %v, want none", got)
	}
}

func groupRows(t *testing.T, db *DB) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	rows, err := db.Query(context.Background(), `SELECT k, v FROM g`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		got[k] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}
