package duckdb

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Staging directory prefixes inside a set directory. Readers only look at
// "date=" directories, so neither is ever read.
const (
	stagingPrefix = ".staging-"
	// oldSuffix marks a previous partition moved aside by exchangeByRenames; if a
	// writer dies before the new one is in place, recoverSet moves it back.
	oldSuffix = ".old"
)

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

// recoverSet undoes what a killed writer left behind in a set directory: staging
// directories are deleted, partitions moved aside and not replaced are restored.
// The caller holds the set's lock.
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
		case strings.HasPrefix(name, stagingPrefix):
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return err
			}
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
