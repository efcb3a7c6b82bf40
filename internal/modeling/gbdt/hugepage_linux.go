package gbdt

import (
	"syscall"
	"unsafe"
)

// adviseHugePages asks Linux to back a large buffer with transparent huge
// pages (when the system allows it "on madvise"): the histogram loops read
// rows at random across tens of megabytes, and 2 MiB pages spare them most
// TLB misses. Only whole huge pages inside the buffer are advised; failure
// is harmless and ignored.
func adviseHugePages[T any](buf []T) {
	const huge = 2 << 20
	size := uintptr(len(buf)) * unsafe.Sizeof(*new(T))
	if size < 2*huge {
		return
	}
	all := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(buf))), size)
	start := uintptr(unsafe.Pointer(&all[0]))
	lo := (start+huge-1)&^(huge-1) - start
	hi := (start+size)&^(huge-1) - start
	if hi <= lo {
		return
	}
	_ = syscall.Madvise(all[lo:hi], 14 /* MADV_HUGEPAGE */)
}
