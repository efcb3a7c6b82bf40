package retrieval_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/data/offline/offlinetest"
	"github.com/atrium-ml/atrium/internal/data/retrieval"
	"github.com/atrium-ml/atrium/internal/spec"
)

const historicalFeatures = `entities:
  - {name: user, join_keys: [user_id]}
  - {name: listing, join_keys: [listing_id]}
sources:
  - {name: s, format: csv, path: s.csv, timestamp: ts}
feature_sets:
  - name: user_stats
    entity: user
    source: s
    ttl: 2d
    features:
      - {name: v, type: int64, expr: v}
      - {name: tag, type: string, expr: tag}
  - name: listing_stats
    entity: listing
    source: s
    features:
      - {name: price, type: float64, expr: price}
  - name: user_more
    entity: user
    source: s
    ttl: 1h
    features:
      - {name: v, type: int64, expr: v}
on_demand_features:
  - name: pair
    sources: ["user_stats:v", "user_stats:tag", listing_stats]
    request: {discount: float64}
    features:
      - {name: net_price, type: float64, expr: "discount == null ? price : price - discount"}
      - {name: price_per_v, type: float64, expr: "price / double(v)"}
      - {name: tagged, type: string, expr: "tag + '-' + string(int(price))"}
  - name: request_only
    request: {discount: float64}
    features:
      - {name: half_discount, type: float64, expr: "discount / 2.0"}
feature_services:
  - {name: model, features: [user_stats, "listing_stats:price"]}
  - {name: with_pair, features: ["listing_stats:price", pair]}
`

func at(day, hour, min, sec int) time.Time {
	return time.Date(2024, 1, day, hour, min, sec, 0, time.UTC)
}

