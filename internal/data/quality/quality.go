// Package quality runs data-quality checks (not_null, between, in_set, unique,
// row_count, freshness; `mostly`; levels error and warn) on a pipeline's output
// before it is published. Checks compile to one SQL aggregate query each, so any
// SQL engine holding the output table can evaluate them.
package quality

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/spec"
)

// Result is the outcome of one check on one column (or on the whole set).
type Result struct {
	// Check describes it: "rent: between [100, 100000]", "row_count [1, null]".
	Check  string `json:"check"`
	Column string `json:"column,omitempty"`
	Level  string `json:"level"`
	// Total is the number of rows looked at (non-null values for between, in_set
	// and unique on a column), Failed those that broke the rule.
	Total  int64   `json:"total"`
	Failed int64   `json:"failed"`
	Mostly float64 `json:"mostly"`
	Passed bool    `json:"passed"`
	// Message explains a failure in words.
	Message string `json:"message,omitempty"`
}

// Querier runs a query returning one row (*sql.DB, *sql.Conn and *sql.Tx are Queriers).
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Target is what checks run on.
type Target struct {
	Set *spec.FeatureSet
	// Keys are the set's join keys.
	Keys []string
	// Relation is the SQL name of the table holding the rows to check.
	Relation string
	// AsOf is the instant freshness is measured from (the run's last step).
	AsOf time.Time
}

// Run evaluates every check of the set (set-level ones, then each feature's on each
// of its output columns, then the derived features') and returns all results.
func Run(ctx context.Context, q Querier, t Target) ([]Result, error) {
	var out []Result
	for _, c := range t.Set.Checks {
		r, err := runCheck(ctx, q, t, c, spec.Column{})
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	cols := t.Set.Columns()
	for _, ft := range append(append([]*spec.Feature(nil), t.Set.Features...), t.Set.Derived...) {
		for _, col := range cols {
			if col.Name != ft.Name && col.Feature != ft.Name {
				continue
			}
			for _, c := range ft.Checks {
				r, err := runCheck(ctx, q, t, c, col)
				if err != nil {
					return nil, err
				}
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// Blocking returns the failed error-level results: those that stop a publish.
func Blocking(results []Result) []Result {
	var out []Result
	for _, r := range results {
		if !r.Passed && r.Level == spec.LevelError {
			out = append(out, r)
		}
	}
	return out
}

// Quote quotes an SQL identifier.
func Quote(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

func runCheck(ctx context.Context, q Querier, t Target, c *spec.Check, col spec.Column) (Result, error) {
	r := Result{Check: c.String(), Column: col.Name, Level: c.EffectiveLevel(), Mostly: c.EffectiveMostly()}
	if col.Name != "" {
		r.Check = col.Name + ": " + r.Check
	}
	rel, qc := t.Relation, Quote(col.Name)
	var query string
	switch c.Kind {
	case spec.NotNull:
		query = fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE %s IS NULL) FROM %s`, qc, rel)
	case spec.Between:
		var conds []string
		if c.Min != nil {
			conds = append(conds, fmt.Sprintf("%s < %s", qc, num(*c.Min)))
		}
		if c.Max != nil {
			conds = append(conds, fmt.Sprintf("%s > %s", qc, num(*c.Max)))
		}
		query = fmt.Sprintf(`SELECT count(%s), count(*) FILTER (WHERE %s) FROM %s`, qc, strings.Join(conds, " OR "), rel)
	case spec.InSet:
		lits := make([]string, len(c.Values))
		for i, v := range c.Values {
			lits[i] = literal(v, col.Type)
		}
		query = fmt.Sprintf(`SELECT count(%s), count(*) FILTER (WHERE %s NOT IN (%s)) FROM %s`, qc, qc, strings.Join(lits, ", "), rel)
	case spec.Unique:
		if col.Name != "" {
			query = fmt.Sprintf(`SELECT count(%s), count(%s) - count(DISTINCT %s) FROM %s`, qc, qc, qc, rel)
			break
		}
		cols := make([]string, 0, len(t.Keys)+1)
		for _, k := range append(append([]string(nil), t.Keys...), spec.TimestampColumn) {
			cols = append(cols, Quote(k))
		}
		query = fmt.Sprintf(`SELECT count(*), count(*) - (SELECT count(*) FROM (SELECT DISTINCT %s FROM %s) d) FROM %s`,
			strings.Join(cols, ", "), rel, rel)
		r.Check = "unique (" + strings.Join(append(append([]string(nil), t.Keys...), spec.TimestampColumn), ", ") + ")"
	case spec.RowCount:
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM `+rel).Scan(&r.Total); err != nil {
			return r, fmt.Errorf("check %s: %w", r.Check, err)
		}
		n := float64(r.Total)
		r.Passed = (c.Min == nil || n >= *c.Min) && (c.Max == nil || n <= *c.Max)
		if !r.Passed {
			r.Failed = 1
			r.Message = fmt.Sprintf("%d rows, expected %s", r.Total, strings.TrimPrefix(c.String(), "row_count "))
		}
		return r, nil
	case spec.Freshness:
		var newest sql.NullTime
		if err := q.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*), max(%s) FROM %s`, Quote(spec.TimestampColumn), rel)).Scan(&r.Total, &newest); err != nil {
			return r, fmt.Errorf("check %s: %w", r.Check, err)
		}
		bound := t.AsOf.Add(-c.Within.D())
		r.Passed = newest.Valid && !newest.Time.Before(bound)
		if !r.Passed {
			r.Failed = 1
			if newest.Valid {
				r.Message = fmt.Sprintf("newest row at %s is older than %s before %s", newest.Time.UTC().Format(time.RFC3339), c.Within, t.AsOf.Format(time.RFC3339))
			} else {
				r.Message = "no rows"
			}
		}
		return r, nil
	default:
		return r, fmt.Errorf("check %s: unknown kind", r.Check)
	}
	if err := q.QueryRowContext(ctx, query).Scan(&r.Total, &r.Failed); err != nil {
		return r, fmt.Errorf("check %s: %w", r.Check, err)
	}
	r.Passed = r.Total == 0 || float64(r.Total-r.Failed)/float64(r.Total) >= r.Mostly
	if !r.Passed {
		r.Message = fmt.Sprintf("%d of %d rows fail (%.4g%% pass, expected at least %.4g%%)", r.Failed, r.Total,
			100*float64(r.Total-r.Failed)/float64(r.Total), 100*r.Mostly)
	}
	return r, nil
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// literal renders an in_set value for a column of type t.
func literal(v any, t spec.Type) string {
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	if t == spec.String {
		return quote(fmt.Sprint(v))
	}
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return num(x)
	case bool:
		return strconv.FormatBool(x)
	}
	return quote(fmt.Sprint(v))
}
