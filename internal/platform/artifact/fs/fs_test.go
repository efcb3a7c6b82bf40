package fs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/artifact"
	"github.com/atrium-ml/atrium/internal/platform/artifact/artifacttest"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	artifacttest.Run(t, func(t *testing.T) artifact.Store { return openTemp(t) })
}

func TestOpenURL(t *testing.T) {
	dir := t.TempDir()
	ok := []string{"file://" + dir, "file://" + dir + "/sub/created", "file://localhost" + dir}
	for _, raw := range ok {
		s, err := artifact.Open(context.Background(), raw)
		if err != nil {
			t.Errorf("Open(%q): %v", raw, err)
			continue
		}
		if err := s.Put(context.Background(), "f", strings.NewReader("x")); err != nil {
			t.Errorf("Put in %q: %v", raw, err)
		}
		s.Close()
	}
	bad := []string{"file://relative/dir", "file:relative", "file://" + dir + "?mode=x", "file://" + dir + "#frag", "file://evil.example.com/tmp"}
	for _, raw := range bad {
		if s, err := artifact.Open(context.Background(), raw); !errors.Is(err, artifact.ErrUnsupportedURL) {
			if s != nil {
				s.Close()
			}
			t.Errorf("Open(%q) = %v, want ErrUnsupportedURL", raw, err)
		}
	}
}

// TestSymlinksNotFollowed plants links inside the root that point outside it
// (and inside it) and checks that no operation reads, writes, lists or deletes
// through them, and that the outside files are untouched.
func TestSymlinksNotFollowed(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("outside"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "inner/real.txt", strings.NewReader("inside")); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"linkdir":         outside,                                  // directory outside
		"linkfile":        secret,                                   // file outside
		"inner/rel":       "../../" + filepath.Base(outside),        // relative escape
		"inner/dotdot":    "..",                                     // the root's parent by way of ".."
		"inner/abs":       "/etc",                                   // absolute
		"inner/in":        filepath.Join(s.Dir(), "inner/real.txt"), // inside, but still a link
		"dangling":        filepath.Join(outside, "not-yet-created"),
		"inner/loop":      "loop",
		TempDir + "-like": outside,
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(s.Dir(), name)); err != nil {
			t.Fatal(err)
		}
	}
	paths := []string{
		"linkdir/secret", "linkdir", "linkfile", "inner/rel/secret", "inner/dotdot/etc",
		"inner/abs/passwd", "inner/in", "dangling", "dangling/x", "inner/loop", "inner/loop/x",
		TempDir + "-like/secret",
	}
	// Reads and deletes first, while every link is still in place.
	for _, p := range paths {
		if rc, err := s.Get(ctx, p); !errors.Is(err, artifact.ErrInvalidPath) {
			if rc != nil {
				b, _ := io.ReadAll(rc)
				rc.Close()
				t.Errorf("Get(%q) read %q through a symlink", p, b)
			} else {
				t.Errorf("Get(%q) = %v, want ErrInvalidPath", p, err)
			}
		}
		if _, err := s.List(ctx, p); !errors.Is(err, artifact.ErrInvalidPath) {
			t.Errorf("List(%q) = %v, want ErrInvalidPath", p, err)
		}
		if err := s.Delete(ctx, p); !errors.Is(err, artifact.ErrInvalidPath) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidPath", p, err)
		}
	}
	// Listings skip the links: they cannot be read through the store.
	fis, err := s.List(ctx, "inner")
	if err != nil || len(fis) != 1 || fis[0].Path != "inner/real.txt" {
		t.Fatalf("List(inner) = %+v, %v; want only inner/real.txt", fis, err)
	}
	// Writes through or onto a link are refused too.
	for _, p := range paths {
		if err := s.Put(ctx, p, strings.NewReader("pwned")); !errors.Is(err, artifact.ErrInvalidPath) {
			t.Errorf("Put(%q) = %v, want ErrInvalidPath", p, err)
		}
	}
	if b, err := os.ReadFile(secret); err != nil || string(b) != "outside" {
		t.Fatalf("outside file changed: %q, %v", b, err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Fatalf("files appeared outside the root: %v", entries)
	}
}

