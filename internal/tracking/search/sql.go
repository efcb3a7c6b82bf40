package search

// The SQL side of searches, shared by tracking and registry: clauses become
// conditions whose values are bound arguments (Where, Compare), and results are
// paged with MLflow's offset tokens (Page, TrimPage).

import (
	"strings"

	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// Where accumulates SQL conditions and their bound arguments. Values from a
// filter only ever become arguments; column names come from code.
type Where struct {
	conds []string
	Args  []any
}

// Add appends a condition written with '?' placeholders.
func (w *Where) Add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.Args = append(w.Args, args...)
}

// SQL joins the conditions with AND ("1=1" when there are none).
func (w *Where) SQL() string {
	if len(w.conds) == 0 {
		return "1=1"
	}
	return strings.Join(w.conds, " AND ")
}

// likeEscape makes '\' escape '%', '_' and itself in LIKE patterns on both
// engines: PostgreSQL does so by default, SQLite only when told, and without
// the clause one filter would match different runs on each. (A pattern cannot
// end with a lone '\': the filter lexer reads "\'" as a quote.)
const likeEscape = `ESCAPE '\'`

// Compare returns the condition "col <op> value" for a parsed search clause and
// its arguments. col is a trusted column expression. LIKE is case-sensitive on
// both engines; ILIKE compares lower-cased text; in both '\' escapes '%', '_'
// and itself.
func Compare(col string, c Clause) (string, []any) {
	var v any = c.Str
	if c.IsNum {
		v = c.Num
		if c.Int {
			v = int64(c.Num)
		}
	}
	switch c.Op {
	case "LIKE":
		return col + " LIKE ? " + likeEscape, []any{v}
	case "ILIKE":
		return "LOWER(" + col + ") LIKE LOWER(?) " + likeEscape, []any{v}
	case "IN", "NOT IN":
		args := make([]any, len(c.List))
		for i, s := range c.List {
			args[i] = s
		}
		return col + " " + c.Op + " (" + Placeholders(len(c.List)) + ")", args
	case "=", "!=", "<", "<=", ">", ">=":
		return col + " " + c.Op + " ?", []any{v}
	}
	// The parser admits no other operator; this guards against a grammar change.
	return "1=0", nil
}

// Placeholders returns "?, ?, ..." with n marks.
func Placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// Page checks max_results and decodes the page token.
func Page(maxResults int64, def, limit int64, token string) (int64, int, error) {
	if maxResults == 0 {
		maxResults = def
	}
	if maxResults < 0 {
		return 0, 0, wire.Invalidf("Invalid value %d for parameter 'max_results' supplied. It must be a positive integer", maxResults)
	}
	if maxResults > limit {
		return 0, 0, wire.Invalidf("Invalid value %d for parameter 'max_results' supplied. It must be at most %d", maxResults, limit)
	}
	offset, err := wire.DecodeOffset(token)
	return maxResults, offset, err
}

// TrimPage cuts a result fetched with LIMIT limit+1 to limit items and returns
// the next page token when there was more ("" on the last page).
func TrimPage[T any](items []T, limit int64, offset int) ([]T, string) {
	if int64(len(items)) <= limit {
		return items, ""
	}
	return items[:limit], wire.EncodeOffset(offset + int(limit))
}

// Qualify qualifies each column of a comma-separated list with p ("e.").
func Qualify(p, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}
