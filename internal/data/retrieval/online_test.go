package retrieval

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/atrium-ml/atrium/internal/data/ondemand"
	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/online/pebble"
)

// now is the serving time of the tests.
var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// testDefs follow the rental-marketplace example.
func testDefs() Definitions {
	return Definitions{
		Sets: []SetDef{
			{Name: "listing_profile", JoinKeys: []JoinKeyDef{{"listing_id", KeyInt64}}, TTL: 90 * 24 * time.Hour,
				Features: []FeatureDef{{"rent", online.KindFloat64}, {"price_per_m2", online.KindFloat64}, {"neighborhood", online.KindString}}},
			{Name: "listing_engagement", JoinKeys: []JoinKeyDef{{"listing_id", KeyInt64}}, TTL: 48 * time.Hour,
				Features: []FeatureDef{{"clicks_sum_1d", online.KindInt64}, {"ctr_7d", online.KindFloat64}, {"rent", online.KindFloat64}}},
			{Name: "user_profile", JoinKeys: []JoinKeyDef{{"user_id", KeyString}},
				Features: []FeatureDef{{"budget", online.KindFloat64}, {"active", online.KindBool}, {"signup", online.KindTime}}},
			// Join-key type not known yet (never materialized): requests type it.
			{Name: "city_stats", JoinKeys: []JoinKeyDef{{"city", KeyAny}},
				Features: []FeatureDef{{"listings", online.KindInt64}}},
			{Name: "user_listing", JoinKeys: []JoinKeyDef{{"user_id", KeyString}, {"listing_id", KeyInt64}}, TTL: time.Hour,
				Features: []FeatureDef{{"views", online.KindInt64}}},
		},
		Services: []ServiceDef{
			{Name: "ranker", Features: []string{"listing_profile", "listing_engagement:ctr_7d", "listing_engagement:clicks_sum_1d"}},
			{Name: "ranker_od", Features: []string{"listing_profile:rent", "match"}},
		},
		OnDemand: []OnDemandDef{testOnDemand()},
	}
}

// testOnDemand is an on-demand set over a listing's and a user's features
// and a request value: boost.
func testOnDemand() OnDemandDef {
	p, err := ondemand.Compile(
		[]ondemand.Var{{Name: "rent", Kind: online.KindFloat64}, {Name: "budget", Kind: online.KindFloat64}, {Name: "ctr_7d", Kind: online.KindFloat64}, {Name: "boost", Kind: online.KindFloat64}},
		[]ondemand.Expr{{Name: "rent_to_budget", Kind: online.KindFloat64, Source: "rent / budget"},
			{Name: "boosted_ctr", Kind: online.KindFloat64, Source: "boost == null ? ctr_7d : ctr_7d * boost"}})
	if err != nil {
		panic(err)
	}
	return OnDemandDef{Name: "match", Program: p, Inputs: []string{"listing_profile:rent", "user_profile:budget", "listing_engagement:ctr_7d", ""}}
}