// TestTempFilesInvisibleAndSwept: what a killed upload leaves (a temporary file)
// is never listed, cannot be read or written through the API, and Open removes
// it once stale.
func TestTempFilesInvisibleAndSwept(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, TempDir, "put-stale")
	// An upload temporary file nobody holds is a killed upload's, however fresh.
	orphan := filepath.Join(dir, TempDir, "put-fresh")
	staleTree := filepath.Join(dir, TempDir, "del-stale")
	freshTree := filepath.Join(dir, TempDir, "del-fresh")
	// A multipart upload lives between requests: swept by age only; a part
	// in flight in it nobody holds is a killed request's.
	mpu := filepath.Join(dir, TempDir, "mpu-fresh")
	part, orphanPart := filepath.Join(mpu, "1.abc"), filepath.Join(mpu, "tmp-2-abc")
	for _, f := range []string{stale, orphan, filepath.Join(staleTree, "x", "y"), filepath.Join(freshTree, "z"), part, orphanPart} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("half an upl"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-StaleTempAge - time.Hour)
	for _, f := range []string{stale, staleTree} {
		if err := os.Chtimes(f, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(ctx, "a", strings.NewReader("a")); err != nil {
		t.Fatal(err)
	}
	fis, err := s.List(ctx, "")
	if err != nil || len(fis) != 1 || fis[0].Path != "a" {
		t.Fatalf("List(root) = %+v, %v; want only a", fis, err)
	}
	for _, p := range []string{TempDir, TempDir + "/put-fresh", "./" + TempDir + "/put-stale", strings.ToUpper(TempDir) + "/x"} {
		if _, err := s.Get(ctx, p); !errors.Is(err, artifact.ErrInvalidPath) {
			t.Errorf("Get(%q) = %v, want ErrInvalidPath", p, err)
		}
		if err := s.Put(ctx, p, strings.NewReader("x")); !errors.Is(err, artifact.ErrInvalidPath) {
			t.Errorf("Put(%q) = %v, want ErrInvalidPath", p, err)
		}
		if err := s.Delete(ctx, p); !errors.Is(err, artifact.ErrInvalidPath) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidPath", p, err)
		}
	}
	s.Close()

	s, err = Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for f, want := range map[string]bool{stale: false, staleTree: false, orphan: false, freshTree: true, part: true, orphanPart: false} {
		if _, err := os.Stat(f); (err == nil) != want {
			t.Errorf("after reopen, %s exists = %v, want %v", f, err == nil, want)
		}
	}
}

// TestFailedPutRemovesTemp: an upload that fails leaves no temporary file.
func TestFailedPutRemovesTemp(t *testing.T) {
	s := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte("partial"))
		cancel()
		_ = pw.CloseWithError(errors.New("client went away"))
	}()
	if err := s.Put(ctx, "x/y", pr); err == nil {
		t.Fatal("Put succeeded")
	}
	entries, err := os.ReadDir(filepath.Join(s.Dir(), TempDir))
	if err != nil || len(entries) != 0 {
		t.Fatalf("temporary directory after a failed Put: %v, %v; want empty", entries, err)
	}
}

func TestOpenUnusableDir(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := artifact.Open(context.Background(), (&url.URL{Scheme: "file", Path: f}).String()); err == nil {
		t.Fatal("Open on a regular file succeeded")
	}
}

// TestRootEscapeMapsToInvalidPath: if a link leading outside appears after
// resolve checked (a race), os.Root refuses it and the error is a client's
// ErrInvalidPath, not an internal error.
func TestRootEscapeMapsToInvalidPath(t *testing.T) {
	s := openTemp(t)
	if err := os.Symlink(t.TempDir(), filepath.Join(s.Dir(), "out")); err != nil {
		t.Fatal(err)
	}
	_, err := s.root.Open("out/x")
	if err == nil {
		t.Fatal("os.Root followed a link out of the root")
	}
	if got := s.pathErr("out/x", err); !errors.Is(got, artifact.ErrInvalidPath) {
		t.Fatalf("pathErr(%v) = %v, want ErrInvalidPath", err, got)
	}
}

func benchPayload() []byte {
	b := make([]byte, 32<<20)
	for i := range b {
		b[i] = byte(i * 7919 >> 8)
	}
	return b
}

// BenchmarkPut32MiB: one durable, atomic upload (write, fsync, rename, fsync dir).
func BenchmarkPut32MiB(b *testing.B) {
	s, err := Open(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	data := benchPayload()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := s.Put(context.Background(), "bench/big.bin", bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet32MiB(b *testing.B) {
	s, err := Open(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	data := benchPayload()
	if err := s.Put(context.Background(), "bench/big.bin", bytes.NewReader(data)); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		rc, err := s.Get(context.Background(), "bench/big.bin")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}

// TestLongNames stores a path near the longest CleanPath accepts, and maps a
// name the filesystem refuses as too long (some have limits below Linux's) to
// ErrInvalidPath, not to an internal error.
func TestLongNames(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	ctx := context.Background()
	seg := strings.Repeat("s", artifact.MaxSegmentBytes)
	long := strings.Repeat(seg+"/", 15) + "f" // 3,841 bytes, 16 segments
	if err := s.Put(ctx, long, strings.NewReader("deep")); err != nil {
		t.Fatalf("Put of a %d-byte path: %v", len(long), err)
	}
	rc, err := s.Get(ctx, long)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "deep" {
		t.Fatalf("Get = %q", b)
	}
	err = s.pathErr("x", &os.PathError{Op: "openat", Path: "x", Err: syscall.ENAMETOOLONG})
	if !errors.Is(err, artifact.ErrInvalidPath) {
		t.Errorf("ENAMETOOLONG maps to %v, want ErrInvalidPath", err)
	}
}
