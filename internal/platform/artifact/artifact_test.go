package artifact

import (
	"errors"
	"strings"
	"testing"
)

// longPath is a path of exactly n bytes made of segments of at most 255 bytes.
func longPath(n int) string {
	seg := strings.Repeat("s", 254)
	var b strings.Builder
	for b.Len()+len(seg)+1 < n {
		b.WriteString(seg + "/")
	}
	b.WriteString(strings.Repeat("t", n-b.Len()))
	return b.String()
}

func TestCleanPath(t *testing.T) {
	ok := []struct{ in, want string }{
		{"", ""}, {".", ""}, {"a", "a"}, {"a/b/c.txt", "a/b/c.txt"}, {"a//b/", "a/b"}, {"./a/./b", "a/b"},
		{"model/MLmodel", "model/MLmodel"}, {"dir with space/f", "dir with space/f"},
		{strings.Repeat("n", 255), strings.Repeat("n", 255)}, {"a/" + strings.Repeat("\u00e9", 127) + "z", "a/" + strings.Repeat("\u00e9", 127) + "z"},
		{longPath(MaxPathBytes), longPath(MaxPathBytes)},
	}
	for _, tt := range ok {
		got, err := CleanPath(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("CleanPath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	bad := []string{
		"..", "../etc/passwd", "a/../../b", "a/..", "/etc/passwd", "//host/share",
		"%2e%2e/etc", "a/%2e%2e/b", "%2E%2E%2Fetc", "a%2fb", "%00", "a\x00b", "a\nb",
		`..\windows`, `a\b`, "file:///etc/passwd", "file:x", "s3://bucket/k", "C:/x", "http://h/p",
		"%252e%252e/etc", "a/%252e%252e%252fb", "100%", "a#/../../etc", "#frag", "a\x7fb", "\xc0\xae\xc0\xae/x",
		"mlflow-artifacts:/1/../../etc", "..%2f..%2fetc", "a/..%00/b",
		strings.Repeat("n", 256), "a/" + strings.Repeat("\u00e9", 128), longPath(MaxPathBytes + 1),
	}
	for _, in := range bad {
		if got, err := CleanPath(in); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("CleanPath(%.80q) = %.80q, %v; want ErrInvalidPath", in, got, err)
		}
	}
	// Messages about long paths stay short.
	if _, err := CleanPath(longPath(10000)); err == nil || len(err.Error()) > 200 {
		t.Errorf("CleanPath of 10,000 bytes = %.300v, want a short ErrInvalidPath", err)
	}
}
