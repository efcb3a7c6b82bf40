package ml

import (
	"fmt"
	"os"
	"path/filepath"
)

// CheckOutDir reports an output path whose directory does not exist, so that
// a command can refuse it before doing the work rather than when it writes.
func CheckOutDir(path string) error {
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("directory %s does not exist", dir)
	}
	return nil
}
