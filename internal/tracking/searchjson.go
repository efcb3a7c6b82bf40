package tracking

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
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
// again). On SQLite the engine writes each run's param, tag and metric lists
// as JSON itself (json_group_array), so a run's data crosses as three strings
// that go into the answer as they are. The JSON means the same as
// encoding/json's, and decodes in the mlflow client to the same runs
// (TestSearchRunsJSON), but is not byte-identical: SQLite does not escape <, >
// and &, writes a double with 17 significant digits when 15 do not read back
// as the same double (1/3 is 0.33333333333333332 where Go writes the shortest,
// 0.3333333333333333) and integral doubles with a fraction (5.0, 1.0e+21, as
// MLflow's own server does). PostgreSQL takes the SearchRuns path.
type runsPage struct {
	runs []Run
	// lists holds runs[i]'s data as JSON arrays written by SQLite; nil means
	// runs[i].Data is loaded instead (PostgreSQL, or text that is not UTF-8).
	lists []runDataLists
	next  string
}

// searchRunsPage loads the page of runs q asks for (see runsPage).
func (s *Store) searchRunsPage(ctx context.Context, q RunQuery) (runsPage, error) {
	if s.db.Dialect != meta.SQLite {
		runs, next, err := s.SearchRuns(ctx, q)
		return runsPage{runs: nonNil(runs), next: next}, err
	}
	p, err := planRunSearch(q, search.Qualify("r.", runColumns))
	if err != nil || p == nil {
		return runsPage{runs: []Run{}}, err
	}
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
	if p.next != "" {
		b = append(b, `,"next_page_token":`...)
		b = wire.AppendString(b, p.next)
	}
	return append(b, '}')
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
	idx := make(map[string]int, len(runs))
	ids := make([]string, len(runs))
	for i, r := range runs {
		idx[r.Info.RunID] = i
		ids[i] = r.Info.RunID
	}
	valid := true
	for chunk := range slices.Chunk(ids, 1000) {
		// One correlated subquery per list: each is a range scan of the table's
		// primary key (run_uuid, key), so the lists come in key order, as the
		// SearchRuns path sorts them (TestSearchRunsJSON checks it; an ORDER BY
		// inside json_group_array would sort again: 25% slower). The client
		// does not depend on the order: it reads the lists into dicts.
		q := pageCTE(len(chunk)) + `
			SELECT id,
				(SELECT json_group_array(json_object('key', key, 'value', value)) FROM params WHERE run_uuid = id),
				(SELECT json_group_array(json_object('key', key, 'value', value)) FROM tags WHERE run_uuid = id),
				(SELECT json_group_array(json_object('key', key, 'value', CASE WHEN is_nan = 1 THEN 'NaN' ELSE value END,
					'timestamp', timestamp, 'step', step)) FROM latest_metrics WHERE run_uuid = id)
			FROM page`
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
