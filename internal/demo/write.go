package demo

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"
)

// TimeLayout is how every timestamp is written: UTC, to the second, in the form
// DuckDB's CSV reader detects as TIMESTAMP.
const TimeLayout = "2006-01-02 15:04:05"

// Data file names under <dir>/data. Events are written one file per session day,
// events-YYYY-MM-DD.csv, which the project's glob data/events*.csv reads back.
const (
	ListingsFile = "listings.csv"
	UsersFile    = "users.csv"
	eventsLayout = "events-2006-01-02.csv"
)

// Column headers of the data files (the example project's sources read them).
const (
	listingsHeader = "listing_id,neighborhood,rent,area_m2,bedrooms,updated_at\n"
	usersHeader    = "user_id,budget,preferred_neighborhoods,preferred_bedrooms,created_at\n"
	eventsHeader   = "ts,event,listing_id,user_id,session_id,position\n"
)

// Event names in the events files.
const (
	EventImpression   = "impression"
	EventClick        = "click"
	EventVisitRequest = "visit_request"
)

// Summary counts what was generated.
type Summary struct {
	Listings    int64 // distinct listings
	ListingRows int64 // rows of listings.csv: one per price version
	Users       int64
	Sessions    int64
	Impressions int64
	Clicks      int64
	Visits      int64 // visit requests
	// Files are the paths written, relative to the directory given.
	Files []string
}

// Events is the number of event rows: impressions, clicks and visit requests.
func (s *Summary) Events() int64 { return s.Impressions + s.Clicks + s.Visits }

func (s *Summary) addSession(sess *Session) {
	s.Sessions++
	for i := range sess.Impressions {
		im := &sess.Impressions[i]
		s.Impressions++
		if im.Clicked {
			s.Clicks++
		}
		if im.Visit {
			s.Visits++
		}
	}
}

func (s *Summary) merge(o *Summary) {
	s.Sessions += o.Sessions
	s.Impressions += o.Impressions
	s.Clicks += o.Clicks
	s.Visits += o.Visits
}

// Progress is told how many events were just written; it may be called from
// several goroutines at once. nil is allowed.
type Progress func(events int64)

// WriteData writes data/listings.csv, data/users.csv and one
// data/events-YYYY-MM-DD.csv per session day under dir, days in parallel on
// Config.Workers goroutines. Each file is written to a temporary name and renamed
// into place, so a failed or cancelled run leaves whole files only. Events files of
// other days left by an earlier generation are removed, so that the glob
// data/events*.csv reads exactly this generation.
func (m *Market) WriteData(ctx context.Context, dir string, progress Progress) (Summary, error) {
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return Summary{}, fmt.Errorf("demo data: %w", err)
	}
	sum := Summary{Listings: int64(len(m.Listings)), Users: int64(len(m.Users))}
	if err := writeFile(filepath.Join(dataDir, ListingsFile), m.writeListings(&sum.ListingRows)); err != nil {
		return sum, err
	}
	if err := writeFile(filepath.Join(dataDir, UsersFile), m.writeUsers); err != nil {
		return sum, err
	}
	sum.Files = append(sum.Files, filepath.Join("data", ListingsFile), filepath.Join("data", UsersFile))

	days := make([]Summary, m.Config.Days)
	err := m.forEachDay(ctx, func(ctx context.Context, d int) error {
		name := m.Config.Start.AddDate(0, 0, d).Format(eventsLayout)
		return writeFile(filepath.Join(dataDir, name), func(w *bufio.Writer) error {
			return m.writeEvents(ctx, d, w, &days[d], progress)
		})
	})
	if err != nil {
		return sum, err
	}
	keep := map[string]bool{}
	for d := range days {
		sum.merge(&days[d])
		name := m.Config.Start.AddDate(0, 0, d).Format(eventsLayout)
		keep[name] = true
		sum.Files = append(sum.Files, filepath.Join("data", name))
	}
	if err := removeStaleEvents(dataDir, keep); err != nil {
		return sum, err
	}
	return sum, nil
}

// forEachDay runs fn for every day; see forDays.
func (m *Market) forEachDay(ctx context.Context, fn func(ctx context.Context, day int) error) error {
	return m.forDays(ctx, 0, m.Config.Days, fn)
}

// forDays runs fn for the days [from, to) on Config.Workers goroutines
// (GOMAXPROCS by default) and returns the first error, cancelling the rest.
func (m *Market) forDays(ctx context.Context, from, to int, fn func(ctx context.Context, day int) error) error {
	workers := m.Config.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for d := from; d < to; d++ {
		g.Go(func() error { return fn(ctx, d) })
	}
	return g.Wait()
}

var eventsFileRE = regexp.MustCompile(`^events-\d{4}-\d{2}-\d{2}\.csv$`)

