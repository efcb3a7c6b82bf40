//go:build unix

package fs

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/atrium-ml/atrium/internal/platform/artifact"
	"github.com/atrium-ml/atrium/internal/platform/proctest"
)

// A child process (the test binary re-executed with uploadChildEnv set to a
// store directory) starts a Put and a multipart part, each of which SIGKILLs
// the process after its first megabyte: what a killed upload leaves behind.
const uploadChildEnv = "ATRIUM_TEST_UPLOAD_AND_DIE"

func TestMain(m *testing.M) {
	if dir := os.Getenv(uploadChildEnv); dir != "" {
		err := uploadAndDie(dir)
		fmt.Fprintln(os.Stderr, "upload ended without being killed:", err)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// dyingReader yields zeros and, once n bytes were read, kills its process
// once released is closed (nil: at once).
type dyingReader struct {
	n        int
	released <-chan struct{}
}

func (r *dyingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		if r.released != nil {
			<-r.released
		}
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	n := min(len(p), r.n)
	clear(p[:n])
	r.n -= n
	return n, nil
}

func uploadAndDie(dir string) error {
	ctx := context.Background()
	s, err := Open(ctx, dir)
	if err != nil {
		return err
	}
	id, err := s.CreateMultipart(ctx, "model/weights.bin")
	if err != nil {
		return err
	}
	// The part writes its first megabyte, then waits for the Put to have
	// written its own; the Put's reader then kills the process.
	partWritten := make(chan struct{})
	go func() {
		_, _ = s.PutPart(ctx, id, 1, io.MultiReader(io.LimitReader(&dyingReader{n: 1 << 20}, 1<<20), readerFunc(func([]byte) (int, error) {
			close(partWritten)
			select {}
		})))
	}()
	return s.Put(ctx, "model/big.bin", &dyingReader{n: 1 << 20, released: partWritten})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// tempFiles lists the regular files under the store's temporary directory.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(dir, TempDir), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && d.Name() != "target" {
			out = append(out, strings.TrimPrefix(p, dir+"/"))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestKilledUploadsReclaimedAtOpen: the temporary files of uploads whose
// process was killed are removed by the next Open at once (not after
// StaleTempAge), the multipart upload itself is kept for its client.
func TestKilledUploadsReclaimedAtOpen(t *testing.T) {
	dir := t.TempDir()
	proctest.Killed(t, uploadChildEnv+"="+dir)
	left := tempFiles(t, dir)
	if len(left) != 2 {
		t.Fatalf("a killed Put and part left %v, want 2 temporary files", left)
	}
	for _, f := range left {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() < 1<<20 {
			t.Fatalf("%s: %v, want a megabyte written", f, err)
		}
	}

	s, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if left := tempFiles(t, dir); len(left) != 0 {
		t.Errorf("after Open: %v left, want none", left)
	}
	mpus, _ := filepath.Glob(filepath.Join(dir, TempDir, "mpu-*"))
	if len(mpus) != 1 {
		t.Errorf("multipart uploads after Open: %v, want the one created (it lives between requests)", mpus)
	}
}

// TestUploadsInFlightSurviveOpen: an Open while an upload of this or another
// process is being written leaves its temporary file alone, and the upload
// completes.
func TestUploadsInFlightSurviveOpen(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	defer s.Close()
	id, err := s.CreateMultipart(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		etag string
		err  error
	}
	putR, putW := io.Pipe()
	partR, partW := io.Pipe()
	putDone, partDone := make(chan error, 1), make(chan result, 1)
	go func() { putDone <- s.Put(ctx, "a/b", putR) }()
	go func() {
		etag, err := s.PutPart(ctx, id, 1, partR)
		partDone <- result{etag, err}
	}()
	// Once the first writes returned, both temporary files exist and are locked.
	if _, err := putW.Write([]byte("first half, ")); err != nil {
		t.Fatal(err)
	}
	if _, err := partW.Write([]byte("part ")); err != nil {
		t.Fatal(err)
	}
	if n := len(tempFiles(t, s.Dir())); n != 2 {
		t.Fatalf("%d temporary files in flight, want 2", n)
	}

	other, err := Open(ctx, s.Dir()) // e.g. another process starting
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
	if n := len(tempFiles(t, s.Dir())); n != 2 {
		t.Fatalf("Open removed uploads in flight: %d temporary files left, want 2", n)
	}

	_, _ = putW.Write([]byte("second half"))
	putW.Close()
	_, _ = partW.Write([]byte("one"))
	partW.Close()
	if err := <-putDone; err != nil {
		t.Fatalf("Put after a concurrent Open: %v", err)
	}
	part := <-partDone
	if part.err != nil {
		t.Fatalf("PutPart after a concurrent Open: %v", part.err)
	}
	if err := s.CompleteMultipart(ctx, "m", id, []artifact.Part{{Number: 1, ETag: part.etag}}); err != nil {
		t.Fatalf("CompleteMultipart: %v", err)
	}
	for p, want := range map[string]string{"a/b": "first half, second half", "m": "part one"} {
		rc, err := s.Get(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if string(got) != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
}
