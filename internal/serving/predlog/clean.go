package predlog

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// minStaleTemp is the least age, since its last write, of a temporary file
// removed as a dead writer's.
const minStaleTemp = 15 * time.Minute

// staleTempAge is how long a temporary file goes unwritten before it is
// taken for a dead writer's: ten flush intervals, at least minStaleTemp. A
// live flush writes its file continuously and renames it within seconds of
// the last write, so an older file has no writer.
//
// Age is the only test that holds for every writer sharing the directory:
// replicas in other containers (other pid namespaces, or other hosts on a
// shared volume) have pids that mean nothing here, and pid 1 is every
// container's, so a pid check removed live replicas' files.
func staleTempAge(flushInterval time.Duration) time.Duration {
	return max(10*flushInterval, minStaleTemp)
}

// removeDeadTemps removes the temporary files under dir last modified before
// cutoff: those of writers killed mid-flush. Newer ones may be a live
// writer's (this process's or another replica's) and are theirs to publish;
// readers skip them meanwhile.
func removeDeadTemps(dir string, cutoff time.Time) error {
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
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // published or removed meanwhile
			}
			return err
		}
		if !info.ModTime().Before(cutoff) {
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
