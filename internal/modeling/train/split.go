package train

import (
	"fmt"
	"slices"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/spec"
)

// Splits are the rows of a training set in each part. Every list is sorted
// and made of whole units (a query group, or a row without groups), so
// ml.Dataset.Subset keeps the queries whole.
//
// Invariants, which the leakage tests check: no unit is in two parts; by
// time, every valid row is later than every train row and every test row
// later than every valid row.
type Splits struct {
	Train, Valid, Test []int
	// Folds, for kfold, are the cross-validation folds of the rows that are
	// not Test (Train and Valid are then empty); indices into the dataset.
	Folds []ml.Fold
	// Dropped counts the rows of units (groups) that straddle a time cut:
	// kept in neither part, so that no group is in two.
	Dropped int
	// ValidFrom and TestFrom are the time cuts of a time split: valid rows
	// are after ValidFrom, test rows after TestFrom.
	ValidFrom, TestFrom time.Time
}

// units are the rows of the dataset by group: unit i is rows [start[i],
// start[i+1]).
func units(ds *ml.Dataset) []int {
	n := ds.NumRows()
	if ds.Groups == nil {
		s := make([]int, n+1)
		for i := range s {
			s[i] = i
		}
		return s
	}
	s := make([]int, 0, len(ds.Groups)+1)
	at := 0
	for _, g := range ds.Groups {
		s = append(s, at)
		at += g
	}
	return append(s, at)
}

// split cuts the dataset as the spec says. times has each row's event time
// (Unix nanoseconds). An empty part is an error naming the spec's line.
func split(t *spec.Training, ds *ml.Dataset, times []int64) (*Splits, error) {
	s := t.Split
	var out *Splits
	var err error
	switch s.By {
	case spec.SplitByTime:
		out = timeSplit(ds, times, s.ValidSpan.D(), s.TestSpan.D())
	case spec.SplitByRandom:
		out, err = randomSplit(t, ds, ml.Fractions{Train: 1 - s.Valid - s.Test, Valid: s.Valid, Test: s.Test})
	case spec.SplitByKFold:
		out, err = kfoldSplit(t, ds)
	default:
		return nil, fmt.Errorf("split.by %q: want time, random or kfold", s.By)
	}
	if err != nil {
		return nil, specError(t.Problem("split", "split: %v", err))
	}
	parts := []struct {
		name string
		rows []int
	}{{"train", out.Train}, {"valid", out.Valid}, {"test", out.Test}}
	if out.Folds != nil {
		parts = parts[2:]
	}
	for _, p := range parts {
		if len(p.rows) == 0 {
			msg := fmt.Sprintf("split: the %s part has no rows (of %d", p.name, ds.NumRows())
			if s.By == spec.SplitByTime {
				msg += fmt.Sprintf("; valid after %s, test after %s", out.ValidFrom.Format(time.RFC3339), out.TestFrom.Format(time.RFC3339))
			}
			return nil, specError(t.Problem("split", "%s): change the split or the spine", msg))
		}
	}
	if err := checkClasses(t, ds, out); err != nil {
		return nil, err
	}
	return out, nil
}

// checkClasses refuses, under metric auc, a part that is scored with one
// class only: its AUC is undefined, so every trial (a valid part or fold)
// or the final evaluation (the test part, after the whole study) would
// fail. A stratified random split cannot give one; a time split, a group
// split or a rare class can.
func checkClasses(t *spec.Training, ds *ml.Dataset, s *Splits) error {
	if t.Model.Task() != modelfile.TaskBinary || parseMetric(t.Metric()).base != "auc" {
		return nil
	}
	parts := []struct {
		name string
		rows []int
	}{{"valid", s.Valid}, {"test", s.Test}}
	for i, f := range s.Folds {
		parts = append(parts, struct {
			name string
			rows []int
		}{fmt.Sprintf("valid part of fold %d", i+1), f.Valid})
	}
	for _, p := range parts {
		if len(p.rows) == 0 {
			continue
		}
		y := ds.Label[p.rows[0]]
		one := true
		for _, r := range p.rows {
			if ds.Label[r] != y {
				one = false
				break
			}
		}
		if one {
			msg := fmt.Sprintf("split: every row of the %s part (%d rows) has label %v: metric auc is undefined with one class", p.name, len(p.rows), y)
			if t.Split.By == spec.SplitByTime {
				msg += fmt.Sprintf(" (valid after %s, test after %s)", s.ValidFrom.Format(time.RFC3339), s.TestFrom.Format(time.RFC3339))
			}
			return specError(t.Problem("split", "%s; change the split or the spine so that both classes are in it", msg))
		}
	}
	return nil
}

