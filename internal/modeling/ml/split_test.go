package ml

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// checkPartition checks that the parts are sorted, disjoint and cover 0..n-1.
func checkPartition(t *testing.T, n int, parts ...[]int) {
	t.Helper()
	seen := make([]int, n)
	for _, p := range parts {
		if !slices.IsSorted(p) {
			t.Errorf("part not sorted: %v", p)
		}
		for _, r := range p {
			seen[r]++
		}
	}
	for r, c := range seen {
		if c != 1 {
			t.Fatalf("row %d is in %d parts, want 1", r, c)
		}
	}
}

var f721 = Fractions{Train: 0.7, Valid: 0.2, Test: 0.1}

func TestRandomSplit(t *testing.T) {
	s, err := RandomSplit(100, f721, 42)
	if err != nil {
		t.Fatal(err)
	}
	checkPartition(t, 100, s.Train, s.Valid, s.Test)
	if len(s.Train) != 70 || len(s.Valid) != 20 || len(s.Test) != 10 {
		t.Errorf("sizes %d/%d/%d, want 70/20/10", len(s.Train), len(s.Valid), len(s.Test))
	}
	again, _ := RandomSplit(100, f721, 42)
	other, _ := RandomSplit(100, f721, 43)
	if !reflect.DeepEqual(s, again) || reflect.DeepEqual(s, other) {
		t.Error("a seed must give one split, and another seed another")
	}
	// Pinned: a change of shuffling would silently change every user's splits.
	if got := s.Test; !reflect.DeepEqual(got, []int{7, 8, 15, 20, 33, 36, 67, 82, 86, 92}) {
		t.Errorf("seed 42 test rows = %v; the shuffle changed", got)
	}
	for _, bad := range []Fractions{{0.5, 0.2, 0.2}, {0, 0.5, 0.5}, {1.1, -0.1, 0}} {
		if _, err := RandomSplit(10, bad, 1); err == nil || !strings.Contains(err.Error(), "summing to 1") {
			t.Errorf("fractions %v: err %v", bad, err)
		}
	}
}

func TestStratifiedSplit(t *testing.T) {
	label := make([]float64, 100)
	for i := range 40 {
		label[i*2] = 1 // 40 positives spread over the first 80 rows
	}
	s, err := StratifiedSplit(label, Fractions{Train: 0.5, Valid: 0.25, Test: 0.25}, 7)
	if err != nil {
		t.Fatal(err)
	}
	checkPartition(t, 100, s.Train, s.Valid, s.Test)
	count := func(rows []int) (pos int) {
		for _, r := range rows {
			pos += int(label[r])
		}
		return pos
	}
	if len(s.Train) != 50 || count(s.Train) != 20 || len(s.Valid) != 25 || count(s.Valid) != 10 || count(s.Test) != 10 {
		t.Errorf("train %d rows %d positive, valid %d rows %d positive, test %d positive; want 50/20, 25/10, 10",
			len(s.Train), count(s.Train), len(s.Valid), count(s.Valid), count(s.Test))
	}
}

func TestGroupSplitNeverCutsQueries(t *testing.T) {
	groups := []int{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9}
	s, err := GroupSplit(groups, f721, 3)
	if err != nil {
		t.Fatal(err)
	}
	n := 77
	checkPartition(t, n, s.Train, s.Valid, s.Test)
	ds := groupedDataset(groups)
	for _, rows := range [][]int{s.Train, s.Valid, s.Test} {
		sub := ds.Subset(rows)
		if err := sub.Validate(); err != nil {
			t.Fatal(err)
		}
		// Whole queries: every subset group has the size of an original one,
		// and its rows carry one query id.
		for k, r := range groupRows(sub.Groups) {
			q := sub.Columns[0].Values[r[0]]
			for i := r[0]; i < r[1]; i++ {
				if sub.Columns[0].Values[i] != q {
					t.Fatalf("subset group %d mixes queries", k)
				}
			}
			if groups[int(q)] != r[1]-r[0] {
				t.Fatalf("query %d cut: %d of %d rows", int(q), r[1]-r[0], groups[int(q)])
			}
		}
	}
	if len(s.Train) < 40 || len(s.Train) > 68 {
		t.Errorf("train has %d of %d rows, want about 70%%", len(s.Train), n)
	}
}

// groupedDataset has one column holding each row's query index.
func groupedDataset(groups []int) *Dataset {
	var q []float32
	for i, g := range groups {
		for range g {
			q = append(q, float32(i))
		}
	}
	return &Dataset{Columns: []Column{{Name: "query", Values: q}}, Groups: groups}
}

