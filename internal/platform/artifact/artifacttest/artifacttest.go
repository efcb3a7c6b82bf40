// Package artifacttest is the conformance suite every artifact.Store backend
// passes: round trips, listings, deletes, the atomicity of Put (a failed or
// cancelled upload leaves the previous object whole and nothing half-written
// visible), concurrent writers, and the rejection of every path-traversal payload
// from MLflow's published advisories.
//
// A backend's test calls Run with a function that opens a fresh, empty store:
//
//	func TestConformance(t *testing.T) {
//		artifacttest.Run(t, func(t *testing.T) artifact.Store { ... })
//	}
package artifacttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/atrium-ml/atrium/internal/platform/artifact"
)

// Opener opens a fresh, empty store for one subtest. It registers the store's
// Close with t.Cleanup or leaves closing to the suite (Run closes every store it
// opens; a second Close must not panic).
type Opener func(t *testing.T) artifact.Store

// TraversalPayloads are paths every Store method must reject with
// artifact.ErrInvalidPath. They come from MLflow's path-traversal advisories
// (CVE-2023-1177, -2356, -2780, -6730, -6831, -6909; CVE-2024-1483, -1558, -1560,
// -3848) and their bypasses: plain and nested '..',
// single and double percent-encoding, absolute and UNC paths, file:// and other
// schemes, Windows separators and drive letters, NUL and control bytes, '#'
// fragments, and overlong UTF-8 dots; and names longer than a filesystem takes
// (a segment over 255 bytes, a path over 4,096 bytes), which must be the
// client's error, never the server's.
var TraversalPayloads = []string{
	"..",
	"../secret",
	"../../../../../../etc/passwd",
	"a/../../b",
	"a/b/../../../c",
	"a/..",
	"/etc/passwd",
	"//etc/passwd",
	"//host/share/x",
	"%2e%2e",
	"%2e%2e/%2e%2e/etc/passwd",
	"%2E%2E%2Fetc%2Fpasswd",
	"..%2f..%2fetc%2fpasswd",
	"a%2f..%2f..%2fb",
	"%252e%252e%252fetc",
	"%25252e%25252e/x",
	"a/%252e%252e/%252e%252e/b",
	"file:///etc/passwd",
	"file://localhost/etc/passwd",
	"file:/etc/passwd",
	"s3://bucket/key",
	"http://host/api/2.0/mlflow-artifacts/artifacts/../../x",
	"mlflow-artifacts:/../../../etc",
	"mlflow-artifacts://host:5000/..%2f..%2f",
	`..\..\windows\win.ini`,
	`a\..\..\b`,
	`\\host\share`,
	"C:/Windows/win.ini",
	`C:\Windows`,
	"a\x00b",
	"a/b\x00/../../c",
	"%00",
	"a\nb",
	"a\rb",
	"x\x7f",
	"a#/../../etc/passwd",
	"#/etc/passwd",
	"a/b#frag",
	"\xc0\xae\xc0\xae/etc",
	"\xff",
	strings.Repeat("n", artifact.MaxSegmentBytes+1),
	"a/" + strings.Repeat("\u00e9", 128) + "/b",
	strings.Repeat("deep/", artifact.MaxPathBytes/5+1) + "x",
}

// Run runs the conformance suite against the stores open makes.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s artifact.Store)
	}{
		{"PutGetRoundTrip", testRoundTrip},
		{"Overwrite", testOverwrite},
		{"GetMissing", testGetMissing},
		{"List", testList},
		{"Delete", testDelete},
		{"RootIsNotAnObject", testRoot},
		{"FailedPutLeavesNothing", testFailedPut},
		{"CancelledPut", testCancelledPut},
		{"ConcurrentPuts", testConcurrentPuts},
		{"PutDuringDelete", testPutDuringDelete},
		{"FileDirectoryConflict", testConflict},
		{"TraversalPayloadsRejected", testTraversal},
		{"CanonicalPaths", testCanonical},
		{"Multipart", testMultipart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { _ = s.Close() })
			tt.fn(t, s)
		})
	}
}

func put(t *testing.T, s artifact.Store, path, content string) {
	t.Helper()
	if err := s.Put(context.Background(), path, strings.NewReader(content)); err != nil {
		t.Fatalf("Put(%q): %v", path, err)
	}
}

