package pebble_test

import (
	"context"
	"errors"
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
		s, err := online.Open(context.Background(), "pebble://"+filepath.Join(base, t.Name(), id))
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
		if s, err := online.Open(ctx, bad); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", bad)
		}
	}
	if _, err := online.Open(ctx, "nosuch://x"); !errors.Is(err, online.ErrUnsupportedURL) {
		t.Errorf("Open(nosuch://x): %v, want ErrUnsupportedURL", err)
	}
}
