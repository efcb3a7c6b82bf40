package demo

import (
	"context"
	"errors"
	"fmt"

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
// ties in shown order, a session without clicks scores 1), against two sets of graded labels (0 shown,
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
		var observed, attentive, scores []float64
		err := m.Day(ctx, d, func(s *Session) error {
			observed, attentive = observed[:0], attentive[:0]
			for i := range s.Impressions {
				im := &s.Impressions[i]
				observed = append(observed, float64(im.Label()))
				label := 0.0
				if r.Float64() < sigmoid(im.Utility) {
					label = 1
					if r.Float64() < VisitProbability(im.Utility) {
						label = 2
					}
				}
				attentive = append(attentive, label)
			}
			scores = append(scores[:0], make([]float64, len(s.Impressions))...)
			for j, rk := range rankers {
				if err := rk.Ranker(s, scores); err != nil {
					return fmt.Errorf("ranker %s, session %d: %w", rk.Name, s.ID, err)
				}
				group := []int{len(scores)}
				o, err1 := ml.NDCG(observed, scores, group, k, nil)
				a, err2 := ml.NDCG(attentive, scores, group, k, nil)
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
