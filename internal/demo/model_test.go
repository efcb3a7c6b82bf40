package demo

import (
	"strings"
	"testing"
)

func TestScoreRanker(t *testing.T) {
	l1, l2 := &Listing{ID: 10}, &Listing{ID: 20}
	s := &Session{ID: 7, Impressions: []Impression{{Listing: l1}, {Listing: l2}}}
	out := make([]float64, 2)
	if err := ScoreRanker(map[[2]int64]float64{{7, 10}: 0.5, {7, 20}: 2})(s, out); err != nil || out[0] != 0.5 || out[1] != 2 {
		t.Errorf("ScoreRanker = %v, %v", out, err)
	}
	if err := ScoreRanker(map[[2]int64]float64{{7, 10}: 0.5})(s, out); err == nil || !strings.Contains(err.Error(), "listing 20") {
		t.Errorf("ScoreRanker with a missing score = %v", err)
	}
}
