package tracking

import (
	"net/url"
	"strings"

	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// CheckURI applies the server's URI policy to a user-supplied location (an
// experiment's artifact_location, a model version's source). It rejects, with
// INVALID_PARAMETER_VALUE naming field:
//   - '..' path segments, also when percent-encoded once or several times
//     (%2e%2e, %252e%252e) or written with backslashes;
//   - NUL and other control characters, and fragments;
//   - local paths, absolute or relative, and file:// URIs (the server never
//     reads or writes its own filesystem on a client's say-so);
//   - schemes outside allowed, and host-addressed forms of allowed ones
//     (mlflow-artifacts://other-host/..., models://profile@host/...), which
//     would point the server or its clients at another host;
//   - the opaque form of allowed schemes (mlflow-artifacts:../x, with no '/'
//     after the colon), whose first path element hides from the '..' check.
//
// These are the path-traversal and scheme payloads of MLflow's published
// advisories (CVE-2023-1177, CVE-2023-2780, CVE-2023-6831, CVE-2024-1483 and kin).
func CheckURI(raw, field string, allowed ...string) error {
	bad := func(why string) error {
		return wire.Invalidf("Invalid value '%s' for parameter '%s' supplied: %s", raw, field, wire.Prose(why))
	}
	if err := checkTraversal(raw, field); err != nil {
		return err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad(err.Error())
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return bad("fragments are not allowed")
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme == "":
		return bad("local paths are not allowed; use one of the schemes " + schemeList(allowed))
	case scheme == "file":
		return bad("file:// locations are not allowed; use one of the schemes " + schemeList(allowed))
	case len(scheme) == 1:
		return bad("local paths with a drive letter are not allowed")
	}
	ok := false
	for _, a := range allowed {
		if scheme == a {
			ok = true
		}
	}
	if !ok {
		return bad("the '" + scheme + "' scheme is not allowed; use one of the schemes " + schemeList(allowed))
	}
	if u.Host != "" || u.User != nil {
		return bad("the '" + scheme + "' scheme may not name a host; write " + scheme + ":/<path>")
	}
	if u.Opaque != "" {
		// scheme:rest without a '/': its first segment is "scheme:rest", so a
		// '..' there ("mlflow-artifacts:..") escapes the segment check, and
		// the server would resolve the location outside its root.
		return bad("the path must start with '/'; write " + scheme + ":/<path>")
	}
	if u.RawQuery != "" || u.ForceQuery {
		return bad("query strings are not allowed")
	}
	return nil
}

// checkTraversal rejects control characters, backslashes and '..' segments in
// raw and in every percent-decoding of it.
func checkTraversal(raw, field string) error {
	bad := func(why string) error {
		return wire.Invalidf("Invalid value '%s' for parameter '%s' supplied: %s", raw, field, wire.Prose(why))
	}
	decoded := raw
	for i := 0; ; i++ {
		for _, c := range decoded {
			if c < 0x20 || c == 0x7f {
				return bad("control characters are not allowed")
			}
		}
		if strings.Contains(decoded, `\`) {
			return bad("backslashes are not allowed")
		}
		if hasDotDot(decoded) {
			return bad("relative path references ('..') are not allowed; provide an absolute location without them")
		}
		next, err := url.QueryUnescape(decoded)
		if err != nil {
			return bad("malformed percent-encoding")
		}
		if next == decoded {
			return nil
		}
		if i == 10 {
			return bad("too many levels of percent-encoding")
		}
		decoded = next
	}
}

// hasDotDot reports a ".." path segment (segments split on '/').
func hasDotDot(s string) bool {
	for _, seg := range strings.Split(s, "/") {
		if seg == ".." {
			return true
		}
	}
	return false
}

func schemeList(allowed []string) string {
	q := make([]string, len(allowed))
	for i, a := range allowed {
		q[i] = a + ":/"
	}
	return strings.Join(q, ", ")
}

// CheckArtifactLocation applies CheckURI to an experiment's artifact location:
// only the proxied scheme (mlflow-artifacts:/) and, when the store's artifact
// root uses another scheme, locations under that root are accepted.
func (s *Store) CheckArtifactLocation(loc string) error {
	if !strings.HasPrefix(s.root, "mlflow-artifacts:") && strings.HasPrefix(loc, s.root+"/") {
		return checkTraversal(loc, "artifact_location")
	}
	return CheckURI(loc, "artifact_location", "mlflow-artifacts")
}

// ProxiedPath returns the artifact-store path of a mlflow-artifacts:/ URI
// ("mlflow-artifacts:/1/abc/artifacts" -> "1/abc/artifacts"); ok is false for
// other schemes.
func ProxiedPath(uri string) (p string, ok bool) {
	rest, found := strings.CutPrefix(uri, "mlflow-artifacts:")
	if !found {
		return "", false
	}
	if strings.HasPrefix(rest, "//") {
		// mlflow-artifacts://host:port/path: the path after the authority.
		rest = rest[2:]
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			return "", true
		}
		rest = rest[i:]
	}
	return strings.TrimLeft(rest, "/"), true
}

// CheckSource applies CheckURI to a model version source: models:/, runs:/ and
// mlflow-artifacts:/ URIs, and locations under the store's own artifact root
// when that root is not the proxied scheme.
func (s *Store) CheckSource(src string) error {
	if !strings.HasPrefix(s.root, "mlflow-artifacts:") && strings.HasPrefix(src, s.root+"/") {
		return checkTraversal(src, "source")
	}
	return CheckURI(src, "source", "models", "runs", "mlflow-artifacts")
}

// WithinRoot reports whether uri lies inside root (both proxied or both under
// the same scheme), comparing whole path segments.
func WithinRoot(uri, root string) bool {
	if p, ok := ProxiedPath(uri); ok {
		r, ok := ProxiedPath(root)
		return ok && r != "" && (p == r || strings.HasPrefix(p, r+"/"))
	}
	root = strings.TrimRight(root, "/")
	return root != "" && (uri == root || strings.HasPrefix(uri, root+"/"))
}
