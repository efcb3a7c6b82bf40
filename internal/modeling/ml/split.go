package ml

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
)

// SplitMethod says how rows are assigned to train, validation and test sets.
type SplitMethod string

const (
	// SplitRandom assigns rows at random.
	SplitRandom SplitMethod = "random"
	// SplitStratified assigns rows at random within each label value, so each
	// set has the same class proportions (classification labels).
	SplitStratified SplitMethod = "stratified"
	// SplitGroup assigns whole query groups (Dataset.Groups) at random, so no
	// query is cut across sets.
	SplitGroup SplitMethod = "group"
	// SplitTime keeps row order: the first rows train, the next validate, the
	// last test. Load the data with LoadOptions.Time to order rows by time.
	// Query groups are never cut.
	SplitTime SplitMethod = "time"
)

// Fractions are the shares of rows for the train, validation and test sets.
// They must be >= 0 and sum to 1; Valid or Test may be 0.
type Fractions struct {
	Train, Valid, Test float64
}

func (f Fractions) validate() error {
	if f.Train <= 0 || f.Valid < 0 || f.Test < 0 || math.Abs(f.Train+f.Valid+f.Test-1) > 1e-9 {
		return fmt.Errorf("split fractions %v/%v/%v: want train > 0, valid and test >= 0, summing to 1", f.Train, f.Valid, f.Test)
	}
	return nil
}

// Split holds the row indices of each set, in increasing order (so rows keep
// their relative order: time order and query contiguity survive).
type Split struct {
	Train, Valid, Test []int
}

// Fold is one round of k-fold cross-validation.
type Fold struct {
	Train, Valid []int
}

// newRand returns the generator every split uses: PCG seeded from seed.
// Shuffles use our own Fisher-Yates with Lemire's bounded draw (not
// rand.Shuffle), so that a seed gives the same split on every Go release: PCG's
// output is specified, the standard library's shuffling is not promised stable.
func newRand(seed uint64) *rand.PCG {
	return rand.NewPCG(seed, 0x9e3779b97f4a7c15)
}

// below returns a uniform integer in [0, n), by Lemire's multiply-and-reject.
func below(r *rand.PCG, n int) int {
	bound := uint64(n)
	hi, lo := bits.Mul64(r.Uint64(), bound)
	if lo < bound {
		for threshold := -bound % bound; lo < threshold; {
			hi, lo = bits.Mul64(r.Uint64(), bound)
		}
	}
	return int(hi)
}

