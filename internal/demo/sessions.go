package demo

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"
)

// Session is one search: who searched, when, and the listings shown, in shown order.
type Session struct {
	ID   int64
	User *User
	At   time.Time
	// Impressions are in position order: Impressions[i].Position == i+1.
	Impressions []Impression
}

// Impression is one listing shown in a session, and what the user did with it.
type Impression struct {
	Listing  *Listing
	Version  int     // index into Listing.Prices in force at the session
	Rent     float64 // Listing.Prices[Version].Rent
	Position int     // 1-based
	Utility  float64 // the true utility U (utility.go)
	Clicked  bool
	ClickAt  time.Time // set when Clicked
	Visit    bool      // a visit request (implies Clicked)
	VisitAt  time.Time // set when Visit
}

// Label is the graded relevance: 0 shown only, 1 clicked, 2 visit requested.
func (im *Impression) Label() int {
	switch {
	case im.Visit:
		return 2
	case im.Clicked:
		return 1
	}
	return 0
}

// hourShares is the share of searches starting in each hour of the day (UTC).
var hourShares = func() []float64 {
	w := []float64{1, 0.6, 0.3, 0.2, 0.2, 0.3, 0.8, 2, 3, 4, 4.5, 4.5, 5, 5, 4.5, 4.5, 4.5, 5, 5.5, 6, 6.5, 6, 4.5, 2.5}
	var s float64
	for _, v := range w {
		s += v
	}
	for i := range w {
		w[i] /= s
	}
	return w
}()

// Day generates the sessions of day d (0-based) in time order and calls fn with
// each. The *Session and its Impressions are reused after fn returns: copy what you
// keep. The sessions of a day depend only on the seed, the market and d, so days
// can be generated in any order, in parallel, with the same result.
func (m *Market) Day(ctx context.Context, d int, fn func(*Session) error) error {
	if d < 0 || d >= m.Config.Days {
		return fmt.Errorf("day %d: want 0 <= day < %d", d, m.Config.Days)
	}
	r := newRand(m.Config.Seed, streamDays+uint64(d))
	dayStart := m.Config.Start.AddDate(0, 0, d)
	n := m.daySessions[d]
	starts := make([]time.Duration, n)
	for i := range starts {
		h := pickShares(r, hourShares)
		starts[i] = time.Duration(h)*time.Hour + time.Duration(r.Int64N(int64(time.Hour)))
		starts[i] = starts[i].Truncate(time.Second)
	}
	slices.Sort(starts)
	s := &Session{Impressions: make([]Impression, 0, m.Config.SessionSize)}
	seen := make(map[int]bool, m.Config.SessionSize)
	for i, off := range starts {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		s.ID = m.dayFirstID[d] + int64(i)
		s.At = dayStart.Add(off)
		s.User = m.pickUser(r, s.At)
		if s.User == nil {
			continue
		}
		m.search(r, s, seen)
		if len(s.Impressions) == 0 {
			continue
		}
		simulate(r, s)
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

// pickUser draws a user by activity among those signed up by t; nil when the
// draws keep hitting users who sign up later.
func (m *Market) pickUser(r *rand.Rand, t time.Time) *User {
	for range 50 {
		u := &m.Users[pick(r, m.userCum)]
		if !u.CreatedAt.After(t) {
			return u
		}
	}
	return nil
}

// search fills s.Impressions the way the marketplace's current ranker would: it
// retrieves published listings, mostly in the user's neighborhoods and mostly
// within 1.3x the budget, and orders them by a noisy estimate of utility. The
// logged order is therefore informative but far from perfect, as in production.
func (m *Market) search(r *rand.Rand, s *Session, seen map[int]bool) {
	clear(seen)
	s.Impressions = s.Impressions[:0]
	u := s.User
	want := m.Config.SessionSize
	for try := 0; try < 30*want && len(s.Impressions) < want; try++ {
		var n int
		if r.Float64() < 0.7 {
			n = u.Preferred[r.IntN(len(u.Preferred))]
		} else {
			n = pick(r, m.nbhdCum)
		}
		pool := m.byNeighborhood[n]
		if len(pool) == 0 {
			continue
		}
		li := pool[r.IntN(len(pool))]
		if seen[li] {
			continue
		}
		l := &m.Listings[li]
		rent, version, ok := l.RentAt(s.At)
		if !ok {
			continue
		}
		// Most searches filter by price; some users browse above their budget.
		if rent > 1.3*u.Budget && r.Float64() < 0.85 {
			continue
		}
		seen[li] = true
		s.Impressions = append(s.Impressions, Impression{
			Listing: l, Version: version, Rent: rent,
			Utility: Utility(FeaturesOf(u, l, rent)),
		})
	}
	// The logging ranker's score: 0.6·U plus Gumbel noise.
	score := make([]float64, len(s.Impressions))
	for i := range s.Impressions {
		score[i] = 0.6*s.Impressions[i].Utility - math.Log(-math.Log(1-r.Float64()))
	}
	sort.Stable(byScore{s.Impressions, score})
	for i := range s.Impressions {
		s.Impressions[i].Position = i + 1
	}
}

// simulate draws clicks and visit requests from the ground truth (utility.go).
// Clicks come seconds after the search, later for lower positions; visit
// requests minutes after the click.
func simulate(r *rand.Rand, s *Session) {
	for i := range s.Impressions {
		im := &s.Impressions[i]
		im.Clicked = r.Float64() < ClickProbability(im.Utility, im.Position)
		im.Visit = im.Clicked && r.Float64() < VisitProbability(im.Utility)
		im.ClickAt, im.VisitAt = time.Time{}, time.Time{}
		if im.Clicked {
			delay := 4 + 3*float64(im.Position) + 20*r.ExpFloat64()
			im.ClickAt = s.At.Add(time.Duration(delay * float64(time.Second))).Truncate(time.Second)
		}
		if im.Visit {
			delay := 30 + 150*r.ExpFloat64()
			im.VisitAt = im.ClickAt.Add(time.Duration(delay * float64(time.Second))).Truncate(time.Second)
		}
	}
}

// byScore sorts impressions by descending score; sort.Stable keeps retrieval
// order on (measure-zero) ties.
type byScore struct {
	ims   []Impression
	score []float64
}

func (b byScore) Len() int           { return len(b.ims) }
func (b byScore) Less(i, j int) bool { return b.score[i] > b.score[j] }
func (b byScore) Swap(i, j int) {
	b.ims[i], b.ims[j] = b.ims[j], b.ims[i]
	b.score[i], b.score[j] = b.score[j], b.score[i]
}

// LastSession returns a copy of the last session of the last day: what the
// demo asks the online store about, as a search-ranking service would.
func (m *Market) LastSession(ctx context.Context) (*Session, error) {
	for d := m.Config.Days - 1; d >= 0; d-- {
		var last *Session
		err := m.Day(ctx, d, func(s *Session) error {
			c := *s
			c.Impressions = slices.Clone(s.Impressions)
			last = &c
			return nil
		})
		if err != nil {
			return nil, err
		}
		if last != nil {
			return last, nil
		}
	}
	return nil, fmt.Errorf("no session in %d days", m.Config.Days)
}
