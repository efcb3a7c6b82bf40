package train

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/spec"
)

// leakageSet is a dataset of n query groups of 1-9 rows over 60 days; with
// spread, a group's rows lie up to 3 days apart (so some straddle the time
// cuts), otherwise they share one time. It returns the group of every row.
func leakageSet(seed uint64, groups bool, spread bool) (*ml.Dataset, []int64, []int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	ds := &ml.Dataset{Columns: []ml.Column{{Name: "x"}}}
	var times []int64
	var groupOf []int
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for g := range 400 {
		size := 1
		if groups {
			size = 1 + rng.IntN(9)
			ds.Groups = append(ds.Groups, size)
		}
		base := t0.Add(time.Duration(rng.Int64N(int64(60 * 24 * time.Hour))))
		for range size {
			at := base
			if spread {
				at = at.Add(time.Duration(rng.Int64N(int64(72 * time.Hour))))
			}
			times = append(times, at.UnixNano())
			ds.Columns[0].Values = append(ds.Columns[0].Values, rng.Float32())
			ds.Label = append(ds.Label, float64(rng.IntN(2)))
			groupOf = append(groupOf, g)
		}
	}
	// Groups come in time order of their first row, as a spine would have
	// them; the test only needs rows of one group to be adjacent.
	return ds, times, groupOf
}

func TestSplitsNoLeakage(t *testing.T) {
	for _, c := range []struct {
		name   string
		split  spec.TrainingSplit
		groups bool
		spread bool
	}{
		{"time, groups at one time", spec.TrainingSplit{By: spec.SplitByTime, ValidSpan: spec.Duration(7 * 24 * time.Hour), TestSpan: spec.Duration(7 * 24 * time.Hour)}, true, false},
		{"time, groups spanning days", spec.TrainingSplit{By: spec.SplitByTime, ValidSpan: spec.Duration(7 * 24 * time.Hour), TestSpan: spec.Duration(5 * 24 * time.Hour)}, true, true},
		{"time, rows", spec.TrainingSplit{By: spec.SplitByTime, ValidSpan: spec.Duration(10 * 24 * time.Hour), TestSpan: spec.Duration(3 * 24 * time.Hour)}, false, true},
		{"random, groups", spec.TrainingSplit{By: spec.SplitByRandom, Valid: 0.2, Test: 0.1, Seed: 1}, true, true},
		{"random, rows", spec.TrainingSplit{By: spec.SplitByRandom, Valid: 0.2, Test: 0.2, Seed: 5}, false, false},
		{"kfold, groups", spec.TrainingSplit{By: spec.SplitByKFold, KFold: 5, Test: 0.2, Seed: 2}, true, true},
		{"kfold, rows", spec.TrainingSplit{By: spec.SplitByKFold, KFold: 3, Test: 0.1, Seed: 2}, false, false},
	} {
		for seed := range uint64(5) {
			t.Run(fmt.Sprintf("%s/seed %d", c.name, seed), func(t *testing.T) {
				ds, times, groupOf := leakageSet(seed, c.groups, c.spread)
				objective := "binary"
				if c.groups {
					objective = "lambdarank"
				}
				tr := &spec.Training{Split: c.split, Model: spec.TrainingModel{Objective: objective}}
				s, err := split(tr, ds, times)
				if err != nil {
					t.Fatal(err)
				}
				parts := map[string][]int{"train": s.Train, "valid": s.Valid, "test": s.Test}
				for i, f := range s.Folds {
					parts[fmt.Sprintf("fold %d train", i)] = f.Train
					parts[fmt.Sprintf("fold %d valid", i)] = f.Valid
				}
				for name, rows := range parts {
					if !slices.IsSorted(rows) {
						t.Errorf("%s rows are not sorted", name)
					}
				}
				// No group in two parts (folds: train and valid of one fold;
				// the test part against every fold).
				checkDisjoint(t, groupOf, "train", s.Train, "valid", s.Valid)
				checkDisjoint(t, groupOf, "train", s.Train, "test", s.Test)
				checkDisjoint(t, groupOf, "valid", s.Valid, "test", s.Test)
				for i, f := range s.Folds {
					checkDisjoint(t, groupOf, "fold train", f.Train, "fold valid", f.Valid)
					checkDisjoint(t, groupOf, "fold train", f.Train, "test", s.Test)
					checkDisjoint(t, groupOf, "fold valid", f.Valid, "test", s.Test)
					if n := len(f.Train) + len(f.Valid) + len(s.Test); n != ds.NumRows() {
						t.Errorf("fold %d: %d train + %d valid + %d test rows, want all %d", i, len(f.Train), len(f.Valid), len(s.Test), ds.NumRows())
					}
				}
				if s.Folds == nil {
					if n := len(s.Train) + len(s.Valid) + len(s.Test) + s.Dropped; n != ds.NumRows() {
						t.Errorf("%d + %d + %d rows + %d dropped, want all %d", len(s.Train), len(s.Valid), len(s.Test), s.Dropped, ds.NumRows())
					}
				}
				if c.split.By != spec.SplitByTime {
					return
				}
				// Every valid time after every train time, every test time
				// after every valid time.
				latest := func(rows []int) int64 { return slices.Max(pick(times, rows)) }
				earliest := func(rows []int) int64 { return slices.Min(pick(times, rows)) }
				if latest(s.Train) >= earliest(s.Valid) || latest(s.Valid) >= earliest(s.Test) {
					t.Errorf("time order broken: train until %v, valid %v..%v, test from %v",
						time.Unix(0, latest(s.Train)), time.Unix(0, earliest(s.Valid)), time.Unix(0, latest(s.Valid)), time.Unix(0, earliest(s.Test)))
				}
				if earliest(s.Test) <= s.TestFrom.UnixNano() || latest(s.Test) != slices.Max(times) {
					t.Errorf("test rows from %v, want after %v up to the last time", time.Unix(0, earliest(s.Test)), s.TestFrom)
				}
				if c.spread && c.groups && s.Dropped == 0 {
					t.Errorf("no group straddles a cut: the case does not test dropping")
				}
			})
		}
	}
}

