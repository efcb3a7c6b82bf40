package demo

import (
	"math"
)

// The ground truth. A session shows a user a list of listings; for the listing at
// 1-based position p the user
//
//	examines it       with probability  E(p) = p^-0.8                 (position bias)
//	clicks it         with probability  E(p) * σ(U)                    (U: utility below)
//	requests a visit  with probability  σ(1.2·U − 0.5), given a click
//
// where σ is the logistic function and U, the utility of the listing to the user at
// the time of the search, is
//
//	U = −1.5
//	    + 1.0 · [listing's neighborhood is one of the user's preferred]
//	    − 4.0 · max(0, r − 1)          r = rent / budget: over budget hurts a lot
//	    + 0.8 · max(0, 1 − r)          under budget helps a little
//	    − 0.6 · |bedrooms − preferred bedrooms|
//	    + 0.8 · ln(area_m2 / typical area for its bedrooms)    typical = 22 + 24·bedrooms
//	    − 1.5 · ln(price_per_m2 / neighborhood median price_per_m2)   overpriced hurts
//	    + 0.7 · quality                (hidden: standard normal, not in any file)
//
// Graded relevance labels follow: 0 shown only, 1 clicked, 2 visit requested.
// Ranking a session's listings by U maximizes every position-free expected gain
// (click and visit probabilities both increase with U), so "ranking by true
// utility" is the ceiling a model can approach; everything but quality is
// observable in the generated files.
const (
	utilIntercept    = -1.5
	utilNeighborhood = 1.0
	utilOverBudget   = -4.0
	utilUnderBudget  = 0.8
	utilBedrooms     = -0.6
	utilArea         = 0.8
	utilOverpriced   = -1.5
	utilQuality      = 0.7

	// positionBias is η in E(p) = p^-η.
	positionBias = 0.8
	// visitSlope and visitIntercept shape σ(visitSlope·U + visitIntercept).
	visitSlope     = 1.2
	visitIntercept = -0.5
)

// Features are the inputs of the utility: a user and a listing as they stand at
// the time of a search.
type Features struct {
	Rent              float64
	AreaM2            float64
	Bedrooms          int
	Neighborhood      int // index into Neighborhoods
	Quality           float64
	Budget            float64
	PreferredBedrooms int
	NeighborhoodMatch bool // the neighborhood is one of the user's preferred
}

// FeaturesOf returns the utility inputs of user u and listing l at rent.
func FeaturesOf(u *User, l *Listing, rent float64) Features {
	return Features{
		Rent:              rent,
		AreaM2:            l.AreaM2,
		Bedrooms:          l.Bedrooms,
		Neighborhood:      l.Neighborhood,
		Quality:           l.Quality,
		Budget:            u.Budget,
		PreferredBedrooms: u.PreferredBedrooms,
		NeighborhoodMatch: u.Prefers(l.Neighborhood),
	}
}

// Utility is U, the true utility of the listing to the user (see the package's
// ground-truth comment above).
func Utility(f Features) float64 {
	r := f.Rent / f.Budget
	u := utilIntercept +
		utilOverBudget*math.Max(0, r-1) +
		utilUnderBudget*math.Max(0, 1-r) +
		utilBedrooms*math.Abs(float64(f.Bedrooms-f.PreferredBedrooms)) +
		utilArea*math.Log(f.AreaM2/typicalArea(f.Bedrooms)) +
		utilOverpriced*math.Log(f.Rent/f.AreaM2/Neighborhoods[f.Neighborhood].PricePerM2) +
		utilQuality*f.Quality
	if f.NeighborhoodMatch {
		u += utilNeighborhood
	}
	return u
}

// Examination is E(p), the probability that the user looks at the listing shown at
// 1-based position p.
func Examination(position int) float64 {
	return math.Pow(float64(position), -positionBias)
}

// ClickProbability is the probability of a click on a listing of utility u shown
// at 1-based position p.
func ClickProbability(u float64, position int) float64 {
	return Examination(position) * sigmoid(u)
}

// VisitProbability is the probability of a visit request after a click on a
// listing of utility u.
func VisitProbability(u float64) float64 {
	return sigmoid(visitSlope*u + visitIntercept)
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
