package demo

import (
	"math"
	"math/rand/v2"
	"sort"
	"time"
)

// Neighborhood is a district of the city with its own price level and demand.
type Neighborhood struct {
	Name string
	// PricePerM2 is the median monthly rent per square metre, in BRL.
	PricePerM2 float64
	// Popularity weighs how many listings and searches the neighborhood gets.
	Popularity float64
}

// Neighborhoods of the generated city (São Paulo districts, with price levels of
// the right order). Names contain no comma, quote or '|': they are written to CSV
// unquoted and '|' separates a user's preferred neighborhoods.
var Neighborhoods = []Neighborhood{
	{"Pinheiros", 72, 1.4},
	{"Vila Madalena", 68, 1.1},
	{"Itaim Bibi", 85, 1.0},
	{"Jardins", 90, 0.9},
	{"Moema", 70, 1.0},
	{"Vila Mariana", 58, 1.3},
	{"Perdizes", 55, 1.0},
	{"Bela Vista", 52, 1.2},
	{"Consolação", 60, 1.1},
	{"Liberdade", 45, 0.9},
	{"Santana", 40, 0.8},
	{"Tatuapé", 42, 0.9},
	{"Butantã", 38, 0.7},
	{"Mooca", 40, 0.8},
	{"Lapa", 46, 0.8},
	{"Brooklin", 65, 0.8},
}

// Rent bounds: every generated rent lies in [MinRent, MaxRent] (the example
// project's check is between 100 and 100000).
const (
	MinRent = 400
	MaxRent = 60_000
)

// PriceVersion is the rent of a listing from At until the next version.
type PriceVersion struct {
	At   time.Time
	Rent float64
}

// Listing is a home for rent. Its rent changes over time (Prices); everything
// else is fixed.
type Listing struct {
	ID           int64
	Neighborhood int // index into Neighborhoods
	AreaM2       float64
	Bedrooms     int
	// Quality is hidden from every file (photos, light, condition): a standard
	// normal draw that raises utility. Models can only infer it, e.g. from the
	// listing's past click-through rate.
	Quality float64
	// Prices holds the rent history, oldest first; Prices[0].At is when the
	// listing was published.
	Prices []PriceVersion
}

// CreatedAt is when the listing was published.
func (l *Listing) CreatedAt() time.Time { return l.Prices[0].At }

// RentAt returns the rent in force at t and its version index: the latest version
// with At <= t. ok is false before the listing was published.
func (l *Listing) RentAt(t time.Time) (rent float64, version int, ok bool) {
	i := sort.Search(len(l.Prices), func(i int) bool { return l.Prices[i].At.After(t) })
	if i == 0 {
		return 0, 0, false
	}
	return l.Prices[i-1].Rent, i - 1, true
}

// User is someone searching for a home.
type User struct {
	ID     int64
	Budget float64 // monthly rent the user is willing to pay, BRL
	// Preferred holds indexes into Neighborhoods (1 to 3 of them).
	Preferred         []int
	PreferredBedrooms int
	CreatedAt         time.Time
	// activity weighs how often the user searches (hidden).
	activity float64
}

// Prefers reports whether neighborhood n is one of the user's preferred ones.
func (u *User) Prefers(n int) bool {
	for _, p := range u.Preferred {
		if p == n {
			return true
		}
	}
	return false
}

// Market is a generated marketplace: its listings and users, and the per-day
// session counts. Sessions are generated on demand by Day.
type Market struct {
	Config   Config
	Listings []Listing
	Users    []User

	byNeighborhood [][]int   // listing indexes per neighborhood
	nbhdCum        []float64 // cumulative neighborhood popularity
	userCum        []float64 // cumulative user activity
	daySessions    []int     // sessions per day
	dayFirstID     []int64   // first session ID of each day
}

// Stream numbers of the random sources: one per purpose, and one per day above
// streamDays, so that no two purposes ever share draws.
const (
	streamListings = 1
	streamUsers    = 2
	streamDays     = 1000
)

func newRand(seed uint64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, stream))
}

// typicalArea is the median floor area of a home with this many bedrooms.
func typicalArea(bedrooms int) float64 { return 22 + 24*float64(bedrooms) }

// bedroomShares is the share of listings with 0 (studio) to 4 bedrooms.
var bedroomShares = []float64{0.12, 0.33, 0.32, 0.17, 0.06}

// NewMarket generates the listings and users of cfg.
func NewMarket(cfg Config) (*Market, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Market{Config: cfg}
	m.nbhdCum = cumulative(len(Neighborhoods), func(i int) float64 { return Neighborhoods[i].Popularity })
	m.genListings()
	m.genUsers()
	m.userCum = cumulative(len(m.Users), func(i int) float64 { return m.Users[i].activity })
	m.daySessions = daySessions(cfg.Start, cfg.Days, cfg.Sessions)
	m.dayFirstID = make([]int64, cfg.Days)
	next := int64(1)
	for d, n := range m.daySessions {
		m.dayFirstID[d] = next
		next += int64(n)
	}
	return m, nil
}

