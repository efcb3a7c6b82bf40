package predlog

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestFlusherPriority: the flusher's thread is in the SCHED_IDLE policy.
func TestFlusherPriority(t *testing.T) {
	policy := func() (uint32, error) {
		attr, err := unix.SchedGetAttr(unix.Gettid(), 0)
		if err != nil {
			return 0, err
		}
		return attr.Policy, nil
	}
	type answer struct {
		before, after uint32
		err           error
	}
	got := make(chan answer)
	go func() {
		// lowerFlusherPriority locks this goroutine to its thread for good:
		// the thread exits with it, its policy with it.
		var a answer
		a.before, a.err = policy()
		lowerFlusherPriority()
		if a.err == nil {
			a.after, a.err = policy()
		}
		got <- a
	}()
	a := <-got
	if a.err != nil {
		t.Fatal(a.err)
	}
	if a.before == unix.SCHED_IDLE {
		t.Skip("the test runs in SCHED_IDLE already")
	}
	if a.after != unix.SCHED_IDLE {
		t.Errorf("the flusher's thread is in scheduling policy %d, want SCHED_IDLE (%d)", a.after, unix.SCHED_IDLE)
	}
}
