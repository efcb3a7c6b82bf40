// Package pipeline turns a feature set's spec into a SQL plan for a time range,
// validates the SQL of a catalog against the sources' schemas, and records runs in
// the metadata DB. The plan is SQL in DuckDB's dialect or another (Dialect); engines execute it.
//
// # Window semantics
//
// An aggregated set has a row at every slide step T (multiples of the slide since
// the Unix epoch, so midnight UTC for 1d) that falls on the run's days, for every
// key whose largest window holds at least one source row. Window w of the row at T
// aggregates the source rows with T - w <= ts < T: never a row at T or later. Over
// an empty window (or one whose values are all NULL) sum, count and
// count_distinct are 0 and the other aggregates null. Because every window is a multiple of the slide, a source row belongs to
// window w of step T exactly when its slide bucket does, so the plan aggregates
// each (key, bucket) once and combines buckets per step and window.
package pipeline

import (
	"fmt"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/data/quality"
	"github.com/atrium-ml/atrium/internal/spec"
)

// EventsTable is the temporary table a plan creates (on the connection running it).
const EventsTable = "atrium_events"

// Day is the length of a date partition.
const Day = 24 * time.Hour

// Plan computes one feature set over whole UTC days.
type Plan struct {
	Set    *spec.FeatureSet
	Keys   []string
	Source *spec.Source
	// Start and End are the first and last day (UTC midnight) of the run.
	Start, End time.Time
	// ReadFrom <= ts < ReadTo bounds the source rows read.
	ReadFrom, ReadTo time.Time
	// FirstStep and LastStep bound an aggregated set's steps (zero for a plain set;
	// FirstStep after LastStep when no step falls on the run's days).
	FirstStep, LastStep time.Time
	// AsOf is when freshness checks measure from: the last step, or the end of the
	// last day for a plain set.
	AsOf time.Time
	// Dates are the partitions the run replaces (YYYY-MM-DD), Start to End.
	Dates []string
	// Events creates EventsTable from the source (one row per source row read)
	// in DuckDB (EventsQuery is its query, for engines that create the table
	// their own way); Output is the query of the feature rows (keys, timestamp,
	// the set's columns) over it. Both are in the plan's Dialect.
	Events, EventsQuery, Output string
	// Dialect is the SQL dialect of the plan's queries.
	Dialect *Dialect
}

// Dialect spells the few constructs where engines' SQL differs. Everything
// else a plan uses (CTEs, window frames and named windows, FILTER, USING
// joins, lag with a default, double-quoted identifiers) reads the same in
// DuckDB and in Spark SQL with ANSI mode and double-quoted identifiers on.
type Dialect struct {
	// Name names the dialect in errors.
	Name string
	// Type is the SQL type of a spec type.
	Type func(t spec.Type) string
	// Timestamp converts a source column of (DuckDB) type sqlType, one that
	// TimestampCompatible accepts, to a UTC timestamp.
	Timestamp func(col, sqlType string) string
	// EpochMicros is a timestamp's microseconds since the Unix epoch (BIGINT).
	EpochMicros func(ts string) string
	// FromMicros is the timestamp at us microseconds since the epoch.
	FromMicros func(us string) string
	// Series is a select-list expression that turns each row into one row per
	// value lo, lo+step, ... below hiExcl (lo < hiExcl).
	Series func(lo, hiExcl, step string) string
	// LastBy is the aggregate of x at the greatest ord among rows where x is
	// not NULL (NULL when there is none).
	LastBy func(x, ord string) string
}

// DuckDB is the dialect of the embedded engine.
var DuckDB = &Dialect{
	Name:        "duckdb",
	Type:        spec.Type.SQL,
	Timestamp:   TimestampExpr,
	EpochMicros: func(ts string) string { return "epoch_us(" + ts + ")" },
	FromMicros:  func(us string) string { return "make_timestamp(" + us + ")" },
	Series: func(lo, hiExcl, step string) string {
		return fmt.Sprintf("unnest(range(%s, %s, %s))", lo, hiExcl, step)
	},
	// arg_max skips rows whose x is NULL.
	LastBy: func(x, ord string) string { return fmt.Sprintf("arg_max(%s, %s)", x, ord) },
}