func (m *Market) genListings() {
	cfg := m.Config
	r := newRand(cfg.Seed, streamListings)
	end := cfg.End()
	m.Listings = make([]Listing, cfg.Listings)
	m.byNeighborhood = make([][]int, len(Neighborhoods))
	for i := range m.Listings {
		l := &m.Listings[i]
		l.ID = int64(i + 1)
		l.Neighborhood = pick(r, m.nbhdCum)
		l.Bedrooms = pickShares(r, bedroomShares)
		l.AreaM2 = math.Max(15, math.Round(typicalArea(l.Bedrooms)*math.Exp(0.18*r.NormFloat64())))
		l.Quality = r.NormFloat64()
		// Rent follows the neighborhood's price per m2 and the area; better homes
		// ask a bit more, and owners misprice (the noise term).
		rent := Neighborhoods[l.Neighborhood].PricePerM2 * l.AreaM2 * math.Exp(0.12*l.Quality+0.10*r.NormFloat64())
		// 80% were published in the half year before the sessions start, the rest
		// during the session range.
		var created time.Time
		if r.Float64() < 0.8 {
			created = cfg.Start.Add(-time.Duration(r.Int64N(int64(180 * 24 * time.Hour))))
		} else {
			created = cfg.Start.Add(time.Duration(r.Int64N(int64(end.Sub(cfg.Start)))))
		}
		created = created.Truncate(time.Second)
		l.Prices = append(l.Prices, PriceVersion{At: created, Rent: roundRent(rent)})
		// Price updates: about one a month, mostly cuts (a listing that does not
		// rent gets cheaper).
		for t := created; ; {
			t = t.Add(time.Duration(r.ExpFloat64() * float64(30*24*time.Hour))).Truncate(time.Second)
			if !t.Before(end) {
				break
			}
			rent *= math.Exp(-0.03 + 0.05*r.NormFloat64())
			if rr := roundRent(rent); rr != l.Prices[len(l.Prices)-1].Rent {
				l.Prices = append(l.Prices, PriceVersion{At: t, Rent: rr})
			}
		}
		m.byNeighborhood[l.Neighborhood] = append(m.byNeighborhood[l.Neighborhood], i)
	}
}

func (m *Market) genUsers() {
	cfg := m.Config
	r := newRand(cfg.Seed, streamUsers)
	end := cfg.End()
	m.Users = make([]User, cfg.Users)
	for i := range m.Users {
		u := &m.Users[i]
		u.ID = int64(i + 1)
		u.Budget = math.Min(MaxRent, math.Max(800, math.Round(3200*math.Exp(0.45*r.NormFloat64())/100)*100))
		// Richer users want more bedrooms.
		shift := math.Log(u.Budget/3200) * 2.2
		u.PreferredBedrooms = int(math.Min(4, math.Max(0, math.Round(1.6+shift+0.7*r.NormFloat64()))))
		// Preferred neighborhoods: popular ones the user can afford are likelier.
		want := typicalArea(u.PreferredBedrooms)
		cum := cumulative(len(Neighborhoods), func(n int) float64 {
			cost := Neighborhoods[n].PricePerM2 * want
			return Neighborhoods[n].Popularity * math.Exp(-2*math.Max(0, cost/u.Budget-1))
		})
		k := 1 + pickShares(r, []float64{0.45, 0.35, 0.20})
		for len(u.Preferred) < k {
			if n := pick(r, cum); !u.Prefers(n) {
				u.Preferred = append(u.Preferred, n)
			}
		}
		sort.Ints(u.Preferred)
		if r.Float64() < 0.7 {
			u.CreatedAt = cfg.Start.Add(-time.Duration(r.Int64N(int64(365 * 24 * time.Hour))))
		} else {
			u.CreatedAt = cfg.Start.Add(time.Duration(r.Int64N(int64(end.Sub(cfg.Start)))))
		}
		u.CreatedAt = u.CreatedAt.Truncate(time.Second)
		u.activity = math.Exp(r.NormFloat64())
	}
}

// roundRent rounds to 10 BRL within [MinRent, MaxRent].
func roundRent(r float64) float64 {
	return math.Min(MaxRent, math.Max(MinRent, math.Round(r/10)*10))
}

// cumulative returns the running sums of w(0..n-1), for pick.
func cumulative(n int, w func(int) float64) []float64 {
	cum := make([]float64, n)
	var s float64
	for i := range cum {
		s += w(i)
		cum[i] = s
	}
	return cum
}

// pick draws an index with probability proportional to its weight, given the
// cumulative weights.
func pick(r *rand.Rand, cum []float64) int {
	x := r.Float64() * cum[len(cum)-1]
	return min(sort.SearchFloat64s(cum, x), len(cum)-1)
}

// pickShares draws an index from shares that sum to about 1.
func pickShares(r *rand.Rand, shares []float64) int {
	x := r.Float64()
	for i, s := range shares {
		if x < s {
			return i
		}
		x -= s
	}
	return len(shares) - 1
}

// ProbeListing returns a listing published during the session range whose rent
// changed afterwards, also during the range: the demo's point-in-time example
// (before publication a join must find nothing; then the first rent; after the
// change the new one). nil when there is none.
func (m *Market) ProbeListing() *Listing {
	end := m.Config.End()
	for i := range m.Listings {
		l := &m.Listings[i]
		if len(l.Prices) >= 2 && !l.Prices[0].At.Before(m.Config.Start) && l.Prices[1].At.Add(time.Minute).Before(end) {
			return l
		}
	}
	return nil
}
