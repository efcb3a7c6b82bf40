package predlog

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
)

// liveWriters counts this process's open Writers.
var liveWriters atomic.Int32

// removeDeadTemps removes the temporary files that writers killed mid-flush
// left under dir; those of live processes (another server on the same store)
// are theirs to publish.
func removeDeadTemps(dir string) error {
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed under us, or dir does not exist yet
			}
			return err
		}
		if d.IsDir() || !isTemp(d.Name()) {
			return nil
		}
		if pid, ok := tempPID(d.Name()); ok && processAlive(pid) && (pid != os.Getpid() || liveWriters.Load() > 0) {
			// A live writer's file. Our own pid with no Writer open in this
			// process is a previous process's (pid reuse: pid 1 in a
			// restarted container).
			return nil
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func isTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.HasSuffix(name, tempSuffix)
}

// tempPID reads the writer's pid from ".<nanos>-<pid>-<random>.parquet.tmp".
func tempPID(name string) (int, bool) {
	parts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(name, "."), tempSuffix), "-")
	if len(parts) != 3 {
		return 0, false
	}
	pid, err := strconv.Atoi(parts[1])
	return pid, err == nil
}