// SourceColumn is a column of a source or query with its SQL type.
type SourceColumn struct {
	Name string
	Type string
}

// Build plans set over the days start..end (UTC dates, both included). source is a
// SQL relation reading the source's files, and schema its columns: keys must be
// integer or text columns and the timestamp column a timestamp, date or ISO text.
func Build(f *spec.Features, set string, start, end time.Time, source string, schema []SourceColumn) (*Plan, error) {
	return BuildDialect(f, set, start, end, source, schema, DuckDB)
}

// BuildDialect is Build with the plan's queries in dialect d. schema's types
// are DuckDB's names whatever the dialect (see SourceColumn).
func BuildDialect(f *spec.Features, set string, start, end time.Time, source string, schema []SourceColumn, d *Dialect) (*Plan, error) {
	fs := f.Set(set)
	if fs == nil {
		return nil, fmt.Errorf("unknown feature set %q", set)
	}
	start, end = start.UTC().Truncate(Day), end.UTC().Truncate(Day)
	if end.Before(start) {
		return nil, fmt.Errorf("feature set %s: end %s is before start %s", set, end.Format(time.DateOnly), start.Format(time.DateOnly))
	}
	p := &Plan{Set: fs, Keys: f.JoinKeys(set), Source: f.Source(fs.Source), Start: start, End: end, Dialect: d}
	if p.Source == nil || len(p.Keys) == 0 {
		return nil, fmt.Errorf("feature set %s: source or entity missing from the catalog", set)
	}
	types := map[string]string{}
	for _, c := range schema {
		types[c.Name] = c.Type
	}
	keySQL, err := keyColumns(p.Keys, types, p.Source)
	if err != nil {
		return nil, err
	}
	tsType, ok := types[p.Source.Timestamp]
	if !ok {
		return nil, fmt.Errorf("source %s: no timestamp column %q in the files, expected one of: %s", p.Source.Name, p.Source.Timestamp, columnNames(schema))
	}
	if !TimestampCompatible(tsType) {
		return nil, fmt.Errorf("source %s: timestamp column %q has type %s, expected TIMESTAMP, DATE or ISO-8601 text", p.Source.Name, p.Source.Timestamp, tsType)
	}
	for d := start; !d.After(end); d = d.Add(Day) {
		p.Dates = append(p.Dates, d.Format(time.DateOnly))
	}
	endExcl := end.Add(Day)
	ts := d.Timestamp(quality.Quote(p.Source.Timestamp), tsType)
	if fs.Aggregated() {
		slide := fs.Slide.D()
		first := ceilTo(start, slide)
		last := ceilTo(endExcl, slide).Add(-slide)
		p.FirstStep, p.LastStep, p.AsOf = first, last, last
		p.ReadFrom, p.ReadTo = first.Add(-fs.LargestWindow().D()), last
	} else {
		p.ReadFrom, p.ReadTo, p.AsOf = start, endExcl, endExcl
	}
	where := fmt.Sprintf("%s >= %s AND %s < %s", ts, tsLit(p.ReadFrom), ts, tsLit(p.ReadTo))
	for _, k := range p.Keys {
		where += " AND " + quality.Quote(k) + " IS NOT NULL"
	}
	if fs.Where != "" {
		where += " AND (" + fs.Where + ")"
	}
	sel := append([]string(nil), keySQL...)
	if fs.Aggregated() {
		sel = append(sel, d.EpochMicros(ts)+" AS atrium_us")
		for i, ft := range fs.Features {
			expr := "(" + ft.Expr + ")"
			if !countOnly(ft) {
				expr = "CAST(" + expr + " AS " + d.Type(ft.Type) + ")"
			}
			sel = append(sel, fmt.Sprintf("%s AS atrium_x%d", expr, i))
		}
	} else {
		sel = append(sel, ts+" AS "+quality.Quote(spec.TimestampColumn))
		for _, ft := range fs.Features {
			sel = append(sel, fmt.Sprintf("CAST((%s) AS %s) AS %s", ft.Expr, d.Type(ft.Type), quality.Quote(ft.Name)))
		}
	}
	p.EventsQuery = fmt.Sprintf("SELECT %s FROM %s AS atrium_source WHERE %s", strings.Join(sel, ", "), source, where)
	p.Events = fmt.Sprintf("CREATE OR REPLACE TEMP TABLE %s AS %s", EventsTable, p.EventsQuery)
	var body string
	if fs.Aggregated() {
		body = aggregateSQL(p)
	} else {
		body = "SELECT * FROM " + EventsTable
	}
	p.Output = withDerived(fs, body, d)
	return p, nil
}

