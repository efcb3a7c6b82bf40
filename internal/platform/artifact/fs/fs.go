// Package fs is the local-filesystem artifact store, registered for file:// URLs
// (file:///abs/dir). It is Atrium's default artifact store.
//
// Invariants:
//   - Every operation goes through an os.Root opened on the store directory, so no
//     path, however spelled and whatever symlinks race in, reaches a file outside it.
//     On top of that, a path whose any component is a symbolic link is refused with
//     artifact.ErrInvalidPath: links planted inside the root are never followed.
//   - Put streams into a temporary file under <root>/.atrium-tmp (same filesystem),
//     fsyncs it, renames it over the destination and fsyncs the directory. Readers
//     see the old object or the whole new one; a failed or cancelled upload leaves
//     no temporary file, and a killed one at most one that no listing shows and
//     the next Open removes.
//   - The writer of a temporary file (a Put, a multipart part) holds an exclusive
//     flock on it from creation until after the rename that commits it. Open
//     removes every upload temporary file whose lock it can take: nobody is
//     writing it, whatever its age. Other temporary entries (multipart uploads,
//     which span requests, and trees being deleted) are swept once older than
//     StaleTempAge.
//   - Delete of a tree first renames it into .atrium-tmp, so readers never see a
//     half-deleted directory.
package fs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/artifact"
	"github.com/atrium-ml/atrium/internal/platform/storeurl"
)

// TempDir is the directory under the store root that holds uploads in flight and
// trees being deleted. It never appears in listings and no artifact path may use it.
const TempDir = ".atrium-tmp"

// StaleTempAge is how old a temporary entry nobody can be seen holding (a
// multipart upload between its requests, a tree a killed Delete left) must be
// before Open removes it: older than any upload still in flight from another
// process sharing the directory.
const StaleTempAge = 24 * time.Hour

func init() {
	artifact.Register("file", func(ctx context.Context, u *url.URL) (artifact.Store, error) {
		return OpenURL(ctx, u)
	})
}

// Store is a local-filesystem artifact store. It is safe for concurrent use, also
// by several processes sharing one directory.
type Store struct {
	root *os.Root
	dir  string
}

var _ artifact.Store = (*Store)(nil)

// OpenURL opens the store named by a file:// URL: file:///abs/dir, or
// file://localhost/abs/dir. The directory is created if missing.
func OpenURL(ctx context.Context, u *url.URL) (*Store, error) {
	if u.RawQuery != "" {
		return nil, fmt.Errorf("%w %q: file:// store URLs take no query", artifact.ErrUnsupportedURL, u.String())
	}
	dir, err := storeurl.LocalPath(u)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", artifact.ErrUnsupportedURL, u.String(), err)
	}
	return Open(ctx, dir)
}

// Open opens (creating if missing) the store rooted at the absolute directory dir
// and removes what killed uploads left (see the package invariants).
func Open(ctx context.Context, dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("artifact store %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("artifact store %s: %w", dir, err)
	}
	s := &Store{root: root, dir: dir}
	if err := root.MkdirAll(TempDir, 0o755); err != nil {
		root.Close()
		return nil, fmt.Errorf("artifact store %s: create %s: %w", dir, TempDir, err)
	}
	if err := s.sweep(ctx, time.Now().Add(-StaleTempAge)); err != nil {
		root.Close()
		return nil, err
	}
	return s, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Close releases the directory handle.
func (s *Store) Close() error { return s.root.Close() }

// sweep removes the upload temporary files no writer holds, and other
// temporary entries last modified before cutoff.
func (s *Store) sweep(ctx context.Context, cutoff time.Time) error {
	entries, err := s.readTemp(TempDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := path.Join(TempDir, e.Name())
		if strings.HasPrefix(e.Name(), "mpu-") && e.IsDir() {
			// The upload itself lives between requests; its parts in flight
			// are held by their writers.
			if err := s.sweepOrphans(name, "tmp-"); err != nil {
				return err
			}
		}
		if strings.HasPrefix(e.Name(), "put-") && e.Type().IsRegular() {
			if err := s.removeOrphan(name); err != nil {
				return err
			}
			continue
		}
		info, err := e.Info()
		if err != nil || info.ModTime().After(cutoff) {
			continue // gone already, or possibly still being written
		}
		if err := s.root.RemoveAll(name); err != nil {
			return fmt.Errorf("artifact store %s: remove stale %s: %w", s.dir, e.Name(), err)
		}
	}
	return nil
}

func (s *Store) readTemp(dir string) ([]iofs.DirEntry, error) {
	d, err := s.root.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("artifact store %s: open %s: %w", s.dir, dir, err)
	}
	defer d.Close()
	entries, err := d.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("artifact store %s: read %s: %w", s.dir, dir, err)
	}
	return entries, nil
}

