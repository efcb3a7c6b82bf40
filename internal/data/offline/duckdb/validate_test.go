package duckdb_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/spec"
)

func TestValidateSQL(t *testing.T) {
	yaml := `entities:
  - {name: listing, join_keys: [listing_id]}
  - {name: city, join_keys: [city_name]}
sources:
  - {name: events, format: csv, path: events.csv, timestamp: ts}
  - {name: later, format: parquet, path: later/*.parquet, timestamp: ts}
  - {name: broken, format: csv, path: events.csv, timestamp: nots}
feature_sets:
  - name: good
    entity: listing
    source: events
    where: "event <> 'bot'"
    windows: [1d]
    features:
      - {name: clicks, type: int64, expr: "CAST(event = 'click' AS INTEGER)", aggs: [sum]}
      - {name: users, type: int64, expr: user_id, aggs: [count_distinct]}
      - {name: price, type: float64, expr: price, aggs: [avg]}
    derived:
      - {name: ratio, type: float64, expr: "clicks_sum_1d / NULLIF(users_count_distinct_1d, 0)"}
  - name: bad
    entity: listing
    source: events
    where: "event"
    features:
      - {name: a, type: int64, expr: "user_id +"}
      - {name: b, type: string, expr: "listing_id * 2"}
      - {name: c, type: float64, expr: "nosuchcol"}
      - {name: d, type: float64, expr: "sum(price)"}
      - {name: e, type: int64, expr: "1); DROP TABLE x; SELECT (1"}
      - {name: f, type: bool, expr: "price"}
    derived:
      - {name: g, type: float64, expr: "zz / 2"}
      - {name: h, type: int64, expr: "b"}
  - name: no_key
    entity: city
    source: events
    features:
      - {name: x, type: float64, expr: price}
  - name: not_yet
    entity: listing
    source: later
    features:
      - {name: y, type: int64, expr: "whatever_column"}
      - {name: z, type: int64, expr: "1 +"}
      - {name: w, type: int64, expr: "1) AS q, (2"}
  - name: escapes
    entity: listing
    source: events
    where: "event = 'click') OR (true"
    features:
      - {name: i, type: float64, expr: "price) AS a, (price"}
      - {name: j, type: float64, expr: "(SELECT 1.0)"}
      - {name: k, type: bool, expr: "listing_id IN (SELECT 1)"}
      - {name: l, type: int64, expr: "row_number() OVER ()"}
      - {name: m, type: float64, expr: "price) FILTER (WHERE true"}
      - {name: n, type: float64, expr: "price) FROM events WHERE (true"}
      - {name: o, type: float64, expr: "price), (price"}
      - {name: p, type: float64, expr: "((price))"}
    derived:
      - {name: q, type: float64, expr: "i) AS r, (1"}
      - {name: s, type: float64, expr: "EXISTS (SELECT 1)"}
`
	dir := repo(t, map[string]string{"features.yaml": yaml, "events.csv": "listing_id,user_id,event,price,ts\n1,7,click,9.5,2024-01-01 10:00:00\n"})
	f, err := spec.ParseFeatures("features.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	e, err := duckdb.Open(context.Background(), t.TempDir(), offline.Options{Features: f, BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	problems, notes := e.ValidateSQL(context.Background(), f)
	got := problems.Error()
	for _, want := range []string{
		`features.yaml:7: source "broken": no timestamp column "nots"`,
		`features.yaml:23: feature set "bad": where: type mismatch: expression "event" has type VARCHAR, declared bool`,
		`features.yaml:25: feature set "bad": feature a: bad SQL expression "user_id +": syntax error at or near`,
		`features.yaml:26: feature set "bad": feature b: type mismatch: expression "listing_id * 2" has type BIGINT, declared string`,
		`features.yaml:27: feature set "bad": feature c: bad SQL expression "nosuchcol": Binder Error: Referenced column "nosuchcol" not found`,
		`features.yaml:28: feature set "bad": feature d: bad SQL expression "sum(price)": aggregate functions are not allowed`,
		`features.yaml:29: feature set "bad": feature e: bad SQL expression "1); DROP TABLE x; SELECT (1": expected one SQL expression`,
		`features.yaml:30: feature set "bad": feature f: type mismatch: expression "price" has type DOUBLE, declared bool`,
		`features.yaml:32: feature set "bad": derived feature g: bad SQL expression "zz / 2": Binder Error`,
		`features.yaml:33: feature set "bad": derived feature h: type mismatch: expression "b" has type VARCHAR, declared int64`,
		`features.yaml:35: feature set "no_key": source "events" has no join key column "city_name"`,
		`features.yaml:44: feature set "not_yet": feature z: bad SQL expression "1 +": syntax error at or near`,
		`features.yaml:45: feature set "not_yet": feature w: bad SQL expression "1) AS q, (2": expected one SQL expression, got text that continues past it`,
		`features.yaml:49: feature set "escapes": where: bad SQL expression "event = 'click') OR (true": expected one SQL expression, got text that continues past it`,
		`features.yaml:51: feature set "escapes": feature i: bad SQL expression "price) AS a, (price": expected one SQL expression`,
		`features.yaml:52: feature set "escapes": feature j: bad SQL expression "(SELECT 1.0)": subqueries are not allowed`,
		`features.yaml:53: feature set "escapes": feature k: bad SQL expression "listing_id IN (SELECT 1)": subqueries are not allowed`,
		`features.yaml:54: feature set "escapes": feature l: bad SQL expression "row_number() OVER ()": window functions are not allowed`,
		`features.yaml:55: feature set "escapes": feature m: bad SQL expression "price) FILTER (WHERE true": expected one SQL expression`,
		`features.yaml:56: feature set "escapes": feature n: bad SQL expression "price) FROM events WHERE (true": expected one SQL expression`,
		`features.yaml:57: feature set "escapes": feature o: bad SQL expression "price), (price": expected one SQL expression`,
		`features.yaml:60: feature set "escapes": derived feature q: bad SQL expression "i) AS r, (1": expected one SQL expression`,
		`features.yaml:61: feature set "escapes": derived feature s: bad SQL expression "EXISTS (SELECT 1)": subqueries are not allowed`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q", want)
		}
	}
	if len(problems) != 23 {
		t.Errorf("got %d problems, want 23:\n%s", len(problems), got)
	}
	if strings.Contains(got, `"good"`) || strings.Contains(got, "whatever_column") || strings.Contains(got, "feature p:") {
		t.Errorf("valid definitions reported:\n%s", got)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], `source "later": no file matches later/*.parquet yet`) {
		t.Errorf("notes = %q", notes)
	}
	// A catalog that was never validated (registered by an older apply) cannot
	// paste such an expression into a run's plan either.
	_, err = e.Run(context.Background(), offline.RunRequest{Set: "escapes", Start: date(t, "2024-01-01"), End: date(t, "2024-01-01")})
	if !errors.Is(err, offline.ErrInvalid) || !strings.Contains(err.Error(), `where: bad SQL expression "event = 'click') OR (true": expected one SQL expression`) {
		t.Errorf("run of a set with an escaping where = %v, want ErrInvalid naming it", err)
	}
}
