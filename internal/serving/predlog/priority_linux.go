package predlog

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// lowerFlusherPriority pins the calling goroutine (the background flusher)
// to its OS thread and puts that thread in the SCHED_IDLE policy: it runs on
// the cores the machine's other threads leave idle, and a request thread
// that wakes takes the core from it at once. A flush, a burst of Parquet
// writing, then does not delay the requests served on the same cores
// (docs/benchmarks.md, the rank tail: with every row logged at 500 rank
// requests of 200 rows a second on two cores, the p99 was about half what
// it was with the thread at nice 10, which still let a flush keep a core
// for a slice while a request waited; on a busier machine 0.4-3% of the
// rows were dropped, where nice 10 dropped none). The DuckDB connection the flusher
// writes through runs with threads=1, so its work stays on this thread.
// When the cores are busy the flusher falls behind and the buffer's
// overflow is dropped and counted, as the log is meant to give way.
// The goroutine never unlocks: its thread, with the lowered priority,
// exits with it instead of running other goroutines. Failing to change the
// policy leaves the flusher at normal priority, not an error.
func lowerFlusherPriority() {
	runtime.LockOSThread()
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}
	_ = unix.SchedSetAttr(unix.Gettid(), &attr, 0)
}