// sweepOrphans removes the files of dir named prefix* that no writer holds.
func (s *Store) sweepOrphans(dir, prefix string) error {
	entries, err := s.readTemp(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) && e.Type().IsRegular() {
			if err := s.removeOrphan(path.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeOrphan removes the temporary file name unless its writer holds its
// lock. The lock is held while removing, so no writer can be between its
// creation and its lock: a writer locks the file it created before writing.
func (s *Store) removeOrphan(name string) error {
	f, err := s.root.Open(name)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil // committed or removed meanwhile
	}
	if err != nil {
		return fmt.Errorf("artifact store %s: open %s: %w", s.dir, name, err)
	}
	defer f.Close()
	held, err := tempHeld(f)
	if err != nil {
		return fmt.Errorf("artifact store %s: lock %s: %w", s.dir, name, err)
	}
	if held {
		return nil
	}
	if err := s.root.Remove(name); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("artifact store %s: remove orphaned %s: %w", s.dir, name, err)
	}
	return nil
}

// resolve validates p and returns its clean form. It refuses the reserved
// temporary directory and any path with a symbolic link in any component, the
// last included. Missing components are fine (Put creates them, Get and List
// report them missing).
func (s *Store) resolve(p string) (string, error) {
	clean, err := artifact.CleanPath(p)
	if err != nil {
		return "", err
	}
	if clean == "" {
		return "", nil
	}
	elems := strings.Split(clean, "/")
	if strings.EqualFold(elems[0], TempDir) { // EqualFold: case-insensitive filesystems
		return "", fmt.Errorf("%w %q: %s is reserved for uploads in flight", artifact.ErrInvalidPath, p, TempDir)
	}
	for i := range elems {
		prefix := strings.Join(elems[:i+1], "/")
		fi, err := s.root.Lstat(prefix)
		if errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return clean, nil // nothing below a missing component can be a link
		}
		if err != nil {
			return "", s.pathErr(p, err)
		}
		if fi.Mode()&iofs.ModeSymlink != 0 {
			return "", fmt.Errorf("%w %q: %s is a symbolic link, which the store does not follow", artifact.ErrInvalidPath, p, prefix)
		}
	}
	return clean, nil
}

// pathErr maps an os.Root error to the package's sentinels. os.Root reports a
// name that would leave the root (a symlink swapped in after resolve checked,
// or one inside the tree pointing out) as "path escapes from parent".
func (s *Store) pathErr(p string, err error) error {
	var pe *iofs.PathError
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		return fmt.Errorf("%w: %s", artifact.ErrNotFound, p)
	case errors.Is(err, syscall.ELOOP), errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "escapes"):
		return fmt.Errorf("%w %q: it leads through a symbolic link", artifact.ErrInvalidPath, p)
	case errors.Is(err, syscall.ENAMETOOLONG):
		// CleanPath bounds names by Linux's limits; some filesystems (eCryptfs,
		// network mounts) have lower ones. Either way the name is the client's.
		return fmt.Errorf("%w %q: a name is too long for the store's filesystem", artifact.ErrInvalidPath, p)
	case errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR), errors.Is(err, syscall.EEXIST), errors.Is(err, syscall.ENOTEMPTY):
		return fmt.Errorf("%w: %s: %v", artifact.ErrConflict, p, err)
	}
	return fmt.Errorf("artifact store %s: %s: %w", s.dir, p, err)
}

