package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/atrium-ml/atrium/internal/data/pipeline"
	"github.com/atrium-ml/atrium/internal/data/profile"
)

// profileSeed seeds the row hash that orders the partition samples, so that
// a rerun over the same rows draws the same samples.
const profileSeed = 42

// profileColumn is a feature column to profile and its SQL value expression:
// numbers as DOUBLE with NaN and ±Inf as NULL (profile's missing values),
// the rest as VARCHAR with ” as NULL.
type profileColumn struct {
	name, kind, expr string
}

// profileColumns are the set's feature columns of the staged output (not
// the join keys nor the timestamp), in output order. Dates, times and nested
// types are not profiled.
func profileColumns(cols []pipeline.SourceColumn, keys []string) []profileColumn {
	var out []profileColumn
	for _, c := range cols {
		if c.Name == "timestamp" || slices.Contains(keys, c.Name) {
			continue
		}
		q := quoteIdent(c.Name)
		switch profile.SQLKind(c.Type) {
		case profile.Numeric:
			// Only floats can be NaN or ±Inf: testing integers and decimals
			// too cost as much as the cast, on every row of every pass.
			x := fmt.Sprintf("CAST(%s AS DOUBLE)", q)
			if floatType(c.Type) {
				x = fmt.Sprintf("(CASE WHEN isfinite(%s) THEN %s END)", x, x)
			}
			out = append(out, profileColumn{c.Name, profile.Numeric, x})
		case profile.Categorical:
			out = append(out, profileColumn{c.Name, profile.Categorical, fmt.Sprintf("NULLIF(CAST(%s AS VARCHAR), '')", q)})
		}
	}
	return out
}

// floatType reports whether a column of SQL type typ (DuckDB's names) holds
// floating-point numbers.
func floatType(typ string) bool {
	base, _, _ := strings.Cut(strings.ToUpper(strings.TrimSpace(typ)), "(")
	switch base {
	case "FLOAT", "DOUBLE", "REAL", "FLOAT4", "FLOAT8":
		return true
	}
	return false
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// sqlFloat is a DOUBLE literal that round-trips v.
func sqlFloat(v float64) string {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return "NULL"
	}
	return fmt.Sprintf("CAST(%s AS DOUBLE)", fmt.Sprint(v))
}

