package tracking

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/maypok86/otter/v2"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/tracking/search"
)

// DefaultRunCacheBytes is the memory the run cache may hold by default: about
// 90,000 runs of a param, a metric and a few tags each.
const DefaultRunCacheBytes = 64 << 20

// cachedRun is one run of search_runs' answer as JSON (as runJSONSQL and
// appendMarked write it), as the run was at revision.
//
// Invariant: json was written in the same statement, so the same snapshot, as
// revision was read. Every transaction that changes what json holds bumps
// runs.revision (inRunTx, setRunStage, setExperimentStage), and revisions
// only grow, so an entry whose revision equals the run's current one is the
// run's current answer, whichever process sharing the database wrote the
// change.
type cachedRun struct {
	revision int64
	json     string
}

// newRunCache returns a cache of up to bytes of runs' JSON, or nil (no cache)
// when bytes is not positive.
func newRunCache(bytes int64) *otter.Cache[string, cachedRun] {
	if bytes <= 0 {
		return nil
	}
	return otter.Must(&otter.Options[string, cachedRun]{
		MaximumWeight: uint64(bytes),
		Weigher: func(id string, r cachedRun) uint32 {
			return uint32(min(len(id)+len(r.json)+64, math.MaxUint32)) // 64: the entry's own overhead
		},
	})
}

// cachedPage answers a search with the run cache: one query picks the page's
// runs and their revisions, cached runs whose revision is current are copied
// as they are, and the others are written (renderRuns on SQLite, encodeRuns
// on PostgreSQL) and cached. A search that the UI or a dashboard repeats over
// runs that did not change writes no JSON at all. ok is false, with nothing
// loaded, when some text is not valid UTF-8 (SQLite only; searchRunsPage
// then takes the Go path).
//
// The page's runs and order come from the first query; the JSON of a run that
// changed between the two queries is its newer state (read committed).
func (s *Store) cachedPage(ctx context.Context, q RunQuery) (page runsPage, ok bool, err error) {
	p, err := planRunSearch(q, "r.run_uuid, r.revision")
	if err != nil || p == nil {
		return runsPage{runs: []Run{}}, true, err
	}
	picks, err := s.pagePicks(ctx, p)
	if err != nil {
		return runsPage{}, false, fmt.Errorf("search runs: %w", err)
	}
	picks, page.next = search.TrimPage(picks, p.limit, p.offset)
	if len(picks) == 0 {
		page.runs = []Run{}
		return page, true, nil
	}
	page.parts = make([]string, len(picks))
	var missing []runPick
	for i, r := range picks {
		if c, hit := s.runCache.GetIfPresent(r.id); hit && c.revision == r.revision {
			page.parts[i] = c.json
		} else {
			missing = append(missing, r)
		}
	}
	if len(missing) == 0 {
		return page, true, nil
	}
	var fresh map[string]cachedRun
	ok = true
	if s.db.Dialect == meta.SQLite {
		fresh, ok, err = s.renderRuns(ctx, missing)
	} else {
		fresh, err = s.encodeRuns(ctx, missing)
	}
	if err != nil || !ok {
		return runsPage{}, ok, err
	}
	parts := page.parts[:0]
	for i, r := range picks {
		if page.parts[i] != "" {
			parts = append(parts, page.parts[i])
		} else if c, found := fresh[r.id]; found { // not found: deleted since
			parts = append(parts, c.json)
		}
	}
	page.parts = parts
	return page, true, nil
}

// runPick is a run of a search page and its revision when the page was picked.
type runPick struct {
	id       string
	revision int64
}

