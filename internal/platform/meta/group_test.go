package meta

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestGroupCommit: SQLite transactions that queue behind a running one commit
// together, each with its own outcome: a failing one keeps none of its writes,
// the others keep all of theirs; a member that ends the whole SQLite
// transaction makes the group run again one by one, with the same outcomes.
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
	for _, tc := range []struct {
		name string
		evil bool // one member rolls back the whole SQLite transaction
	}{{"savepoints", false}, {"fallback", true}} {
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
			for i := range n + 1 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = db.InTx(ctx, func(tx *Tx) error {
						if i == n {
							if !tc.evil {
								return nil
							}
							_, err := tx.Exec(ctx, `ROLLBACK`)
							if err == nil {
								err = errors.New("rolled back")
							}
							return err
						}
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
			for deadline := time.Now().Add(5 * time.Second); ; {
				db.queueMu.Lock()
				queued := len(db.queue)
				db.queueMu.Unlock()
				if queued == n+1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d transactions queued, want %d", queued, n+1)
				}
				time.Sleep(time.Millisecond)
			}
			close(release)
			wg.Wait()
			for i := range n {
				if odd := i%2 == 1; odd && !errors.Is(errs[i], errOdd) || !odd && errs[i] != nil {
					t.Errorf("transaction %d: error %v", i, errs[i])
				}
			}
			if tc.evil != (errs[n] != nil) {
				t.Errorf("the last transaction's error = %v", errs[n])
			}
			got := map[string]int64{}
			rows, err := db.Query(ctx, `SELECT k, v FROM g`)
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
			want := map[string]int64{"first": 0}
			for i := 0; i < n; i += 2 {
				want[fmt.Sprint("k", i)] = int64(i)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("rows = %v, want %v", got, want)
			}
		})
	}
}
