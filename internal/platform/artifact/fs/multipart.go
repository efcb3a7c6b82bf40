package fs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/atrium-ml/atrium/internal/platform/artifact"
)

// A multipart upload lives in <root>/.atrium-tmp/mpu-<id>/: a "target" file
// holding the clean destination path, and one file per part named
// "<number>.<etag>", where the ETag is the SHA-256 of the part (so a retried part
// with other bytes gets another name and Complete uses exactly the listed bytes).
// Abandoned uploads are swept like any temporary entry.

var _ artifact.Multipart = (*Store)(nil)

const uploadIDLen = 32 // hex characters

func uploadDir(id string) string { return path.Join(TempDir, "mpu-"+id) }

// checkUploadID accepts only ids this store could have made, so an id can never
// spell a path.
func checkUploadID(id string) error {
	if len(id) != uploadIDLen || strings.Trim(id, "0123456789abcdef") != "" {
		return fmt.Errorf("%w: multipart upload %q", artifact.ErrNotFound, id)
	}
	return nil
}

// CreateMultipart starts an upload to p.
func (s *Store) CreateMultipart(ctx context.Context, p string) (string, error) {
	clean, err := s.objectPath(p)
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	var b [uploadIDLen / 2]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	dir := uploadDir(id)
	if err := s.root.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("artifact store %s: create multipart upload: %w", s.dir, err)
	}
	if err := s.root.WriteFile(path.Join(dir, "target"), []byte(clean), 0o644); err != nil {
		_ = s.root.RemoveAll(dir)
		return "", fmt.Errorf("artifact store %s: create multipart upload: %w", s.dir, err)
	}
	return id, nil
}

// target returns the destination an upload was created for.
func (s *Store) target(id string) (string, error) {
	if err := checkUploadID(id); err != nil {
		return "", err
	}
	b, err := s.root.ReadFile(path.Join(uploadDir(id), "target"))
	if errors.Is(err, iofs.ErrNotExist) {
		return "", fmt.Errorf("%w: multipart upload %s (completed, aborted or never created)", artifact.ErrNotFound, id)
	}
	if err != nil {
		return "", fmt.Errorf("artifact store %s: multipart upload %s: %w", s.dir, id, err)
	}
	return string(b), nil
}

// PutPart stores part n of upload id.
func (s *Store) PutPart(ctx context.Context, id string, n int, r io.Reader) (string, error) {
	if n < 1 || n > artifact.MaxParts {
		return "", fmt.Errorf("%w: part number %d, want 1 to %d", artifact.ErrInvalidPath, n, artifact.MaxParts)
	}
	if _, err := s.target(id); err != nil {
		return "", err
	}
	dir := uploadDir(id)
	tmp := path.Join(dir, "tmp-"+strconv.Itoa(n)+"-"+randomHex())
	f, err := s.createTemp(tmp)
	if err != nil {
		return "", s.pathErr("multipart upload "+id, err)
	}
	// Closed (releasing its lock) after the rename: see writeObject.
	defer f.Close()
	defer func() { _ = s.root.Remove(tmp) }() // no-op after the rename
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), ctxReader{ctx, r})
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		return "", fmt.Errorf("multipart upload %s part %d: %w", id, n, err)
	}
	etag := hex.EncodeToString(h.Sum(nil))
	if err := s.root.Rename(tmp, path.Join(dir, strconv.Itoa(n)+"."+etag)); err != nil {
		return "", s.pathErr("multipart upload "+id, err)
	}
	return etag, nil
}

func randomHex() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// CompleteMultipart concatenates the parts into p and ends the upload.
func (s *Store) CompleteMultipart(ctx context.Context, p, id string, parts []artifact.Part) error {
	clean, err := s.resolve(p)
	if err != nil {
		return err
	}
	want, err := s.target(id)
	if err != nil {
		return err
	}
	if clean != want {
		return fmt.Errorf("%w %q: multipart upload %s was created for %q", artifact.ErrInvalidPath, p, id, want)
	}
	if len(parts) == 0 {
		return fmt.Errorf("%w: multipart upload %s: no parts listed", artifact.ErrInvalidPath, id)
	}
	for i, part := range parts {
		if i > 0 && part.Number <= parts[i-1].Number {
			return fmt.Errorf("%w: multipart upload %s: parts must be listed in ascending order of part number, %d follows %d", artifact.ErrInvalidPath, id, part.Number, parts[i-1].Number)
		}
	}
	dir := uploadDir(id)
	err = s.writeObject(ctx, clean, p, func(w io.Writer) error {
		for _, part := range parts {
			if err := s.appendPart(ctx, w, dir, id, part); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.root.RemoveAll(dir); err != nil {
		return fmt.Errorf("artifact store %s: clean up multipart upload %s: %w", s.dir, id, err)
	}
	return nil
}

func (s *Store) appendPart(ctx context.Context, out io.Writer, dir, id string, part artifact.Part) error {
	if part.Number < 1 || part.Number > artifact.MaxParts || len(part.ETag) != sha256.Size*2 || strings.Trim(part.ETag, "0123456789abcdef") != "" {
		return fmt.Errorf("%w: multipart upload %s: part %d with ETag %q was not uploaded", artifact.ErrInvalidPath, id, part.Number, part.ETag)
	}
	f, err := s.root.Open(path.Join(dir, strconv.Itoa(part.Number)+"."+part.ETag))
	if errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("%w: multipart upload %s: part %d with ETag %s was not uploaded", artifact.ErrInvalidPath, id, part.Number, part.ETag)
	}
	if err != nil {
		return fmt.Errorf("artifact store %s: multipart upload %s part %d: %w", s.dir, id, part.Number, err)
	}
	defer f.Close()
	if _, err := io.Copy(out, ctxReader{ctx, f}); err != nil {
		return fmt.Errorf("artifact store %s: multipart upload %s part %d: %w", s.dir, id, part.Number, err)
	}
	return nil
}

// AbortMultipart discards upload id.
func (s *Store) AbortMultipart(ctx context.Context, p, id string) error {
	clean, err := s.resolve(p)
	if err != nil {
		return err
	}
	want, err := s.target(id)
	if errors.Is(err, artifact.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if clean != want {
		return fmt.Errorf("%w %q: multipart upload %s was created for %q", artifact.ErrInvalidPath, p, id, want)
	}
	if err := s.root.RemoveAll(uploadDir(id)); err != nil {
		return fmt.Errorf("artifact store %s: abort multipart upload %s: %w", s.dir, id, err)
	}
	return nil
}