// historicalEngine stores the rows of offlinetest's pit/feast_semantics case:
// two rows of a key with the same timestamp written one after the other, a late
// row (earlier event time, written last), a row from the future of most spine
// rows, and keys missing from a set.
func historicalEngine(t *testing.T) (offline.Engine, *spec.Features) {
	t.Helper()
	ctx := context.Background()
	f, err := spec.ParseFeatures("features.yaml", []byte(historicalFeatures))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := duckdb.Open(ctx, t.TempDir(), offline.Options{Features: f})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	row := func(key any, ts time.Time, vals ...any) offline.LatestRow {
		return offline.LatestRow{Key: []any{key}, TS: ts, Values: vals}
	}
	for _, batch := range [][]offline.LatestRow{
		{row("u1", at(1, 10, 0, 0), 1, "a"), row("u1", at(2, 10, 0, 0), 2, "b"), row("u1", at(5, 0, 0, 0), 5, "e")},
		{row("u1", at(2, 10, 0, 0), 3, "c")},
		{row("u1", at(1, 12, 0, 0), 9, "late")},
	} {
		if err := eng.Append(ctx, "user_stats", batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := eng.Append(ctx, "listing_stats", []offline.LatestRow{row(int64(1), at(1, 0, 0, 0), 100.0), row(int64(1), at(3, 0, 0, 0), 110.0)}); err != nil {
		t.Fatal(err)
	}
	return eng, f
}

const spineCSV = `user_id,listing_id,ts,label
u1,1,2024-01-02 10:00:00,1
u1,1,2024-01-02 09:59:59,0
u1,2,2024-01-04 10:00:00,1
u1,1,2024-01-04 09:59:00,0
u1,1,2024-01-01 09:00:00,1
u2,1,2024-01-10 00:00:00,0
u1,3,2024-01-05 00:00:00,1
u1,1,,0
`

// wantFirst is the output's header and first row. The point-in-time rules
// themselves are the offline engines' contract, proved on these rows and more by
// the cases of internal/data/offline/offlinetest/testdata/pit; this package's
// tests check what Historical adds: resolving features, naming columns, errors.
var wantFirst = []string{
	"user_id,listing_id,ts,label,v,tag,price",
	"u1,1,2024-01-02 10:00:00,1,3,c,100",
}

func readOut(t *testing.T, path string) []string {
	t.Helper()
	read := "read_csv"
	if strings.HasSuffix(path, ".parquet") {
		read = "read_parquet"
	}
	return offlinetest.Lines(t, "SELECT * FROM "+read+"('"+path+"')")
}

// TestHistoricalPointInTime checks that a service resolves to its features and
// the join is written to CSV and to Parquet (in a directory that does not exist
// yet), through a temporary file that does not stay behind.
func TestHistoricalPointInTime(t *testing.T) {
	eng, f := historicalEngine(t)
	dir := t.TempDir()
	spine := filepath.Join(dir, "spine.csv")
	if err := os.WriteFile(spine, []byte(spineCSV), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{filepath.Join(dir, "train.csv"), filepath.Join(dir, "sub", "train.parquet")} {
		res, err := retrieval.Historical(context.Background(), eng, f, retrieval.HistoricalRequest{Spine: spine, Service: "model", Out: out})
		if err != nil {
			t.Fatal(err)
		}
		if res.Rows != 8 || strings.Join(res.Columns, ",") != wantFirst[0] || len(res.Features) != 3 {
			t.Errorf("result = %+v", res)
		}
		if got := readOut(t, out); len(got) != 9 || strings.Join(got[:2], "\n") != strings.Join(wantFirst, "\n") {
			t.Errorf("%s:\n%s\nwant 8 rows after\n%s", filepath.Base(out), strings.Join(got, "\n"), strings.Join(wantFirst, "\n"))
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*tmp"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestHistoricalNamesAndErrors(t *testing.T) {
	ctx := context.Background()
	eng, f := historicalEngine(t)
	dir := t.TempDir()
	spine := filepath.Join(dir, "spine.csv")
	if err := os.WriteFile(spine, []byte(spineCSV), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "o.csv")
	if _, err := retrieval.Historical(ctx, eng, f, retrieval.HistoricalRequest{Spine: spine, TimeColumn: "ts", Features: []string{"user_stats:v", "user_more:v"}, Out: out, FullNames: true}); err != nil {
		t.Fatal(err)
	}
	got := readOut(t, out)
	if got[0] != "user_id,listing_id,ts,label,user_stats__v,user_more__v" || got[1] != "u1,1,2024-01-02 10:00:00,1,3,NULL" {
		t.Errorf("full names:\n%s", strings.Join(got, "\n"))
	}
	badSpine := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(badSpine, []byte("user,ts\nu1,2024-01-01\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	twoTimes := filepath.Join(dir, "two.csv")
	if err := os.WriteFile(twoTimes, []byte("user_id,a,b\nu1,2024-01-01,2024-01-02\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	labelClash := filepath.Join(dir, "clash.csv")
	if err := os.WriteFile(labelClash, []byte("user_id,ts,v\nu1,2024-01-01,1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	intKeys := filepath.Join(dir, "ints.csv")
	if err := os.WriteFile(intKeys, []byte("user_id,ts\n1,2024-01-01\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		req  retrieval.HistoricalRequest
		want string
		is   error
	}{
		{retrieval.HistoricalRequest{Spine: spine, Features: []string{"user_stats:v", "user_more:v"}, Out: out}, "share an output name (user_stats:v and user_more:v); use full feature names", offline.ErrInvalid},
		{retrieval.HistoricalRequest{Spine: spine, Service: "model", Features: []string{"user_stats"}, Out: out}, "not both or neither", offline.ErrInvalid},
		{retrieval.HistoricalRequest{Spine: spine, Features: []string{"user_stats:nope"}, Out: out}, `unknown feature "nope"`, spec.ErrUnknownFeature},
		{retrieval.HistoricalRequest{Spine: badSpine, Service: "model", Out: out}, `has no column "user_id", the join key of feature set user_stats`, offline.ErrInvalid},
		{retrieval.HistoricalRequest{Spine: twoTimes, Features: []string{"user_stats:v"}, Out: out}, "cannot tell which column is the time", offline.ErrInvalid},
		{retrieval.HistoricalRequest{Spine: spine, TimeColumn: "when", Service: "model", Out: out}, `no time column "when"`, offline.ErrInvalid},
		{retrieval.HistoricalRequest{Spine: labelClash, Features: []string{"user_stats:v"}, Out: out}, `feature column "v" has the name of a spine column`, offline.ErrInvalid},
		{retrieval.HistoricalRequest{Spine: intKeys, Features: []string{"user_stats:v"}, Out: out}, "spine column user_id has type BIGINT but feature set user_stats stores it as VARCHAR", offline.ErrInvalid},
		{retrieval.HistoricalRequest{Spine: filepath.Join(dir, "missing.csv"), Service: "model", Out: out}, "missing.csv", offline.ErrInvalid},
		{retrieval.HistoricalRequest{Spine: spine, Service: "model", Out: filepath.Join(dir, "o.xlsx")}, "expected a .csv or .parquet file name", offline.ErrInvalid},
	}
	for _, tt := range tests {
		_, err := retrieval.Historical(ctx, eng, f, tt.req)
		if !errors.Is(err, tt.is) || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Historical(%+v) error = %v, want %v containing %q", tt.req, err, tt.is, tt.want)
		}
	}
}

// TestHistoricalOnDemand computes on-demand features after the join: from
// requested features, from features joined only as inputs (left out of the
// file), and from a request value of the spine; a missing input, a division
// by zero or an input past its ttl gives a null.
func TestHistoricalOnDemand(t *testing.T) {
	ctx := context.Background()
	eng, f := historicalEngine(t)
	dir := t.TempDir()
	spine := filepath.Join(dir, "spine.csv")
	data := `user_id,listing_id,ts,discount
u1,1,2024-01-02 10:00:00,10.5
u1,1,2024-01-04 10:00:00,
u1,2,2024-01-02 10:00:00,1
u2,1,2024-01-02 10:00:00,
`
	if err := os.WriteFile(spine, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{filepath.Join(dir, "o.csv"), filepath.Join(dir, "o.parquet")} {
		res, err := retrieval.Historical(ctx, eng, f, retrieval.HistoricalRequest{Spine: spine, Service: "with_pair", Out: out})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			"user_id,listing_id,ts,discount,price,net_price,price_per_v,tagged",
			"u1,1,2024-01-02 10:00:00,10.5,100,89.5,33.3333333333,c-100",
			"u1,1,2024-01-04 10:00:00,NULL,110,110,NULL,NULL", // user_stats is past its 2d ttl
			"u1,2,2024-01-02 10:00:00,1,NULL,NULL,NULL,NULL",
			"u2,1,2024-01-02 10:00:00,NULL,100,100,NULL,NULL",
		}
		if got := readOut(t, out); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n%s\nwant\n%s", filepath.Base(out), strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if strings.Join(res.Columns, ",") != want[0] || res.Rows != 4 || res.OnDemandFailed != 0 {
			t.Errorf("result = %+v", res)
		}
	}
	// Full names, one on-demand feature; a spine without the request value.
	out := filepath.Join(dir, "full.csv")
	if _, err := retrieval.Historical(ctx, eng, f, retrieval.HistoricalRequest{Spine: spine, Features: []string{"pair:price_per_v"}, FullNames: true, Out: out}); err != nil {
		t.Fatal(err)
	}
	if got := readOut(t, out); got[0] != "user_id,listing_id,ts,discount,pair__price_per_v" || got[1] != "u1,1,2024-01-02 10:00:00,10.5,33.3333333333" {
		t.Errorf("full names:\n%s", strings.Join(got, "\n"))
	}
	// An on-demand set of request values only: no feature set is joined.
	if _, err := retrieval.Historical(ctx, eng, f, retrieval.HistoricalRequest{Spine: spine, Features: []string{"request_only"}, Out: out}); err != nil {
		t.Fatal(err)
	}
	if got := readOut(t, out); strings.Join(got, "|") != "user_id,listing_id,ts,discount,half_discount|u1,1,2024-01-02 10:00:00,10.5,5.25|u1,1,2024-01-04 10:00:00,NULL,NULL|u1,2,2024-01-02 10:00:00,1,0.5|u2,1,2024-01-02 10:00:00,NULL,NULL" {
		t.Errorf("request values only:\n%s", strings.Join(got, "\n"))
	}
	noDiscount := filepath.Join(dir, "nodiscount.csv")
	if err := os.WriteFile(noDiscount, []byte("user_id,listing_id,ts\nu1,1,2024-01-02 10:00:00\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := retrieval.Historical(ctx, eng, f, retrieval.HistoricalRequest{Spine: noDiscount, Features: []string{"pair:net_price"}, Out: out})
	if !errors.Is(err, offline.ErrInvalid) || !strings.Contains(err.Error(), `has no column "discount", a request value of the on-demand features`) {
		t.Errorf("spine without the request value: %v", err)
	}
}

// TestHistoricalOnDemandBatches joins a spine of more rows than one batch of
// computed rows: every row gets its own value, in spine order.
func TestHistoricalOnDemandBatches(t *testing.T) {
	eng, f := historicalEngine(t)
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("user_id,listing_id,ts,discount\n")
	const rows = 20000
	for i := range rows {
		fmt.Fprintf(&b, "u1,1,2024-01-02 10:00:00,%d\n", i)
	}
	spine, out := filepath.Join(dir, "spine.csv"), filepath.Join(dir, "o.parquet")
	if err := os.WriteFile(spine, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := retrieval.Historical(context.Background(), eng, f, retrieval.HistoricalRequest{Spine: spine, Features: []string{"pair:net_price"}, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	// net_price = 100 - discount; discount is the row's index.
	got := offlinetest.Lines(t, "SELECT count(*), count(*) FILTER (WHERE net_price IS DISTINCT FROM 100 - discount), "+
		"count(*) FILTER (WHERE discount IS DISTINCT FROM i - 1) FROM (SELECT *, row_number() OVER () AS i FROM read_parquet('"+out+"'))")
	if res.Rows != rows || len(got) != 2 || got[1] != fmt.Sprintf("%d,0,0", rows) {
		t.Errorf("%d rows: %v", res.Rows, got)
	}
}
