package demo

import (
	"context"
	"fmt"
)

// CrossFeatures are the user × listing features WithCrossFeatures adds to a
// training set joined from the personalized_ranker service. A feature set
// describes one entity, so features of a pair are computed from the joined
// columns, the way a ranking service computes them at request time from the
// same online values.
var CrossFeatures = []string{"rent_to_budget", "neighborhood_match"}

// NonFeatureColumns are the columns of a demo training set that are not model
// features: ids, the spine's time and position (the old ranker's output), the
// label, and the raw list of preferred neighborhoods (used through
// neighborhood_match).
var NonFeatureColumns = []string{"session_id", "listing_id", "user_id", SpineTimeColumn, "position", "label", "preferred_neighborhoods"}

// WithCrossFeatures copies the training set in (CSV or Parquet, with the
// columns rent, budget, neighborhood and preferred_neighborhoods) to out
// (Parquet), in the same row order, adding rent_to_budget (rent / budget) and
// neighborhood_match (1 when the listing's neighborhood is one of the user's
// preferred, 0 when not, null when either is unknown).
func WithCrossFeatures(ctx context.Context, in, out string) error {
	var read string
	switch tableFormat(in) {
	case "csv":
		read = "read_csv(" + sqlString(in) + ")"
	case "parquet":
		read = "read_parquet(" + sqlString(in) + ")"
	default:
		return fmt.Errorf("cross features: %s: want a .csv or .parquet file", in)
	}
	if tableFormat(out) != "parquet" {
		return fmt.Errorf("cross features: %s: want a .parquet file", out)
	}
	query := fmt.Sprintf(`SELECT *,
			rent / NULLIF(budget, 0) AS rent_to_budget,
			CAST(list_contains(string_split(preferred_neighborhoods, '|'), neighborhood) AS INTEGER) AS neighborhood_match
		FROM %s`, read)
	if err := copyToParquet(ctx, query, out); err != nil {
		return fmt.Errorf("cross features: %w", err)
	}
	return nil
}

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