func TestTimeSplit(t *testing.T) {
	s, err := TimeSplit(10, nil, f721)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, Split{Train: []int{0, 1, 2, 3, 4, 5, 6}, Valid: []int{7, 8}, Test: []int{9}}) {
		t.Errorf("split %v", s)
	}
	// With queries of 4, 4 and 2 rows the cuts at 7 and 9 move to 8 and 10.
	s, _ = TimeSplit(10, []int{4, 4, 2}, f721)
	if len(s.Train) != 8 || len(s.Valid) != 2 || len(s.Test) != 0 {
		t.Errorf("grouped split %v", s)
	}
}

func TestKFolds(t *testing.T) {
	label := []float64{0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 0, 0, 1}
	groups := []int{2, 3, 1, 4, 5}
	kf, _ := KFold(15, 4, 1)
	skf, _ := StratifiedKFold(label, 3, 1)
	gkf, _ := GroupKFold(groups, 3, 1)
	for name, fs := range map[string][]Fold{"kfold": kf, "stratified": skf, "group": gkf} {
		valid := make([]int, 15)
		for _, f := range fs {
			checkPartition(t, 15, f.Train, f.Valid)
			for _, r := range f.Valid {
				valid[r]++
			}
		}
		if slices.ContainsFunc(valid, func(c int) bool { return c != 1 }) {
			t.Errorf("%s: a row validates %v times, want once each", name, valid)
		}
	}
	for _, f := range kf {
		if len(f.Valid) < 3 || len(f.Valid) > 4 {
			t.Errorf("kfold valid size %d, want 3 or 4", len(f.Valid))
		}
	}
	for _, f := range skf {
		// 8 zeros, 4 ones, 3 twos over 3 folds: each fold has 1 two and 1 or 2 ones.
		counts := map[float64]int{}
		for _, r := range f.Valid {
			counts[label[r]]++
		}
		if counts[2] != 1 || counts[1] < 1 || counts[1] > 2 || counts[0] < 2 || counts[0] > 3 {
			t.Errorf("stratified fold class counts %v", counts)
		}
	}
	ds := groupedDataset(groups)
	for _, f := range gkf {
		for _, rows := range [][]int{f.Train, f.Valid} {
			sub := ds.Subset(rows)
			for _, r := range groupRows(sub.Groups) {
				if q := int(sub.Columns[0].Values[r[0]]); groups[q] != r[1]-r[0] {
					t.Errorf("group k-fold cut query %d", q)
				}
			}
		}
	}
	tkf, err := TimeKFold(12, nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []Fold{{Train: rangeOf(0, 3), Valid: rangeOf(3, 6)}, {Train: rangeOf(0, 6), Valid: rangeOf(6, 9)}, {Train: rangeOf(0, 9), Valid: rangeOf(9, 12)}}
	if !reflect.DeepEqual(tkf, want) {
		t.Errorf("time k-fold %v", tkf)
	}
	if _, err := KFold(3, 4, 1); err == nil {
		t.Error("k > rows accepted")
	}
	if _, err := GroupKFold(groups, 6, 1); err == nil || !strings.Contains(err.Error(), "number of groups") {
		t.Errorf("k > groups: %v", err)
	}
}

func TestDatasetSplit(t *testing.T) {
	ds := &Dataset{
		Columns: []Column{{Name: "c", Kind: Categorical, Values: []float32{0, 1, 0, 1, 0, 1, 0, 1, 0, 1}, Categories: []string{"a", "b"}}},
		Label:   []float64{0, 1, 0, 1, 0, 1, 0, 1, 0, 1},
	}
	train, valid, test, err := ds.Split(SplitStratified, Fractions{Train: 0.6, Valid: 0.2, Test: 0.2}, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []*Dataset{train, valid, test} {
		if err := part.Validate(); err != nil {
			t.Fatal(err)
		}
		if &part.Columns[0].Categories[0] != &ds.Columns[0].Categories[0] {
			t.Error("subset does not share the category list")
		}
	}
	if train.NumRows() != 6 || valid.NumRows() != 2 || test.NumRows() != 2 {
		t.Errorf("rows %d/%d/%d", train.NumRows(), valid.NumRows(), test.NumRows())
	}
	ds.Groups = []int{5, 5}
	if _, _, _, err := ds.Split(SplitRandom, f721, 1); err == nil || !strings.Contains(err.Error(), "would cut queries") {
		t.Errorf("random split of grouped data: %v", err)
	}
	if _, _, _, err := ds.Split("weekly", f721, 1); err == nil {
		t.Error("unknown method accepted")
	}
}