// keyColumns casts integer keys to BIGINT and keeps text keys.
func keyColumns(keys []string, types map[string]string, src *spec.Source) ([]string, error) {
	out := make([]string, len(keys))
	for i, k := range keys {
		t, ok := types[k]
		switch {
		case !ok:
			return nil, fmt.Errorf("source %s: no join key column %q in the files", src.Name, k)
		case IntegerType(t):
			out[i] = fmt.Sprintf("CAST(%s AS BIGINT) AS %s", quality.Quote(k), quality.Quote(k))
		case t == "VARCHAR":
			out[i] = quality.Quote(k)
		default:
			return nil, fmt.Errorf("source %s: join key %q has type %s, expected an integer or text column", src.Name, k, t)
		}
	}
	return out, nil
}

// withDerived wraps a query with the set's derived features.
func withDerived(fs *spec.FeatureSet, body string, dl *Dialect) string {
	if len(fs.Derived) == 0 {
		return body
	}
	sel := []string{"*"}
	for _, d := range fs.Derived {
		sel = append(sel, fmt.Sprintf("CAST((%s) AS %s) AS %s", d.Expr, dl.Type(d.Type), quality.Quote(d.Name)))
	}
	return fmt.Sprintf("SELECT %s FROM (%s) AS atrium_features", strings.Join(sel, ", "), body)
}

// countOnly reports a feature whose aggregations only count values: its
// expression keeps its own type (counting user ids works whatever their type).
func countOnly(ft *spec.Feature) bool {
	for _, a := range ft.Aggs {
		if !a.IsCount() {
			return false
		}
	}
	return true
}

func has(ft *spec.Feature, aggs ...spec.Agg) bool {
	for _, a := range ft.Aggs {
		for _, b := range aggs {
			if a == b {
				return true
			}
		}
	}
	return false
}

