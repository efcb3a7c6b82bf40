package tracking

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/tracking/search"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// runsPage is one page of search_runs' answer, loaded and ready to be written
// by AppendJSON (wire.RawJSON): {"runs":[...],"next_page_token":"..."}, the
// runs SearchRuns returns.
//
// A page can hold 50,000 runs, and reading their params, tags and latest
// metrics row by row into Go values costs more than everything else in the
// request (each row crosses into Go, is converted and allocated, then encoded
// again). On SQLite the engine writes the page's runs as JSON itself
// (pageJSON), so the page crosses into Go as one string that goes into the
// answer as it is. The JSON means the same as
// encoding/json's, and decodes in the mlflow client to the same runs
// (TestSearchRunsJSON), but is not byte-identical: SQLite does not escape <, >
// and &, writes a double with 17 significant digits when 15 do not read back
// as the same double (1/3 is 0.33333333333333332 where Go writes the shortest,
// 0.3333333333333333) and integral doubles with a fraction (5.0, 1.0e+21, as
// MLflow's own server does). PostgreSQL takes the SearchRuns path.
type runsPage struct {
	// body, when not empty, is the page's runs as SQLite wrote them (see
	// pageJSON), and runs and lists are unused; io holds the runs whose
	// inputs and outputs go where body has their marker.
	body string
	io   map[string]*Run
	// parts, when not nil, are the page's runs as JSON, each as runJSONSQL
	// wrote it with its inputs and outputs (cachedPage); the rest is unused.
	parts []string

	runs []Run
	// lists holds runs[i]'s data as JSON arrays written by SQLite; nil means
	// runs[i].Data is loaded instead (PostgreSQL, or text that is not UTF-8).
	lists []runDataLists
	next  string
}

// searchRunsPage loads the page of runs q asks for (see runsPage).
func (s *Store) searchRunsPage(ctx context.Context, q RunQuery) (runsPage, error) {
	if s.runCache != nil {
		if page, ok, err := s.cachedPage(ctx, q); err != nil || ok {
			return page, err
		}
	}
	if s.db.Dialect != meta.SQLite {
		runs, next, err := s.SearchRuns(ctx, q)
		return runsPage{runs: nonNil(runs), next: next}, err
	}
	p, err := planRunSearch(q, search.Qualify("r.", runColumns))
	if err != nil || p == nil {
		return runsPage{runs: []Run{}}, err
	}
	if s.runCache == nil {
		if page, ok, err := s.pageJSON(ctx, p); err != nil || ok {
			return page, err
		}
	}
	// Some text is not valid UTF-8: the page's runs are read, and their data
	// written as JSON by SQLite run by run, or by Go if that text is in it.
	runs, err := meta.Collect(ctx, s.db, p.query, p.args, func(row meta.Scanner) (Run, error) {
		ri, err := scanRunInfo(row)
		return Run{Info: ri}, err
	})
	if err != nil {
		return runsPage{}, fmt.Errorf("search runs: %w", err)
	}
	runs, next := search.TrimPage(runs, p.limit, p.offset)
	lists, err := s.runDataJSON(ctx, runs)
	if err != nil {
		return runsPage{}, err
	}
	if lists == nil { // text SQLite cannot quote validly: the Go path
		if err := s.loadRunData(ctx, runs); err != nil {
			return runsPage{}, err
		}
	}
	return runsPage{runs: nonNil(runs), lists: lists, next: next}, nil
}

// AppendJSON appends the page's JSON to b (wire.RawJSON).
func (p runsPage) AppendJSON(b []byte) []byte {
	if p.parts != nil {
		return p.appendParts(b)
	}
	if p.body != "" {
		return p.appendBody(b)
	}
	if p.lists == nil {
		return runsResponse{p.runs, p.next}.AppendJSON(b)
	}
	size := 64
	for i := range p.lists {
		size += 400 + len(p.lists[i].params) + len(p.lists[i].tags) + len(p.lists[i].metrics)
	}
	b = slices.Grow(b, size)
	b = append(b, `{"runs":[`...)
	for i := range p.runs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendRunInfo(b, &p.runs[i].Info)
		b = append(b, `,"data":{`...)
		// The order and omitted empty lists of runsResponse (omitempty).
		sep := false
		for _, f := range [...]struct{ name, list string }{
			{`"metrics":`, p.lists[i].metrics}, {`"params":`, p.lists[i].params}, {`"tags":`, p.lists[i].tags},
		} {
			// Every page id gets its row ("[]" when empty); "" would break the JSON.
			if f.list == "" || f.list == "[]" {
				continue
			}
			if sep {
				b = append(b, ',')
			}
			b = append(b, f.name...)
			b = append(b, f.list...)
			sep = true
		}
		b = appendRunIO(append(b, '}'), &p.runs[i])
	}
	b = append(b, ']')
	return closePage(b, p.next)
}