func scanRows(ctx context.Context, conn *sql.Conn, q string, fn func(*sql.Rows) error) error {
	rows, err := conn.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// profile profiles each day of the run from its staged files (a day without
// rows gets a profile of 0 rows, so an empty day shows in the trends), with
// the statistics of profile.Build computed by DuckDB in queries grouped by
// date over all the staged files at once: one pass for counts,
// distinct-count estimates, min and max; one for mean, std and 50-bin
// histograms between each day's min and max (profile.BinIndex's rule); one
// for the 5,000-row samples; one per categorical column for the top 100
// categories. A query per partition and kind (4 x 90 for a 90-day run)
// left one of the two cores idle most of the time; grouped, the profile
// stage takes half the wall time and 14-22% less CPU (docs/benchmarks.md,
// "Partition profiles in `atrium run`", which also says what the CPU goes
// to: the per-value aggregates, not the number of queries).
//
// A row's day is the date of its timestamp, which is how stage (and every
// Compute) partitions the output; profileDays checks it against the row
// counts of each day's files, so a profile never mixes partitions.
func (e *Engine) profile(ctx context.Context, conn *sql.Conn, plan *pipeline.Plan, keys []string, staged map[string][]string) (map[string]*profile.Profile, error) {
	schema, err := describe(ctx, conn, "SELECT * FROM "+outputView)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	cols := profileColumns(schema, keys)
	out := make(map[string]*profile.Profile, len(plan.Dates))
	var files []string
	for _, d := range plan.Dates {
		day, err := time.Parse(time.DateOnly, d)
		if err != nil {
			return nil, fmt.Errorf("profile %s: %w", d, err)
		}
		p := &profile.Profile{Version: profile.Version, Start: day, End: day.Add(pipeline.Day), Columns: make([]profile.Column, len(cols))}
		for i, c := range cols {
			p.Columns[i] = profile.Column{Name: c.name, Kind: c.kind}
		}
		out[d] = p
		files = append(files, staged[d]...)
	}
	// Without profiled columns the statistics still count each day's rows.
	if len(files) > 0 {
		q := profileQuery{conn: conn, cols: cols, days: out, base: profileBase(cols, keys)}
		if err := q.stats(ctx); err != nil {
			return nil, fmt.Errorf("profile statistics: %w", err)
		}
		if err := profileDays(ctx, conn, staged, out); err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
		if err := q.moments(ctx); err != nil {
			return nil, fmt.Errorf("profile moments and histograms: %w", err)
		}
		if err := q.sample(ctx); err != nil {
			return nil, fmt.Errorf("profile samples: %w", err)
		}
		if err := q.categories(ctx); err != nil {
			return nil, fmt.Errorf("profile categories: %w", err)
		}
	}
	for _, p := range out {
		finishProfile(p)
	}
	return out, nil
}

// profileBase is the relation every profile query reads: the day of each
// staged row (atrium_d), a seeded hash of the whole row (atrium_h, the
// sample's order: the same rows draw the same sample however DuckDB splits
// the work) and the profiled values as c0, c1, ... (names of our own, so
// that no feature's name can clash with the queries' other columns).
func profileBase(cols []profileColumn, keys []string) string {
	hashed := []string{fmt.Sprint(profileSeed), quoteIdent("timestamp")}
	for _, k := range keys {
		hashed = append(hashed, quoteIdent(k))
	}
	sel := []string{`CAST("timestamp" AS DATE) AS atrium_d`}
	for i, c := range cols {
		hashed = append(hashed, quoteIdent(c.name))
		sel = append(sel, fmt.Sprintf("%s AS c%d", c.expr, i))
	}
	sel = append(sel, fmt.Sprintf("hash(%s) AS atrium_h", strings.Join(hashed, ", ")))
	return fmt.Sprintf("(SELECT %s FROM %s)", strings.Join(sel, ", "), outputView)
}

// profileQuery runs the grouped profile queries of one run and fills days
// (by date, YYYY-MM-DD).
type profileQuery struct {
	conn *sql.Conn
	cols []profileColumn
	days map[string]*profile.Profile
	base string
	// sampledRows counts the rows sample drew of each day.
	sampledRows map[string]int64
}

// scanDays runs query and scans each row into dest, whose first element
// is a *any for the row's day, then calls fn with that day's profile.
func (q *profileQuery) scanDays(ctx context.Context, query string, dest []any, fn func(*profile.Profile) error) error {
	return scanRows(ctx, q.conn, query, func(r *sql.Rows) error {
		if err := r.Scan(dest...); err != nil {
			return err
		}
		v := *dest[0].(*any)
		t, ok := v.(time.Time)
		if !ok {
			return fmt.Errorf("day %v (%T)", v, v)
		}
		p, ok := q.days[t.Format(time.DateOnly)]
		if !ok {
			// stage rejects a row outside the run's days: this is a bug.
			return fmt.Errorf("rows on %s, not a day of the run", t.Format(time.DateOnly))
		}
		return fn(p)
	})
}

// stats fills rows, counts, distinct-count estimates and numeric ranges.
func (q *profileQuery) stats(ctx context.Context) error {
	sel := []string{"atrium_d", "count(*)"}
	for i, c := range q.cols {
		sel = append(sel, fmt.Sprintf("count(c%d)", i), fmt.Sprintf("approx_count_distinct(c%d)", i))
		if c.kind == profile.Numeric {
			sel = append(sel, fmt.Sprintf("min(c%d)", i), fmt.Sprintf("max(c%d)", i))
		}
	}
	var d any
	var rows int64
	counts, distincts := make([]int64, len(q.cols)), make([]int64, len(q.cols))
	lo, hi := make([]sql.NullFloat64, len(q.cols)), make([]sql.NullFloat64, len(q.cols))
	dest := []any{&d, &rows}
	for i, c := range q.cols {
		dest = append(dest, &counts[i], &distincts[i])
		if c.kind == profile.Numeric {
			dest = append(dest, &lo[i], &hi[i])
		}
	}
	return q.scanDays(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+q.base+" GROUP BY atrium_d", dest, func(p *profile.Profile) error {
		p.Rows = rows
		for i := range q.cols {
			col := &p.Columns[i]
			col.Count, col.Distinct = counts[i], distincts[i]
			col.Min, col.Max = lo[i].Float64, hi[i].Float64
		}
		return nil
	})
}

// profileDays checks that the rows stats found on each day are the rows of
// that day's staged files (their Parquet footers' counts): a row's day in
// the profile queries is its timestamp's, and this makes sure it is also
// its partition's.
func profileDays(ctx context.Context, conn *sql.Conn, staged map[string][]string, days map[string]*profile.Profile) error {
	var files []string
	dayOf := map[string]string{}
	for d, fs := range staged {
		for _, f := range fs {
			files = append(files, f)
			dayOf[f] = d
		}
	}
	list, err := fileList(files)
	if err != nil {
		return err
	}
	want := map[string]int64{}
	if err := scanRows(ctx, conn, "SELECT file_name, num_rows FROM parquet_file_metadata("+list+")", func(r *sql.Rows) error {
		var f string
		var n int64
		if err := r.Scan(&f, &n); err != nil {
			return err
		}
		d, ok := dayOf[f]
		if !ok {
			return fmt.Errorf("metadata of unknown file %s", f)
		}
		want[d] += n
		return nil
	}); err != nil {
		return fmt.Errorf("staged row counts: %w", err)
	}
	for d, p := range days {
		if p.Rows != want[d] {
			return fmt.Errorf("%d rows dated %s, but its partition holds %d", p.Rows, d, want[d])
		}
	}
	return nil
}

// moments fills numeric means, standard deviations and histograms in one
// pass joined with each day's ranges.
//
// Means and standard deviations are of x/scale (scale = the day's max |x|),
// so that stddev_samp cannot overflow on values near the float range. Bins
// are floor((x - min) / width) clamped to [0, bins-1], width = (max - min) /
// bins computed here in float64 as profile.BinIndex does; a constant column
// has one bin.
func (q *profileQuery) moments(ctx context.Context) error {
	// One row of parameters per day with rows: day, then per numeric column
	// its min, bin width and scale (NULL when the day has no value of it;
	// the width is NULL for a constant column, which has one bin).
	var params []string
	for d, p := range q.days {
		if p.Rows == 0 {
			continue
		}
		row := []string{"DATE " + sqlQuote(d)}
		for i, c := range q.cols {
			if c.kind != profile.Numeric {
				continue
			}
			col := &p.Columns[i]
			if col.Count == 0 {
				row = append(row, "NULL", "NULL", "NULL")
				continue
			}
			col.Histogram = &profile.Histogram{Edges: profile.HistogramEdges(col.Min, col.Max, profile.DefaultBins)}
			col.Histogram.Counts = make([]int64, len(col.Histogram.Edges)-1)
			width := "NULL"
			if col.Min != col.Max {
				width = sqlFloat((col.Max - col.Min) / float64(len(col.Histogram.Counts)))
			}
			row = append(row, sqlFloat(col.Min), width, sqlFloat(profileScale(col)))
		}
		params = append(params, "("+strings.Join(row, ", ")+")")
	}
	if len(params) == 0 {
		return nil // no day has rows
	}
	names := []string{"atrium_d"}
	sel := []string{"b.atrium_d"}
	for i, c := range q.cols {
		x := fmt.Sprintf("b.c%d", i)
		if c.kind == profile.Numeric {
			lo, w, s := fmt.Sprintf("p.lo%d", i), fmt.Sprintf("p.w%d", i), fmt.Sprintf("p.s%d", i)
			names = append(names, fmt.Sprintf("lo%d", i), fmt.Sprintf("w%d", i), fmt.Sprintf("s%d", i))
			// greatest and least skip NULLs: the outer CASE keeps a missing
			// value out of the histogram.
			bin := fmt.Sprintf("CASE WHEN %s IS NOT NULL THEN CASE WHEN %s IS NULL THEN CAST(0 AS BIGINT) ELSE least(greatest(CAST(floor((%s - %s) / %s) AS BIGINT), 0), %d) END END",
				x, w, x, lo, w, profile.DefaultBins-1)
			sel = append(sel, fmt.Sprintf("avg(%s / %s)", x, s), fmt.Sprintf("stddev_samp(%s / %s)", x, s), "histogram("+bin+")")
		}
	}
	// Every parameter column is DOUBLE even when a whole column of it is NULL.
	typed := make([]string, len(names))
	for k, n := range names {
		typed[k] = "CAST(" + n + " AS DOUBLE) AS " + n
		if k == 0 {
			typed[k] = n
		}
	}
	query := fmt.Sprintf("SELECT %s FROM %s b JOIN (SELECT %s FROM (VALUES %s) v(%s)) p ON b.atrium_d = p.atrium_d GROUP BY b.atrium_d",
		strings.Join(sel, ", "), q.base, strings.Join(typed, ", "), strings.Join(params, ", "), strings.Join(names, ", "))
	var d any
	means, stds := make([]sql.NullFloat64, len(q.cols)), make([]sql.NullFloat64, len(q.cols))
	hists := make([]any, len(q.cols))
	dest := []any{&d}
	for i, c := range q.cols {
		if c.kind == profile.Numeric {
			dest = append(dest, &means[i], &stds[i], &hists[i])
		}
	}
	return q.scanDays(ctx, query, dest, func(p *profile.Profile) error {
		for i := range q.cols {
			col := &p.Columns[i]
			if col.Kind != profile.Numeric || col.Count == 0 {
				continue
			}
			scale := profileScale(col)
			col.Mean, col.Std = means[i].Float64*scale, stds[i].Float64*scale
			if err := fillHistogram(col, hists[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// profileScale is what a numeric column's values are divided by for their
// moments: the largest magnitude, or 1 when that is 0.
func profileScale(col *profile.Column) float64 {
	if s := max(math.Abs(col.Min), math.Abs(col.Max)); s != 0 {
		return s
	}
	return 1
}

// fillHistogram adds DuckDB's histogram() of bin numbers to col's counts.
func fillHistogram(col *profile.Column, h any) error {
	m, ok := h.(duckdb.OrderedMap)
	if !ok {
		return fmt.Errorf("histogram of %s: got %T", col.Name, h)
	}
	vals := m.Values()
	for j, b := range m.Keys() {
		n := vals[j]
		bi, ok1 := b.(int64)
		ni, ok2 := n.(uint64)
		if !ok1 || !ok2 || bi < 0 || int(bi) >= len(col.Histogram.Counts) {
			return fmt.Errorf("histogram of %s: bin %v (%T) count %v (%T)", col.Name, b, b, n, n)
		}
		col.Histogram.Counts[bi] += int64(ni)
	}
	return nil
}

// sample fills every column's sample from the DefaultSampleSize rows of
// lowest row hash of each day (all its rows when there are no more): a
// uniform sample without replacement, the same on a rerun over the same
// rows. A column's sample holds that sample's non-missing values.
//
// Ordering a whole day by hash, or keeping the lowest hashes with
// arg_min(x, h, n) (10 s of CPU over bench/pipeline's 4.4M rows), costs
// more than the rest of the profile; so each day's rows are first filtered
// to hashes at most t, t chosen so that about sampleMargin(n) rows are left
// of the day's n: every row dropped has a higher hash than every row kept,
// so the lowest hashes are the same as without the filter whenever at least
// DefaultSampleSize rows are left. A day left short (about 1 in 10^18) is
// sampled again without the filter.
func (q *profileQuery) sample(ctx context.Context) error {
	if len(q.cols) == 0 {
		return nil
	}
	short := map[string]uint64{}
	for d, p := range q.days {
		if p.Rows == 0 {
			continue
		}
		t := uint64(math.MaxUint64)
		if k := sampleMargin(); float64(p.Rows) > k {
			t = uint64(k / float64(p.Rows) * (1 << 64))
		}
		short[d] = t
	}
	for range 2 {
		if len(short) == 0 {
			return nil
		}
		if err := q.sampleDays(ctx, short); err != nil {
			return err
		}
		for d, t := range short {
			p := q.days[d]
			// Sampled rows, not values: a row of missing values adds none.
			if t == math.MaxUint64 || q.sampledRows[d] >= min(profile.DefaultSampleSize, p.Rows) {
				delete(short, d)
				continue
			}
			for i := range p.Columns {
				p.Columns[i].SampleFloat, p.Columns[i].SampleString = nil, nil
			}
			q.sampledRows[d] = 0
			short[d] = math.MaxUint64
		}
	}
	return nil
}

// sampleMargin is how many rows the hash filter keeps of a day on average:
// DefaultSampleSize plus 8 standard deviations of the binomial count and
// 100, so that fewer than DefaultSampleSize are left about once in 10^18.
func sampleMargin() float64 {
	k := float64(profile.DefaultSampleSize)
	return k + 8*math.Sqrt(k) + 100
}

// sampleDays samples the days of thresholds, each from its rows of hash at
// most its threshold.
func (q *profileQuery) sampleDays(ctx context.Context, thresholds map[string]uint64) error {
	var params []string
	for d, t := range thresholds {
		params = append(params, fmt.Sprintf("(DATE %s, CAST(%d AS UBIGINT))", sqlQuote(d), t))
	}
	sel := make([]string, len(q.cols))
	for i := range q.cols {
		sel[i] = fmt.Sprintf("b.c%d", i)
	}
	query := fmt.Sprintf(`SELECT b.atrium_d, %s FROM %s b JOIN (VALUES %s) p(atrium_d, t) ON b.atrium_d = p.atrium_d
		WHERE b.atrium_h <= p.t QUALIFY row_number() OVER (PARTITION BY b.atrium_d ORDER BY b.atrium_h) <= %d`,
		strings.Join(sel, ", "), q.base, strings.Join(params, ", "), profile.DefaultSampleSize)
	var d any
	vals := make([]any, len(q.cols))
	dest := []any{&d}
	for i := range vals {
		dest = append(dest, &vals[i])
	}
	if q.sampledRows == nil {
		q.sampledRows = map[string]int64{}
	}
	return q.scanDays(ctx, query, dest, func(p *profile.Profile) error {
		q.sampledRows[p.Start.Format(time.DateOnly)]++
		for i, v := range vals {
			col := &p.Columns[i]
			switch v := v.(type) {
			case float64:
				col.SampleFloat = append(col.SampleFloat, v)
			case string:
				col.SampleString = append(col.SampleString, v)
			case nil:
			default:
				return fmt.Errorf("sample of %s: value %v (%T)", col.Name, v, v)
			}
		}
		return nil
	})
}

// categories fills the top categories of each categorical column, one
// grouped query per column (in one UNION ALL).
func (q *profileQuery) categories(ctx context.Context) error {
	var cats []string
	for i, c := range q.cols {
		if c.kind == profile.Categorical {
			cats = append(cats, fmt.Sprintf(`SELECT atrium_d, %d AS col, v, n FROM (SELECT atrium_d, c%d AS v, count(*) AS n FROM %s WHERE v IS NOT NULL GROUP BY atrium_d, v)
				QUALIFY row_number() OVER (PARTITION BY atrium_d ORDER BY n DESC, v) <= %d`, i, i, q.base, profile.DefaultTopK))
		}
	}
	if len(cats) == 0 {
		return nil
	}
	var d any
	var i int
	var cat profile.Category
	return q.scanDays(ctx, strings.Join(cats, " UNION ALL "), []any{&d, &i, &cat.Value, &cat.Count}, func(p *profile.Profile) error {
		p.Columns[i].Categories = append(p.Columns[i].Categories, cat)
		return nil
	})
}

// finishProfile derives what the queries leave: missing counts, the order
// of categories and their remainder, and quantiles from the sample.
//
// Quantiles come from the sample: exact when the partition fits in it (as
// profile.Build's), otherwise within about 1/sqrt(5000) = 1.4% in rank;
// approx_quantile in the statistics query cost more than all the rest of
// the profile (bench/pipeline -only profile). For the same reason distinct
// counts are HyperLogLog estimates, made exact from the sample when the
// partition fits in it.
func finishProfile(p *profile.Profile) {
	for i := range p.Columns {
		col := &p.Columns[i]
		col.Missing = p.Rows - col.Count
		if col.Kind == profile.Categorical {
			profile.SortCategories(col.Categories)
			col.Other = col.Count
			for _, c := range col.Categories {
				col.Other -= c.Count
			}
		}
		if col.Kind == profile.Numeric && col.Count > 0 {
			col.Quantiles = profile.Quantiles(col.SampleFloat)
		}
		if p.Rows <= profile.DefaultSampleSize {
			col.Distinct = distinct(col.SampleFloat, col.SampleString)
		}
	}
}

func distinct(f []float64, s []string) int64 {
	seenF, seenS := map[float64]bool{}, map[string]bool{}
	for _, v := range f {
		seenF[v] = true
	}
	for _, v := range s {
		seenS[v] = true
	}
	return int64(len(seenF) + len(seenS))
}