func tempName(kind string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return path.Join(TempDir, kind+"-"+hex.EncodeToString(b[:]))
}

// ctxReader fails with the context's error once it is done, so a cancelled
// request stops an upload mid-stream.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// objectPath resolves p, which must name an object (not the root).
func (s *Store) objectPath(p string) (string, error) {
	clean, err := s.resolve(p)
	if err != nil {
		return "", err
	}
	if clean == "" {
		return "", fmt.Errorf("%w %q: the store root is a directory, not an object", artifact.ErrInvalidPath, p)
	}
	return clean, nil
}

// Put writes r to p atomically (see the package invariants).
func (s *Store) Put(ctx context.Context, p string, r io.Reader) error {
	clean, err := s.objectPath(p)
	if err != nil {
		return err
	}
	return s.writeObject(ctx, clean, p, func(w io.Writer) error {
		_, err := io.Copy(w, ctxReader{ctx, r})
		return err
	})
}

// writeObject fills a temporary file with fill, makes it durable and commits
// it as clean. On any failure the temporary file is removed and clean is as
// it was.
func (s *Store) writeObject(ctx context.Context, clean, p string, fill func(io.Writer) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tmp := tempName("put")
	f, err := s.createTemp(tmp)
	if err != nil {
		return err
	}
	// f stays open, holding its lock, until the rename is done: a sweeping
	// Open in another process must not take it for a killed upload's.
	committed := false
	defer func() {
		if !committed {
			_ = s.root.Remove(tmp)
		}
		_ = f.Close()
	}()
	if err := fill(f); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("put %s: %w", p, ctxErr)
		}
		return fmt.Errorf("put %s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("artifact store %s: sync %s: %w", s.dir, p, err)
	}
	return s.commit(ctx, tmp, clean, p, &committed)
}

// createTemp creates the temporary file name and locks it (see lockTemp).
func (s *Store) createTemp(name string) (*os.File, error) {
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("artifact store %s: create temporary file: %w", s.dir, err)
	}
	if err := lockTemp(f); err != nil {
		f.Close()
		_ = s.root.Remove(name)
		return nil, fmt.Errorf("artifact store %s: lock temporary file: %w", s.dir, err)
	}
	return f, nil
}

// commitRetryTime bounds how long commit keeps recreating a parent directory
// that concurrent Deletes keep removing.
const commitRetryTime = 5 * time.Second

// commit renames the finished temporary file tmp over clean and makes the rename
// durable. It sets *done once tmp no longer needs removing.
func (s *Store) commit(ctx context.Context, tmp, clean, p string, done *bool) error {
	parent := path.Dir(clean)
	// A Delete of an ancestor may remove the parent while MkdirAll builds it or
	// before Rename; the upload then recreates it. A client deleting the tree in
	// a tight loop can win many rounds in a row (a hundred were seen lost under
	// the race detector on 2 busy cores), so the upload keeps trying for a while
	// (commitRetryTime), backing off a little, rather than a number of times.
	giveUp := time.Now().Add(commitRetryTime)
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		retry := time.Now().Before(giveUp)
		if attempt > 5 {
			time.Sleep(time.Duration(min(attempt, 20)) * 50 * time.Microsecond)
		}
		if parent != "." {
			if err := s.root.MkdirAll(parent, 0o755); err != nil {
				if errors.Is(err, iofs.ErrNotExist) && retry {
					continue
				}
				return s.pathErr(p, err)
			}
		}
		// Check again just before the rename: a link planted while the body
		// streamed in must not be followed (os.Root would refuse one leading
		// outside anyway, and the rename replaces a link in the last component
		// rather than following it).
		if _, err := s.resolve(clean); err != nil {
			return err
		}
		if fi, err := s.root.Lstat(clean); err == nil && fi.IsDir() {
			return fmt.Errorf("%w: %s is a directory", artifact.ErrConflict, p)
		}
		err := s.root.Rename(tmp, clean)
		if err == nil {
			break
		}
		if !errors.Is(err, iofs.ErrNotExist) || !retry {
			return s.pathErr(p, err)
		}
	}
	*done = true
	return s.syncDir(parent)
}