func get(t *testing.T, s artifact.Store, path string) (string, error) {
	t.Helper()
	rc, err := s.Get(context.Background(), path)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", path, err)
	}
	return string(b), nil
}

func mustGet(t *testing.T, s artifact.Store, path, want string) {
	t.Helper()
	got, err := get(t, s, path)
	if err != nil {
		t.Fatalf("Get(%q): %v", path, err)
	}
	if got != want {
		t.Fatalf("Get(%q) = %d bytes %.40q, want %d bytes %.40q", path, len(got), got, len(want), want)
	}
}

func list(t *testing.T, s artifact.Store, dir string) []artifact.FileInfo {
	t.Helper()
	fis, err := s.List(context.Background(), dir)
	if err != nil {
		t.Fatalf("List(%q): %v", dir, err)
	}
	return fis
}

func testRoundTrip(t *testing.T, s artifact.Store) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16+7) // 3 MiB and a bit: crosses every buffer size
	tests := []struct{ path, content string }{
		{"a.txt", "hello"},
		{"empty", ""},
		{"1/abc123/artifacts/model/MLmodel", "flavors:\n  sklearn: {}\n"},
		{"dir with space/é ü ñ 模型.bin", "unicode names"},
		{"deep/a/b/c/d/e/f/g/h.json", `{"k":1}`},
		{"big.bin", string(big)},
	}
	for _, tt := range tests {
		put(t, s, tt.path, tt.content)
	}
	for _, tt := range tests {
		mustGet(t, s, tt.path, tt.content)
	}
}

func testOverwrite(t *testing.T, s artifact.Store) {
	put(t, s, "x/f", "first version, longer than the second")
	put(t, s, "x/f", "second")
	mustGet(t, s, "x/f", "second")
	if got := list(t, s, "x"); len(got) != 1 || got[0].Size != int64(len("second")) {
		t.Fatalf("List(x) after overwrite = %+v, want one entry of size 6", got)
	}
}

func testGetMissing(t *testing.T, s artifact.Store) {
	put(t, s, "d/f", "x")
	for _, p := range []string{"nope", "d/nope", "nope/deeper/f", "d"} {
		if _, err := get(t, s, p); !errors.Is(err, artifact.ErrNotFound) {
			t.Errorf("Get(%q) error = %v, want ErrNotFound (a directory is not an object)", p, err)
		}
	}
}

func testList(t *testing.T, s artifact.Store) {
	put(t, s, "r/b.txt", "bb")
	put(t, s, "r/a.txt", "a")
	put(t, s, "r/sub/c.txt", "ccc")
	put(t, s, "r/sub/deeper/d.txt", "dddd")
	put(t, s, "r/z/e", "")
	put(t, s, "other/f", "f")

	tests := []struct {
		dir  string
		want []artifact.FileInfo
	}{
		{"r", []artifact.FileInfo{
			{Path: "r/a.txt", Size: 1}, {Path: "r/b.txt", Size: 2},
			{Path: "r/sub", IsDir: true}, {Path: "r/z", IsDir: true},
		}},
		{"r/sub", []artifact.FileInfo{{Path: "r/sub/c.txt", Size: 3}, {Path: "r/sub/deeper", IsDir: true}}},
		{"r/sub/", []artifact.FileInfo{{Path: "r/sub/c.txt", Size: 3}, {Path: "r/sub/deeper", IsDir: true}}},
		{"", []artifact.FileInfo{{Path: "other", IsDir: true}, {Path: "r", IsDir: true}}},
		{".", []artifact.FileInfo{{Path: "other", IsDir: true}, {Path: "r", IsDir: true}}},
		{"missing", nil},
		{"r/missing/deeper", nil},
		{"r/a.txt", nil}, // a file has no children
	}
	for _, tt := range tests {
		got := list(t, s, tt.dir)
		if len(got) == 0 && len(tt.want) == 0 {
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("List(%q) =\n  %+v\nwant\n  %+v", tt.dir, got, tt.want)
		}
	}
}

