package cassandra_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/online/onlinetest"
	"github.com/atrium-ml/atrium/internal/platform/proctest"
)

// TestPausedNode: with the node paused (SIGSTOP: its connections stay open
// and nothing answers, the hardest failure for a client to notice), reads,
// writes and deletes fail within the store's timeout, with no deadline of
// the caller's, and with an error of the class the retrieval layer answers
// 503 for (online.ErrUnavailable or a deadline). After SIGCONT the same
// store serves again without being reopened.
func TestPausedNode(t *testing.T) {
	urlFor, _ := testKeyspace(t)
	pid, err := strconv.Atoi(os.Getenv("ATRIUM_TEST_CASSANDRA_PID"))
	if err != nil {
		t.Skip("ATRIUM_TEST_CASSANDRA_PID is not set: skipping the paused-node test (. .ci/cassandra.sh sets it)")
	}
	onlinetest.LockNode(t, "cassandra", true) // other packages' tests wait while the node is paused
	signal := func(sig syscall.Signal) {
		t.Helper()
		if err := syscall.Kill(pid, sig); err != nil {
			t.Fatalf("signal %v to Cassandra (pid %d): %v", sig, pid, err)
		}
	}
	ctx := context.Background()
	s, err := online.Open(ctx, urlFor("fault", "timeout", "1s"), online.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	features := []string{"rent"}
	keys := []online.Key{online.MustKey(1), online.MustKey(2), online.MustKey(3)}
	ts := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	var rows []online.Row
	for i, k := range keys {
		rows = append(rows, online.Row{Key: k, TS: ts, Values: []online.Value{online.Float64(float64(1000 + i))}})
	}
	if err := s.Write(ctx, "listing", features, rows); err != nil {
		t.Fatal(err)
	}
	queries := []online.Query{{Set: "listing", Features: features, Keys: keys}}
	res := make([]online.Result, 1)
	check := func(phase string) error {
		if err := s.Read(ctx, queries, res); err != nil {
			return err
		}
		for j := range keys {
			if !res[0].Found[j] || res[0].Row(j)[0] != online.Float64(float64(1000+j)) {
				t.Fatalf("%s: key %d: found=%v values=%v, want rent %d", phase, j, res[0].Found[j], res[0].Row(j), 1000+j)
			}
		}
		return nil
	}
	if err := check("before"); err != nil {
		t.Fatal(err)
	}

	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			signal(syscall.SIGCONT)
		}
	}
	// Before the pause: a failure from here on never leaves the shared node
	// paused (cleanups run last in, first out: before LockNode's release).
	t.Cleanup(resume)
	signal(syscall.SIGSTOP)
	proctest.WaitStopped(t, pid)
	isUnavailable := func(err error) bool {
		return errors.Is(err, online.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
	}
	for i := range 3 {
		err := check("paused")
		if !isUnavailable(err) {
			t.Errorf("paused: read %d: %v, want online.ErrUnavailable or a deadline", i, err)
		}
		t.Logf("paused: read %d: %v", i, err)
	}
	if err := s.Write(ctx, "listing", features, rows[:1]); !isUnavailable(err) {
		t.Errorf("paused: write: %v, want online.ErrUnavailable or a deadline", err)
	}
	if err := s.(online.Deleter).Delete(ctx, "listing", keys[2:], ts); !isUnavailable(err) {
		t.Errorf("paused: delete: %v, want online.ErrUnavailable or a deadline", err)
	}
	resume()

	// Recovery on its own: the driver reconnects in the background. Bounded
	// polling, a guard against never recovering, not a timing assertion.
	var last error
	polls := 0
	for range 120 {
		polls++
		if last = check("resumed"); last == nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if last != nil {
		t.Fatalf("resumed: reads did not recover: %v", last)
	}
	t.Logf("resumed: reads recovered in %d polls", polls)
	if err := s.Write(ctx, "listing", features, rows[:1]); err != nil {
		t.Errorf("resumed: write: %v", err)
	}
}