// runDataLists are one run's params, tags and latest metrics as JSON arrays.
type runDataLists struct{ params, tags, metrics string }

// runDataJSON reads the data of runs (in order) as JSON arrays written by
// SQLite, and their inputs and outputs into runs. It returns nil if some text
// is not valid UTF-8 (SQLite would copy it into the JSON as it is).
func (s *Store) runDataJSON(ctx context.Context, runs []Run) ([]runDataLists, error) {
	out := make([]runDataLists, len(runs))
	if len(runs) == 0 {
		return out, nil
	}
	idx, ids := indexRuns(runs)
	valid := true
	for chunk := range slices.Chunk(ids, 1000) {
		params, tags, metrics := runListsSQL("id")
		q := pageCTE(len(chunk)) + `SELECT id, ` + params + `, ` + tags + `, ` + metrics + ` FROM page`
		err := meta.EachRow(ctx, s.db, q, anys(chunk), func(rows *sql.Rows) error {
			var id string
			var d runDataLists
			if err := rows.Scan(&id, &d.params, &d.tags, &d.metrics); err != nil {
				return err
			}
			valid = valid && utf8.ValidString(d.params) && utf8.ValidString(d.tags) && utf8.ValidString(d.metrics)
			out[idx[id]] = d
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("load run data: %w", err)
		}
	}
	if !valid {
		return nil, nil
	}
	if err := s.loadRunIO(ctx, runs, idx, ids); err != nil {
		return nil, err
	}
	return out, nil
}

// runListsSQL are three SQL expressions: the params, tags and latest metrics
// of the run whose id is the SQL expression id, each a JSON array written by
// SQLite ("[]" when the run has none). Each is a range scan of its table's
// primary key (run_uuid, key), so the list comes in key order, as the
// SearchRuns path sorts them (TestSearchRunsJSON checks it; an ORDER BY
// inside json_group_array would sort again: 25% slower). The client does not
// depend on the order: it reads the lists into dicts.
func runListsSQL(id string) (params, tags, metrics string) {
	return `(SELECT json_group_array(json_object('key', key, 'value', value)) FROM params WHERE params.run_uuid = ` + id + `)`,
		`(SELECT json_group_array(json_object('key', key, 'value', value)) FROM tags WHERE tags.run_uuid = ` + id + `)`,
		`(SELECT json_group_array(json_object('key', key, 'value', CASE WHEN is_nan = 1 THEN 'NaN' ELSE value END,
			'timestamp', timestamp, 'step', step)) FROM latest_metrics WHERE latest_metrics.run_uuid = ` + id + `)`
}

// runJSONSQL is the SQL expression that writes one run of search_runs' answer
// as JSON (see pageJSON) from the columns of runs aliased shown; a run with
// inputs or outputs gets ioMark, id, ioMark in their place.
func runJSONSQL() string {
	params, tags, metrics := runListsSQL("shown.run_uuid")
	info := func(withEnd bool) string {
		end := ""
		if withEnd {
			end = `'end_time', end_time, `
		}
		return `json_object('run_id', run_uuid, 'run_uuid', run_uuid, 'run_name', name, 'experiment_id', CAST(experiment_id AS TEXT),
			'user_id', user_id, 'status', status, 'start_time', start_time, ` + end + `'artifact_uri', artifact_uri, 'lifecycle_stage', lifecycle_stage)`
	}
	// The data's lists in runsResponse's order; concat_ws skips the NULL of an empty one.
	return `'{"info":' || CASE WHEN end_time IS NULL THEN ` + info(false) + ` ELSE ` + info(true) + ` END
		|| ',"data":{' || concat_ws(',', '"metrics":' || nullif(` + metrics + `, '[]'),
			'"params":' || nullif(` + params + `, '[]'), '"tags":' || nullif(` + tags + `, '[]')) || '}'
		|| CASE WHEN EXISTS (SELECT 1 FROM run_inputs i WHERE i.run_uuid = shown.run_uuid)
			OR EXISTS (SELECT 1 FROM run_model_inputs i WHERE i.run_uuid = shown.run_uuid)
			OR EXISTS (SELECT 1 FROM run_model_outputs o WHERE o.run_uuid = shown.run_uuid)
			THEN char(1) || run_uuid || char(1) ELSE ',"inputs":{},"outputs":{}}' END`
}

// ioMark brackets, in a pageJSON body, the id of a run whose inputs and
// outputs Go writes. Neither SQLite's JSON (it writes control characters in
// strings as \u0001) nor a run id (32 hex digits, NewID) holds the byte.
const ioMark = '\x01'

// pageJSON has SQLite write the whole page p selects (on SQLite) as the
// comma-separated run objects of search_runs' answer: one statement, one
// row, one string. Moving each run's columns and lists into Go one row at a
// time cost more than writing them: a 1,000-run page takes about 20% less
// CPU than reading each run's row, then its lists as three strings.
//
// The page query is materialized first, so its ORDER BY and LIMIT pick the
// runs before any list is written (a sorted search writes the lists of the
// page's runs only, not of every match). SQLite scans a materialized CTE in
// the order its rows were stored, the page's order, and group_concat joins
// rows in the order it is given them: that order is SQLite's implementation,
// not SQL's promise, and TestSearchRunsJSON compares it with SearchRuns'. The
// look-ahead row (LIMIT limit+1) is counted, not written.
//
// A run's info and lists are as runsPage.AppendJSON writes them (empty lists
// omitted, end_time only when set; concat_ws skips NULLs, SQLite 3.44+).
// Runs with inputs or outputs (logged datasets and models; most runs have
// none) get ioMark, id, ioMark instead of their "inputs" and "outputs": Go
// loads and writes those. ok is false, with nothing loaded, when some text
// is not valid UTF-8.
func (s *Store) pageJSON(ctx context.Context, p *runSearch) (page runsPage, ok bool, err error) {
	run := runJSONSQL()
	q := `WITH page AS MATERIALIZED (` + p.query + `),
		shown AS (SELECT * FROM page LIMIT ?)
		SELECT (SELECT count(*) FROM page), group_concat(` + run + `, ',') FROM shown`
	var n int64
	var body sql.NullString
	if err := s.db.QueryRow(ctx, q, append(slices.Clip(p.args), p.limit)...).Scan(&n, &body); err != nil {
		return runsPage{}, false, fmt.Errorf("search runs: %w", err)
	}
	if !utf8.ValidString(body.String) {
		return runsPage{}, false, nil
	}
	if n > p.limit {
		page.next = wire.EncodeOffset(p.offset + int(p.limit))
	}
	if !body.Valid { // no run
		page.runs = []Run{}
		return page, true, nil
	}
	page.body = body.String
	if page.io, err = s.markedRunIO(ctx, page.body); err != nil {
		return runsPage{}, false, err
	}
	return page, true, nil
}

// markedRunIO loads the inputs and outputs of the runs whose ids body marks
// (ioMark, id, ioMark), by id; nil when none is marked.
func (s *Store) markedRunIO(ctx context.Context, body string) (map[string]*Run, error) {
	var withIO []Run
	for rest := body; ; {
		i := strings.IndexByte(rest, ioMark)
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i+1:], ioMark)
		if j < 0 {
			return nil, fmt.Errorf("search runs: unterminated run id in the page's JSON")
		}
		withIO = append(withIO, Run{Info: RunInfo{RunID: rest[i+1 : i+1+j]}})
		rest = rest[i+2+j:]
	}
	if len(withIO) == 0 {
		return nil, nil
	}
	idx, ids := indexRuns(withIO)
	if err := s.loadRunIO(ctx, withIO, idx, ids); err != nil {
		return nil, err
	}
	out := make(map[string]*Run, len(withIO))
	for i := range withIO {
		out[withIO[i].Info.RunID] = &withIO[i]
	}
	return out, nil
}