// syncDir fsyncs a directory so a rename into it survives a crash. A directory
// that is gone (deleted by a concurrent Delete) has nothing left to sync.
func (s *Store) syncDir(dir string) error {
	d, err := s.root.Open(dir)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("artifact store %s: open %s: %w", s.dir, dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("artifact store %s: sync %s: %w", s.dir, dir, err)
	}
	return nil
}

// Get opens the regular file at p for streaming.
func (s *Store) Get(ctx context.Context, p string) (io.ReadCloser, error) {
	clean, err := s.objectPath(p)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// O_NOFOLLOW closes the gap between resolve and open for the last component.
	f, err := s.root.OpenFile(clean, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, syscall.ENOTDIR) {
			return nil, fmt.Errorf("%w: %s", artifact.ErrNotFound, p)
		}
		return nil, s.pathErr(p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("artifact store %s: stat %s: %w", s.dir, p, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: %s is a directory, not an object", artifact.ErrNotFound, p)
	}
	return f, nil
}

// List returns the direct children of dir: regular files and directories, sorted
// by path. Symbolic links and other special files are not listed (they cannot be
// read through the store); neither is the temporary directory.
func (s *Store) List(ctx context.Context, dir string) ([]artifact.FileInfo, error) {
	clean, err := s.resolve(dir)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name := clean
	if name == "" {
		name = "."
	}
	d, err := s.root.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, s.pathErr(dir, err)
	}
	defer d.Close()
	if fi, err := d.Stat(); err != nil || !fi.IsDir() {
		return nil, nil // a file has no children
	}
	entries, err := d.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("artifact store %s: list %s: %w", s.dir, dir, err)
	}
	out := make([]artifact.FileInfo, 0, len(entries))
	for _, e := range entries {
		if clean == "" && e.Name() == TempDir {
			continue
		}
		fi := artifact.FileInfo{Path: path.Join(clean, e.Name())}
		switch {
		case e.Type().IsDir():
			fi.IsDir = true
		case e.Type().IsRegular():
			info, err := e.Info()
			if err != nil {
				continue // removed while listing
			}
			fi.Size = info.Size()
		default:
			continue
		}
		out = append(out, fi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// Delete removes the file or tree at p. A tree is first moved into the temporary
// directory in one rename, so it disappears from readers at once.
func (s *Store) Delete(ctx context.Context, p string) error {
	clean, err := s.resolve(p)
	if err != nil {
		return err
	}
	if clean == "" {
		return fmt.Errorf("%w %q: refusing to delete the whole store", artifact.ErrInvalidPath, p)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fi, err := s.root.Lstat(clean)
	if errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return s.pathErr(p, err)
	}
	if !fi.IsDir() {
		if err := s.root.Remove(clean); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return s.pathErr(p, err)
		}
		return s.syncDir(path.Dir(clean))
	}
	trash := tempName("del")
	if err := s.root.Rename(clean, trash); err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return nil
		}
		return s.pathErr(p, err)
	}
	if err := s.syncDir(path.Dir(clean)); err != nil {
		return err
	}
	// An upload that resolved its directory before the rename may still land
	// in the moved tree while RemoveAll walks it ("directory not empty"): it
	// counts as written before the Delete, and the walk is repeated.
	err = s.root.RemoveAll(trash)
	for retries := 0; errors.Is(err, syscall.ENOTEMPTY) && retries < 10; retries++ {
		err = s.root.RemoveAll(trash)
	}
	if err != nil {
		return fmt.Errorf("artifact store %s: remove deleted tree %s: %w", s.dir, p, err)
	}
	return nil
}
