// Package artifact stores run and model artifacts (files and directories) by path.
// Backends register by URL scheme like database/sql drivers: file:// (fs/, the
// default) and s3:// (S3-compatible object stores).
package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// Store holds artifacts under slash-separated relative paths ("1/abc/artifacts/model.pkl").
// Every path given to a Store must have passed CleanPath; implementations call it
// themselves too, so a caller's mistake can never escape the store's root.
// Implementations are safe for concurrent use.
type Store interface {
	// Put writes the object at path from r, replacing any previous object. It is
	// atomic: readers see the old object or the whole new one, never a part, and a
	// failed or interrupted Put leaves no object behind.
	Put(ctx context.Context, path string, r io.Reader) error
	// Get opens the object at path. It returns ErrNotFound when there is none.
	Get(ctx context.Context, path string) (io.ReadCloser, error)
	// List returns the direct children of dir ("" is the root) sorted by path, with
	// paths relative to the store root. A missing dir lists as empty.
	List(ctx context.Context, dir string) ([]FileInfo, error)
	// Delete removes the object or the whole directory tree at path. Deleting a
	// missing path is not an error.
	Delete(ctx context.Context, path string) error
	// Close releases the store's resources.
	Close() error
}

// Multipart is an optional capability of a Store (found by type assertion): an
// object uploaded in numbered parts, which may arrive in any order, in parallel
// and more than once, and become visible at once when the upload completes. A
// Store without it takes large objects through Put only.
type Multipart interface {
	// CreateMultipart starts an upload that will commit to path and returns its
	// id: an opaque token that is hard to guess (part URLs carry it as their only
	// credential).
	CreateMultipart(ctx context.Context, path string) (uploadID string, err error)
	// PutPart stores part number n (1 to MaxParts) of an upload, replacing an
	// earlier try of the same part, and returns the part's ETag. An unknown upload
	// id is ErrNotFound.
	PutPart(ctx context.Context, uploadID string, n int, r io.Reader) (etag string, err error)
	// CompleteMultipart commits the listed parts, concatenated in ascending order,
	// as the object at path, atomically like Put, and ends the upload. path must be
	// the one the upload was created for, and every part must have been stored with
	// the given ETag; otherwise it fails with ErrInvalidPath and nothing changes.
	CompleteMultipart(ctx context.Context, path, uploadID string, parts []Part) error
	// AbortMultipart discards an upload and its parts. An unknown id is not an error.
	AbortMultipart(ctx context.Context, path, uploadID string) error
}

// MaxParts bounds the number of parts of one multipart upload (S3's limit).
const MaxParts = 10000

// Part names one uploaded part of a multipart upload.
type Part struct {
	Number int
	ETag   string
}

// FileInfo describes one entry of a listing.
type FileInfo struct {
	Path  string // relative to the store root, slash-separated
	IsDir bool
	Size  int64 // bytes; 0 for directories
}

// Sentinel errors.
var (
	ErrNotFound       = errors.New("artifact not found")
	ErrInvalidPath    = errors.New("invalid artifact path")
	ErrUnsupportedURL = errors.New("unsupported artifact store URL")
	// ErrConflict: the path cannot hold an object because of what is already stored
	// (on a filesystem, a Put under a path whose parent is a file, or onto a
	// directory). What is stored is left untouched.
	ErrConflict = errors.New("artifact path conflicts with a stored file or directory")
)

// Length limits of CleanPath: those of Linux filesystems (NAME_MAX, PATH_MAX),
// and under S3's 1,024-byte keys for most paths. A longer name is the client's
// mistake, refused up front rather than failing deep in a backend.
const (
	MaxSegmentBytes = 255
	MaxPathBytes    = 4096
)

// CleanPath validates a relative artifact path and returns its canonical form.
// It rejects, with ErrInvalidPath: absolute paths, any ".." element, NUL and other
// control bytes, backslashes, URL schemes ("file:", "s3:"), '#' (MLflow's
// fragment trick, CVE-2023-6909 and CVE-2024-3848), bytes that are not UTF-8,
// any '%' escape (so %2e%2e, %2f and double encodings like %252e never reach a
// backend), a path longer than MaxPathBytes and a segment longer than
// MaxSegmentBytes. "" and "." mean the root and return "".
func CleanPath(p string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w %q: %s", ErrInvalidPath, abbreviate(p), why)
	}
	if len(p) > MaxPathBytes {
		return bad(fmt.Sprintf("%d bytes long, expected at most %d", len(p), MaxPathBytes))
	}
	if !utf8.ValidString(p) {
		return bad("not valid UTF-8")
	}
	// Reject encodings outright: a path is already decoded once by the HTTP layer,
	// so a remaining '%' escape is an attempt to smuggle '..' or '/' past checks.
	if dec, err := url.PathUnescape(p); err != nil || dec != p {
		return bad("percent-encoded characters are not allowed")
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f {
			return bad("control characters are not allowed")
		}
		if c == '\\' {
			return bad("backslashes are not allowed")
		}
		if c == '#' {
			return bad("'#' is not allowed")
		}
	}
	if strings.HasPrefix(p, "/") {
		return bad("absolute paths are not allowed")
	}
	if i := strings.Index(p, ":"); i > 0 && !strings.ContainsAny(p[:i], "/") {
		return bad("URL schemes and drive letters are not allowed")
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return bad("'..' is not allowed")
		}
		if len(elem) > MaxSegmentBytes {
			return bad(fmt.Sprintf("segment %q is %d bytes long, expected at most %d", abbreviate(elem), len(elem), MaxSegmentBytes))
		}
	}
	c := path.Clean(p)
	if c == "." {
		return "", nil
	}
	return c, nil
}

// abbreviate shortens an over-long path for an error message.
func abbreviate(p string) string {
	const keep = 64
	if len(p) <= keep {
		return p
	}
	return strings.ToValidUTF8(p[:keep], "") + "..."
}

// Opener opens a store from its parsed URL.
type Opener func(ctx context.Context, u *url.URL) (Store, error)

var (
	mu      sync.RWMutex
	openers = map[string]Opener{}
)

// Register makes a backend available under a URL scheme. It panics if the scheme
// is registered twice (a programming error, as in database/sql).
func Register(scheme string, open Opener) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := openers[scheme]; dup {
		panic("artifact: Register called twice for scheme " + scheme)
	}
	openers[scheme] = open
}

// Open opens the store named by rawURL with the backend registered for its scheme.
func Open(ctx context.Context, rawURL string) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("artifact store URL %q: %w", rawURL, err)
	}
	mu.RLock()
	open, ok := openers[u.Scheme]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q: registered schemes are %v", ErrUnsupportedURL, rawURL, Schemes())
	}
	return open(ctx, u)
}

// Schemes lists the registered URL schemes.
func Schemes() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(openers))
	for s := range openers {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