func testDelete(t *testing.T, s artifact.Store) {
	ctx := context.Background()
	put(t, s, "run/artifacts/a", "a")
	put(t, s, "run/artifacts/model/MLmodel", "m")
	put(t, s, "run/artifacts/model/data/model.pkl", "p")
	put(t, s, "run/keep", "k")

	if err := s.Delete(ctx, "run/artifacts/a"); err != nil {
		t.Fatalf("Delete file: %v", err)
	}
	if _, err := get(t, s, "run/artifacts/a"); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "run/artifacts/model"); err != nil {
		t.Fatalf("Delete tree: %v", err)
	}
	for _, p := range []string{"run/artifacts/model/MLmodel", "run/artifacts/model/data/model.pkl"} {
		if _, err := get(t, s, p); !errors.Is(err, artifact.ErrNotFound) {
			t.Errorf("Get(%q) after tree Delete: %v, want ErrNotFound", p, err)
		}
	}
	if got := list(t, s, "run/artifacts"); len(got) != 0 {
		t.Errorf("List(run/artifacts) after deleting everything = %+v, want empty", got)
	}
	mustGet(t, s, "run/keep", "k")
	for _, p := range []string{"run/artifacts/a", "never/was", "run/artifacts/model"} {
		if err := s.Delete(ctx, p); err != nil {
			t.Errorf("Delete(%q) of a missing path = %v, want nil", p, err)
		}
	}
}

// testRoot: the root is a directory, never an object; deleting it through the
// Store (one empty path away from wiping every artifact) is refused.
func testRoot(t *testing.T, s artifact.Store) {
	ctx := context.Background()
	put(t, s, "keep", "k")
	for _, p := range []string{"", ".", "./", "a/.."} {
		if err := s.Put(ctx, p, strings.NewReader("x")); !errors.Is(err, artifact.ErrInvalidPath) {
			t.Errorf("Put(%q) = %v, want ErrInvalidPath", p, err)
		}
		if err := s.Delete(ctx, p); !errors.Is(err, artifact.ErrInvalidPath) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidPath", p, err)
		}
	}
	if _, err := s.Get(ctx, ""); err == nil {
		t.Errorf("Get(\"\") succeeded, want an error")
	}
	mustGet(t, s, "keep", "k")
}

// failingReader yields n bytes, then fails.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("connection reset by peer")
	}
	k := min(len(p), r.n)
	for i := range p[:k] {
		p[i] = 'X'
	}
	r.n -= k
	return k, nil
}

func testFailedPut(t *testing.T, s artifact.Store) {
	ctx := context.Background()
	put(t, s, "m/model.pkl", "good model")
	if err := s.Put(ctx, "m/model.pkl", &failingReader{n: 1 << 20}); err == nil {
		t.Fatal("Put from a failing reader succeeded")
	}
	mustGet(t, s, "m/model.pkl", "good model")
	if err := s.Put(ctx, "m/new.pkl", &failingReader{n: 10}); err == nil {
		t.Fatal("Put from a failing reader succeeded")
	}
	if _, err := get(t, s, "m/new.pkl"); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("Get of a failed new Put = %v, want ErrNotFound", err)
	}
	assertListing(t, s, "m", []string{"m/model.pkl"})
	assertListing(t, s, "", []string{"m"})
}

// cancelReader cancels its context after the first read, as a client that
// disconnects mid-upload does.
type cancelReader struct {
	cancel context.CancelFunc
	reads  int
}

func (r *cancelReader) Read(p []byte) (int, error) {
	r.reads++
	if r.reads > 1 {
		r.cancel()
	}
	if r.reads > 1000 {
		return 0, io.EOF
	}
	return copy(p, bytes.Repeat([]byte("y"), len(p))), nil
}

func testCancelledPut(t *testing.T, s artifact.Store) {
	put(t, s, "c/f", "old")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Put(ctx, "c/f", &cancelReader{cancel: cancel}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a context cancelled mid-stream = %v, want context.Canceled", err)
	}
	mustGet(t, s, "c/f", "old")
	assertListing(t, s, "c", []string{"c/f"})
}

func assertListing(t *testing.T, s artifact.Store, dir string, want []string) {
	t.Helper()
	var got []string
	for _, fi := range list(t, s, dir) {
		got = append(got, fi.Path)
	}
	if !slices.Equal(got, want) {
		t.Errorf("List(%q) = %q, want %q (no temporary or partial files visible)", dir, got, want)
	}
}

