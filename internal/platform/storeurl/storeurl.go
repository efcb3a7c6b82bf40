// Package storeurl is the one spelling of embedded stores' URLs: sqlite://,
// duckdb://, pebble:// and file:// name a local path. Every opener of such a
// store reads its path with LocalPath, and atrium.yaml's relative paths are
// made absolute with Resolve, so that the same URL names the same directory
// everywhere.
//
// The path of a URL is its host and path, percent-decoded: sqlite:///abs/a%25b.db
// is /abs/a%b.db, sqlite://rel/a.db is rel/a.db. Format escapes a path so that
// '%', '#', '?' and spaces in directory names survive. file:// follows RFC 8089:
// its host is empty or localhost, and its path is absolute.
package storeurl

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"
)

// ErrPath reports a store URL that names no usable local path. Openers wrap
// it together with their own unsupported-URL sentinel.
var ErrPath = errors.New("bad local store path")

// Local lists the schemes whose URLs name a local path.
var Local = []string{"sqlite", "duckdb", "pebble", "file"}

// Format returns the URL of an embedded store at the path dir (absolute, or
// relative to the working directory), its path escaped; rawQuery is appended
// as given.
func Format(scheme, dir, rawQuery string) string {
	return (&url.URL{Scheme: scheme, Path: filepath.ToSlash(dir), RawQuery: rawQuery}).String()
}

// LocalPath returns the local path u names (in the OS's form). It refuses a
// fragment, which a raw '#' in a path starts and which would silently cut the
// path short, and an empty path; for file:// URLs also a host other than
// localhost and a relative path.
func LocalPath(u *url.URL) (string, error) {
	if u.Fragment != "" || u.RawFragment != "" {
		return "", fmt.Errorf("%w: '#' starts a URL fragment; write it %%23 in a path", ErrPath)
	}
	var p string
	switch {
	case u.Scheme == "file":
		if u.Host != "" && u.Host != "localhost" {
			return "", fmt.Errorf("%w: want file:///absolute/dir (host %q is not allowed; a relative path in atrium.yaml is resolved against the repository)", ErrPath, u.Host)
		}
		p = u.Path
		if u.Opaque != "" || !path.IsAbs(p) {
			return "", fmt.Errorf("%w: want file:///absolute/dir", ErrPath)
		}
	case u.Opaque != "":
		p = u.Opaque
	default:
		p = u.Host + u.Path
	}
	if p == "" {
		return "", fmt.Errorf("%w: empty path (want %s://path/to/store)", ErrPath, u.Scheme)
	}
	return filepath.FromSlash(p), nil
}

// Resolve makes the path of an embedded store's URL absolute against base
// (the repository). A relative path ("sqlite://meta/a%20b.db") is everything
// between "://" and '?', decoded as a URL path (meta/a b.db): url.Parse would
// take its first element for a host, where escapes are not allowed. Other
// URLs, absolute paths, :memory:, and URLs with a '#' or a bad escape are
// returned as they are, for their opener to use or report.
func Resolve(raw, base string) string {
	for _, scheme := range Local {
		rest, ok := strings.CutPrefix(raw, scheme+"://")
		if !ok {
			continue
		}
		pathPart, query, _ := strings.Cut(rest, "?")
		if pathPart == "" || strings.HasPrefix(pathPart, "/") || strings.HasPrefix(pathPart, ":memory:") ||
			strings.ContainsRune(rest, '#') || (scheme == "file" && strings.HasPrefix(pathPart, "localhost/")) {
			return raw
		}
		rel, err := url.PathUnescape(pathPart)
		if err != nil {
			return raw
		}
		return Format(scheme, filepath.Join(base, filepath.FromSlash(rel)), query)
	}
	return raw
}