// pagePicks runs p's query (selecting run ids and revisions) in order, the
// look-ahead run last.
func (s *Store) pagePicks(ctx context.Context, p *runSearch) ([]runPick, error) {
	if s.db.Dialect != meta.SQLite {
		return meta.Collect(ctx, s.db, p.query, p.args, func(row meta.Scanner) (runPick, error) {
			var r runPick
			err := row.Scan(&r.id, &r.revision)
			return r, err
		})
	}
	// On SQLite one row, one string: "id revision id revision ...", in the
	// page's order (a materialized CTE is scanned in the order it was stored,
	// see pageJSON). Crossing into Go row by row cost as much as the query.
	var list sql.NullString
	err := s.db.QueryRow(ctx, `WITH page AS MATERIALIZED (`+p.query+`)
		SELECT group_concat(run_uuid || ' ' || revision, ' ') FROM page`, p.args...).Scan(&list)
	if err != nil {
		return nil, err
	}
	fields := strings.Fields(list.String)
	picks := make([]runPick, 0, len(fields)/2)
	for i := 0; i+1 < len(fields); i += 2 {
		rev, err := strconv.ParseInt(fields[i+1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("run %s has revision %q", fields[i], fields[i+1])
		}
		picks = append(picks, runPick{fields[i], rev})
	}
	return picks, nil
}

// encodeRuns loads the runs picks names (PostgreSQL), encodes each as
// runsResponse does, and caches it with the revision it was picked at. The
// data is read after that revision, so it holds every change up to it (and
// maybe later ones, whose revision then misses the entry): the invariant of
// cachedRun holds without one snapshot for both.
func (s *Store) encodeRuns(ctx context.Context, picks []runPick) (map[string]cachedRun, error) {
	fresh := make(map[string]cachedRun, len(picks))
	for chunk := range slices.Chunk(picks, 1000) {
		ids := make([]any, len(chunk))
		rev := make(map[string]int64, len(chunk))
		for i, r := range chunk {
			ids[i] = r.id
			rev[r.id] = r.revision
		}
		runs, err := meta.Collect(ctx, s.db, `SELECT `+runColumns+` FROM runs WHERE run_uuid IN (`+search.Placeholders(len(ids))+`)`, ids,
			func(row meta.Scanner) (Run, error) {
				ri, err := scanRunInfo(row)
				return Run{Info: ri}, err
			})
		if err != nil {
			return nil, fmt.Errorf("search runs: %w", err)
		}
		if err := s.loadRunData(ctx, runs); err != nil {
			return nil, err
		}
		for i := range runs {
			id := runs[i].Info.RunID
			c := cachedRun{revision: rev[id], json: string(appendRun(nil, &runs[i]))}
			fresh[id] = c
			s.runCache.Set(id, c)
		}
	}
	return fresh, nil
}

// Separators of renderRuns' rows: SQLite's JSON writes control characters in
// strings escaped, and ids and revisions are hex and decimal digits.
const (
	runSep   = '\x03'
	fieldSep = '\x02'
)

// renderRuns has SQLite write the JSON of the runs ids (see runJSONSQL), as
// one string per 1,000 runs, and caches each with its revision. ok is false
// when the text of some run is not valid UTF-8 (SQLite copies it into its
// JSON as it is); the others are cached all the same.
func (s *Store) renderRuns(ctx context.Context, picks []runPick) (fresh map[string]cachedRun, ok bool, err error) {
	ids := make([]string, len(picks))
	for i, r := range picks {
		ids[i] = r.id
	}
	fresh = make(map[string]cachedRun, len(ids))
	ok = true
	q := `SELECT group_concat(shown.run_uuid || char(2) || shown.revision || char(2) || ` + runJSONSQL() + `, char(3))
		FROM page JOIN runs AS shown ON shown.run_uuid = page.id`
	for chunk := range slices.Chunk(ids, 1000) {
		var body sql.NullString
		if err := s.db.QueryRow(ctx, pageCTE(len(chunk))+q, anys(chunk)...).Scan(&body); err != nil {
			return nil, false, fmt.Errorf("search runs: %w", err)
		}
		if !body.Valid { // none of them is there any more
			continue
		}
		io, err := s.markedRunIO(ctx, body.String)
		if err != nil {
			return nil, false, err
		}
		for row := range strings.SplitSeq(body.String, string(runSep)) {
			id, rest, _ := strings.Cut(row, string(fieldSep))
			rev, js, found := strings.Cut(rest, string(fieldSep))
			revision, err := strconv.ParseInt(rev, 10, 64)
			if !found || err != nil {
				return nil, false, fmt.Errorf("search runs: malformed run %.40q in SQLite's JSON", row)
			}
			if !utf8.ValidString(js) {
				ok = false
				continue
			}
			// Copies: substrings would keep the whole chunk's string alive.
			c := cachedRun{revision: revision}
			if strings.IndexByte(js, ioMark) >= 0 {
				c.json = string(appendMarked(nil, js, io))
			} else {
				c.json = strings.Clone(js)
			}
			id = strings.Clone(id)
			fresh[id] = c
			s.runCache.Set(id, c)
		}
	}
	return fresh, ok, nil
}
