package ml

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadNamesTheLineWithTheWrongFieldCount: a CSV row with too few or too
// many fields is reported as that line and its count, not as a missing label
// (DuckDB's sniffer reads such a file as one column) nor as DuckDB's message.
func TestLoadNamesTheLineWithTheWrongFieldCount(t *testing.T) {
	var late strings.Builder
	late.WriteString("x1,x2,y\n")
	const rows = 30000 // past the rows DuckDB's sniffer samples
	for i := range rows {
		fmt.Fprintf(&late, "%d,%d,%d\n", i, i%7, i%2)
	}
	late.WriteString("1,2\n")
	latePath := filepath.Join(t.TempDir(), "late_short_row.csv")
	if err := os.WriteFile(latePath, []byte(late.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want string // "" when the file loads
	}{
		{filepath.Join("testdata", "shape", "short_row.csv"), "line 4 has 2 fields, but the header has 3"},
		{filepath.Join("testdata", "shape", "long_row.csv"), "line 4 has 4 fields, but the header has 3"},
		{filepath.Join("testdata", "shape", "semicolon_short.csv"), "line 4 has 2 fields, but the header has 3"},
		{latePath, fmt.Sprintf("line %d has 2 fields, but the header has 3", rows+2)},
		{filepath.Join("testdata", "shape", "quoted_delimiter.csv"), ""},
	}
	for _, tc := range tests {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			_, err := Load(context.Background(), tc.path, LoadOptions{Label: "y", Categorical: []string{"x2"}})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			var de *DataError
			if !errors.As(err, &de) || de.File != tc.path || !strings.Contains(de.Msg, tc.want) {
				t.Fatalf("Load: %v; want a DataError for %s containing %q", err, tc.path, tc.want)
			}
			if strings.Contains(err.Error(), "CSV Error") || strings.Contains(err.Error(), "label column not found") {
				t.Errorf("Load: %v; shows DuckDB's text or a consequence, not the cause", err)
			}
		})
	}
}