// testConcurrentPuts: writers race on one path while readers read it; every read
// sees one writer's whole content, never a mix or a prefix.
func testConcurrentPuts(t *testing.T, s artifact.Store) {
	const writers, size = 8, 256 << 10
	contents := make(map[string]bool, writers)
	payload := func(i int) string { return strings.Repeat(fmt.Sprintf("writer-%d;", i), size/9) }
	for i := range writers {
		contents[payload(i)] = true
	}
	put(t, s, "race/f", payload(0))
	var wg sync.WaitGroup
	errs := make(chan error, 4*writers)
	for i := range writers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- s.Put(context.Background(), "race/f", strings.NewReader(payload(i)))
		}()
		go func() {
			defer wg.Done()
			rc, err := s.Get(context.Background(), "race/f")
			if err != nil {
				errs <- fmt.Errorf("concurrent Get: %w", err)
				return
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err != nil {
				errs <- err
			} else if !contents[string(b)] {
				errs <- fmt.Errorf("concurrent Get read %d bytes that no writer wrote whole", len(b))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	got, err := get(t, s, "race/f")
	if err != nil || !contents[got] {
		t.Fatalf("final content: %d bytes, %v; want one writer's whole payload", len(got), err)
	}
	assertListing(t, s, "race", []string{"race/f"})
}

// testPutDuringDelete: uploads into a tree that another client keeps deleting
// never fail because of it, and whatever survives is whole.
func testPutDuringDelete(t *testing.T, s artifact.Store) {
	ctx := context.Background()
	stop := make(chan struct{})
	deleted := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				deleted <- nil
				return
			default:
			}
			if err := s.Delete(ctx, "tree"); err != nil {
				deleted <- err
				return
			}
		}
	}()
	for i := range 100 {
		p := fmt.Sprintf("tree/a/b/f%03d", i)
		if err := s.Put(ctx, p, strings.NewReader("content "+p)); err != nil {
			t.Errorf("Put(%q) during deletes: %v", p, err)
		}
	}
	close(stop)
	if err := <-deleted; err != nil {
		t.Fatalf("Delete during uploads: %v", err)
	}
	for _, fi := range list(t, s, "tree/a/b") {
		mustGet(t, s, fi.Path, "content "+fi.Path)
	}
}

// testConflict: a path cannot be both a file and a directory on every backend.
// Whatever a backend answers, nothing stored is lost.
func testConflict(t *testing.T, s artifact.Store) {
	ctx := context.Background()
	put(t, s, "f", "file")
	put(t, s, "d/child", "child")
	if err := s.Put(ctx, "f/g", strings.NewReader("under a file")); err != nil && !errors.Is(err, artifact.ErrConflict) {
		t.Errorf("Put under a file = %v, want nil or ErrConflict", err)
	}
	if err := s.Put(ctx, "d", strings.NewReader("onto a directory")); err != nil && !errors.Is(err, artifact.ErrConflict) {
		t.Errorf("Put onto a directory = %v, want nil or ErrConflict", err)
	}
	mustGet(t, s, "f", "file")
	mustGet(t, s, "d/child", "child")
}

func testTraversal(t *testing.T, s artifact.Store) {
	ctx := context.Background()
	put(t, s, "etc/passwd", "inside the store")
	for _, p := range TraversalPayloads {
		if err := s.Put(ctx, p, strings.NewReader("pwned")); !errors.Is(err, artifact.ErrInvalidPath) {
			t.Errorf("Put(%q) = %v, want ErrInvalidPath", p, err)
		}
		if rc, err := s.Get(ctx, p); !errors.Is(err, artifact.ErrInvalidPath) {
			if rc != nil {
				rc.Close()
			}
			t.Errorf("Get(%q) = %v, want ErrInvalidPath", p, err)
		}
		if _, err := s.List(ctx, p); !errors.Is(err, artifact.ErrInvalidPath) {
			t.Errorf("List(%q) = %v, want ErrInvalidPath", p, err)
		}
		if err := s.Delete(ctx, p); !errors.Is(err, artifact.ErrInvalidPath) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidPath", p, err)
		}
	}
	mustGet(t, s, "etc/passwd", "inside the store")
	assertListing(t, s, "", []string{"etc"})
}

// testCanonical: equivalent spellings of a path name the same object.
func testCanonical(t *testing.T, s artifact.Store) {
	put(t, s, "./a//b/./c.txt", "c")
	mustGet(t, s, "a/b/c.txt", "c")
	mustGet(t, s, "a/b//c.txt", "c")
	assertListing(t, s, "a/./b/", []string{"a/b/c.txt"})
}

