package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/spec"
)

// SourceSpanner is an optional capability of an offline.Engine, found by type
// assertion: the event times of a set's source rows. Without it, FarEnd
// measures from today only.
type SourceSpanner interface {
	// SourceSpan returns the earliest and latest event time of the rows of the
	// set's source; ok is false when the source has no files or rows.
	SourceSpan(ctx context.Context, set string) (first, last time.Time, ok bool, err error)
}

// FarEndDays is how many empty trailing partitions a run may create before
// FarEnd warns: a month of days is an ordinary backfill margin, thousands are
// a mistyped --end.
const FarEndDays = 31

// EmptyTail is the trailing days of a run that can hold no feature rows.
type EmptyTail struct {
	Set      string
	From, To time.Time // first and last empty day (UTC midnight)
	Days     int
	// DataEnd is the last source event (zero when unknown); Window is the set's
	// largest window, which carries rows past it.
	DataEnd time.Time
	Window  spec.Duration
	// Today is set when the tail starts after today rather than after the data.
	Today time.Time
}

func (t *EmptyTail) String() string {
	why := fmt.Sprintf("they are after today (%s)", t.Today.Format(time.DateOnly))
	if t.Today.IsZero() {
		why = fmt.Sprintf("the source's last event is at %s", t.DataEnd.Format(time.DateTime))
		if t.Window > 0 {
			why += fmt.Sprintf(" and the largest window is %s", t.Window)
		}
	}
	return fmt.Sprintf("run %s: the %d days %s..%s will be empty partitions: %s; check --end",
		t.Set, t.Days, t.From.Format(time.DateOnly), t.To.Format(time.DateOnly), why)
}

// FarEnd returns the empty tail of a run when it is longer than FarEndDays,
// nil otherwise: the days after the last one that can hold a row, which is
// the day of the source's last event plus the set's largest window when the
// engine is a SourceSpanner that knows it, else today (now's UTC day). Only
// runs longer than FarEndDays read the source's span. It is advice, not a
// check: a failure to read the span is ignored (the run reports it).
func FarEnd(ctx context.Context, eng offline.Engine, f *spec.Features, req offline.RunRequest, now time.Time) *EmptyTail {
	fs := f.Set(req.Set)
	start, end := req.Start.UTC().Truncate(Day), req.End.UTC().Truncate(Day)
	if fs == nil || int(end.Sub(start)/Day)+1 <= FarEndDays {
		return nil
	}
	t := &EmptyTail{Set: req.Set, Window: fs.LargestWindow()}
	lastUseful := now.UTC().Truncate(Day)
	t.Today = lastUseful
	if sp, ok := eng.(SourceSpanner); ok {
		if _, last, found, err := sp.SourceSpan(ctx, req.Set); err == nil && found {
			t.DataEnd, t.Today = last.UTC(), time.Time{}
			// A row at the last event shows in windows up to one window later.
			lastUseful = last.UTC().Add(t.Window.D()).Truncate(Day)
		}
	}
	t.From = lastUseful.Add(Day)
	if t.From.Before(start) {
		t.From = start
	}
	t.To = end
	t.Days = int(t.To.Sub(t.From)/Day) + 1
	if t.Days <= FarEndDays {
		return nil
	}
	return t
}