func pick(xs []int64, rows []int) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = xs[r]
	}
	return out
}

func checkDisjoint(t *testing.T, groupOf []int, an string, a []int, bn string, b []int) {
	t.Helper()
	in := map[int]bool{}
	for _, r := range a {
		in[groupOf[r]] = true
	}
	for _, r := range b {
		if in[groupOf[r]] {
			t.Fatalf("group %d is in %s and %s", groupOf[r], an, bn)
		}
	}
}

// TestSplitEmpty checks that a split leaving a part empty is a spec error.
func TestSplitEmpty(t *testing.T) {
	ds, times, _ := leakageSet(1, true, false)
	tr := &spec.Training{File: "x.yaml", Split: spec.TrainingSplit{By: spec.SplitByTime, ValidSpan: spec.Duration(30 * 24 * time.Hour),
		TestSpan: spec.Duration(40 * 24 * time.Hour)}, Model: spec.TrainingModel{Objective: "lambdarank"}}
	_, err := split(tr, ds, times)
	if !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), "the train part has no rows") {
		t.Fatalf("split of 60 days into 70 days of valid and test: err %v, want the empty train part reported", err)
	}
}

// A part scored by auc with one class only is refused before any trial,
// naming the part; other metrics take it.
func TestSplitOneClass(t *testing.T) {
	ds, times, _ := leakageSet(2, false, false)
	end := slices.Max(times)
	lastWeek := end - int64(7*24*time.Hour)
	for i, at := range times {
		if at > lastWeek {
			ds.Label[i] = 0 // the test part (the last 7 days) has one class
		}
	}
	for _, tc := range []struct {
		name, metric string
		want         string // "" when the split is fine
	}{
		{"auc", "auc", "every row of the test part"},
		{"logloss", "binary_logloss", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &spec.Training{File: "x.yaml", Split: spec.TrainingSplit{By: spec.SplitByTime, ValidSpan: spec.Duration(7 * 24 * time.Hour),
				TestSpan: spec.Duration(7 * 24 * time.Hour)}, Model: spec.TrainingModel{Objective: "binary"},
				Tune: &spec.TrainingTune{Metric: tc.metric}}
			_, err := split(tr, ds, times)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("split: %v, want no error under %s", err, tc.metric)
			case tc.want != "" && (!errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("split: err %v, want a spec problem containing %q", err, tc.want)
			}
		})
	}
}