// testMultipart runs when the store implements artifact.Multipart.
func testMultipart(t *testing.T, s artifact.Store) {
	mp, ok := s.(artifact.Multipart)
	if !ok {
		t.Skip("the store does not implement artifact.Multipart")
	}
	ctx := context.Background()
	put(t, s, "m/model.bin", "old model")
	id, err := mp.CreateMultipart(ctx, "m/model.bin")
	if err != nil {
		t.Fatal(err)
	}
	parts := []string{strings.Repeat("a", 300<<10), strings.Repeat("b", 300<<10), "tail"}
	etags := make([]string, len(parts))
	var wg sync.WaitGroup
	errs := make([]error, len(parts))
	for i := len(parts) - 1; i >= 0; i-- { // in parallel, in reverse order
		wg.Add(1)
		go func() {
			defer wg.Done()
			etags[i], errs[i] = mp.PutPart(ctx, id, i+1, strings.NewReader(parts[i]))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("PutPart %d: %v", i+1, err)
		}
	}
	// A retried part with other bytes gets another ETag; the listed one wins.
	retried, err := mp.PutPart(ctx, id, 2, strings.NewReader("garbage from a broken try"))
	if err != nil || retried == etags[1] {
		t.Fatalf("retried PutPart = %q, %v; want a new ETag", retried, err)
	}
	list := func(ets ...string) []artifact.Part {
		out := make([]artifact.Part, len(ets))
		for i, e := range ets {
			out[i] = artifact.Part{Number: i + 1, ETag: e}
		}
		return out
	}
	mustGet(t, s, "m/model.bin", "old model") // nothing visible before Complete
	assertListing(t, s, "m", []string{"m/model.bin"})

	bad := []struct {
		name  string
		path  string
		parts []artifact.Part
	}{
		{"unknown ETag", "m/model.bin", list(etags[0], "0000", etags[2])},
		{"other path", "m/other.bin", list(etags...)},
		{"traversal path", "../m/model.bin", list(etags...)},
		{"no parts", "m/model.bin", nil},
		{"descending", "m/model.bin", []artifact.Part{{Number: 2, ETag: etags[1]}, {Number: 1, ETag: etags[0]}}},
	}
	for _, tt := range bad {
		if err := mp.CompleteMultipart(ctx, tt.path, id, tt.parts); !errors.Is(err, artifact.ErrInvalidPath) {
			t.Errorf("CompleteMultipart with %s = %v, want ErrInvalidPath", tt.name, err)
		}
	}
	mustGet(t, s, "m/model.bin", "old model")
	if err := mp.CompleteMultipart(ctx, "m/model.bin", id, list(etags...)); err != nil {
		t.Fatalf("CompleteMultipart: %v", err)
	}
	mustGet(t, s, "m/model.bin", strings.Join(parts, ""))
	if _, err := mp.PutPart(ctx, id, 1, strings.NewReader("late")); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("PutPart after Complete = %v, want ErrNotFound", err)
	}

	// Abort discards; unknown or malformed ids are not found and reach no path.
	id2, err := mp.CreateMultipart(ctx, "m/aborted.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mp.PutPart(ctx, id2, 1, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if err := mp.AbortMultipart(ctx, "m/aborted.bin", id2); err != nil {
		t.Fatalf("AbortMultipart: %v", err)
	}
	if _, err := get(t, s, "m/aborted.bin"); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("Get after Abort = %v, want ErrNotFound", err)
	}
	for _, id := range []string{id2, "../../etc", "", strings.Repeat("z", 32)} {
		if _, err := mp.PutPart(ctx, id, 1, strings.NewReader("x")); !errors.Is(err, artifact.ErrNotFound) {
			t.Errorf("PutPart(%q) = %v, want ErrNotFound", id, err)
		}
	}
	for _, n := range []int{0, -1, artifact.MaxParts + 1} {
		if _, err := mp.PutPart(ctx, id2, n, strings.NewReader("x")); err == nil {
			t.Errorf("PutPart number %d succeeded", n)
		}
	}
	for _, p := range TraversalPayloads {
		if _, err := mp.CreateMultipart(ctx, p); !errors.Is(err, artifact.ErrInvalidPath) {
			t.Errorf("CreateMultipart(%q) = %v, want ErrInvalidPath", p, err)
		}
	}
	assertListing(t, s, "m", []string{"m/model.bin"})
}
