// Package pipeline turns a feature set's spec into a SQL plan for a time range,
// validates the SQL of a catalog against the sources' schemas, and records runs in
// the metadata DB. The plan is SQL in DuckDB's dialect; engines execute it.
//
// # Window semantics
//
// An aggregated set has a row at every slide step T (multiples of the slide since
// the Unix epoch, so midnight UTC for 1d) that falls on the run's days, for every
// key whose largest window holds at least one source row. Window w of the row at T
// aggregates the source rows with T - w <= ts < T: never a row at T or later. Over
// an empty window sum, count and count_distinct are 0 and the other aggregates
// null. Because every window is a multiple of the slide, a source row belongs to
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

// Relations a plan creates (temporary tables of the connection running it).
const (
	EventsTable = "atrium_events"
	OutputTable = "atrium_output"
)

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
	// Events creates EventsTable from the source (one row per source row read);
	// Output creates OutputTable (keys, timestamp, the set's columns) from it.
	Events, Output string
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
	fs := f.Set(set)
	if fs == nil {
		return nil, fmt.Errorf("unknown feature set %q", set)
	}
	start, end = start.UTC().Truncate(Day), end.UTC().Truncate(Day)
	if end.Before(start) {
		return nil, fmt.Errorf("feature set %s: end %s is before start %s", set, end.Format(time.DateOnly), start.Format(time.DateOnly))
	}
	p := &Plan{Set: fs, Keys: f.JoinKeys(set), Source: f.Source(fs.Source), Start: start, End: end}
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
	ts := fmt.Sprintf("CAST(%s AS TIMESTAMP)", quality.Quote(p.Source.Timestamp))
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
		sel = append(sel, "epoch_us("+ts+") AS atrium_us")
		for i, ft := range fs.Features {
			expr := "(" + ft.Expr + ")"
			if !countOnly(ft) {
				expr = "CAST(" + expr + " AS " + ft.Type.SQL() + ")"
			}
			sel = append(sel, fmt.Sprintf("%s AS x%d", expr, i))
		}
	} else {
		sel = append(sel, ts+" AS "+quality.Quote(spec.TimestampColumn))
		for _, ft := range fs.Features {
			sel = append(sel, fmt.Sprintf("CAST((%s) AS %s) AS %s", ft.Expr, ft.Type.SQL(), quality.Quote(ft.Name)))
		}
	}
	p.Events = fmt.Sprintf("CREATE OR REPLACE TEMP TABLE %s AS SELECT %s FROM %s AS atrium_source WHERE %s",
		EventsTable, strings.Join(sel, ", "), source, where)
	var body string
	if fs.Aggregated() {
		body = aggregateSQL(p)
	} else {
		body = "SELECT * FROM " + EventsTable
	}
	p.Output = fmt.Sprintf("CREATE OR REPLACE TEMP TABLE %s AS %s", OutputTable, withDerived(fs, body))
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
func withDerived(fs *spec.FeatureSet, body string) string {
	if len(fs.Derived) == 0 {
		return body
	}
	sel := []string{"*"}
	for _, d := range fs.Derived {
		sel = append(sel, fmt.Sprintf("CAST((%s) AS %s) AS %s", d.Expr, d.Type.SQL(), quality.Quote(d.Name)))
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
//	grid    each part row repeated for every step whose largest window holds it
//	agg     per (key, step): each window combines the partials of its buckets
//	cd<i>   count_distinct of feature i: for each distinct value, the steps at
//	        which its latest earlier occurrence is inside the window, as +1/-1
//	        deltas summed over steps and joined to agg with ASOF
func aggregateSQL(p *Plan) string {
	fs := p.Set
	slide := us(fs.Slide.D())
	keys := quoteAll(p.Keys)
	keyList := strings.Join(keys, ", ")
	bucket := fmt.Sprintf("atrium_us - (((atrium_us %% %d) + %d) %% %d)", slide, slide, slide)

	partSel := []string{keyList, "atrium_b", "count(*) AS atrium_rows"}
	needStd := false
	for i, ft := range fs.Features {
		x := fmt.Sprintf("x%d", i)
		partSel = append(partSel, fmt.Sprintf("count(%s) AS p%d_n", x, i))
		if has(ft, spec.Sum, spec.Avg) {
			partSel = append(partSel, fmt.Sprintf("sum(%s) AS p%d_s", x, i))
		}
		if has(ft, spec.Min) {
			partSel = append(partSel, fmt.Sprintf("min(%s) AS p%d_mn", x, i))
		}
		if has(ft, spec.Max) {
			partSel = append(partSel, fmt.Sprintf("max(%s) AS p%d_mx", x, i))
		}
		if has(ft, spec.Last) {
			partSel = append(partSel, fmt.Sprintf("arg_max(%s, atrium_us) AS p%d_lv", x, i),
				fmt.Sprintf("max(atrium_us) FILTER (WHERE %s IS NOT NULL) AS p%d_lt", x, i))
		}
		if has(ft, spec.StddevPop, spec.StddevSamp) {
			needStd = true
			partSel = append(partSel, fmt.Sprintf("avg(CAST(%s AS DOUBLE)) AS p%d_mean", x, i),
				fmt.Sprintf("COALESCE(var_pop(CAST(%s AS DOUBLE)) * count(%s), 0) AS p%d_m2", x, x, i))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "WITH part AS (SELECT %s FROM (SELECT *, %s AS atrium_b FROM %s) GROUP BY %s, atrium_b)",
		strings.Join(partSel, ", "), bucket, EventsTable, keyList)
	partRel := "part"
	if needStd {
		// Variances combine across buckets by Chan's formula around a per-key
		// reference (the mean of the key's bucket means), which keeps the sums of
		// squared deviations small and the result accurate when values are large.
		sel := []string{"*"}
		for i, ft := range fs.Features {
			if has(ft, spec.StddevPop, spec.StddevSamp) {
				d := fmt.Sprintf("COALESCE(p%d_mean - avg(p%d_mean) OVER (PARTITION BY %s), 0)", i, i, keyList)
				sel = append(sel, fmt.Sprintf("p%d_n * %s AS p%d_nd", i, d, i), fmt.Sprintf("p%d_n * %s * %s AS p%d_nd2", i, d, d, i))
			}
		}
		fmt.Fprintf(&b, ", part2 AS (SELECT %s FROM part)", strings.Join(sel, ", "))
		partRel = "part2"
	}
	steps := us(fs.LargestWindow().D()) / slide
	fmt.Fprintf(&b, ", grid AS (SELECT p.*, p.atrium_b + o.i * %d AS atrium_t FROM %s p CROSS JOIN range(1, %d) o(i) WHERE p.atrium_b + o.i * %d BETWEEN %d AND %d)",
		slide, partRel, steps+1, slide, us(sinceEpoch(p.FirstStep)), us(sinceEpoch(p.LastStep)))

	aggSel := []string{keyList, "atrium_t"}
	var outSel []string
	for _, k := range keys {
		outSel = append(outSel, "a."+k)
	}
	outSel = append(outSel, "make_timestamp(a.atrium_t) AS "+quality.Quote(spec.TimestampColumn))
	var joins []string
	for _, col := range fs.Columns() {
		if col.Derived {
			continue
		}
		i := featureIndex(fs, col.Feature)
		if col.Agg == spec.CountDistinct {
			wi := windowIndex(fs, col.Window)
			outSel = append(outSel, fmt.Sprintf("CAST(COALESCE(cd%d.c%d, 0) AS BIGINT) AS %s", i, wi, quality.Quote(col.Name)))
			continue
		}
		filter := fmt.Sprintf(" FILTER (WHERE atrium_b >= atrium_t - %d)", us(col.Window.D()))
		sum := func(c string) string { return fmt.Sprintf("sum(p%d_%s)%s", i, c, filter) }
		var e string
		switch col.Agg {
		case spec.Sum:
			e = "COALESCE(" + sum("s") + ", 0)"
		case spec.Count:
			e = "COALESCE(" + sum("n") + ", 0)"
		case spec.Avg:
			e = fmt.Sprintf("CAST(%s AS DOUBLE) / NULLIF(%s, 0)", sum("s"), sum("n"))
		case spec.Min:
			e = fmt.Sprintf("min(p%d_mn)%s", i, filter)
		case spec.Max:
			e = fmt.Sprintf("max(p%d_mx)%s", i, filter)
		case spec.Last:
			e = fmt.Sprintf("arg_max(p%d_lv, p%d_lt)%s", i, i, filter)
		case spec.StddevPop, spec.StddevSamp:
			m2 := fmt.Sprintf("greatest(%s + %s - %s * %s / NULLIF(%s, 0), 0)", sum("m2"), sum("nd2"), sum("nd"), sum("nd"), sum("n"))
			div, min := sum("n"), "0"
			if col.Agg == spec.StddevSamp {
				div, min = sum("n")+" - 1", "1"
			}
			e = fmt.Sprintf("CASE WHEN %s > %s THEN sqrt(%s / (%s)) END", sum("n"), min, m2, div)
		}
		aggSel = append(aggSel, fmt.Sprintf("CAST(%s AS %s) AS %s", e, col.Type.SQL(), quality.Quote(col.Name)))
		outSel = append(outSel, "a."+quality.Quote(col.Name))
	}
	fmt.Fprintf(&b, ", agg AS (SELECT %s FROM grid GROUP BY %s, atrium_t)", strings.Join(aggSel, ", "), keyList)
	for i, ft := range fs.Features {
		if !has(ft, spec.CountDistinct) {
			continue
		}
		b.WriteString(countDistinctCTEs(fs, i, keyList, bucket, slide))
		on := []string{}
		for _, k := range keys {
			on = append(on, fmt.Sprintf("a.%s = cd%d.%s", k, i, k))
		}
		joins = append(joins, fmt.Sprintf(" ASOF LEFT JOIN cd%d ON %s AND a.atrium_t >= cd%d.atrium_step", i, strings.Join(on, " AND "), i))
	}
	fmt.Fprintf(&b, " SELECT %s FROM agg a%s", strings.Join(outSel, ", "), strings.Join(joins, ""))
	return b.String()
}

// countDistinctCTEs computes the running distinct counts of feature i per window.
// A distinct (key, value, bucket) occurrence b with the value's next occurrence
// nb is the latest one before step T for T in (b, nb]; it is inside window w
// when T <= b + w. So it contributes +1 at step b + slide and -1 after
// min(nb, b + w); summing deltas over steps gives the count at every step.
func countDistinctCTEs(fs *spec.FeatureSet, i int, keyList, bucket string, slide int64) string {
	n := len(fs.Windows)
	deltas := func(v func(wi int) string) string {
		d := make([]string, n)
		for wi := range d {
			d[wi] = v(wi)
		}
		return strings.Join(d, ", ")
	}
	// The first branch names the delta columns d0, d1, ...; UNION ALL keeps them.
	parts := []string{fmt.Sprintf("SELECT %s, atrium_b + %d AS atrium_step, %s FROM cdo%d", keyList, slide,
		deltas(func(wi int) string { return fmt.Sprintf("1 AS d%d", wi) }), i)}
	for wi, w := range fs.Windows {
		end := fmt.Sprintf("least(COALESCE(atrium_nb, atrium_b + %d), atrium_b + %d) + %d", us(w.D()), us(w.D()), slide)
		parts = append(parts, fmt.Sprintf("SELECT %s, %s, %s FROM cdo%d", keyList, end, deltas(func(x int) string {
			if x == wi {
				return "-1"
			}
			return "0"
		}), i))
	}
	sums := deltas(func(wi int) string { return fmt.Sprintf("sum(d%d) AS d%d", wi, wi) })
	runs := deltas(func(wi int) string { return fmt.Sprintf("sum(d%d) OVER w AS c%d", wi, wi) })
	return fmt.Sprintf(", cdo%d AS (SELECT %s, atrium_b, lead(atrium_b) OVER (PARTITION BY %s, atrium_x ORDER BY atrium_b) AS atrium_nb"+
		" FROM (SELECT DISTINCT %s, x%d AS atrium_x, %s AS atrium_b FROM %s WHERE x%d IS NOT NULL))"+
		", cdd%d AS (SELECT %s, atrium_step, %s FROM (%s) GROUP BY %s, atrium_step)"+
		", cd%d AS (SELECT %s, atrium_step, %s FROM cdd%d WINDOW w AS (PARTITION BY %s ORDER BY atrium_step ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))",
		i, keyList, keyList, keyList, i, bucket, EventsTable, i,
		i, keyList, sums, strings.Join(parts, " UNION ALL "), keyList,
		i, keyList, runs, i, keyList)
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

func sinceEpoch(t time.Time) time.Duration { return time.Duration(t.UnixMicro()) * time.Microsecond }

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
