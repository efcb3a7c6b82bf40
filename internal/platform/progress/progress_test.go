package progress

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestSilentWhenNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, 100, "materialize", "keys")
	b.Add(50)
	b.Finish()
	if buf.Len() != 0 || b != nil {
		t.Fatalf("wrote %q to a non-terminal writer", buf.String())
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if b := New(f, 10, "x", "rows"); b != nil {
		t.Fatal("a regular file is not a terminal, want a silent bar")
	}
}
