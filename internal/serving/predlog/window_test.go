package predlog

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// windowLog logs, over three hours from t0, 40 rank requests of 5 rows of
// version 1, 10 of version 2 and 10 shadow requests of version 2.
func windowLog(t *testing.T) string {
	t.Helper()
	w := openTest(t, Options{})
	for i := range 60 {
		version, route := "1", RouteRank
		switch {
		case i >= 50:
			version, route = "2", RouteShadow
		case i >= 40:
			version = "2"
		}
		r := rankRecord(fmt.Sprintf("q%02d", i), t0.Add(time.Duration(i)*3*time.Minute), version, 5)
		r.Route = route
		if !w.Log(r) {
			t.Fatalf("record %d dropped", i)
		}
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w.opts.Dir
}

func TestCounts(t *testing.T) {
	dir := windowLog(t)
	got, err := Counts(context.Background(), dir, "ranker", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * 3 * time.Minute).Truncate(time.Microsecond) }
	want := []VersionCount{
		{Version: "1", Route: RouteRank, Rows: 200, Estimated: 200, Newest: at(39)},
		{Version: "2", Route: RouteRank, Rows: 50, Estimated: 50, Newest: at(49)},
		{Version: "2", Route: RouteShadow, Rows: 50, Estimated: 50, Newest: at(59)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("counts =\n%+v\nwant\n%+v", got, want)
	}
	// The range bounds the rows, not only the files.
	got, err = Counts(context.Background(), dir, "ranker", at(10), at(20))
	if err != nil || len(got) != 1 || got[0].Rows != 50 {
		t.Errorf("counts of requests 10..19 = %+v, %v; want 50 rows of version 1", got, err)
	}
	// A log sampled at 1/4 estimates 4 rows served per row logged.
	sampled := openTest(t, Options{SampleRate: 0.25})
	for i := range 400 {
		sampled.Log(classRecord(fmt.Sprintf("s%d", i), t0))
	}
	if err := sampled.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err = Counts(context.Background(), sampled.opts.Dir, "", time.Time{}, time.Time{})
	if err != nil || len(got) != 1 || got[0].Rows < 100 || got[0].Rows > 300 || got[0].Estimated != 4*float64(got[0].Rows) {
		t.Errorf("counts of a log sampled at 0.25 = %+v, %v; want each of about 200 rows counted 4 times", got, err)
	}
	if _, err := Counts(context.Background(), dir, "nobody", time.Time{}, time.Time{}); !errorsIs(err, ErrNoPredictions) {
		t.Errorf("counts of an unknown model: %v, want ErrNoPredictions", err)
	}
}

func TestReadSample(t *testing.T) {
	dir := windowLog(t)
	ctx := context.Background()
	requests := func(rows []Row) map[string]int {
		out := map[string]int{}
		for _, r := range rows {
			out[r.RequestID]++
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		sel       Selection
		of        int64
		wantRows  int // exact when the window fits, else a bound checked below
		fits      bool
		versionOK func(Row) bool
	}{
		{"every row", Selection{Shadow: true}, 300, 300, true, func(Row) bool { return true }},
		{"no shadow by default", Selection{}, 250, 250, true, func(r Row) bool { return r.Route != RouteShadow }},
		{"one version", Selection{Version: "2"}, 50, 50, true, func(r Row) bool { return r.Version == "2" && r.Route == RouteRank }},
		{"version with its shadow rows", Selection{Version: "2", Shadow: true}, 100, 100, true, func(r Row) bool { return r.Version == "2" }},
		{"bound above the rows", Selection{Version: "1", MaxRows: 200}, 200, 200, true, func(r Row) bool { return r.Version == "1" }},
		{"drawn", Selection{Version: "1", MaxRows: 100}, 200, 100, false, func(r Row) bool { return r.Version == "1" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ReadSample(ctx, dir, "ranker", time.Time{}, time.Time{}, tc.sel)
			if err != nil {
				t.Fatal(err)
			}
			if s.Of != tc.of {
				t.Errorf("of = %d, want %d", s.Of, tc.of)
			}
			for _, r := range s.Rows {
				if !tc.versionOK(r) {
					t.Fatalf("row %+v not selected by %+v", r, tc.sel)
				}
			}
			if tc.fits {
				if len(s.Rows) != tc.wantRows {
					t.Errorf("%d rows, want %d", len(s.Rows), tc.wantRows)
				}
				return
			}
			// 40 requests of 5 rows, each kept with probability 1/2: the
			// draw keeps whole requests, a fair share of them, and the
			// same ones on every read.
			for id, n := range requests(s.Rows) {
				if n != 5 {
					t.Errorf("request %s: %d of its 5 rows", id, n)
				}
			}
			if n := len(s.Rows); n < 40 || n > 160 {
				t.Errorf("%d rows drawn of 200 for a bound of 100", n)
			}
			again, err := ReadSample(ctx, dir, "ranker", time.Time{}, time.Time{}, tc.sel)
			if err != nil || !reflect.DeepEqual(requests(again.Rows), requests(s.Rows)) {
				t.Errorf("a second read drew other requests (%v)", err)
			}
			for i := 1; i < len(s.Rows); i++ {
				if s.Rows[i].Time.Before(s.Rows[i-1].Time) {
					t.Fatalf("rows out of time order at %d", i)
				}
			}
		})
	}
}

func TestKnown(t *testing.T) {
	dir := windowLog(t)
	got, err := Known(context.Background(), dir, "ranker", time.Time{}, t0.Add(30*time.Minute), []string{"q00", "q09", "q10", "q59", "never", "it's"})
	if err != nil {
		t.Fatal(err)
	}
	// q10 is logged at t0+30m, outside [.., t0+30m).
	if want := map[string]bool{"q00": true, "q09": true}; !reflect.DeepEqual(got, want) {
		t.Errorf("known = %v, want %v", got, want)
	}
	got, err = Known(context.Background(), dir, "nobody", time.Time{}, time.Time{}, []string{"q00"})
	if err != nil || len(got) != 0 {
		t.Errorf("known of a model without a log = %v, %v; want none", got, err)
	}
}
