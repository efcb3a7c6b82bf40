package ml

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stepLog is a Progress that writes its calls as text.
type stepLog struct{ strings.Builder }

func (l *stepLog) Start(step, unit string, total int) {
	fmt.Fprintf(l, "start %s %s %d;", step, unit, total)
}
func (l *stepLog) Add(n int) { fmt.Fprintf(l, "add %d;", n) }
func (l *stepLog) Finish()   { l.WriteString("finish;") }

func TestLoadProgress(t *testing.T) {
	var l stepLog
	progress, finish := LoadProgress(&l, filepath.Join("dir", "train.csv"))
	progress(100, 250)
	progress(250, 250)
	finish()
	if want := "start loading train.csv rows 250;add 100;add 150;finish;"; l.String() != want {
		t.Errorf("calls %q, want %q", l.String(), want)
	}
	// No rows read: no step to finish.
	l.Reset()
	_, finish = LoadProgress(&l, "empty.csv")
	finish()
	if l.Len() != 0 {
		t.Errorf("calls %q without rows", l.String())
	}
	if progress, finish := LoadProgress(nil, "x.csv"); progress != nil {
		t.Error("a nil Progress gives a progress func")
	} else {
		finish()
	}
}

func TestCheckOutDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		filepath.Join(dir, "m.json"):       "",
		"m.json":                           "",
		filepath.Join(dir, "no", "m.json"): "directory " + filepath.Join(dir, "no") + " does not exist",
		filepath.Join(file, "m.json"):      "directory " + file + " does not exist",
	} {
		err := CheckOutDir(path)
		if got := fmt.Sprint(err); want == "" && err != nil || want != "" && got != want {
			t.Errorf("CheckOutDir(%s) = %v, want %q", path, err, want)
		}
	}
}
