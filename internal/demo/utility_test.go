package demo

import (
	"context"
	"math"
	"slices"
	"sort"
	"testing"
)

func TestUtilityByHand(t *testing.T) {
	// Pinheiros (index 0) asks 72 BRL/m2; a 2-bedroom's typical area is 70 m2.
	base := Features{Rent: 3000, AreaM2: 70, Bedrooms: 2, Neighborhood: 0, Budget: 3000, PreferredBedrooms: 2, NeighborhoodMatch: true}
	other := Features{Rent: 3600, AreaM2: 70, Bedrooms: 3, Neighborhood: 0, Quality: 0.5, Budget: 3000, PreferredBedrooms: 2}
	tests := []struct {
		name string
		f    Features
		want float64
	}{
		// −1.5 + 1 (match) − 1.5·ln(3000/70/72)
		{"at budget, preferred, underpriced", base, 0.2781906901227513},
		// −1.5 − 4·0.2 − 0.6·1 + 0.8·ln(70/94) − 1.5·ln(3600/70/72) + 0.7·0.5
		{"over budget, wrong bedrooms, small", other, -2.2811312772446963},
	}
	for _, tt := range tests {
		if got := Utility(tt.f); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("%s: Utility = %.15f, want %.15f", tt.name, got, tt.want)
		}
	}
}

func TestUtilityDirections(t *testing.T) {
	base := Features{Rent: 3000, AreaM2: 70, Bedrooms: 2, Neighborhood: 5, Budget: 3500, PreferredBedrooms: 2}
	u0 := Utility(base)
	tests := []struct {
		name   string
		change func(*Features)
		better bool
	}{
		{"preferred neighborhood", func(f *Features) { f.NeighborhoodMatch = true }, true},
		{"over budget", func(f *Features) { f.Budget = 2000 }, false},
		{"bigger budget", func(f *Features) { f.Budget = 5000 }, true},
		{"more bedrooms than wanted", func(f *Features) { f.Bedrooms = 4 }, false},
		{"more space", func(f *Features) { f.AreaM2 = 90 }, true},
		{"higher quality", func(f *Features) { f.Quality = 1 }, true},
		{"pricier neighborhood for the same rent", func(f *Features) { f.Neighborhood = 3 }, true},
	}
	for _, tt := range tests {
		f := base
		tt.change(&f)
		if u := Utility(f); (u > u0) != tt.better {
			t.Errorf("%s: utility %v -> %v, want better=%v", tt.name, u0, u, tt.better)
		}
	}
}

func TestExamination(t *testing.T) {
	if e := Examination(1); e != 1 {
		t.Errorf("Examination(1) = %v, want 1", e)
	}
	if e := Examination(2); math.Abs(e-0.5743491774985174) > 1e-15 {
		t.Errorf("Examination(2) = %v, want 2^-0.8", e)
	}
	for p := 2; p <= 50; p++ {
		if Examination(p) >= Examination(p-1) {
			t.Fatalf("Examination not decreasing at %d", p)
		}
	}
	if got, want := ClickProbability(0, 10), 0.15848931924611134*0.5; math.Abs(got-want) > 1e-15 {
		t.Errorf("ClickProbability(0, 10) = %v, want %v", got, want)
	}
}

