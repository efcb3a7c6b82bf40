package storeurl_test

import (
	"errors"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/atrium-ml/atrium/internal/platform/storeurl"
)

func TestLocalPath(t *testing.T) {
	for _, tc := range []struct {
		raw, want string
		bad       bool
	}{
		{raw: "sqlite:///abs/a.db", want: "/abs/a.db"},
		{raw: "sqlite://rel/a.db", want: "rel/a.db"},
		{raw: "duckdb:///abs/a%25b%23c%3Fd%20e", want: "/abs/a%b#c?d e"},
		{raw: "pebble://online?cache_mb=8", want: "online"},
		{raw: "pebble:rel/dir", want: "rel/dir"}, // opaque: taken as written
		{raw: "sqlite://:memory:", want: ":memory:"},
		{raw: "file:///srv/art", want: "/srv/art"},
		{raw: "file://localhost/srv/a%23rt", want: "/srv/a#rt"},
		{raw: "file://host/srv", bad: true},
		{raw: "file:rel/dir", bad: true},
		{raw: "duckdb:///abs/a#b", bad: true},
		{raw: "pebble://", bad: true},
	} {
		u, err := url.Parse(tc.raw)
		if err != nil {
			t.Fatalf("%s: %v", tc.raw, err)
		}
		got, err := storeurl.LocalPath(u)
		switch {
		case tc.bad && !errors.Is(err, storeurl.ErrPath):
			t.Errorf("LocalPath(%s) = %q, %v; want ErrPath", tc.raw, got, err)
		case !tc.bad && (err != nil || got != filepath.FromSlash(tc.want)):
			t.Errorf("LocalPath(%s) = %q, %v; want %q", tc.raw, got, err, tc.want)
		}
	}
}

// TestFormatRoundTrips: every path Format writes reads back the same,
// whatever URL syntax its directory names hold.
func TestFormatRoundTrips(t *testing.T) {
	for _, scheme := range storeurl.Local {
		for _, dir := range []string{"/a/b", "/a b/c%d", "/x#y/z?w", "/ünï/cödé"} {
			raw := storeurl.Format(scheme, dir, "")
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatalf("%s: %v", raw, err)
			}
			if got, err := storeurl.LocalPath(u); err != nil || got != filepath.FromSlash(dir) {
				t.Errorf("%s -> %q, %v; want %q", raw, got, err, dir)
			}
		}
	}
}

func TestResolve(t *testing.T) {
	base := "/repo"
	for _, tc := range []struct{ raw, want string }{
		{"sqlite://meta/a%20b.db", "sqlite:///repo/meta/a%20b.db"},
		{"pebble://on%20line?cache_mb=8", "pebble:///repo/on%20line?cache_mb=8"},
		{"duckdb:///abs", "duckdb:///abs"},
		{"sqlite://:memory:", "sqlite://:memory:"},
		{"file://localhost/srv", "file://localhost/srv"},
		{"redis://host:6379/0", "redis://host:6379/0"},
		{"duckdb://a#b", "duckdb://a#b"},
	} {
		if got := storeurl.Resolve(tc.raw, base); got != tc.want {
			t.Errorf("Resolve(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}
