package search

// The SQL side of searches, shared by tracking and registry: clauses become
// conditions whose values are bound arguments (Where, Compare), and results are
// paged with MLflow's offset tokens (Page, TrimPage).

import (
	"strconv"
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

// plannedConditions is how many conditions of a Where the engine may plan as
// joins; see SQL.
const plannedConditions = 4

// SQL joins the conditions with AND ("1=1" when there are none). Conditions
// past the first plannedConditions are fenced in "(...) IS TRUE", which means
// the same in a WHERE clause (a row passes only when they are all true) but
// keeps PostgreSQL from pulling their EXISTS subqueries up into semi-joins: the
// planner explores the join orders of every semi-join it pulls up, all joined on
// the same key, and its time and memory grow exponentially with their number
// (200 tag conditions of an experiments search: 19 s of planning; of a runs
// search: over 3 GB of memory). Fenced, each subquery is planned once and run
// per candidate row, in the order written (200 conditions: 46 ms of planning).
func (w *Where) SQL() string {
	switch {
	case len(w.conds) == 0:
		return "1=1"
	case len(w.conds) <= plannedConditions:
		return strings.Join(w.conds, " AND ")
	}
	return strings.Join(w.conds[:plannedConditions], " AND ") +
		" AND (" + strings.Join(w.conds[plannedConditions:], " AND ") + ") IS TRUE"
}

// KeyValues is a table of key-value rows holding at most one row per owner and
// key (PRIMARY KEY (owner, key)), such as a run's params, tags or latest
// metrics, searched by clauses on its keys.
type KeyValues struct {
	Table string // table name
	Owner string // the table's owner column, e.g. "run_uuid"
	Outer string // the searched row's owner column, e.g. "r.run_uuid"
	// Value returns the condition of a comparison clause on the row aliased
	// alias; nil means Compare(alias+".value", c).
	Value func(alias string, c Clause) (string, []any)
}

// AddKeyValues adds to w the condition that every clause holds for the owner's
// rows of t: clauses are comparisons, IS NULL or IS NOT NULL on t's keys. It
// takes at most two correlated subqueries whatever the number of clauses: one
// counts the keys whose row exists and satisfies every clause on that key (a
// key has at most one row, so the count reaches the number of such keys only
// when all hold; a missing key fails, "!=" included, as in MLflow), the other
// checks that no row exists for the keys of IS NULL clauses. A subquery
// compared with a count is never turned into a join: each is planned once and
// run per candidate row, reading only the rows of the keys named.
func (w *Where) AddKeyValues(t KeyValues, clauses []Clause) {
	if len(clauses) == 0 {
		return
	}
	const a = "kv"
	value := t.Value
	if value == nil {
		value = func(alias string, c Clause) (string, []any) { return Compare(alias+".value", c) }
	}
	var keys, nullKeys []any
	conds := map[string][]string{}
	condArgs := map[string][]any{}
	for _, c := range clauses {
		if c.Op == "IS NULL" {
			nullKeys = appendNew(nullKeys, c.Key)
			continue
		}
		keys = appendNew(keys, c.Key)
		if c.Op != "IS NOT NULL" {
			cond, args := value(a, c)
			conds[c.Key] = append(conds[c.Key], cond)
			condArgs[c.Key] = append(condArgs[c.Key], args...)
		}
	}
	count := "(SELECT COUNT(*) FROM " + t.Table + " " + a + " WHERE " + a + "." + t.Owner + " = " + t.Outer + " AND " + a + ".key IN ("
	if len(keys) > 0 {
		arms := make([]string, len(keys))
		var armArgs []any
		compared := false
		for i, k := range keys {
			k := k.(string)
			armArgs = append(armArgs, k)
			if len(conds[k]) == 0 {
				arms[i] = a + ".key = ?" // IS NOT NULL only: the row's presence is enough
				continue
			}
			compared = true
			arms[i] = "(" + a + ".key = ? AND " + strings.Join(conds[k], " AND ") + ")"
			armArgs = append(armArgs, condArgs[k]...)
		}
		cond, args := count+Placeholders(len(keys))+")", keys
		if compared {
			cond += " AND (" + strings.Join(arms, " OR ") + ")"
			args = append(args, armArgs...)
		}
		w.Add(cond+") = "+strconv.Itoa(len(keys)), args...)
	}
	if len(nullKeys) > 0 {
		w.Add(count+Placeholders(len(nullKeys))+")) = 0", nullKeys...)
	}
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

// appendNew appends s to list unless it holds it already.
func appendNew(list []any, s string) []any {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
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

// maxKeptChunk bounds the rows KeptPage reads at once past the first read.
const maxKeptChunk = 5000

// KeptPage returns the page of at most limit items, from row offset, of a
// query whose rows the caller may not all see: fetch(n, off) returns at most
// n rows of the query from row off, keep reports whether the caller may see
// one (nil: every row). Hidden rows are skipped and more are read until the
// page is full or the query ends, as MLflow's basic-auth app refetches, so a
// page is short only when it is the last one. The next page token is the
// offset of the first visible row not returned, counted in the query's rows:
// tokens stay offsets into the unfiltered query, so no visible row is lost or
// returned twice across pages. A caller who sees few rows of many costs a
// scan of them: the reads grow to maxKeptChunk rows.
func KeptPage[T any](fetch func(n int64, off int) ([]T, error), keep func(T) bool, limit int64, offset int) ([]T, string, error) {
	if keep == nil {
		items, err := fetch(limit+1, offset)
		if err != nil {
			return nil, "", err
		}
		items, next := TrimPage(items, limit, offset)
		return items, next, nil
	}
	var out []T
	chunk := limit + 1
	for at := offset; ; {
		items, err := fetch(chunk, at)
		if err != nil {
			return nil, "", err
		}
		for i, it := range items {
			if !keep(it) {
				continue
			}
			if int64(len(out)) == limit {
				return out, wire.EncodeOffset(at + i), nil
			}
			out = append(out, it)
		}
		if int64(len(items)) < chunk {
			return out, "", nil
		}
		at += len(items)
		chunk = max(chunk, min(2*chunk, maxKeptChunk))
	}
}

// Qualify qualifies each column of a comma-separated list with p ("e.").
func Qualify(p, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}
