package demo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
)

// streamAttentive seeds the attentive labels of Evaluate, one stream per day.
const streamAttentive = 1_000_000

// A Ranker scores the impressions of a session: it sets scores[i] for
// s.Impressions[i]; higher ranks first. It is called from several goroutines.
type Ranker func(s *Session, scores []float64) error

// TruthRanker ranks by the true utility U: the best ranking in expectation.
func TruthRanker(s *Session, scores []float64) error {
	for i := range s.Impressions {
		scores[i] = s.Impressions[i].Utility
	}
	return nil
}

// LoggedRanker keeps the order the listings were shown in (the marketplace's
// current ranker).
func LoggedRanker(s *Session, scores []float64) error {
	for i := range s.Impressions {
		scores[i] = -float64(s.Impressions[i].Position)
	}
	return nil
}

// RandomRanker returns a ranker that orders listings at random, the same way for
// the same seed (a hash of seed, session and listing, so it is safe to call
// concurrently).
func RandomRanker(seed uint64) Ranker {
	return func(s *Session, scores []float64) error {
		for i := range s.Impressions {
			h := mix(seed ^ mix(uint64(s.ID)) ^ mix(mix(uint64(s.Impressions[i].Listing.ID))))
			scores[i] = float64(h>>11) / (1 << 53)
		}
		return nil
	}
}

// streamRowOrder keys RowOrder's hash apart from RandomRanker's.
const streamRowOrder = 0x5e551_0_0de5

// RowOrder returns the indexes of s.Impressions in the order the spines list
// them and Evaluate breaks tied scores in: a random order, fixed by seed and
// the session, not the order they were shown in. In the shown order, a model
// with few distinct scores (a shallow tree, a single tree) would inherit the
// logged ranking wherever it ties: NDCG and LightGBM's lambdarank break ties
// in row order, and the observed labels favour the shown order, so tuning and
// early stopping on such rows reward ties.
func RowOrder(seed uint64, s *Session, order []int) []int {
	order = order[:0]
	for i := range s.Impressions {
		order = append(order, i)
	}
	key := func(i int) uint64 {
		return mix(seed ^ streamRowOrder ^ mix(uint64(s.ID)) ^ mix(mix(mix(uint64(s.Impressions[i].Listing.ID)))))
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(key(a), key(b)) })
	return order
}

// mix is splitmix64's finalizer: a bijective hash of 64-bit values.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// NamedRanker pairs a ranker with the name Evaluate reports it under.
type NamedRanker struct {
	Name   string
	Ranker Ranker
}

// Baseline rankers: true utility, the logged order, and random.
func BaselineRankers(seed uint64) []NamedRanker {
	return []NamedRanker{{"true utility", TruthRanker}, {"logged order", LoggedRanker}, {"random", RandomRanker(seed)}}
}

// Evaluation is the mean NDCG@K of each ranker over a range of sessions, with
// LightGBM's conventions (ml.NDCG: gain 2^label - 1, discount 1/log2(2+rank),
// a session without clicks scores 1), ties in the spines' row order (RowOrder,
// random: not the shown order), against two sets of graded labels (0 shown,
// 1 clicked, 2 visit requested):
//
//   - Observed: the labels in the generated files. Clicks there depend on the
//     position the logging ranker gave, so the logged order is favoured: this is
//     what an offline evaluation on logs measures.
//   - Attentive: labels drawn again from the ground truth as if the user had
//     examined every listing (examination probability 1): relevance without
//     position bias. Ranking by true utility is the best ranking in expectation
//     here; a perfect score of 1 is out of reach because clicks are random.
type Evaluation struct {
	K         int
	Sessions  int64
	Rankers   []string  // names, in the order given
	Observed  []float64 // mean NDCG@K per ranker
	Attentive []float64
}

// Evaluate scores each ranker on the sessions of days [from, to).
func (m *Market) Evaluate(ctx context.Context, from, to, k int, rankers []NamedRanker) (Evaluation, error) {
	if from < 0 || to > m.Config.Days || from >= to {
		return Evaluation{}, fmt.Errorf("evaluate: days [%d, %d): want 0 <= from < to <= %d", from, to, m.Config.Days)
	}
	if k < 1 {
		return Evaluation{}, fmt.Errorf("evaluate: k %d: want >= 1", k)
	}
	ev := Evaluation{K: k, Observed: make([]float64, len(rankers)), Attentive: make([]float64, len(rankers))}
	for _, r := range rankers {
		ev.Rankers = append(ev.Rankers, r.Name)
	}
	// Per-day sums, added up in day order afterwards: floating-point addition is
	// not associative, and the result must not depend on which day ends first.
	days := make([]Evaluation, to-from)
	err := m.forDays(ctx, from, to, func(ctx context.Context, d int) error {
		r := newRand(m.Config.Seed, streamAttentive+uint64(d))
		day := &days[d-from]
		day.Observed, day.Attentive = make([]float64, len(rankers)), make([]float64, len(rankers))
		var observed, attentive, shownAttentive, scores, rowScores []float64
		var order []int
		err := m.Day(ctx, d, func(s *Session) error {
			observed, attentive = observed[:0], attentive[:0]
			// Labels are drawn in shown order (the stream's order), then
			// listed in row order with the scores.
			n := len(s.Impressions)
			shownAttentive = shownAttentive[:0]
			for i := range s.Impressions {
				im := &s.Impressions[i]
				label := 0.0
				if r.Float64() < sigmoid(im.Utility) {
					label = 1
					if r.Float64() < VisitProbability(im.Utility) {
						label = 2
					}
				}
				shownAttentive = append(shownAttentive, label)
			}
			order = RowOrder(m.Config.Seed, s, order)
			for _, i := range order {
				observed = append(observed, float64(s.Impressions[i].Label()))
				attentive = append(attentive, shownAttentive[i])
			}
			scores = append(scores[:0], make([]float64, n)...)
			rowScores = append(rowScores[:0], make([]float64, n)...)
			for j, rk := range rankers {
				if err := rk.Ranker(s, scores); err != nil {
					return fmt.Errorf("ranker %s, session %d: %w", rk.Name, s.ID, err)
				}
				for row, i := range order {
					rowScores[row] = scores[i]
				}
				group := []int{n}
				o, err1 := ml.NDCG(observed, rowScores, group, k, nil)
				a, err2 := ml.NDCG(attentive, rowScores, group, k, nil)
				if err := errors.Join(err1, err2); err != nil {
					return fmt.Errorf("session %d: %w", s.ID, err)
				}
				day.Observed[j] += o
				day.Attentive[j] += a
			}
			day.Sessions++
			return nil
		})
		return err
	})
	if err != nil {
		return Evaluation{}, err
	}
	for _, day := range days {
		ev.Sessions += day.Sessions
		for j := range rankers {
			ev.Observed[j] += day.Observed[j]
			ev.Attentive[j] += day.Attentive[j]
		}
	}
	if ev.Sessions > 0 {
		for j := range rankers {
			ev.Observed[j] /= float64(ev.Sessions)
			ev.Attentive[j] /= float64(ev.Sessions)
		}
	}
	return ev, nil
}
