//go:build !amd64

package gbdt

import "unsafe"

// prefetch2 is a no-op where no prefetch instruction is wired up.
func prefetch2(unsafe.Pointer, unsafe.Pointer) {}
