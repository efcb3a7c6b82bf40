package pipeline_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/data/pipeline"
	"github.com/atrium-ml/atrium/internal/spec"
)

// engineOnly hides the engine's optional capabilities (SourceSpan).
type engineOnly struct{ offline.Engine }

func TestFarEnd(t *testing.T) {
	dir := filepath.Join("testdata", "farend")
	data, err := os.ReadFile(filepath.Join(dir, "features.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := spec.ParseFeatures("features.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := duckdb.Open(context.Background(), t.TempDir(), offline.Options{Features: f, BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	day := func(s string) time.Time {
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	now := time.Date(2026, 12, 4, 17, 0, 0, 0, time.UTC)
	tests := []struct {
		name           string
		eng            offline.Engine
		set            string
		start, end     string
		from, to       string // "" when no warning is expected
		dataEnd, today string
	}{
		// The data ends 2026-12-03 18:00: a plain set's last useful day is 12-03.
		{"plain far past the data", eng, "plain", "2026-01-01", "2099-01-01", "2026-12-04", "2099-01-01", "2026-12-03 18:00:00", ""},
		// Windows carry rows 7 days on: the first empty day is 12-11.
		{"windowed far past the data", eng, "windowed", "2026-11-01", "2027-03-01", "2026-12-11", "2027-03-01", "2026-12-03 18:00:00", ""},
		{"a month past the data is fine", eng, "plain", "2026-11-01", "2027-01-03", "", "", "", ""},
		{"32 empty days warn", eng, "plain", "2026-11-01", "2027-01-04", "2026-12-04", "2027-01-04", "2026-12-03 18:00:00", ""},
		{"short runs do not read the source", eng, "plain", "2099-01-01", "2099-01-31", "", "", "", ""},
		{"a start past the data: every day is empty", eng, "plain", "2030-01-01", "2030-03-01", "2030-01-01", "2030-03-01", "2026-12-03 18:00:00", ""},
		{"no span: measured from today", engineOnly{eng}, "plain", "2026-01-01", "2027-06-01", "2026-12-05", "2027-06-01", "", "2026-12-04"},
		{"no files: measured from today", eng, "no_files", "2026-01-01", "2027-06-01", "2026-12-05", "2027-06-01", "", "2026-12-04"},
		{"before today, no span", engineOnly{eng}, "plain", "2020-01-01", "2026-12-04", "", "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := pipeline.FarEnd(context.Background(), tc.eng, f, offline.RunRequest{Set: tc.set, Start: day(tc.start), End: day(tc.end)}, now)
			if tc.from == "" {
				if got != nil {
					t.Fatalf("FarEnd = %s, want no warning", got)
				}
				return
			}
			if got == nil {
				t.Fatalf("FarEnd = nil, want empty days %s..%s", tc.from, tc.to)
			}
			wantDays := int(day(tc.to).Sub(day(tc.from))/pipeline.Day) + 1
			if !got.From.Equal(day(tc.from)) || !got.To.Equal(day(tc.to)) || got.Days != wantDays {
				t.Errorf("FarEnd = %s..%s (%d days), want %s..%s (%d)", got.From, got.To, got.Days, tc.from, tc.to, wantDays)
			}
			if de := got.DataEnd.Format(time.DateTime); tc.dataEnd != "" && de != tc.dataEnd {
				t.Errorf("DataEnd = %s, want %s", de, tc.dataEnd)
			}
			if td := got.Today.Format(time.DateOnly); tc.today != "" && td != tc.today {
				t.Errorf("Today = %s, want %s", td, tc.today)
			}
			if got.String() == "" {
				t.Error("empty message")
			}
		})
	}
}
