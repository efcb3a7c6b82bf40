package predlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// VersionCount is what a range of the log holds of one model version on one
// route, counted without reading the rows into memory.
type VersionCount struct {
	Version string
	Route   Route
	// Rows are the logged rows; Estimated the rows served, each logged row
	// standing for 1/sample_rate of them.
	Rows      int64
	Estimated float64
	// Newest is the time of the version's newest row on the route.
	Newest time.Time
}

// Counts returns the rows of Source(dir, model, since, until) counted by
// version and route, aggregated by DuckDB: a window of any size costs a
// scan, not memory. It returns ErrNoPredictions when no file covers the
// range.
func Counts(ctx context.Context, dir, model string, since, until time.Time) ([]VersionCount, error) {
	src, err := Source(dir, model, since, until)
	if err != nil {
		return nil, err
	}
	// A row logged before sample rates existed, or with rate 0, stands for
	// itself.
	q := `SELECT model_version, route, count(*), sum(CASE WHEN sample_rate > 0 THEN 1.0 / sample_rate ELSE 1.0 END), max("timestamp")
		FROM ` + src + ` GROUP BY ALL ORDER BY model_version, route`
	var out []VersionCount
	err = withDB(ctx, dir, func(db *sql.DB) error {
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c VersionCount
			var version, route sql.NullString
			if err := rows.Scan(&version, &route, &c.Rows, &c.Estimated, &c.Newest); err != nil {
				return err
			}
			c.Version, c.Route, c.Newest = version.String, Route(route.String), c.Newest.UTC()
			out = append(out, c)
		}
		return rows.Err()
	})
	return out, err
}

// Selection picks rows of a window for ReadSample.
type Selection struct {
	// Version, when set, keeps that version's rows only.
	Version string
	// Shadow keeps shadow rows too (they are left out otherwise).
	Shadow bool
	// MaxRows bounds the rows read (0: no bound). Above it whole requests
	// are drawn, each with the same chance, by a seeded hash of the request
	// id: a ranking request's rows stay together, the draw is the same on
	// every read of the same files, and about MaxRows rows come back.
	MaxRows int64
}

// Sample is what ReadSample read.
type Sample struct {
	Rows []Row
	// Of is the number of rows selected before drawing: len(Rows) when the
	// window fit in MaxRows.
	Of int64
}

// sampleSeed seeds the request-id hash of ReadSample's draw.
const sampleSeed = 7

// ReadSample returns the rows of Source(dir, model, since, until) that sel
// selects, in Read's order, drawing whole requests when there are more
// than sel.MaxRows (see Selection). Unlike Read it bounds memory, so
// monitoring reads windows of any size through it.
func ReadSample(ctx context.Context, dir, model string, since, until time.Time, sel Selection) (*Sample, error) {
	src, err := Source(dir, model, since, until)
	if err != nil {
		return nil, err
	}
	var where []string
	if sel.Version != "" {
		where = append(where, "model_version = "+sqlQuote(sel.Version))
	}
	if !sel.Shadow {
		where = append(where, "route IS DISTINCT FROM "+sqlQuote(string(RouteShadow)))
	}
	filtered := src
	if len(where) > 0 {
		filtered = fmt.Sprintf("(SELECT * FROM %s WHERE %s)", src, strings.Join(where, " AND "))
	}
	s := &Sample{}
	err = withDB(ctx, dir, func(db *sql.DB) error {
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+filtered).Scan(&s.Of); err != nil {
			return err
		}
		q := "SELECT * FROM " + filtered
		if sel.MaxRows > 0 && s.Of > sel.MaxRows {
			// hash is uniform over 64 bits: a request is kept with
			// probability MaxRows/Of.
			t := uint64(math.Ldexp(float64(sel.MaxRows)/float64(s.Of), 64))
			q += fmt.Sprintf(" WHERE hash(request_id, %d) <= CAST(%d AS UBIGINT)", sampleSeed, t)
		}
		var err error
		s.Rows, err = scanRows(ctx, db, q+" ORDER BY "+rowOrder)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// withDB runs fn on a private in-memory DuckDB; errors name the log's
// directory.
func withDB(ctx context.Context, dir string, fn func(*sql.DB) error) error {
	connector, err := duckdb.NewConnector("", nil)
	if err != nil {
		return fmt.Errorf("open duckdb: %w", err)
	}
	defer connector.Close()
	db := sql.OpenDB(connector)
	defer db.Close()
	if err := fn(db); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("read prediction log %s: %w", dir, ctx.Err())
		}
		return fmt.Errorf("read prediction log %s: %w", dir, err)
	}
	return nil
}

// Known returns which of ids have rows in Source(dir, model, since, until),
// asking DuckDB rather than reading the window. No file in the range means
// none is known.
func Known(ctx context.Context, dir, model string, since, until time.Time, ids []string) (map[string]bool, error) {
	known := map[string]bool{}
	if len(ids) == 0 {
		return known, nil
	}
	src, err := Source(dir, model, since, until)
	if errors.Is(err, ErrNoPredictions) {
		return known, nil
	}
	if err != nil {
		return nil, err
	}
	err = withDB(ctx, dir, func(db *sql.DB) error {
		// Batches keep each statement's literal list small.
		const batch = 10000
		for lo := 0; lo < len(ids); lo += batch {
			list := make([]string, 0, batch)
			for _, id := range ids[lo:min(lo+batch, len(ids))] {
				list = append(list, sqlQuote(id))
			}
			rows, err := db.QueryContext(ctx, "SELECT DISTINCT request_id FROM "+src+" WHERE request_id IN ("+strings.Join(list, ", ")+")")
			if err != nil {
				return err
			}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				known[id] = true
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	return known, err
}