// aggregateSQL is the body of an aggregated set's output query. CTEs:
//
//	part    one row per (key, bucket) with partial aggregates per feature
//	grid    every step of each key, dense, from its first bucket to its last
//	        bucket + the largest window (capped at the run's last step)
//	cdo<i>  for count_distinct of feature i, each distinct (key, value, bucket)
//	        with the value's next bucket; cdd<i> turns them into +1/-1 deltas
//	sd      for standard deviations, DuckDB's windowed stddev over the source
//	        rows themselves, read at a marker row per grid step
//	g       grid rows with the partials and deltas of their step (NULL if none)
//	c       running sums per key of the integer partials and deltas
//	w       per step T and window w of k steps, the aggregates over the
//	        buckets T - w <= b < T
//
// How each aggregate combines buckets, and why:
//
//   - counts and integer sums: differences of running sums, lag(1) - lag(k + 1).
//     Integer arithmetic is exact, and the cost does not depend on k.
//   - float sums and averages: sum over the frame of the k previous rows (a
//     window frame, which DuckDB evaluates with a segment tree). A difference of
//     running totals would carry the rounding of every earlier row: 1.5 after
//     1e17 would come out 0. A frame sum adds only the window's own buckets.
//   - min, max, last: the same frames.
//   - standard deviations: over the source rows, a RANGE frame of
//     [T - w, T - 1] microseconds, so DuckDB merges only the window's own values
//     (Welford states combined by Chan's formula). Merging per-bucket
//     partials needs a per-row reference; a per-key one loses the result to
//     cancellation whenever the key's values elsewhere are far larger.
//
// Everything but the standard deviations is linear in the grid's size (plus
// sorts); joining each bucket to each step of its windows would multiply the
// rows by the number of steps in the largest window.
func aggregateSQL(p *Plan) string {
	fs, d := p.Set, p.Dialect
	slide := us(fs.Slide.D())
	maxW := us(fs.LargestWindow().D())
	last := p.LastStep.UnixMicro()
	keys := quoteAll(p.Keys)
	keyList := strings.Join(keys, ", ")
	bucket := fmt.Sprintf("atrium_us - (((atrium_us %% %d) + %d) %% %d)", slide, slide, slide)

	// additive partials are combined through running sums; the others through frames.
	additive := []string{"atrium_rows"}
	partSel := []string{keyList, "atrium_b AS atrium_s", "count(*) AS atrium_rows"}
	var framed, stddevs, stddevNames, stddevInputs []string
	for i, ft := range fs.Features {
		x := fmt.Sprintf("atrium_x%d", i)
		add := func(expr, name string) {
			partSel = append(partSel, expr+" AS "+name)
			additive = append(additive, name)
		}
		frame := func(expr, name string) {
			partSel = append(partSel, expr+" AS "+name)
			framed = append(framed, name)
		}
		if has(ft, spec.Count, spec.Avg) {
			add(fmt.Sprintf("count(%s)", x), fmt.Sprintf("atrium_p%d_n", i))
		}
		if has(ft, spec.Sum, spec.Avg) {
			if ft.Type == spec.Int64 {
				// Integer sums stay BIGINT (DuckDB widens them to HUGEINT, whose
				// running sums are several times slower); an overflow fails the run.
				add(fmt.Sprintf("CAST(sum(%s) AS BIGINT)", x), fmt.Sprintf("atrium_p%d_s", i))
			} else {
				frame(fmt.Sprintf("sum(%s)", x), fmt.Sprintf("atrium_p%d_s", i))
			}
		}
		if has(ft, spec.Min) {
			frame(fmt.Sprintf("min(%s)", x), fmt.Sprintf("atrium_p%d_mn", i))
		}
		if has(ft, spec.Max) {
			frame(fmt.Sprintf("max(%s)", x), fmt.Sprintf("atrium_p%d_mx", i))
		}
		if has(ft, spec.Last) {
			frame(d.LastBy(x, "atrium_us"), fmt.Sprintf("atrium_p%d_lv", i))
			frame(fmt.Sprintf("max(atrium_us) FILTER (WHERE %s IS NOT NULL)", x), fmt.Sprintf("atrium_p%d_lt", i))
		}
		if has(ft, spec.StddevPop, spec.StddevSamp) {
			stddevInputs = append(stddevInputs, x)
		}
		for _, agg := range []spec.Agg{spec.StddevPop, spec.StddevSamp} {
			if !has(ft, agg) {
				continue
			}
			for wi, w := range fs.Windows {
				name := stddevColumn(i, wi, agg)
				stddevNames = append(stddevNames, name)
				stddevs = append(stddevs, fmt.Sprintf("%s(CAST(%s AS DOUBLE)) OVER (PARTITION BY %s ORDER BY atrium_us RANGE BETWEEN %d PRECEDING AND 1 PRECEDING) AS %s",
					agg, x, keyList, us(w.D()), name))
				framed = append(framed, name)
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "WITH part AS (SELECT %s FROM (SELECT *, %s AS atrium_b FROM %s) GROUP BY %s, atrium_b)",
		strings.Join(partSel, ", "), bucket, EventsTable, keyList)
	fmt.Fprintf(&b, ", grid AS (SELECT %s, %s AS atrium_s"+
		" FROM (SELECT %s, min(atrium_s) AS atrium_lo, max(atrium_s) AS atrium_hi FROM part GROUP BY %s) WHERE atrium_lo < %d)",
		keyList, d.Series("atrium_lo", fmt.Sprintf("least(atrium_hi + %d, %d) + %d", maxW, last, slide), fmt.Sprint(slide)), keyList, keyList, last)
	using := "USING (" + keyList + ", atrium_s)"
	joins := fmt.Sprintf("grid LEFT JOIN part %s", using)
	if len(stddevs) > 0 {
		// The source rows and a marker row (no values, atrium_m) at each grid step,
		// in one frame order; the values are read at the markers. A marker at T
		// ends its frames at T - 1 microsecond: a row at T is not in them.
		nulls := make([]string, len(stddevInputs))
		for i, x := range stddevInputs {
			nulls[i] = "NULL AS " + x
		}
		fmt.Fprintf(&b, ", sd AS (SELECT %s, atrium_us AS atrium_s, %s FROM (SELECT %s, atrium_us, atrium_m, %s FROM"+
			" (SELECT %s, atrium_us, %s, false AS atrium_m FROM %s UNION ALL SELECT %s, atrium_s AS atrium_us, %s, true AS atrium_m FROM grid)"+
			") AS atrium_sd WHERE atrium_m)", keyList, strings.Join(stddevNames, ", "), keyList, strings.Join(stddevs, ", "),
			keyList, strings.Join(stddevInputs, ", "), EventsTable, keyList, strings.Join(nulls, ", "))
		joins += " LEFT JOIN sd " + using
	}
	var running []string // running sums: additive partials and count_distinct deltas
	for _, a := range additive {
		running = append(running, fmt.Sprintf("sum(COALESCE(%s, 0)) OVER wc AS atrium_c_%s", a, a))
	}
	for i, ft := range fs.Features {
		if !has(ft, spec.CountDistinct) {
			continue
		}
		b.WriteString(countDistinctCTEs(fs, i, keyList, bucket, slide))
		joins += fmt.Sprintf(" LEFT JOIN cdd%d %s", i, using)
		for wi := range fs.Windows {
			running = append(running, fmt.Sprintf("sum(COALESCE(atrium_cd%d_d%d, 0)) OVER wc AS atrium_c_atrium_cd%d_d%d", i, wi, i, wi))
		}
	}
	fmt.Fprintf(&b, ", g AS (SELECT * FROM %s)", joins)
	fmt.Fprintf(&b, ", c AS (SELECT %s, atrium_s, %s FROM g WINDOW wc AS (PARTITION BY %s ORDER BY atrium_s ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))",
		keyList, strings.Join(append(append([]string(nil), framed...), running...), ", "), keyList)

	sel := append([]string(nil), keys...)
	sel = append(sel, "atrium_s")
	windowSum := func(col string, steps int64) string {
		return fmt.Sprintf("(lag(atrium_c_%s, 1, 0) OVER wl - lag(atrium_c_%s, %d, 0) OVER wl)", col, col, steps+1)
	}
	sel = append(sel, windowSum("atrium_rows", maxW/slide)+" AS atrium_n")
	var outCols []string // w's feature columns, named (no EXCLUDE in Spark SQL)
	windows := []string{fmt.Sprintf("wl AS (PARTITION BY %s ORDER BY atrium_s)", keyList)}
	for wi, w := range fs.Windows {
		windows = append(windows, fmt.Sprintf("w%d AS (PARTITION BY %s ORDER BY atrium_s ROWS BETWEEN %d PRECEDING AND 1 PRECEDING)",
			wi, keyList, us(w.D())/slide))
	}
	for _, col := range fs.Columns() {
		if col.Derived {
			continue
		}
		i := featureIndex(fs, col.Feature)
		wi := windowIndex(fs, col.Window)
		k := us(col.Window.D()) / slide
		sum := func(c string) string { return windowSum(fmt.Sprintf("atrium_p%d_%s", i, c), k) }
		frame := func(agg string) string { return fmt.Sprintf("%s OVER w%d", agg, wi) }
		integer := fs.Features[i].Type == spec.Int64
		var e string
		switch col.Agg {
		case spec.Sum:
			e = sum("s")
			if !integer {
				// A window without values (no rows, or only NULLs) sums to 0.
				e = fmt.Sprintf("COALESCE(%s, 0)", frame(fmt.Sprintf("sum(atrium_p%d_s)", i)))
			}
		case spec.Count:
			e = sum("n")
		case spec.Avg:
			e = fmt.Sprintf("CAST(%s AS DOUBLE) / NULLIF(%s, 0)", sum("s"), sum("n"))
			if !integer {
				e = fmt.Sprintf("%s / NULLIF(%s, 0)", frame(fmt.Sprintf("sum(atrium_p%d_s)", i)), sum("n"))
			}
		case spec.Min:
			e = frame(fmt.Sprintf("min(atrium_p%d_mn)", i))
		case spec.Max:
			e = frame(fmt.Sprintf("max(atrium_p%d_mx)", i))
		case spec.Last:
			e = frame(d.LastBy(fmt.Sprintf("atrium_p%d_lv", i), fmt.Sprintf("atrium_p%d_lt", i)))
		case spec.StddevPop, spec.StddevSamp:
			e = stddevColumn(i, wi, col.Agg)
		case spec.CountDistinct:
			e = fmt.Sprintf("atrium_c_atrium_cd%d_d%d", i, wi)
		}
		sel = append(sel, fmt.Sprintf("CAST(%s AS %s) AS %s", e, d.Type(col.Type), quality.Quote(col.Name)))
		outCols = append(outCols, quality.Quote(col.Name))
	}
	fmt.Fprintf(&b, ", w AS (SELECT %s FROM c WINDOW %s)", strings.Join(sel, ", "), strings.Join(windows, ", "))
	outSel := append([]string(nil), keys...)
	outSel = append(outSel, d.FromMicros("atrium_s")+" AS "+quality.Quote(spec.TimestampColumn))
	outSel = append(outSel, outCols...)
	fmt.Fprintf(&b, " SELECT %s FROM w WHERE atrium_n > 0 AND atrium_s BETWEEN %d AND %d",
		strings.Join(outSel, ", "), p.FirstStep.UnixMicro(), last)
	return b.String()
}

// stddevColumn names the column of the sd CTE holding a standard deviation of
// feature i over window wi.
func stddevColumn(i, wi int, agg spec.Agg) string {
	return fmt.Sprintf("atrium_sd%d_%d_%s", i, wi, agg)
}

// countDistinctCTEs computes the distinct-count deltas of feature i per window.
// A distinct (key, value, bucket) occurrence b with the value's next occurrence
// nb is the latest one before step T for T in (b, nb]; it is inside window w
// when T <= b + w. So it contributes +1 at step b + slide and -1 after
// min(nb, b + w); a running sum of the deltas over steps is the count.
func countDistinctCTEs(fs *spec.FeatureSet, i int, keyList, bucket string, slide int64) string {
	n := len(fs.Windows)
	deltas := func(v func(wi int) string) string {
		d := make([]string, n)
		for wi := range d {
			d[wi] = v(wi)
		}
		return strings.Join(d, ", ")
	}
	// The first branch names the delta columns; UNION ALL keeps the names.
	parts := []string{fmt.Sprintf("SELECT %s, atrium_b + %d AS atrium_s, %s FROM cdo%d", keyList, slide,
		deltas(func(wi int) string { return fmt.Sprintf("1 AS atrium_cd%d_d%d", i, wi) }), i)}
	for wi, w := range fs.Windows {
		end := fmt.Sprintf("least(COALESCE(atrium_nb, atrium_b + %d), atrium_b + %d) + %d", us(w.D()), us(w.D()), slide)
		parts = append(parts, fmt.Sprintf("SELECT %s, %s, %s FROM cdo%d", keyList, end, deltas(func(x int) string {
			if x == wi {
				return "-1"
			}
			return "0"
		}), i))
	}
	sums := deltas(func(wi int) string {
		return fmt.Sprintf("CAST(sum(atrium_cd%d_d%d) AS BIGINT) AS atrium_cd%d_d%d", i, wi, i, wi)
	})
	return fmt.Sprintf(", cdo%d AS (SELECT %s, atrium_b, lead(atrium_b) OVER (PARTITION BY %s, atrium_x ORDER BY atrium_b) AS atrium_nb"+
		" FROM (SELECT DISTINCT %s, atrium_x%d AS atrium_x, %s AS atrium_b FROM %s WHERE atrium_x%d IS NOT NULL))"+
		", cdd%d AS (SELECT %s, atrium_s, %s FROM (%s) GROUP BY %s, atrium_s)",
		i, keyList, keyList, keyList, i, bucket, EventsTable, i,
		i, keyList, sums, strings.Join(parts, " UNION ALL "), keyList)
}

func featureIndex(fs *spec.FeatureSet, name string) int {
	for i, f := range fs.Features {
		if f.Name == name {
			return i
		}
	}
	return -1
}

func windowIndex(fs *spec.FeatureSet, w spec.Duration) int {
	for i, x := range fs.Windows {
		if x == w {
			return i
		}
	}
	return -1
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = quality.Quote(n)
	}
	return out
}

func columnNames(cols []SourceColumn) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

func us(d time.Duration) int64 { return int64(d / time.Microsecond) }

// ceilTo rounds t up to a multiple of d since the Unix epoch.
func ceilTo(t time.Time, d time.Duration) time.Time {
	// time.Truncate rounds relative to year 1, not the epoch: use epoch arithmetic.
	u, step := t.UnixMicro(), us(d)
	m := u - ((u%step)+step)%step
	if m < u {
		m += step
	}
	return time.UnixMicro(m).UTC()
}

func tsLit(t time.Time) string {
	return "TIMESTAMP '" + t.UTC().Format("2006-01-02 15:04:05.999999") + "'"
}

// IntegerType reports SQL integer types.
func IntegerType(t string) bool {
	switch t {
	case "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "HUGEINT":
		return true
	}
	return false
}

// TimestampExpr converts a column of SQL type sqlType (one TimestampCompatible
// accepts) to a UTC TIMESTAMP. Text goes through TIMESTAMPTZ so that an offset
// ("2024-01-01T10:00:00+02:00") is honoured; text without one is taken as UTC.
func TimestampExpr(col, sqlType string) string {
	if sqlType == "VARCHAR" {
		return fmt.Sprintf("CAST(CAST(%s AS TIMESTAMPTZ) AS TIMESTAMP)", col)
	}
	return fmt.Sprintf("CAST(%s AS TIMESTAMP)", col)
}

// TimestampCompatible reports SQL types a timestamp column may have.
func TimestampCompatible(t string) bool {
	return strings.HasPrefix(t, "TIMESTAMP") || t == "DATE" || t == "VARCHAR"
}

// Compatible reports whether an expression of SQL type sqlType may be declared as t.
func Compatible(t spec.Type, sqlType string) bool {
	if sqlType == "NULL" || sqlType == "\"NULL\"" {
		return true
	}
	switch t {
	case spec.Int64:
		return IntegerType(sqlType)
	case spec.Float64:
		return IntegerType(sqlType) || sqlType == "FLOAT" || sqlType == "DOUBLE" || strings.HasPrefix(sqlType, "DECIMAL")
	case spec.String:
		return sqlType == "VARCHAR" || strings.HasPrefix(sqlType, "ENUM")
	case spec.Bool:
		return sqlType == "BOOLEAN"
	case spec.Timestamp:
		return strings.HasPrefix(sqlType, "TIMESTAMP") || sqlType == "DATE"
	}
	return false
}