func shuffle[T any](r *rand.PCG, s []T) {
	for i := len(s) - 1; i > 0; i-- {
		j := below(r, i+1)
		s[i], s[j] = s[j], s[i]
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// cuts returns the row counts of the train and train+valid prefixes of n rows.
func (f Fractions) cuts(n int) (int, int) {
	a := int(math.Round(float64(n) * f.Train))
	b := int(math.Round(float64(n) * (f.Train + f.Valid)))
	if f.Test == 0 {
		b = n
	}
	return a, min(b, n)
}

// sortedSplit sorts the three index lists.
func sortedSplit(train, valid, test []int) Split {
	slices.Sort(train)
	slices.Sort(valid)
	slices.Sort(test)
	return Split{Train: train, Valid: valid, Test: test}
}

// RandomSplit assigns n rows at random, deterministically for a seed.
func RandomSplit(n int, f Fractions, seed uint64) (Split, error) {
	if err := f.validate(); err != nil {
		return Split{}, err
	}
	rows := seq(n)
	shuffle(newRand(seed), rows)
	a, b := f.cuts(n)
	return sortedSplit(slices.Clone(rows[:a]), slices.Clone(rows[a:b]), slices.Clone(rows[b:])), nil
}

// byClass returns the rows of each distinct label value, classes in increasing
// order, rows shuffled within each class.
func byClass(label []float64, r *rand.PCG) [][]int {
	classes := map[float64][]int{}
	for i, y := range label {
		classes[y] = append(classes[y], i)
	}
	keys := make([]float64, 0, len(classes))
	for y := range classes {
		keys = append(keys, y)
	}
	slices.Sort(keys)
	out := make([][]int, len(keys))
	for i, y := range keys {
		out[i] = classes[y]
		shuffle(r, out[i])
	}
	return out
}

// StratifiedSplit assigns rows at random within each label value so that every
// set keeps the label's class proportions (up to rounding, which is carried
// over from class to class so that the set sizes match RandomSplit's).
func StratifiedSplit(label []float64, f Fractions, seed uint64) (Split, error) {
	if err := f.validate(); err != nil {
		return Split{}, err
	}
	var train, valid, test []int
	done, doneA, doneB := 0, 0, 0
	for _, rows := range byClass(label, newRand(seed)) {
		a, b := f.cuts(done + len(rows))
		na := min(max(a-doneA, 0), len(rows))
		nb := min(max(b-doneB, na), len(rows))
		train = append(train, rows[:na]...)
		valid = append(valid, rows[na:nb]...)
		test = append(test, rows[nb:]...)
		done, doneA, doneB = done+len(rows), doneA+na, doneB+nb
	}
	return sortedSplit(train, valid, test), nil
}

// groupRows returns the row range [start, end) of each query group.
func groupRows(groups []int) [][2]int {
	out := make([][2]int, len(groups))
	start := 0
	for i, g := range groups {
		out[i] = [2]int{start, start + g}
		start += g
	}
	return out
}

func appendRange(dst []int, r [2]int) []int {
	for i := r[0]; i < r[1]; i++ {
		dst = append(dst, i)
	}
	return dst
}

// GroupSplit assigns whole query groups (sizes as in Dataset.Groups) at random,
// aiming at the fractions of rows: a group goes to the set in whose share of
// rows the middle of the group falls.
func GroupSplit(groups []int, f Fractions, seed uint64) (Split, error) {
	if err := f.validate(); err != nil {
		return Split{}, err
	}
	ranges := groupRows(groups)
	order := seq(len(groups))
	shuffle(newRand(seed), order)
	n := 0
	for _, g := range groups {
		n += g
	}
	a, b := float64(n)*f.Train, float64(n)*(f.Train+f.Valid)
	var train, valid, test []int
	seen := 0
	for _, q := range order {
		mid := float64(seen) + float64(groups[q])/2
		switch {
		case mid <= a:
			train = appendRange(train, ranges[q])
		case mid <= b || f.Test == 0:
			valid = appendRange(valid, ranges[q])
		default:
			test = appendRange(test, ranges[q])
		}
		seen += groups[q]
	}
	return sortedSplit(train, valid, test), nil
}

// TimeSplit keeps row order: the first rows train, the next validate, the last
// test. With groups (may be nil), each cut moves to the nearest query boundary.
func TimeSplit(n int, groups []int, f Fractions) (Split, error) {
	if err := f.validate(); err != nil {
		return Split{}, err
	}
	a, b := f.cuts(n)
	if groups != nil {
		a, b = snapToGroups(a, groups), snapToGroups(b, groups)
	}
	return Split{Train: rangeOf(0, a), Valid: rangeOf(a, b), Test: rangeOf(b, n)}, nil
}

// snapToGroups moves a row cut to the nearest query boundary.
func snapToGroups(cut int, groups []int) int {
	start := 0
	for _, g := range groups {
		end := start + g
		if cut <= end {
			if cut-start < end-cut {
				return start
			}
			return end
		}
		start = end
	}
	return start
}

func rangeOf(a, b int) []int {
	return appendRange(make([]int, 0, max(b-a, 0)), [2]int{a, b})
}

// folds turns a fold number per row into k folds.
func folds(fold []int, k int) []Fold {
	out := make([]Fold, k)
	for row, f := range fold {
		for i := range out {
			if i == f {
				out[i].Valid = append(out[i].Valid, row)
			} else {
				out[i].Train = append(out[i].Train, row)
			}
		}
	}
	return out
}

func checkK(k, units int, what string) error {
	if k < 2 || k > units {
		return fmt.Errorf("k-fold with k=%d: want 2 <= k <= %d (the number of %s)", k, units, what)
	}
	return nil
}

// KFold splits n rows into k folds at random; fold sizes differ by at most one.
func KFold(n, k int, seed uint64) ([]Fold, error) {
	if err := checkK(k, n, "rows"); err != nil {
		return nil, err
	}
	rows := seq(n)
	shuffle(newRand(seed), rows)
	fold := make([]int, n)
	for p, row := range rows {
		fold[row] = p % k
	}
	return folds(fold, k), nil
}

// StratifiedKFold splits rows into k folds keeping each label value's
// proportion in every fold (up to one row per class and fold).
func StratifiedKFold(label []float64, k int, seed uint64) ([]Fold, error) {
	if err := checkK(k, len(label), "rows"); err != nil {
		return nil, err
	}
	fold := make([]int, len(label))
	p := 0 // dealing continues across classes so that fold sizes stay even
	for _, rows := range byClass(label, newRand(seed)) {
		for _, row := range rows {
			fold[row] = p % k
			p++
		}
	}
	return folds(fold, k), nil
}

// GroupKFold splits whole query groups into k folds: groups in random order,
// largest first, each to the fold with the fewest rows so far.
func GroupKFold(groups []int, k int, seed uint64) ([]Fold, error) {
	if err := checkK(k, len(groups), "groups"); err != nil {
		return nil, err
	}
	order := seq(len(groups))
	shuffle(newRand(seed), order)
	slices.SortStableFunc(order, func(a, b int) int { return groups[b] - groups[a] })
	load := make([]int, k)
	groupFold := make([]int, len(groups))
	for _, q := range order {
		f := 0
		for i := range load {
			if load[i] < load[f] {
				f = i
			}
		}
		groupFold[q] = f
		load[f] += groups[q]
	}
	var fold []int
	for q, g := range groups {
		for range g {
			fold = append(fold, groupFold[q])
		}
	}
	return folds(fold, k), nil
}

// TimeKFold is k-fold for time-ordered rows (scikit-learn's TimeSeriesSplit):
// the rows are cut into k+1 consecutive blocks; fold i trains on blocks 0..i
// and validates on block i+1, so a model never trains on rows after the ones
// it is validated on. With groups (may be nil), cuts fall on query boundaries.
func TimeKFold(n int, groups []int, k int) ([]Fold, error) {
	if err := checkK(k, n-1, "rows minus one"); err != nil {
		return nil, err
	}
	cut := func(i int) int {
		c := int(math.Round(float64(n) * float64(i) / float64(k+1)))
		if groups != nil {
			c = snapToGroups(c, groups)
		}
		return c
	}
	out := make([]Fold, k)
	for i := range out {
		out[i] = Fold{Train: rangeOf(0, cut(i+1)), Valid: rangeOf(cut(i+1), cut(i+2))}
	}
	return out, nil
}

// Split divides the dataset by method (see SplitMethod). A dataset with query
// groups takes only group and time splits: the others would cut queries.
func (d *Dataset) Split(method SplitMethod, f Fractions, seed uint64) (train, valid, test *Dataset, err error) {
	var s Split
	switch method {
	case SplitRandom, SplitStratified:
		if d.Groups != nil {
			return nil, nil, nil, fmt.Errorf("%s split of a dataset with query groups would cut queries: use a group or time split", method)
		}
		if method == SplitRandom {
			s, err = RandomSplit(d.NumRows(), f, seed)
		} else if d.Label == nil {
			return nil, nil, nil, fmt.Errorf("stratified split needs a label")
		} else {
			s, err = StratifiedSplit(d.Label, f, seed)
		}
	case SplitGroup:
		if d.Groups == nil {
			return nil, nil, nil, fmt.Errorf("group split needs query groups (a group column)")
		}
		s, err = GroupSplit(d.Groups, f, seed)
	case SplitTime:
		s, err = TimeSplit(d.NumRows(), d.Groups, f)
	default:
		return nil, nil, nil, fmt.Errorf("split method %q: want random, stratified, group or time", method)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	return d.Subset(s.Train), d.Subset(s.Valid), d.Subset(s.Test), nil
}

// Subset returns the rows of d at the given indices, in that order, sharing
// category lists with d. With query groups, consecutive rows of one query form
// a group of the subset: pass whole queries in order (as the splits here do).
func (d *Dataset) Subset(rows []int) *Dataset {
	out := &Dataset{Columns: make([]Column, len(d.Columns)), Label: gather(d.Label, rows), Weight: gather(d.Weight, rows)}
	for i, c := range d.Columns {
		out.Columns[i] = Column{Name: c.Name, Kind: c.Kind, Categories: c.Categories, Values: gather(c.Values, rows)}
		if out.Columns[i].Values == nil {
			out.Columns[i].Values = []float32{}
		}
	}
	if d.Groups != nil {
		query := make([]int, 0, d.NumRows())
		for q, g := range d.Groups {
			for range g {
				query = append(query, q)
			}
		}
		out.Groups = []int{}
		for k, r := range rows {
			if k > 0 && query[r] == query[rows[k-1]] {
				out.Groups[len(out.Groups)-1]++
			} else {
				out.Groups = append(out.Groups, 1)
			}
		}
	}
	return out
}