func removeStaleEvents(dataDir string, keep map[string]bool) error {
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		return fmt.Errorf("demo data: %w", err)
	}
	for _, e := range entries {
		if eventsFileRE.MatchString(e.Name()) && !keep[e.Name()] {
			if err := os.Remove(filepath.Join(dataDir, e.Name())); err != nil {
				return fmt.Errorf("demo data: remove stale %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

func (m *Market) writeListings(rows *int64) func(w *bufio.Writer) error {
	return func(w *bufio.Writer) error {
		w.WriteString(listingsHeader)
		var row csvRow
		for i := range m.Listings {
			l := &m.Listings[i]
			for _, p := range l.Prices {
				row.int(l.ID).str(Neighborhoods[l.Neighborhood].Name).dec(p.Rent).dec(l.AreaM2).int(int64(l.Bedrooms)).time(p.At).writeTo(w)
				*rows++
			}
		}
		return nil
	}
}

func (m *Market) writeUsers(w *bufio.Writer) error {
	w.WriteString(usersHeader)
	var row csvRow
	var hoods []byte
	for i := range m.Users {
		u := &m.Users[i]
		hoods = hoods[:0]
		for j, n := range u.Preferred {
			if j > 0 {
				hoods = append(hoods, '|')
			}
			hoods = append(hoods, Neighborhoods[n].Name...)
		}
		row.int(u.ID).dec(u.Budget).str(string(hoods)).int(int64(u.PreferredBedrooms)).time(u.CreatedAt).writeTo(w)
	}
	return nil
}

// writeEvents writes day d's events, each session's in time order: its
// impressions at the search time, then clicks and visit requests as they happened.
func (m *Market) writeEvents(ctx context.Context, d int, w *bufio.Writer, sum *Summary, progress Progress) error {
	w.WriteString(eventsHeader)
	type event struct {
		at   time.Time
		name string
		im   *Impression
	}
	var later []event
	var r csvRow
	row := func(at time.Time, name string, s *Session, im *Impression) {
		r.time(at).str(name).int(im.Listing.ID).int(s.User.ID).int(s.ID).int(int64(im.Position)).writeTo(w)
	}
	return m.Day(ctx, d, func(s *Session) error {
		later = later[:0]
		for i := range s.Impressions {
			im := &s.Impressions[i]
			row(s.At, EventImpression, s, im)
			if im.Clicked {
				later = append(later, event{im.ClickAt, EventClick, im})
			}
			if im.Visit {
				later = append(later, event{im.VisitAt, EventVisitRequest, im})
			}
		}
		// Insertion sort: a session has a handful of clicks at most.
		for i := 1; i < len(later); i++ {
			for j := i; j > 0 && later[j].at.Before(later[j-1].at); j-- {
				later[j], later[j-1] = later[j-1], later[j]
			}
		}
		for _, e := range later {
			row(e.at, e.name, s, e.im)
		}
		before := sum.Events()
		sum.addSession(s)
		if progress != nil {
			progress(sum.Events() - before)
		}
		return nil
	})
}

// csvRow builds one CSV line in a reused buffer. Fields are never quoted: the
// generator writes no comma, quote or newline inside a field.
type csvRow struct {
	b      []byte
	fields int
}

func (r *csvRow) sep() {
	if r.fields > 0 {
		r.b = append(r.b, ',')
	}
	r.fields++
}

func (r *csvRow) int(v int64) *csvRow {
	r.sep()
	r.b = strconv.AppendInt(r.b, v, 10)
	return r
}

// dec writes v with at least one decimal ("2350.0"), so that CSV readers infer a
// floating-point column even when every value is whole.
func (r *csvRow) dec(v float64) *csvRow {
	r.sep()
	if v == float64(int64(v)) {
		r.b = strconv.AppendInt(r.b, int64(v), 10)
		r.b = append(r.b, ".0"...)
	} else {
		r.b = strconv.AppendFloat(r.b, v, 'f', -1, 64)
	}
	return r
}

// float writes v in the shortest form that reads back exactly.
func (r *csvRow) float(v float64) *csvRow {
	r.sep()
	r.b = strconv.AppendFloat(r.b, v, 'g', -1, 64)
	return r
}

// days writes a duration in days, to the minute (3 decimals).
func (r *csvRow) days(d time.Duration) *csvRow {
	r.sep()
	r.b = strconv.AppendFloat(r.b, d.Hours()/24, 'f', 3, 64)
	return r
}

func (r *csvRow) str(s string) *csvRow {
	r.sep()
	r.b = append(r.b, s...)
	return r
}

func (r *csvRow) time(t time.Time) *csvRow {
	r.sep()
	r.b = t.AppendFormat(r.b, TimeLayout)
	return r
}

// writeTo ends the line, writes it and resets the row. Write errors stick in w
// and surface at Flush.
func (r *csvRow) writeTo(w *bufio.Writer) {
	r.b = append(r.b, '\n')
	w.Write(r.b)
	r.b, r.fields = r.b[:0], 0
}

// writeFile writes path atomically: fill writes to a temporary file in the same
// directory, which is renamed over path only when everything succeeded.
func writeFile(path string, fill func(w *bufio.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	if err := fill(w); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
