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

// profileSeed seeds the partition samples (REPEATABLE), so that a rerun over
// the same rows draws the same sample when DuckDB samples single-threaded.
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
			out = append(out, profileColumn{c.Name, profile.Numeric,
				fmt.Sprintf("(CASE WHEN isfinite(CAST(%s AS DOUBLE)) THEN CAST(%s AS DOUBLE) END)", q, q)})
		case profile.Categorical:
			out = append(out, profileColumn{c.Name, profile.Categorical, fmt.Sprintf("NULLIF(CAST(%s AS VARCHAR), '')", q)})
		}
	}
	return out
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// profilePartition profiles the rows of one staged partition (rel reads its
// files) with the statistics of profile.Build, computed by DuckDB in four
// queries: moments, exact distinct counts and approximate quantiles (exact
// when the partition fits in the sample); 50-bin
// mean, std and histograms between each column's min and max (profile.BinIndex's rule); the
// top 100 categories; a seeded reservoir sample of 5,000 rows (a column's
// sample holds that sample's non-missing values, so fewer than 5,000 when
// values are missing). day is the partition's date.
func profilePartition(ctx context.Context, conn *sql.Conn, rel string, cols []profileColumn, day time.Time) (*profile.Profile, error) {
	p := &profile.Profile{Version: profile.Version, Start: day, End: day.Add(pipeline.Day), Columns: make([]profile.Column, len(cols))}
	var sel []string
	for i, c := range cols {
		p.Columns[i] = profile.Column{Name: c.name, Kind: c.kind}
		sel = append(sel, fmt.Sprintf("count(%s)", c.expr), fmt.Sprintf("count(DISTINCT %s)", c.expr))
		if c.kind == profile.Numeric {
			levels := make([]string, len(profile.QuantileLevels))
			for j, q := range profile.QuantileLevels {
				levels[j] = fmt.Sprint(q)
			}
			sel = append(sel, fmt.Sprintf("min(%s)", c.expr), fmt.Sprintf("max(%s)", c.expr),
				fmt.Sprintf("approx_quantile(%s, [%s])", c.expr, strings.Join(levels, ", ")))
		}
	}
	// 1. Counts, moments, quantiles, distinct counts.
	row := conn.QueryRowContext(ctx, "SELECT count(*)"+prefixComma(sel)+" FROM "+rel)
	dest := []any{&p.Rows}
	type numStats struct {
		lo, hi sql.NullFloat64
		qs     any
	}
	stats := make([]numStats, len(cols))
	for i, c := range cols {
		dest = append(dest, &p.Columns[i].Count, &p.Columns[i].Distinct)
		if c.kind == profile.Numeric {
			s := &stats[i]
			dest = append(dest, &s.lo, &s.hi, &s.qs)
		}
	}
	if err := row.Scan(dest...); err != nil {
		return nil, fmt.Errorf("profile statistics: %w", err)
	}
	// 2. Mean, std and histogram, one scan for all numeric columns. The
	// moments are of x/scale (scale = max |x|), so that stddev_samp cannot
	// overflow on values near the float range.
	var sel2 []string
	var numeric []int
	for i, c := range cols {
		col := &p.Columns[i]
		col.Missing = p.Rows - col.Count
		if c.kind != profile.Numeric || col.Count == 0 {
			continue
		}
		s := stats[i]
		col.Min, col.Max = s.lo.Float64, s.hi.Float64
		qs, _ := s.qs.([]any)
		for j, q := range profile.QuantileLevels {
			if j < len(qs) {
				v, _ := qs[j].(float64)
				col.Quantiles = append(col.Quantiles, profile.Quantile{Q: q, Value: v})
			}
		}
		col.Histogram = &profile.Histogram{Edges: profile.HistogramEdges(col.Min, col.Max, profile.DefaultBins)}
		col.Histogram.Counts = make([]int64, len(col.Histogram.Edges)-1)
		bins := len(col.Histogram.Counts)
		// greatest and least skip NULLs: the CASE keeps a missing value out.
		bin := "CAST(0 AS BIGINT)"
		if col.Min != col.Max {
			bin = fmt.Sprintf("least(greatest(CAST(floor((%s - %s) / %s) AS BIGINT), 0), %d)", c.expr, sqlFloat(col.Min), sqlFloat((col.Max-col.Min)/float64(bins)), bins-1)
		}
		bin = fmt.Sprintf("CASE WHEN %s IS NOT NULL THEN %s END", c.expr, bin)
		scale := max(math.Abs(col.Min), math.Abs(col.Max))
		if scale == 0 {
			scale = 1
		}
		x := fmt.Sprintf("(%s / %s)", c.expr, sqlFloat(scale))
		sel2 = append(sel2, fmt.Sprintf("avg(%s) * %s", x, sqlFloat(scale)), fmt.Sprintf("stddev_samp(%s) * %s", x, sqlFloat(scale)), "histogram("+bin+")")
		numeric = append(numeric, i)
	}
	if len(sel2) > 0 {
		dest := make([]any, 0, len(sel2))
		means, stds := make([]sql.NullFloat64, len(numeric)), make([]sql.NullFloat64, len(numeric))
		hists := make([]any, len(numeric))
		for k := range numeric {
			dest = append(dest, &means[k], &stds[k], &hists[k])
		}
		if err := conn.QueryRowContext(ctx, "SELECT "+strings.Join(sel2, ", ")+" FROM "+rel).Scan(dest...); err != nil {
			return nil, fmt.Errorf("profile moments and histograms: %w", err)
		}
		for k, i := range numeric {
			col := &p.Columns[i]
			col.Mean, col.Std = means[k].Float64, stds[k].Float64
			m, ok := hists[k].(duckdb.OrderedMap)
			if !ok {
				return nil, fmt.Errorf("profile histogram of %s: got %T", col.Name, hists[k])
			}
			vals := m.Values()
			for j, b := range m.Keys() {
				n := vals[j]
				bi, ok1 := b.(int64)
				ni, ok2 := n.(uint64)
				if !ok1 || !ok2 || bi < 0 || int(bi) >= len(col.Histogram.Counts) {
					return nil, fmt.Errorf("profile histogram of %s: bin %v (%T) count %v (%T)", col.Name, b, b, n, n)
				}
				col.Histogram.Counts[bi] += int64(ni)
			}
		}
	}
	// 3. Top categories.
	var cats []string
	for i, c := range cols {
		if c.kind == profile.Categorical && p.Columns[i].Count > 0 {
			cats = append(cats, fmt.Sprintf(`SELECT %d AS col, v, n FROM (SELECT %s AS v, count(*) AS n FROM %s WHERE v IS NOT NULL GROUP BY v)
				QUALIFY row_number() OVER (ORDER BY n DESC, v) <= %d`, i, c.expr, rel, profile.DefaultTopK))
		}
	}
	if len(cats) > 0 {
		if err := scanRows(ctx, conn, strings.Join(cats, " UNION ALL "), func(r *sql.Rows) error {
			var i int
			var cat profile.Category
			if err := r.Scan(&i, &cat.Value, &cat.Count); err != nil {
				return err
			}
			p.Columns[i].Categories = append(p.Columns[i].Categories, cat)
			return nil
		}); err != nil {
			return nil, fmt.Errorf("profile categories: %w", err)
		}
		for i := range p.Columns {
			col := &p.Columns[i]
			if col.Kind != profile.Categorical {
				continue
			}
			profile.SortCategories(col.Categories)
			col.Other = col.Count
			for _, c := range col.Categories {
				col.Other -= c.Count
			}
		}
	}
	// 4. The sample.
	exprs := make([]string, len(cols))
	for i, c := range cols {
		exprs[i] = c.expr
	}
	if len(cols) > 0 {
		q := fmt.Sprintf("SELECT %s FROM %s USING SAMPLE reservoir(%d ROWS) REPEATABLE (%d)", strings.Join(exprs, ", "), rel, profile.DefaultSampleSize, profileSeed)
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := scanRows(ctx, conn, q, func(r *sql.Rows) error {
			if err := r.Scan(ptrs...); err != nil {
				return err
			}
			for i, v := range vals {
				switch v := v.(type) {
				case float64:
					p.Columns[i].SampleFloat = append(p.Columns[i].SampleFloat, v)
				case string:
					p.Columns[i].SampleString = append(p.Columns[i].SampleString, v)
				}
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("profile sample: %w", err)
		}
	}
	// A partition no larger than the sample is all in it: its quantiles are
	// then exact, as profile.Build's.
	if p.Rows <= profile.DefaultSampleSize {
		for i := range p.Columns {
			if col := &p.Columns[i]; col.Kind == profile.Numeric && col.Count > 0 {
				col.Quantiles = profile.Quantiles(col.SampleFloat)
			}
		}
	}
	return p, nil
}

func prefixComma(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return ", " + strings.Join(s, ", ")
}

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
// rows gets a profile of 0 rows, so an empty day shows in the trends).
func (e *Engine) profile(ctx context.Context, conn *sql.Conn, plan *pipeline.Plan, keys []string, staged map[string][]string) (map[string]*profile.Profile, error) {
	schema, err := describe(ctx, conn, "SELECT * FROM "+outputView)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	cols := profileColumns(schema, keys)
	out := make(map[string]*profile.Profile, len(plan.Dates))
	for _, d := range plan.Dates {
		day, err := time.Parse(time.DateOnly, d)
		if err != nil {
			return nil, fmt.Errorf("profile %s: %w", d, err)
		}
		rel := "(SELECT * FROM " + outputView + " LIMIT 0)"
		if files := staged[d]; len(files) > 0 {
			list, err := fileList(files)
			if err != nil {
				return nil, err
			}
			rel = fmt.Sprintf("read_parquet(%s, hive_partitioning = false)", list)
		}
		p, err := profilePartition(ctx, conn, rel, cols, day)
		if err != nil {
			return nil, fmt.Errorf("profile partition %s: %w", d, err)
		}
		out[d] = p
	}
	return out, nil
}