// appendBody appends the answer of a page SQLite wrote (pageJSON).
func (p runsPage) appendBody(b []byte) []byte {
	b = slices.Grow(b, len(p.body)+len(p.io)*200+64)
	b = appendMarked(append(b, `{"runs":[`...), p.body, p.io)
	b = append(b, ']')
	return closePage(b, p.next)
}

// appendParts appends the answer of a page cachedPage loaded.
func (p runsPage) appendParts(b []byte) []byte {
	size := 64
	for _, r := range p.parts {
		size += len(r) + 1
	}
	b = append(slices.Grow(b, size), `{"runs":[`...)
	for i, r := range p.parts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, r...)
	}
	b = append(b, ']')
	return closePage(b, p.next)
}

// appendMarked appends body, runs' JSON SQLite wrote (runJSONSQL), with each
// marked run's inputs and outputs, from io (markedRunIO), in place of its
// marker.
func appendMarked(b []byte, body string, io map[string]*Run) []byte {
	for {
		i := strings.IndexByte(body, ioMark)
		if i < 0 {
			return append(b, body...)
		}
		j := strings.IndexByte(body[i+1:], ioMark) // markedRunIO checked the pairs
		b = appendRunIO(append(b, body[:i]...), io[body[i+1:i+1+j]])
		body = body[i+2+j:]
	}
}
