package duckdb

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// oldSuffix marks a previous partition moved aside by exchangeByRenames; if a
// writer dies before the new one is in place, recoverSet moves it back, and
// until then readers read it in place of the missing "date=YYYY-MM-DD"
// (Engine.partitions), so the last good data stays readable.
const oldSuffix = ".old"

// stagingPrefix starts the staging directories under <root>/.tmp: staging-<pid>-<id>.
// They live on the store's filesystem so that staged partitions can be renamed
// into place, and carry the writer's pid so that a later process can tell the
// debris of a dead writer from a live writer's work.
const stagingPrefix = "staging-"

// newStaging creates a fresh staging directory and returns it with its id (see
// newID), which names the files written there.
func (e *Engine) newStaging() (dir, id string, err error) {
	id = newID()
	dir = filepath.Join(e.root, ".tmp", fmt.Sprintf("%s%d-%s", stagingPrefix, os.Getpid(), id))
	return dir, id, os.MkdirAll(dir, 0o755)
}

// cleanStaging removes the staging directories of processes that no longer run
// (a killed run or push). It is safe to call at any time: live writers' staging
// directories are left alone.
func cleanStaging(root string) {
	entries, err := os.ReadDir(filepath.Join(root, ".tmp"))
	if err != nil {
		return
	}
	for _, ent := range entries {
		rest, ok := strings.CutPrefix(ent.Name(), stagingPrefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || processAlive(pid) {
			continue
		}
		_ = os.RemoveAll(filepath.Join(root, ".tmp", ent.Name()))
	}
}

// exchangeByRenames is the portable fallback of exchange: move target aside, move
// staged in, and move the old one to staged. A crash between the first two
// renames leaves target missing and target+".old" complete: recoverSet restores it.
func exchangeByRenames(staged, target string) error {
	old := target + oldSuffix
	hadOld := true
	if err := os.Rename(target, old); errors.Is(err, os.ErrNotExist) {
		hadOld = false
	} else if err != nil {
		return err
	}
	if err := os.Rename(staged, target); err != nil {
		if hadOld {
			_ = os.Rename(old, target)
		}
		return err
	}
	if hadOld {
		return os.Rename(old, staged)
	}
	return nil
}

// recoverSet undoes what a killed writer left behind in a set directory:
// partitions moved aside and not replaced are restored. The caller holds the
// set's lock.
func recoverSet(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, ent := range entries {
		name := ent.Name()
		switch {
		case strings.HasPrefix(name, "date=") && strings.HasSuffix(name, oldSuffix):
			target := filepath.Join(dir, strings.TrimSuffix(name, oldSuffix))
			if _, err := os.Stat(target); errors.Is(err, os.ErrNotExist) {
				if err := os.Rename(filepath.Join(dir, name), target); err != nil {
					return err
				}
			} else if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// newID returns a unique, time-ordered name part: 19 digits of Unix nanoseconds
// and 8 random hex digits. File names built from it sort in write order.
func newID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%019d-%s", time.Now().UnixNano(), hex.EncodeToString(b[:]))
}

// syncDir flushes a directory's entries (renames) to disk.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
