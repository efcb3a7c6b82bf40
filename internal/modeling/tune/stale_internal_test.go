package tune

import (
	"context"
	"testing"
	"time"
)

// TestOwnRunningTrialNeverStale: a process whose heartbeat goroutine did not
// run for longer than the stale window (a saturated machine; simulated by
// stopping it) does not fail its own running trial as dead when it starts
// another; a trial of a process that stopped beating (another Study on the
// same storage) still is.
func TestOwnRunningTrialNeverStale(t *testing.T) {
	ctx := context.Background()
	const hb = 10 * time.Millisecond
	st := NewMemory()
	open := func() *Study {
		s, err := NewStudy(ctx, StudyOptions{Name: "s", Direction: Minimize, Storage: st, Heartbeat: hb, Sampler: RandomSampler{}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ours, dead := open(), open()
	// The dead process asks first: once mine exists, only ours looks for
	// stale trials (dead's Ask would fail mine as stale, rightly: dead does
	// not know it, and the test's own pauses may exceed the 20 ms window).
	theirs, err := dead.Ask(ctx)
	if err != nil {
		t.Fatal(err)
	}
	theirs.stopBeat() // a process that died: no more heartbeats, not live anywhere
	dead.setLive(theirs.id, false)
	mine, err := ours.Ask(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mine.stopBeat() // the starved heartbeat goroutine
	mine.stopBeat = func() {}

	time.Sleep(5 * hb)
	next, err := ours.Ask(ctx)
	if err != nil {
		t.Fatal(err)
	}
	trials, err := st.Trials(ctx, ours.id, []int64{mine.id, theirs.id})
	if err != nil {
		t.Fatal(err)
	}
	states := map[int64]State{}
	for _, tr := range trials {
		states[tr.ID] = tr.State
	}
	if states[mine.id] != Running {
		t.Errorf("own trial %d is %v after its process started another, want Running", mine.Number(), states[mine.id])
	}
	if states[theirs.id] != Failed {
		t.Errorf("dead process's trial %d is %v, want Failed as stale", theirs.Number(), states[theirs.id])
	}
	for _, tr := range []*Trial{mine, next} {
		if _, err := ours.Tell(ctx, tr, 1, nil); err != nil {
			t.Errorf("tell trial %d: %v", tr.Number(), err)
		}
	}
}
