package predlog

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	_ "github.com/duckdb/duckdb-go/v2"
)

// t0 is 07:59:59.999999 UTC: records a few seconds apart straddle hours.
var t0 = time.Date(2026, 12, 5, 7, 59, 59, 999999000, time.UTC)

func openTest(t testing.TB, opts Options) *Writer {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.FlushInterval == 0 {
		opts.FlushInterval = time.Hour // tests flush explicitly
	}
	w, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	return w
}

// rankRecord is a rank request: a user, n listings, numeric and categorical
// features, a missing value of each kind.
func rankRecord(id string, at time.Time, version string, n int) Record {
	r := Record{
		RequestID: id, Time: at, Model: "ranker", Version: version, Route: RouteRank, RoutingKey: "u-" + id, Rows: n,
		Context:     []Field{{"user_id", "u-" + id}},
		Entities:    []Column{{"listing_id", make([]string, n)}},
		Features:    []string{"rent", "rent_over_budget"},
		Categorical: []string{"neighbourhood"},
		Latency:     Latency{Total: 2345678 * time.Nanosecond, Fetch: 1234 * time.Microsecond, Model: 987654 * time.Nanosecond},
	}
	if version == "2" {
		r.Features = append(r.Features, "photos") // a feature only version 2 takes
	}
	nf := len(r.Features)
	r.Values = make([]float64, n*nf)
	r.Strings = make([]string, n)
	r.Scores = make([]float64, n)
	for i := range n {
		r.Entities[0].Values[i] = fmt.Sprintf("l%d", i)
		for j := range nf {
			r.Values[i*nf+j] = float64(i)*1.5 + float64(j)/3
		}
		r.Strings[i] = []string{"Mitte", "Kreuzberg", "it's \"quoted\""}[i%3]
		r.Scores[i] = 1 / (1 + float64(i))
	}
	r.Values[nf] = math.NaN() // row 1's rent is missing
	r.Strings[n-1] = ""       // the last row's neighbourhood is missing
	return r
}

// classRecord is an infer request of a multiclass model, with no entity keys
// and a name that needs escaping in a path.
func classRecord(id string, at time.Time) Record {
	return Record{
		RequestID: id, Time: at, Model: "churn=3 classes.v2", Version: "7", Route: RouteInfer, Rows: 2,
		Features: []string{"tenure"}, Values: []float64{3, math.NaN()},
		Outputs: 3, Scores: []float64{0.1, 0.2, 0.7, 0.3, 0.3, 0.4},
	}
}

// expand is what Read must return for a record logged at rate.
func expand(r Record, rate float64) []Row {
	out := make([]Row, r.Rows)
	outs := r.outputs()
	for i := range out {
		row := Row{
			RequestID: r.RequestID, Row: i, NRows: r.Rows, Time: r.Time.UTC().Truncate(time.Microsecond),
			Model: r.Model, Version: r.Version, Route: r.Route, RoutingKey: r.RoutingKey, SampleRate: rate,
			Latency: r.Latency, Scores: append([]float64(nil), r.Scores[i*outs:(i+1)*outs]...),
		}
		if len(r.Context)+len(r.Entities) > 0 {
			row.Entities = map[string]string{}
		}
		for _, f := range r.Context {
			row.Entities[f.Name] = f.Value
		}
		for _, c := range r.Entities {
			row.Entities[c.Name] = c.Values[i]
		}
		if len(r.Features)+len(r.Categorical) > 0 {
			row.Features, row.Categorical = map[string]float64{}, map[string]string{}
		}
		for j, f := range r.Features {
			if v := r.Values[i*len(r.Features)+j]; !math.IsNaN(v) {
				row.Features[f] = v
			}
		}
		for j, f := range r.Categorical {
			if v := r.Strings[i*len(r.Categorical)+j]; v != "" {
				row.Categorical[f] = v
			}
		}
		out[i] = row
	}
	return out
}

func sortRows(rows []Row) {
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if !a.Time.Equal(b.Time) {
			return a.Time.Before(b.Time)
		}
		if a.RequestID != b.RequestID {
			return a.RequestID < b.RequestID
		}
		if a.Route != b.Route {
			return a.Route < b.Route
		}
		if a.Model != b.Model {
			return a.Model < b.Model
		}
		return a.Row < b.Row
	})
}