// testOnline returns an Online over a fresh Pebble store holding:
//
//	listing 1: profile (fresh), engagement (fresh)
//	listing 2: profile with a NULL price, engagement 3 days old (ttl 2d)
//	listing 3: nothing
//	user "u1": profile; (u1, 1): views
func testOnline(t testing.TB) *Online {
	t.Helper()
	store, err := pebble.Open(filepath.Join(t.TempDir(), "online"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	fresh := now.Add(-time.Hour)
	must(store.Write(ctx, "listing_profile", []string{"rent", "price_per_m2", "neighborhood"}, []online.Row{
		{Key: online.MustKey(1), TS: fresh, Values: []online.Value{online.Float64(1500), online.Float64(25.5), online.String("Mitte")}},
		{Key: online.MustKey(2), TS: fresh, Values: []online.Value{online.Float64(900), online.Null, online.String("Neukölln \"Nord\"")}},
	}))
	must(store.Write(ctx, "listing_engagement", []string{"clicks_sum_1d", "ctr_7d", "rent"}, []online.Row{
		{Key: online.MustKey(1), TS: fresh, Values: []online.Value{online.Int64(12), online.Float64(0.125), online.Float64(1)}},
		{Key: online.MustKey(2), TS: now.Add(-72 * time.Hour), Values: []online.Value{online.Int64(3), online.Float64(0.5), online.Float64(2)}},
	}))
	must(store.Write(ctx, "user_profile", []string{"budget", "active", "signup"}, []online.Row{
		{Key: online.MustKey("u1"), TS: fresh, Values: []online.Value{online.Float64(2000), online.Bool(true), online.Time(time.Date(2024, 5, 1, 8, 30, 0, 500_000_000, time.UTC))}},
	}))
	must(store.Write(ctx, "user_listing", []string{"views"}, []online.Row{
		{Key: online.MustKey("u1", 1), TS: fresh, Values: []online.Value{online.Int64(4)}},
	}))
	o, err := NewOnline(store, testDefs(), Options{Now: func() time.Time { return now }, Metrics: NewMetrics()})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

type cell struct {
	v  any
	st Status
}

func TestGetStatuses(t *testing.T) {
	o := testOnline(t)
	req := &Request{Features: []string{"listing_profile:rent", "listing_profile:price_per_m2", "listing_engagement:ctr_7d", "user_profile:active", "user_listing:views"}}
	req.Entities.Int64("listing_id", 1, 2, 3, 1)
	req.Entities.String("user_id", "u1", "u1", "u2", "u2")
	v, err := o.Get(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Release()
	wantNames := []string{"listing_id", "user_id", "rent", "price_per_m2", "ctr_7d", "active", "views"}
	if strings.Join(v.Names(), ",") != strings.Join(wantNames, ",") {
		t.Fatalf("names %v, want %v", v.Names(), wantNames)
	}
	P, N, NF, OLD := StatusPresent, StatusNullValue, StatusNotFound, StatusOutsideMaxAge
	want := [][]cell{ // [row][column]
		{{int64(1), P}, {"u1", P}, {1500.0, P}, {25.5, P}, {0.125, P}, {true, P}, {int64(4), P}},
		{{int64(2), P}, {"u1", P}, {900.0, P}, {nil, N}, {0.5, OLD}, {true, P}, {nil, NF}},
		{{int64(3), P}, {"u2", P}, {nil, NF}, {nil, NF}, {nil, NF}, {nil, NF}, {nil, NF}},
		{{int64(1), P}, {"u2", P}, {1500.0, P}, {25.5, P}, {0.125, P}, {nil, NF}, {nil, NF}},
	}
	if v.Rows() != len(want) {
		t.Fatalf("%d rows, want %d", v.Rows(), len(want))
	}
	for r, row := range want {
		for c, w := range row {
			val, st, ts := v.Get(c, r)
			if val.Any() != w.v || st != w.st {
				t.Errorf("row %d %s: %v %s, want %v %s", r, wantNames[c], val.Any(), st, w.v, w.st)
			}
			if (st == StatusNotFound || c < 2) != ts.IsZero() {
				t.Errorf("row %d %s: event time %s with status %s", r, wantNames[c], ts, st)
			}
		}
	}
	// A column at a time, what a model reads: Get's values, and missing
	// past the ttl (listing 2's ctr_7d).
	for c := range wantNames {
		col := v.AppendColumn([]online.Value{online.Int64(-1)}, c)
		if len(col) != 1+len(want) {
			t.Fatalf("%s: AppendColumn gave %d values after the one there, want %d", wantNames[c], len(col)-1, len(want))
		}
		for r, row := range want {
			w := row[c].v
			if row[c].st == OLD {
				w = nil
			}
			if got := col[1+r]; got.Any() != w || (row[c].st == OLD || row[c].st == NF) != got.IsMissing() {
				t.Errorf("AppendColumn row %d %s: %v (missing %v), want %v", r, wantNames[c], got.Any(), got.IsMissing(), w)
			}
		}
	}
}

// TestGetOnDemand computes on-demand features from the read rows and the
// request's values: a missing or stale input (listing 2's engagement is
// past its ttl) gives a null, a request value the expression tests for null
// may be left out.
func TestGetOnDemand(t *testing.T) {
	o := testOnline(t)
	req := &Request{Features: []string{"match:boosted_ctr", "listing_profile:rent", "match:rent_to_budget"},
		Context: map[string][]online.Value{"boost": {online.Float64(2), online.Float64(3), online.Null, online.Null}}}
	req.Entities.Int64("listing_id", 1, 2, 3, 1)
	req.Entities.String("user_id", "u1", "u1", "u1", "u2")
	v, err := o.Get(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Release()
	wantNames := []string{"listing_id", "user_id", "boosted_ctr", "rent", "rent_to_budget"}
	if strings.Join(v.Names(), ",") != strings.Join(wantNames, ",") {
		t.Fatalf("names %v, want %v", v.Names(), wantNames)
	}
	P, N, NF := StatusPresent, StatusNullValue, StatusNotFound
	want := [][]cell{ // [row][feature column]
		{{0.25, P}, {1500.0, P}, {0.75, P}},
		{{nil, N}, {900.0, P}, {0.45, P}},
		{{nil, N}, {nil, NF}, {nil, N}},
		{{0.125, P}, {1500.0, P}, {nil, N}},
	}
	for r, row := range want {
		for c, w := range row {
			val, st, _ := v.Get(c+2, r)
			if val.Any() != w.v || st != w.st {
				t.Errorf("row %d %s: %v %s, want %v %s", r, wantNames[c+2], val.Any(), st, w.v, w.st)
			}
		}
	}
	// Whole on-demand sets through a service; a clash of names is refused.
	svc := &Request{FeatureService: "ranker_od"}
	svc.Entities.Int64("listing_id", 1)
	svc.Entities.String("user_id", "u1")
	if v, err := o.Get(context.Background(), svc); err != nil || strings.Join(v.Names(), ",") != "listing_id,user_id,rent,rent_to_budget,boosted_ctr" {
		t.Errorf("ranker_od: %v", err)
	} else {
		v.Release()
	}
	for _, tc := range []struct {
		features []string
		want     string
	}{
		{[]string{"match:nope"}, `on-demand set match has no feature "nope"`},
		{[]string{"match:rent_to_budget", "match:rent_to_budget"}, "match:rent_to_budget is requested twice"},
	} {
		bad := &Request{Features: tc.features}
		bad.Entities.Int64("listing_id", 1)
		bad.Entities.String("user_id", "u1")
		if _, err := o.Get(context.Background(), bad); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Get(%v) = %v, want %q", tc.features, err, tc.want)
		}
	}
}

func TestGetServiceAndFullNames(t *testing.T) {
	o := testOnline(t)
	req := &Request{FeatureService: "ranker", FullFeatureNames: true}
	req.Entities.Int64("listing_id", 2)
	v, err := o.Get(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Release()
	want := "listing_id,listing_profile__rent,listing_profile__price_per_m2,listing_profile__neighborhood,listing_engagement__ctr_7d,listing_engagement__clicks_sum_1d"
	if got := strings.Join(v.Names(), ","); got != want {
		t.Errorf("names %s, want %s", got, want)
	}
	if val, st, _ := v.Get(3, 0); val.Str() != "Neukölln \"Nord\"" || st != StatusPresent {
		t.Errorf("neighborhood: %v %s", val, st)
	}
}

func TestGetRequestErrors(t *testing.T) {
	o := testOnline(t)
	tests := []struct {
		name     string
		req      func() *Request
		sentinel error
		msg      string
	}{
		{"no features", func() *Request { return &Request{} }, ErrInvalidRequest, "features: empty"},
		{"unknown set", func() *Request { return &Request{Features: []string{"nope:x"}} }, ErrUnknownFeature, `features[0]: unknown feature: "nope:x": no feature set "nope"`},
		{"unknown feature", func() *Request { return &Request{Features: []string{"listing_profile:rent", "listing_profile:area"}} }, ErrUnknownFeature, `features[1]`},
		{"whole set ref", func() *Request { return &Request{Features: []string{"listing_profile"}} }, ErrInvalidRequest, "want set:feature"},
		{"unknown service", func() *Request { return &Request{FeatureService: "nope"} }, ErrUnknownFeature, `feature_service "nope"`},
		{"both", func() *Request { return &Request{FeatureService: "ranker", Features: []string{"listing_profile:rent"}} }, ErrInvalidRequest, "both set"},
		{"collision", func() *Request {
			return &Request{Features: []string{"listing_profile:rent", "listing_engagement:rent"}}
		}, ErrInvalidRequest, "full_feature_names"},
		{"twice", func() *Request { return &Request{Features: []string{"listing_profile:rent", "listing_profile:rent"}} }, ErrInvalidRequest, "requested twice"},
		{"missing key", func() *Request { return &Request{Features: []string{"user_listing:views"}} }, ErrInvalidRequest, "missing join key"},
		{"wrong key type", func() *Request {
			r := &Request{Features: []string{"listing_profile:rent"}}
			r.Entities.String("listing_id", "1")
			return r
		}, ErrInvalidRequest, "listing_id: want int64 values, got string"},
		{"ragged", func() *Request {
			r := &Request{Features: []string{"user_listing:views"}}
			r.Entities.Int64("listing_id", 1, 2)
			r.Entities.String("user_id", "u1")
			return r
		}, ErrInvalidRequest, "one value per row"},
		{"extra column", func() *Request {
			r := &Request{Features: []string{"listing_profile:rent"}}
			r.Entities.Int64("listing_id", 1)
			r.Entities.Int64("user", 1)
			return r
		}, ErrInvalidRequest, `"user" is not a join key`},
		{"too many", func() *Request {
			r := &Request{Features: []string{"listing_profile:rent"}}
			r.Entities.Int64("listing_id", make([]int64, 10_001)...)
			return r
		}, ErrInvalidRequest, "at most 10000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := o.Get(context.Background(), tt.req())
			if !errors.Is(err, tt.sentinel) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %v, want %v containing %q", err, tt.sentinel, tt.msg)
			}
		})
	}
}

func TestDefinitionErrors(t *testing.T) {
	defs := Definitions{
		Sets: []SetDef{
			{Name: "a", JoinKeys: []JoinKeyDef{{"id", KeyInt64}}, Features: []FeatureDef{{"x", online.KindInt64}, {"x", online.KindFloat64}}},
			{Name: "a", JoinKeys: []JoinKeyDef{{"id", KeyInt64}}},
			{Name: "b", Features: []FeatureDef{{"y", online.KindMissing}}, TTL: -time.Second},
		},
		Services: []ServiceDef{{Name: "s", Features: []string{"a:nope", "zzz"}}},
	}
	_, err := NewOnline(nil, defs, Options{})
	if err == nil {
		t.Fatal("NewOnline accepted broken definitions")
	}
	for _, want := range []string{"a: feature x defined twice", "a: defined twice", "b: no join keys", "b: negative ttl", "feature y has type missing", `"a:nope"`, `"zzz"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestAppendValue(t *testing.T) {
	tests := []struct {
		v    online.Value
		want string
	}{
		{online.Null, "null"},
		{online.Missing, "null"},
		{online.Int64(math.MinInt64), "-9223372036854775808"},
		{online.Float64(0.1), "0.1"},
		{online.Float64(1e21), "1e+21"},
		{online.Float64(1300), "1300.0"},
		{online.Float64(-2), "-2.0"},
		{online.Float64(1e6), "1000000.0"},
		{online.Float64(1e-7), "1e-7"},
		{online.Float64(math.NaN()), "null"},
		{online.Float64(math.Inf(1)), "null"},
		{online.Bool(false), "false"},
		// As encoding/json escapes: HTML-sensitive <>& and U+2028 too, \b and \f short.
		{online.String("a\"b\\c\n\x01é\xff<&>\u2028\b"), `"a\"b\\c\n\u0001é\ufffd\u003c\u0026\u003e\u2028\b"`},
		{online.Time(time.Date(2021, 12, 31, 23, 0, 0, 5e8, time.FixedZone("x", 3600))), `"2021-12-31T22:00:00.500Z"`},
	}
	for _, tt := range tests {
		if got := string(appendValue(nil, tt.v)); got != tt.want {
			t.Errorf("appendValue(%v) = %s, want %s", tt.v, got, tt.want)
		}
	}
}

// TestPooledVectorsKeepKeysApart reads, one after the other, a plan whose
// second set shares the first's keys and a plan whose second set has keys of
// its own: a pooled Vectors must not encode the second plan's keys into the
// memory the first plan's sets shared.
func TestPooledVectorsKeepKeysApart(t *testing.T) {
	o := testOnline(t)
	for range 20 {
		shared := &Request{FeatureService: "ranker"}
		shared.Entities.Int64("listing_id", 1)
		v, err := o.Get(context.Background(), shared)
		if err != nil {
			t.Fatal(err)
		}
		v.Release()
		own := &Request{Features: []string{"listing_profile:rent", "user_profile:budget"}}
		own.Entities.Int64("listing_id", 1)
		own.Entities.String("user_id", "u1")
		if v, err = o.Get(context.Background(), own); err != nil {
			t.Fatal(err)
		}
		rent, st, _ := v.Get(2, 0)
		v.Release()
		if st != StatusPresent || rent.Float64() != 1500 {
			t.Fatalf("listing 1 rent after a shared-key plan: %v %s, want 1500 PRESENT", rent.Any(), st)
		}
	}
}

// TestOnDemandFailuresCounted answers a value that cannot be computed (an
// int64 division by zero) as null, and counts it.
func TestOnDemandFailuresCounted(t *testing.T) {
	store := testOnline(t).Store()
	p, err := ondemand.Compile([]ondemand.Var{{Name: "clicks_sum_1d", Kind: online.KindInt64}},
		[]ondemand.Expr{{Name: "per_zero", Kind: online.KindInt64, Source: "clicks_sum_1d / 0"}})
	if err != nil {
		t.Fatal(err)
	}
	defs := testDefs()
	defs.OnDemand = append(defs.OnDemand, OnDemandDef{Name: "broken", Program: p, Inputs: []string{"listing_engagement:clicks_sum_1d"}})
	m := NewMetrics()
	o, err := NewOnline(store, defs, Options{Now: func() time.Time { return now }, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	req := &Request{Features: []string{"broken:per_zero"}}
	req.Entities.Int64("listing_id", 1, 3)
	v, err := o.Get(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Release()
	for r := range 2 {
		if val, st, _ := v.Get(1, r); !val.IsNull() || st != StatusNullValue {
			t.Errorf("row %d: %v %s, want null NULL_VALUE", r, val.Any(), st)
		}
	}
	// Listing 3 has no row: its null is a missing input, not a failure.
	if got := testutil.ToFloat64(m.onDemandFailed.WithLabelValues("broken", "per_zero")); got != 1 {
		t.Errorf("failures counted = %v, want 1", got)
	}
}
