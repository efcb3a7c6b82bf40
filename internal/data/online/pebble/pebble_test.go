package pebble_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/online/onlinetest"
	"github.com/atrium-ml/atrium/internal/data/online/pebble"
)

func TestConformance(t *testing.T) {
	base := t.TempDir()
	onlinetest.Run(t, func(t *testing.T, id string) online.Store {
		// Through the registry, as atrium opens it.
		s, err := online.Open(context.Background(), "pebble://"+filepath.Join(base, t.Name(), id), online.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestSecondProcessIsLockedOut(t *testing.T) {
	dir := t.TempDir()
	s, err := pebble.Open(dir, pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := pebble.Open(dir, pebble.Options{}); !errors.Is(err, pebble.ErrLocked) {
		t.Fatalf("second Open of a held directory: %v, want ErrLocked", err)
	}
}

// holdEnv names the directory a re-executed test binary holds open
// (TestHoldStoreHelper), for TestOtherProcessIsLockedOut.
const holdEnv = "ATRIUM_PEBBLE_HOLD_DIR"

// TestHoldStoreHelper is not a test: run by TestOtherProcessIsLockedOut in a
// child process, it opens the store, says so on stdout and holds it until
// stdin closes.
func TestHoldStoreHelper(t *testing.T) {
	dir := os.Getenv(holdEnv)
	if dir == "" {
		t.Skip("helper process of TestOtherProcessIsLockedOut")
	}
	s, err := pebble.Open(dir, pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("holding")
	_, _ = io.Copy(io.Discard, os.Stdin)
	s.Close()
}

// TestOtherProcessIsLockedOut: while another process holds the directory,
// Open fails with ErrLocked, which is online.ErrInUse; when that process is
// killed, its lock goes with it.
func TestOtherProcessIsLockedOut(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHoldStoreHelper$")
	cmd.Env = append(os.Environ(), holdEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "holding\n" {
		cmd.Process.Kill()
		t.Fatalf("helper process: %q, %v", line, err)
	}
	_, err = online.Open(context.Background(), "pebble://"+dir, online.OpenOptions{})
	if !errors.Is(err, pebble.ErrLocked) || !errors.Is(err, online.ErrInUse) {
		t.Errorf("Open while another process holds the store: %v, want ErrLocked and online.ErrInUse", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	s, err := pebble.Open(dir, pebble.Options{})
	if err != nil {
		t.Fatalf("Open after the holder was killed: %v", err)
	}
	s.Close()
}

func TestRefusesUnknownFormat(t *testing.T) {
	dir := t.TempDir()
	s, err := pebble.Open(dir, pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k := online.MustKey("k")
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.Write(context.Background(), "s", []string{"a"}, []online.Row{{Key: k, TS: ts, Values: []online.Value{online.Int64(1)}}}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// A row record from a future format: the store opens, the row is refused,
	// and a write does not clobber it.
	raw, err := cpebble.Open(dir, &cpebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rowKey := append(append([]byte("rs"), 0), k...)
	if err := raw.Set(rowKey, []byte{99, 0, 0}, cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	s, err = pebble.Open(dir, pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res := make([]online.Result, 1)
	if err := s.Read(context.Background(), []online.Query{{Set: "s", Features: []string{"a"}, Keys: []online.Key{k}}}, res); !errors.Is(err, online.ErrFormat) {
		t.Errorf("Read of a row in an unknown format: %v, want ErrFormat", err)
	}
	if err := s.Write(context.Background(), "s", []string{"a"}, []online.Row{{Key: k, TS: ts.Add(time.Hour), Values: []online.Value{online.Int64(2)}}}); !errors.Is(err, online.ErrFormat) {
		t.Errorf("Write over a row in an unknown format: %v, want ErrFormat", err)
	}
	s.Close()

	// A store from a future format version is refused at open.
	raw, err = cpebble.Open(dir, &cpebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Set([]byte("\x00format"), []byte{2}, cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if _, err := pebble.Open(dir, pebble.Options{}); !errors.Is(err, online.ErrFormat) {
		t.Errorf("Open of a store in format 2: %v, want ErrFormat", err)
	}
}

func TestURL(t *testing.T) {
	ctx := context.Background()
	for _, bad := range []string{"pebble://", "pebble:///x?cache_mb=lots", "pebble:///x?memtable_mb=0", "nosuch://x"} {
		if s, err := online.Open(ctx, bad, online.OpenOptions{}); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", bad)
		}
	}
	if _, err := online.Open(ctx, "nosuch://x", online.OpenOptions{}); !errors.Is(err, online.ErrUnsupportedURL) {
		t.Errorf("Open(nosuch://x): %v, want ErrUnsupportedURL", err)
	}
}
