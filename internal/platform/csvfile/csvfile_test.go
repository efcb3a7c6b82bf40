package csvfile_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/atrium-ml/atrium/internal/platform/csvfile"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		file               string
		line, fields, want int // line 0: the file is consistent
	}{
		{"short.csv", 5, 2, 3},          // a blank line and a quoted delimiter before it
		{"long_semicolon.csv", 3, 4, 3}, // the header's delimiter is ';'
		{"ok.tsv", 0, 0, 0},
		{"quoted_newline.csv", 4, 2, 3}, // the quoted field spans lines 2-3
		{"header_only.csv", 0, 0, 0},
		{"empty.csv", 0, 0, 0},
		{"short.csv.gz", 3, 2, 3},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", tc.file)
			err := csvfile.Check(path)
			if tc.line == 0 {
				if err != nil {
					t.Fatalf("Check: %v, want nil", err)
				}
				return
			}
			var fe *csvfile.FieldCountError
			if !errors.As(err, &fe) {
				t.Fatalf("Check: %v, want a *FieldCountError", err)
			}
			want := csvfile.FieldCountError{File: path, Line: tc.line, Fields: tc.fields, Want: tc.want}
			if *fe != want {
				t.Errorf("got %+v, want %+v", *fe, want)
			}
		})
	}
	if err := csvfile.Check(filepath.Join("testdata", "missing.csv")); err == nil {
		t.Error("Check of a missing file: nil error")
	}
}

func TestFindValue(t *testing.T) {
	tests := []struct {
		file, column, value string
		line                int // 0: not found
	}{
		{"short.csv", "b", "x,y", 4},
		{"short.csv", "a", "7", 5},
		{"short.csv", "c", "7", 0},
		{"short.csv", "nope", "1", 0},
		{"quoted_newline.csv", "c", "3", 3}, // the field's own line, inside a multi-line row
	}
	for _, tc := range tests {
		t.Run(tc.file+"/"+tc.column+"="+tc.value, func(t *testing.T) {
			line, err := csvfile.FindValue(filepath.Join("testdata", tc.file), tc.column, tc.value)
			if tc.line == 0 {
				if !errors.Is(err, csvfile.ErrNotFound) {
					t.Errorf("FindValue: line %d, err %v; want ErrNotFound", line, err)
				}
				return
			}
			if err != nil || line != tc.line {
				t.Errorf("FindValue: line %d, err %v; want line %d", line, err, tc.line)
			}
		})
	}
}
