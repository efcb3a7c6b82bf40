package retrieval

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/atrium-ml/atrium/internal/data/online"
)

// countingStore records the keys each Read asks for, by set.
type countingStore struct {
	online.Store
	reads int
	keys  map[string]int
}

func (s *countingStore) Read(ctx context.Context, queries []online.Query, results []online.Result) error {
	s.reads++
	for _, q := range queries {
		s.keys[q.Set] += len(q.Keys)
	}
	return s.Store.Read(ctx, queries, results)
}

// A broadcast key (the user of a ranking) reads its sets once, with one
// key, in the same store read as the per-row sets, and answers every row
// exactly as the same key repeated on every row does.
func TestGetBroadcastColumns(t *testing.T) {
	base := testOnline(t)
	store := &countingStore{Store: base.Store(), keys: map[string]int{}}
	o, err := NewOnline(store, testDefs(), base.opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	features := []string{"user_profile:budget", "listing_profile:rent", "user_listing:views", "user_profile:active"}

	bc := &Request{Features: features}
	bc.Entities.Int64("listing_id", 1, 2, 3)
	bc.Entities.BroadcastString("user_id", "u1")
	got, err := o.Get(ctx, bc)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	if store.reads != 1 || store.keys["user_profile"] != 1 || store.keys["listing_profile"] != 3 || store.keys["user_listing"] != 3 {
		t.Fatalf("reads %d, keys by set %v: want one read, user_profile once, the others per row", store.reads, store.keys)
	}

	rep := &Request{Features: features}
	rep.Entities.Int64("listing_id", 1, 2, 3)
	rep.Entities.String("user_id", "u1", "u1", "u1")
	want, err := o.Get(ctx, rep)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Release()
	if got.Rows() != 3 || !slices.Equal(got.Names(), want.Names()) {
		t.Fatalf("rows %d names %v, want 3 rows of %v", got.Rows(), got.Names(), want.Names())
	}
	for c := range got.Names() {
		for r := range 3 {
			gv, gs, gt := got.Get(c, r)
			wv, ws, wt := want.Get(c, r)
			if !gv.Equal(wv) || gs != ws || !gt.Equal(wt) {
				t.Errorf("%s row %d: broadcast %v %v %v, repeated %v %v %v", got.Names()[c], r, gv, gs, gt, wv, ws, wt)
			}
		}
	}

	// Only broadcast columns: one row.
	one := &Request{Features: []string{"user_profile:budget"}}
	one.Entities.BroadcastString("user_id", "u1")
	v, err := o.Get(ctx, one)
	if err != nil {
		t.Fatal(err)
	}
	if val, st, _ := v.Get(1, 0); v.Rows() != 1 || st != StatusPresent || val.Float64() != 2000 {
		t.Fatalf("rows %d, budget %v %v", v.Rows(), val, st)
	}
	v.Release()

	// No candidates beside a broadcast key: zero rows, every column empty
	// (a ranking of an empty candidate list), not the broadcast key's row.
	none := &Request{Features: features}
	none.Entities.Int64("listing_id")
	none.Entities.BroadcastString("user_id", "u1")
	v, err = o.Get(ctx, none)
	if err != nil {
		t.Fatal(err)
	}
	if v.Rows() != 0 {
		t.Fatalf("no candidates: %d rows, want 0", v.Rows())
	}
	for c := range v.Names() {
		if col := v.AppendColumn(nil, c); len(col) != 0 {
			t.Errorf("no candidates: column %s has %d values, want none", v.Names()[c], len(col))
		}
	}
	v.Release()

	// A missing broadcast key is still named.
	miss := &Request{Features: features}
	miss.Entities.Int64("listing_id", 1)
	if _, err := o.Get(ctx, miss); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("missing user_id: %v", err)
	}
}

func TestShapeAndServiceFeatures(t *testing.T) {
	o := testOnline(t)
	refs, err := o.ServiceFeatures("ranker")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"listing_profile:rent", "listing_profile:price_per_m2", "listing_profile:neighborhood", "listing_engagement:ctr_7d", "listing_engagement:clicks_sum_1d"}
	if !slices.Equal(refs, want) {
		t.Fatalf("ServiceFeatures = %v, want %v", refs, want)
	}
	if _, err := o.ServiceFeatures("nope"); !errors.Is(err, ErrUnknownFeature) {
		t.Fatalf("unknown service: %v", err)
	}
	sh, err := o.Shape([]string{"user_listing:views"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(sh.JoinKeys) != 2 || sh.JoinKeys[0].Name != "user_id" || sh.JoinKeys[1].Name != "listing_id" || len(sh.Request) != 0 {
		t.Fatalf("Shape = %+v", sh)
	}
}
