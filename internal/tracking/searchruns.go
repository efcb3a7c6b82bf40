package tracking

import (
	"context"
	"fmt"
	"strings"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/tracking/search"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// RunQuery is a search_runs request.
type RunQuery struct {
	ExperimentIDs []string
	Filter        string
	RunViewType   wire.Enum // ACTIVE_ONLY (default), DELETED_ONLY, ALL
	MaxResults    int64     // default 1000, at most 50000
	OrderBy       []string
	PageToken     string
}

// runAttrColumn maps run attributes of the filter grammar to columns.
var runAttrColumn = map[string]string{
	"run_id": "r.run_uuid", "run_name": "r.name", "status": "r.status", "user_id": "r.user_id",
	"artifact_uri": "r.artifact_uri", "start_time": "r.start_time", "end_time": "r.end_time",
}

// SearchRuns returns a page of runs matching the filter in the given experiments,
// ordered by order_by then start_time DESC and run_id, and the next page token.
// Filtering and ordering run in one SQL query on latest_metrics, params and tags;
// the page's data is then loaded in a fixed number of queries.
func (s *Store) SearchRuns(ctx context.Context, q RunQuery) ([]Run, string, error) {
	p, err := planRunSearch(q, search.Qualify("r.", runColumns))
	if err != nil || p == nil {
		return nil, "", err
	}
	runs, err := meta.Collect(ctx, s.db, p.query, p.args, func(row meta.Scanner) (Run, error) {
		ri, err := scanRunInfo(row)
		return Run{Info: ri}, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("search runs: %w", err)
	}
	runs, next := search.TrimPage(runs, p.limit, p.offset)
	if err := s.loadRunData(ctx, runs); err != nil {
		return nil, "", err
	}
	return runs, next, nil
}

// runSearch is the SQL of one search_runs page: query selects the page's rows
// (one past the page, to tell whether another follows) in order.
type runSearch struct {
	query  string
	args   []any
	limit  int64
	offset int
}

// planRunSearch validates a search and writes its page query selecting cols
// of runs r. It returns nil (and no error) when no experiment is searched.
func planRunSearch(q RunQuery, cols string) (*runSearch, error) {
	limit, offset, err := search.Page(q.MaxResults, 1000, MaxSearchRunsResults, q.PageToken)
	if err != nil {
		return nil, err
	}
	stages, err := viewStages(q.RunViewType)
	if err != nil {
		return nil, err
	}
	clauses, err := search.Parse(search.Runs, q.Filter)
	if err != nil {
		return nil, err
	}
	if len(q.ExperimentIDs) == 0 {
		return nil, nil
	}
	if len(q.ExperimentIDs) > search.MaxListValues {
		return nil, wire.Invalidf("A search may name at most %d experiment_ids, got %d.", search.MaxListValues, len(q.ExperimentIDs))
	}
	expIDs := make([]any, len(q.ExperimentIDs))
	for i, id := range q.ExperimentIDs {
		if expIDs[i], err = parseExperimentID(id); err != nil {
			return nil, err
		}
	}
	var w search.Where
	w.Add("r.experiment_id IN ("+search.Placeholders(len(expIDs))+")", expIDs...)
	w.Add("r.lifecycle_stage IN ("+search.Placeholders(len(stages))+")", stages...)
	var joins []string
	var joinArgs []any
	// filtered maps a metric key to the alias of a filter join that guarantees a
	// non-NaN value: ordering by that metric reuses it instead of joining again.
	filtered := map[string]string{}
	// The first metric, param, tag and dataset clauses, up to maxFilterJoins
	// tables, are joins or EXISTS that the engine plans as joins; the rest
	// (keyed: by table) are correlated subqueries it plans once each.
	joined := 0
	var rest [3][]search.Clause // latest_metrics, params, tags
	for i, c := range clauses {
		if c.Entity == search.Attribute {
			runFilter(&w, c)
			continue
		}
		tables := 1
		if c.Entity == search.Dataset && c.Key != "context" {
			tables = 2 // run_inputs and datasets
		}
		if joined+tables > maxFilterJoins {
			switch c.Entity {
			case search.Metric:
				rest[0] = append(rest[0], c)
			case search.Param:
				rest[1] = append(rest[1], c)
			case search.Tag:
				rest[2] = append(rest[2], c)
			case search.Dataset:
				from, args := datasetRows(c)
				w.Add("(SELECT COUNT(*) "+from+") > 0", args...)
			}
			continue
		}
		joined += tables
		if join, args := filterJoin(i, c); join != "" {
			joins = append(joins, join)
			joinArgs = append(joinArgs, args...)
			if c.Entity == search.Metric && c.Op != "!=" {
				filtered[c.Key] = fmt.Sprintf("f%d", i)
			}
			continue
		}
		runFilter(&w, c)
	}
	w.AddKeyValues(search.KeyValues{Table: "latest_metrics", Owner: "run_uuid", Outer: "r.run_uuid", Value: metricValue}, rest[0])
	w.AddKeyValues(search.KeyValues{Table: "params", Owner: "run_uuid", Outer: "r.run_uuid"}, rest[1])
	w.AddKeyValues(search.KeyValues{Table: "tags", Owner: "run_uuid", Outer: "r.run_uuid"}, rest[2])

	var order []string
	seen := map[string]bool{}
	orderJoins := 0
	for i, o := range q.OrderBy {
		ob, err := search.ParseOrderBy(search.Runs, o)
		if err != nil {
			return nil, err
		}
		id := ob.Entity + "." + ob.Key
		if seen[id] {
			return nil, wire.Invalidf("`order_by` contains duplicate fields: %s", pyStrList(q.OrderBy))
		}
		seen[id] = true
		dir := " ASC"
		if !ob.Asc {
			dir = " DESC"
		}
		alias := fmt.Sprintf("o%d", i)
		if ob.Entity != search.Attribute {
			if orderJoins++; orderJoins > maxOrderJoins {
				return nil, wire.Invalidf("`order_by` has more than %d metric, param and tag fields: %s", maxOrderJoins, pyStrList(q.OrderBy))
			}
		}
		switch ob.Entity {
		case search.Attribute:
			col := runAttrColumn[ob.Key]
			order = append(order, "CASE WHEN "+col+" IS NULL THEN 1 ELSE 0 END", col+dir)
		case search.Metric:
			if f, ok := filtered[ob.Key]; ok {
				order = append(order, f+".value"+dir)
				continue
			}
			joins = append(joins, "LEFT JOIN latest_metrics "+alias+" ON "+alias+".run_uuid = r.run_uuid AND "+alias+".key = ?")
			joinArgs = append(joinArgs, ob.Key)
			order = append(order, "CASE WHEN "+alias+".run_uuid IS NULL THEN 2 WHEN "+alias+".is_nan = 1 THEN 1 ELSE 0 END", alias+".value"+dir)
		case search.Param, search.Tag:
			table := "params"
			if ob.Entity == search.Tag {
				table = "tags"
			}
			joins = append(joins, "LEFT JOIN "+table+" "+alias+" ON "+alias+".run_uuid = r.run_uuid AND "+alias+".key = ?")
			joinArgs = append(joinArgs, ob.Key)
			order = append(order, "CASE WHEN "+alias+".value IS NULL THEN 1 ELSE 0 END", alias+".value"+dir)
		}
	}
	if !seen[search.Attribute+".start_time"] {
		order = append(order, "r.start_time DESC")
	}
	order = append(order, "r.run_uuid ASC")

	return &runSearch{
		query: `SELECT ` + cols + ` FROM runs r ` + strings.Join(joins, " ") +
			` WHERE ` + w.SQL() + ` ORDER BY ` + joinComma(order) + ` LIMIT ? OFFSET ?`,
		args:  append(append(joinArgs, w.Args...), limit+1, offset),
		limit: limit, offset: offset,
	}, nil
}

// maxFilterJoins bounds the tables that a search's metric, param, tag and
// dataset clauses add to the engine's join search. Joins let the planner start
// from the narrowest index (e.g. latest_metrics (key, value) for "metrics.acc >
// 0.5"), but PostgreSQL's planning time grows exponentially with their number,
// every table being joined on run_uuid (tag conditions as joins, 100 runs: 1 ms
// of planning for 3, 3.5 ms for 4, 22 ms for 5, 185 ms for 7; 4.6 s for 50 and
// over 3 GB of memory for 100). Past it, clauses are checked per candidate run
// by correlated subqueries, one per table (search.Where.AddKeyValues).
const maxFilterJoins = 3

// maxOrderJoins bounds the order_by entries that need a join (metrics, params,
// tags); more is refused as a client mistake rather than failing in SQL.
const maxOrderJoins = 16

// filterJoin turns a comparison on a metric, param or tag into an inner join
// (each run has at most one row per key, so a join never repeats a run). It
// returns "" for clauses that stay in WHERE.
func filterJoin(i int, c search.Clause) (string, []any) {
	if c.Op == "IS NULL" || c.Op == "IS NOT NULL" {
		return "", nil
	}
	alias := fmt.Sprintf("f%d", i)
	table := map[string]string{search.Metric: "latest_metrics", search.Param: "params", search.Tag: "tags"}[c.Entity]
	if table == "" {
		return "", nil
	}
	cond, args := search.Compare(alias+".value", c)
	if c.Entity == search.Metric {
		cond, args = metricValue(alias, c)
	}
	return "JOIN " + table + " " + alias + " ON " + alias + ".run_uuid = r.run_uuid AND " + alias + ".key = ? AND " + cond,
		append([]any{c.Key}, args...)
}

// metricValue is the condition of a metric comparison on the latest_metrics
// row aliased a. NaN is stored as 0 with is_nan = 1: it never matches a
// comparison, and always matches "!=".
func metricValue(a string, c search.Clause) (string, []any) {
	cond, args := search.Compare(a+".value", c)
	if c.Op == "!=" {
		return "(" + cond + " OR " + a + ".is_nan = 1)", args
	}
	return cond + " AND " + a + ".is_nan = 0", args
}

// runFilter adds the SQL condition of one filter clause. Every value is a bound
// argument; keys too.
func runFilter(w *search.Where, c search.Clause) {
	switch c.Entity {
	case search.Attribute:
		cond, args := search.Compare(runAttrColumn[c.Key], c)
		w.Add(cond, args...)
	case search.Metric:
		cond, args := metricValue("m", c)
		w.Add("EXISTS (SELECT 1 FROM latest_metrics m WHERE m.run_uuid = r.run_uuid AND m.key = ? AND "+cond+")",
			append([]any{c.Key}, args...)...)
	case search.Param, search.Tag:
		table := "params"
		if c.Entity == search.Tag {
			table = "tags"
		}
		switch c.Op {
		case "IS NULL":
			w.Add("NOT EXISTS (SELECT 1 FROM "+table+" p WHERE p.run_uuid = r.run_uuid AND p.key = ?)", c.Key)
		case "IS NOT NULL":
			w.Add("EXISTS (SELECT 1 FROM "+table+" p WHERE p.run_uuid = r.run_uuid AND p.key = ?)", c.Key)
		default:
			cond, args := search.Compare("p.value", c)
			w.Add("EXISTS (SELECT 1 FROM "+table+" p WHERE p.run_uuid = r.run_uuid AND p.key = ? AND "+cond+")",
				append([]any{c.Key}, args...)...)
		}
	case search.Dataset:
		from, args := datasetRows(c)
		w.Add("EXISTS (SELECT 1 "+from+")", args...)
	}
}

// datasetRows returns "FROM ... WHERE ..." selecting the run's dataset inputs
// (or their context tags) that satisfy a dataset clause. Inputs are not keyed:
// each clause may hold for a different input, so each gets its own subquery.
func datasetRows(c search.Clause) (string, []any) {
	if c.Key == "context" {
		cond, args := search.Compare("t.value", c)
		return "FROM run_input_tags t WHERE t.run_uuid = r.run_uuid AND t.key = ? AND " + cond, append([]any{TagDatasetCtx}, args...)
	}
	cond, args := search.Compare("d."+c.Key, c) // name or digest, checked by the grammar
	return "FROM run_inputs i JOIN datasets d ON d.dataset_uuid = i.dataset_uuid WHERE i.run_uuid = r.run_uuid AND " + cond, args
}

// pyStrList renders a list the way Python prints a list of strings.
func pyStrList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = "'" + s + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}
