package demo

import (
	"fmt"
)

// CrossFeatures are the user × listing features of the personalized_ranker
// service: on-demand features (features/users.yaml) that `atrium historical`
// computes from the joined user and listing features, as the online API
// computes them at request time from the same values.
var CrossFeatures = []string{"rent_to_budget", "neighborhood_match"}

// NonFeatureColumns are the columns of a demo training set that are not model
// features: ids, the spine's time and position (the old ranker's output), the
// label, and the raw list of preferred neighborhoods (used through
// neighborhood_match).
var NonFeatureColumns = []string{"session_id", "listing_id", "user_id", SpineTimeColumn, "position", "label", "preferred_neighborhoods"}

// ScoreRanker ranks by scores looked up by (session id, listing id), such as
// a model's predictions on the sessions' impressions. A missing score is an
// error: the model must have scored every impression evaluated.
func ScoreRanker(scores map[[2]int64]float64) Ranker {
	return func(s *Session, out []float64) error {
		for i := range s.Impressions {
			v, ok := scores[[2]int64{s.ID, s.Impressions[i].Listing.ID}]
			if !ok {
				return fmt.Errorf("no score for listing %d", s.Impressions[i].Listing.ID)
			}
			out[i] = v
		}
		return nil
	}
}