// impressionsOf collects every impression of the small preset.
func impressionsOf(t *testing.T, size string) []Impression {
	t.Helper()
	cfg, _ := Preset(size)
	m, err := NewMarket(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var all []Impression
	for d := range cfg.Days {
		err := m.Day(context.Background(), d, func(s *Session) error {
			all = append(all, s.Impressions...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return all
}

// TestClicksFollowTheTruth checks the generated behaviour against the ground
// truth on the small preset (48,000 impressions; the seed is fixed, so these are
// exact checks of one sample, with margins of several standard errors).
func TestClicksFollowTheTruth(t *testing.T) {
	ims := impressionsOf(t, "small")

	// Clicks rise with utility: click rate per utility quintile strictly increases.
	sort.Slice(ims, func(i, j int) bool { return ims[i].Utility < ims[j].Utility })
	const q = 5
	prev := -1.0
	for b := range q {
		part := ims[b*len(ims)/q : (b+1)*len(ims)/q]
		clicks := 0
		for _, im := range part {
			if im.Clicked {
				clicks++
			}
		}
		rate := float64(clicks) / float64(len(part))
		if rate <= prev*1.2 {
			t.Errorf("utility quintile %d: click rate %.4f, want > 1.2x quintile %d's %.4f", b+1, rate, b, prev)
		}
		prev = rate
	}

	// Position bias: at position p, clicks / Σσ(U) estimates E(p).
	type acc struct{ clicks, expected, variance float64 }
	byPos := map[int]*acc{}
	var visits, visitExpected, clicks float64
	for _, im := range ims {
		a := byPos[im.Position]
		if a == nil {
			a = &acc{}
			byPos[im.Position] = a
		}
		pc := ClickProbability(im.Utility, im.Position)
		a.expected += sigmoid(im.Utility)
		a.variance += pc * (1 - pc)
		if im.Clicked {
			a.clicks++
			clicks++
			visitExpected += VisitProbability(im.Utility)
			if im.Visit {
				visits++
			}
		}
	}
	for _, p := range []int{1, 2, 5, 10, 20} {
		a := byPos[p]
		got, want := a.clicks/a.expected, Examination(p)
		if se := math.Sqrt(a.variance) / a.expected; math.Abs(got-want) > 4*se {
			t.Errorf("position %d: estimated examination %.3f, want %.3f ± %.3f", p, got, want, 4*se)
		}
	}
	if byPos[1].clicks < 3*byPos[10].clicks {
		t.Errorf("position 1 has %v clicks, position 10 %v: want a strong position bias", byPos[1].clicks, byPos[10].clicks)
	}
	if rel := math.Abs(visits-visitExpected) / visitExpected; rel > 0.1 {
		t.Errorf("%v visit requests after %v clicks, truth expects %.0f", visits, clicks, visitExpected)
	}
}

func TestEvaluateBaselines(t *testing.T) {
	cfg, _ := Preset("small")
	m, err := NewMarket(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A model with one score for every listing (a tree that never split):
	// its ties must not be broken in the shown order, which would give it the
	// logged order's position-biased NDCG.
	tied := NamedRanker{"tied", func(s *Session, scores []float64) error {
		for i := range scores {
			scores[i] = 1
		}
		return nil
	}}
	ev, err := m.Evaluate(context.Background(), 0, cfg.Days, 10, append(BaselineRankers(7), tied))
	if err != nil {
		t.Fatal(err)
	}
	truth, logged, random, tie := 0, 1, 2, 3
	if ev.Sessions < int64(cfg.Sessions)*9/10 {
		t.Errorf("evaluated %d sessions, want about %d", ev.Sessions, cfg.Sessions)
	}
	a, o := ev.Attentive, ev.Observed
	// Without position bias, the truth wins clearly, then the noisy logged order.
	if !(a[truth] > a[logged]+0.1 && a[logged] > a[random]+0.05) {
		t.Errorf("attentive NDCG@10: truth %.3f, logged %.3f, random %.3f; want truth > logged > random by margins", a[truth], a[logged], a[random])
	}
	// On observed (position-biased) labels the logged order is favoured, and both
	// beat random.
	if !(o[logged] > o[truth] && o[truth] > o[random]+0.1) {
		t.Errorf("observed NDCG@10: truth %.3f, logged %.3f, random %.3f; want logged > truth > random", o[truth], o[logged], o[random])
	}
	// Ties in a random order score as a random ranking does, far below the
	// shown order.
	if !(math.Abs(o[tie]-o[random]) < 0.02 && o[tie] < o[logged]-0.1) {
		t.Errorf("observed NDCG@10 of all-tied scores %.3f, random %.3f, logged %.3f; want about random's", o[tie], o[random], o[logged])
	}
	cfg.Workers = 1
	serial, _ := NewMarket(cfg)
	again, _ := serial.Evaluate(context.Background(), 0, cfg.Days, 10, append(BaselineRankers(7), tied))
	if !slices.Equal(again.Attentive, a) || !slices.Equal(again.Observed, o) {
		t.Error("Evaluate on one worker differs from Evaluate on several")
	}
	if _, err := m.Evaluate(context.Background(), 3, 3, 10, nil); err == nil {
		t.Error("Evaluate accepted an empty day range")
	}
}