// timeSplit puts the units whose rows are all in the last testSpan in test,
// those all in the validSpan before it in valid, those all before in train;
// a unit with rows on both sides of a cut is dropped.
func timeSplit(ds *ml.Dataset, times []int64, validSpan, testSpan time.Duration) *Splits {
	out := &Splits{}
	if len(times) == 0 {
		return out
	}
	end := slices.Max(times)
	testFrom := end - int64(testSpan)
	validFrom := testFrom - int64(validSpan)
	out.TestFrom, out.ValidFrom = time.Unix(0, testFrom).UTC(), time.Unix(0, validFrom).UTC()
	u := units(ds)
	for i := range len(u) - 1 {
		lo, hi := slices.Min(times[u[i]:u[i+1]]), slices.Max(times[u[i]:u[i+1]])
		var dst *[]int
		switch {
		case lo > testFrom:
			dst = &out.Test
		case lo > validFrom && hi <= testFrom:
			dst = &out.Valid
		case hi <= validFrom:
			dst = &out.Train
		default:
			out.Dropped += u[i+1] - u[i]
			continue
		}
		for r := u[i]; r < u[i+1]; r++ {
			*dst = append(*dst, r)
		}
	}
	return out
}

// randomSplit splits by group (a query never in two parts), stratified by
// class for classification, at random otherwise.
func randomSplit(t *spec.Training, ds *ml.Dataset, f ml.Fractions) (*Splits, error) {
	var s ml.Split
	var err error
	switch task := t.Model.Task(); {
	case ds.Groups != nil:
		s, err = ml.GroupSplit(ds.Groups, f, t.Split.Seed)
	case task == "binary" || task == "multiclass":
		s, err = ml.StratifiedSplit(ds.Label, f, t.Split.Seed)
	default:
		s, err = ml.RandomSplit(ds.NumRows(), f, t.Split.Seed)
	}
	if err != nil {
		return nil, err
	}
	return &Splits{Train: s.Train, Valid: s.Valid, Test: s.Test}, nil
}

// kfoldSplit holds out the test share (by group, stratified or at random as
// randomSplit) and cuts the rest into folds of the same kind.
func kfoldSplit(t *spec.Training, ds *ml.Dataset) (*Splits, error) {
	test := t.Split.Test
	hold, err := randomSplit(t, ds, ml.Fractions{Train: 1 - test, Test: test})
	if err != nil {
		return nil, err
	}
	rest := slices.Concat(hold.Train, hold.Valid) // Valid is empty: no valid share
	slices.Sort(rest)
	sub := ds.Subset(rest)
	var folds []ml.Fold
	switch task := t.Model.Task(); {
	case sub.Groups != nil:
		folds, err = ml.GroupKFold(sub.Groups, t.Split.KFold, t.Split.Seed)
	case task == "binary" || task == "multiclass":
		folds, err = ml.StratifiedKFold(sub.Label, t.Split.KFold, t.Split.Seed)
	default:
		folds, err = ml.KFold(sub.NumRows(), t.Split.KFold, t.Split.Seed)
	}
	if err != nil {
		return nil, err
	}
	// Fold rows index the subset; map them back to the dataset's rows.
	for i := range folds {
		for _, part := range []*[]int{&folds[i].Train, &folds[i].Valid} {
			for k, r := range *part {
				(*part)[k] = rest[r]
			}
		}
	}
	return &Splits{Test: hold.Test, Folds: folds}, nil
}

// trainValid returns the rows of train and valid together (the refit's
// data), sorted, so whole queries stay whole and in order.
func (s *Splits) trainValid() []int {
	if s.Folds != nil {
		f := s.Folds[0]
		return sortedUnion(f.Train, f.Valid)
	}
	return sortedUnion(s.Train, s.Valid)
}

func sortedUnion(a, b []int) []int {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return out
}