// TestRoundTrip logs requests of two models and versions across three hours
// in two flushes, and reads back exactly what was logged: missing values,
// strings, multiclass scores, context keys on every row.
func TestRoundTrip(t *testing.T) {
	w := openTest(t, Options{})
	var recs []Record
	for i := range 12 {
		at := t0.Add(time.Duration(i) * 20 * time.Minute / 3) // 0 to 73 minutes: hours 07, 08, 09
		version := "1"
		if i >= 6 {
			version = "2"
		}
		recs = append(recs, rankRecord(fmt.Sprintf("r%02d", i), at, version, 5))
		if i%4 == 0 {
			// Another time zone: partitions are by UTC hour all the same.
			recs = append(recs, classRecord(fmt.Sprintf("c%02d", i), at.In(time.FixedZone("IST", 5*3600+1800))))
		}
		if i == 6 {
			// A shadow of the same request, on the other version.
			s := rankRecord(fmt.Sprintf("r%02d", i), at, "1", 5)
			s.Route = RouteShadow
			recs = append(recs, s)
		}
	}
	var want []Row
	for i, r := range recs {
		want = append(want, expand(r, 1)...)
		if !w.Log(r) {
			t.Fatalf("Log(%s) = false", r.RequestID)
		}
		if i == len(recs)/2 {
			if err := w.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	readsBack(t, w.opts.Dir, want)
	if n := testutil.ToFloat64(w.m.rows.WithLabelValues("ranker")); n != 65 {
		t.Errorf("rows written for ranker = %v, want 65", n)
	}
	// Two flushes x (ranker, churn) x hours: every file in its partition.
	files, err := Files(w.opts.Dir, "", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, f := range files {
		rel, _ := filepath.Rel(filepath.Join(w.opts.Dir, "predictions"), filepath.Dir(f))
		parts = append(parts, rel)
	}
	wantParts := []string{
		"model=churn%3D3%20classes.v2/date=2026-12-05/hour=07",
		"model=churn%3D3%20classes.v2/date=2026-12-05/hour=08",
		"model=churn%3D3%20classes.v2/date=2026-12-05/hour=08", // the second flush's
		"model=ranker/date=2026-12-05/hour=07",
		"model=ranker/date=2026-12-05/hour=08",
		"model=ranker/date=2026-12-05/hour=08", // the second flush's
		"model=ranker/date=2026-12-05/hour=09",
	}
	if !reflect.DeepEqual(parts, wantParts) {
		t.Errorf("files in\n%s\nwant\n%s", strings.Join(parts, "\n"), strings.Join(wantParts, "\n"))
	}
	if n := testutil.ToFloat64(w.m.files); n != float64(len(wantParts)) {
		t.Errorf("files metric = %v, want %d", n, len(wantParts))
	}
}

// TestReadRange reads one model's rows of a time range: partitions outside it
// are not listed, rows of listed files outside it are filtered.
func TestReadRange(t *testing.T) {
	w := openTest(t, Options{})
	for i := range 10 {
		w.Log(rankRecord(fmt.Sprintf("r%d", i), t0.Add(time.Duration(i)*30*time.Minute), "1", 2)) // 07:59 .. 12:29
		w.Log(classRecord(fmt.Sprintf("c%d", i), t0.Add(time.Duration(i)*30*time.Minute)))
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	since, until := t0.Add(time.Hour), t0.Add(2*time.Hour+time.Microsecond) // 08:59:59.999999 to 10:00:00
	files, err := Files(w.opts.Dir, "ranker", since, until)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 { // hours 08 and 09
		t.Errorf("files = %v, want hours 08 and 09", files)
	}
	got, err := Read(context.Background(), w.opts.Dir, "ranker", since, until)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range got {
		if r.Row == 0 {
			ids = append(ids, r.RequestID)
		}
	}
	if want := []string{"r2", "r3", "r4"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("requests %v, want %v", ids, want)
	}
	_, err = Read(context.Background(), w.opts.Dir, "ranker", t0.Add(48*time.Hour), time.Time{})
	if !errorsIs(err, ErrNoPredictions) {
		t.Errorf("read of an empty range: %v, want ErrNoPredictions", err)
	}
	_, err = Read(context.Background(), w.opts.Dir, "nobody", time.Time{}, time.Time{})
	if !errorsIs(err, ErrNoPredictions) {
		t.Errorf("read of an unknown model: %v, want ErrNoPredictions", err)
	}
}

// TestDuckDBHive reads the files the way users and monitoring do, with a glob
// and hive partitioning: partitions are columns, features a struct, and
// unnest(entities) the skew check's spine.
func TestDuckDBHive(t *testing.T) {
	w := openTest(t, Options{SampleRate: 1})
	for i := range 6 {
		w.Log(rankRecord(fmt.Sprintf("r%d", i), t0.Add(time.Duration(i)*15*time.Minute), fmt.Sprint(1+i%2), 4))
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A temporary file a killed writer left: the glob must not read it.
	junk := filepath.Join(w.opts.Dir, "predictions", "model=ranker", "date=2026-12-05", "hour=08", ".1-1-00000000"+tempSuffix)
	if err := os.WriteFile(junk, []byte("PAR1 half written"), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	glob := filepath.Join(w.opts.Dir, "predictions", "model=ranker", "**", "*.parquet")
	q := fmt.Sprintf(`SELECT hour, count(*), count(DISTINCT request_id), count(features.rent), count(features.photos), avg(features.rent_over_budget),
			min(entities.user_id), count(DISTINCT model_version), any_value(typeof(date))
		FROM read_parquet('%s', hive_partitioning = true, union_by_name = true)
		WHERE date = DATE '2026-12-05' GROUP BY hour ORDER BY hour`, glob)
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var hour, user, dateType string
		var n, reqs, rent, photos, versions int
		var avg float64
		if err := rows.Scan(&hour, &n, &reqs, &rent, &photos, &avg, &user, &versions, &dateType); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %d %d %d %d %.4f %s %d %s", hour, n, reqs, rent, photos, avg, user, versions, dateType))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// Hour 07: r0 (v1). Hour 08: r1..r4 (v2, v1, v2, v1). Hour 09: r5 (v2).
	// Each request has 4 rows, one missing rent; photos only in version 2.
	want := []string{
		"07 4 1 3 0 2.5833 u-r0 1 DATE",
		"08 16 4 12 8 2.5833 u-r1 2 DATE",
		"09 4 1 3 4 2.5833 u-r5 1 DATE",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("per hour\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var spine string
	err = db.QueryRow(fmt.Sprintf(`SELECT string_agg(listing_id || '/' || user_id, ',' ORDER BY "timestamp", listing_id)
		FROM (SELECT unnest(entities), "timestamp" FROM read_parquet('%s', hive_partitioning = true, union_by_name = true) WHERE request_id = 'r2')`, glob)).Scan(&spine)
	if err != nil {
		t.Fatal(err)
	}
	if spine != "l0/u-r2,l1/u-r2,l2/u-r2,l3/u-r2" {
		t.Errorf("spine of r2 = %s", spine)
	}
	var version string
	if err := db.QueryRow(fmt.Sprintf(`SELECT value FROM parquet_kv_metadata('%s') WHERE key = '%s' LIMIT 1`, glob, FormatKey)).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version != FormatVersion {
		t.Errorf("format version %q, want %q", version, FormatVersion)
	}
	// The files use Parquet 2.0 encodings: the doubles' bytes split into
	// streams (BYTE_STREAM_SPLIT), which zstd packs tighter and faster than
	// plain doubles (BenchmarkFlushRank), and integers delta encoded.
	var encodings string
	err = db.QueryRow(fmt.Sprintf(`SELECT string_agg(DISTINCT path_in_schema || ':' || encodings, ' ' ORDER BY path_in_schema || ':' || encodings)
		FROM parquet_metadata('%s') WHERE path_in_schema IN ('score', 'features, rent', 'row')`, glob)).Scan(&encodings)
	if err != nil {
		t.Fatal(err)
	}
	if want := "features, rent:BYTE_STREAM_SPLIT row:DELTA_BINARY_PACKED score:BYTE_STREAM_SPLIT"; encodings != want {
		t.Errorf("encodings %q, want %q (PARQUET_VERSION V2)", encodings, want)
	}
}

func errorsIs(err, target error) bool {
	return isErr(err, target)
}

// TestFlushesReuseBuffers logs and flushes four times: from the third flush
// on, records are appended to the buffer an earlier flush took (emptied), and
// every row must still be read back once, with its own values.
func TestFlushesReuseBuffers(t *testing.T) {
	w := openTest(t, Options{})
	var want []Row
	logged := map[*float64]bool{} // the Values arrays handed to Log
	reused := 0
	for batch := range 4 {
		for i := range 3 + batch {
			r := rankRecord(fmt.Sprintf("b%d-r%d", batch, i), t0.Add(time.Duration(batch*10+i)*time.Second), "1", 2+i)
			want = append(want, expand(r, 1)...)
			// The values go in through Floats, which hands out the arrays
			// of records already written: each is overwritten whole.
			v := w.Floats(len(r.Values))
			if len(v) != len(r.Values) {
				t.Fatalf("Floats(%d) has %d values", len(r.Values), len(v))
			}
			if logged[&v[0]] {
				reused++
			}
			logged[&v[0]] = true
			r.Values = append(v[:0], r.Values...)
			if !w.Log(r) {
				t.Fatalf("Log(%s) = false", r.RequestID)
			}
		}
		if batch < 3 {
			if err := w.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			// Kept with its length, the buffer would grow by every flush.
			if len(w.spare) != 0 {
				t.Fatalf("flush %d: the spare buffer holds %d records, want none", batch, len(w.spare))
			}
		}
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A record left over in a reused buffer would be written again, or
	// refused as invalid once emptied: either way something other than
	// these rows.
	if n := testutil.CollectAndCount(w.m.dropped); n != 0 {
		t.Errorf("rows dropped under %d labels, want none", n)
	}
	readsBack(t, w.opts.Dir, want)
	// sync.Pool may drop any one array (under -race, a quarter of them on
	// purpose), not all nine of the later batches' that fit.
	if reused == 0 {
		t.Error("Floats never handed out a written record's values")
	}
}

// readsBack checks that Read of the log under dir gives exactly the rows
// want, which it sorts into Read's order (sortRows).
func readsBack(t *testing.T, dir string, want []Row) {
	t.Helper()
	got, err := Read(context.Background(), dir, "", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	sortRows(want)
	if len(got) != len(want) {
		t.Fatalf("read %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("row %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}
