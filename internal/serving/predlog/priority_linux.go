package predlog

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// flusherNice is the nice value of the background flusher's thread: when it
// competes with request-serving threads for a core, the kernel gives it
// about a tenth of their share (CFS weights 110 against 1024); an idle core
// it gets whole.
const flusherNice = 10

// lowerFlusherPriority pins the calling goroutine (the background flusher)
// to its OS thread and lowers that thread's priority, so that a flush, a
// burst of Parquet writing every few seconds, does not delay the requests
// being served on the same cores (docs/benchmarks.md, the rank tail). The
// DuckDB connection the flusher writes through runs with threads=1, so its
// work stays on this thread. The goroutine never unlocks: its thread, with
// the lowered priority, exits with it instead of running other goroutines.
// Failing to renice leaves the flusher at normal priority, not an error.
func lowerFlusherPriority() {
	runtime.LockOSThread()
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), flusherNice)
}
