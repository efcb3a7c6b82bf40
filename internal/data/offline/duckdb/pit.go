package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/ondemand"
	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/pipeline"
	"github.com/atrium-ml/atrium/internal/data/quality"
	"github.com/atrium-ml/atrium/internal/spec"
)

// fileFormat returns the DuckDB format of a data file by extension.
func fileFormat(path string) (string, bool) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return "csv", true
	case ".parquet", ".pq":
		return "parquet", true
	}
	return "", false
}

// PointInTime implements offline.Engine with DuckDB's ASOF join: for each spine
// row at t and each set, the stored row of the same keys with the greatest
// timestamp <= t, kept only when it is newer than t - ttl. Rows of one set with the
// same keys and timestamp are reduced to the last written before the join, so the
// result does not depend on the order DuckDB happens to read files in. With a
// compute that implements PointInTimeCompute the join itself runs there, and
// the rest here (see PointInTimeCompute): same output, same errors.
func (e *Engine) PointInTime(ctx context.Context, req offline.PointInTimeRequest) (*offline.PointInTimeResult, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("point-in-time join: %w: %s", offline.ErrInvalid, fmt.Sprintf(format, args...))
	}
	inFormat, ok := fileFormat(req.Spine)
	if !ok {
		return nil, bad("spine %s: expected a .csv or .parquet file", req.Spine)
	}
	outFormat, ok := fileFormat(req.Out)
	if !ok {
		return nil, bad("output %s: expected a .csv or .parquet file name", req.Out)
	}
	if _, err := os.Stat(req.Spine); err != nil {
		return nil, bad("spine %s: %v", req.Spine, err)
	}
	if (len(req.Features) == 0 && req.Computed == nil) || len(req.Names) != len(req.Features) {
		return nil, bad("%d features and %d output names, expected the same non-zero number", len(req.Features), len(req.Names))
	}
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	read := "read_csv"
	if inFormat == "parquet" {
		read = "read_parquet"
	}
	spineFile, err := fileLiteral(req.Spine)
	if err != nil {
		return nil, bad("spine %v", err)
	}
	spineRel := fmt.Sprintf("%s(%s)", read, spineFile)
	spineFiles := []string{req.Spine}
	spineErr := func(err error) error {
		return fmt.Errorf("point-in-time join: spine: %w", e.readError(ctx, conn, "spine", inFormat, spineFiles, req.TimeColumn, offline.ErrInvalid, err))
	}
	spineCols, err := describe(ctx, conn, "SELECT * FROM "+spineRel)
	if err != nil {
		return nil, spineErr(err)
	}
	if inFormat == "csv" && misread(spineCols) {
		if shape := e.csvShape(spineFiles); shape != nil {
			return nil, fmt.Errorf("point-in-time join: spine: %w", &explained{kind: offline.ErrInvalid, err: shape})
		}
	}
	spineTypes := map[string]string{}
	for _, c := range spineCols {
		spineTypes[c.Name] = c.Type
		if strings.HasPrefix(strings.ToLower(c.Name), spec.ReservedPrefix) {
			return nil, bad("spine column %q: names starting with %q are reserved, expected another name", c.Name, spec.ReservedPrefix)
		}
	}
	if req.TimeColumn == "" {
		if req.TimeColumn, err = pickTimeColumn(spineCols); err != nil {
			return nil, fmt.Errorf("point-in-time join: spine %s: %w", e.display(req.Spine), noTimeColumn(err))
		}
	}
	tt, ok := spineTypes[req.TimeColumn]
	if !ok {
		return nil, fmt.Errorf("point-in-time join: spine %s: %w", e.display(req.Spine),
			noTimeColumn(fmt.Errorf("no time column %q, expected one of: %s", req.TimeColumn, colNames(spineCols))))
	}
	if !pipeline.TimestampCompatible(tt) {
		return nil, bad("spine time column %q has type %s, expected a timestamp, date or ISO-8601 text", req.TimeColumn, tt)
	}
	for _, n := range req.Names {
		if _, clash := spineTypes[n]; clash {
			return nil, bad("feature column %q has the name of a spine column; rename the spine column or use full feature names", n)
		}
	}

	var views []string
	defer func() {
		_, _ = conn.ExecContext(context.Background(), "DROP TABLE IF EXISTS atrium_spine")
		for _, v := range views {
			_, _ = conn.ExecContext(context.Background(), "DROP VIEW IF EXISTS "+v)
		}
	}()
	texpr := pipeline.TimestampExpr(quality.Quote(req.TimeColumn), tt)
	var n int64
	var minT, maxT sql.NullTime
	pc, elsewhere := e.elsewhere.(PointInTimeCompute)
	if elsewhere {
		// The spine stays in its file: one streaming pass over its time
		// column finds the range that bounds the stored files to read (and
		// reports a bad time value as a local join does).
		if err := conn.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*), min(%s), max(%s) FROM %s`, texpr, texpr, spineRel)).Scan(&n, &minT, &maxT); err != nil {
			return nil, spineErr(err)
		}
		// An empty spine has nothing to join: DuckDB writes the header.
		elsewhere = n > 0
	}
	if !elsewhere {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf(
			`CREATE OR REPLACE TEMP TABLE atrium_spine AS SELECT *, row_number() OVER () AS atrium_row FROM (SELECT *, %s AS atrium_t FROM %s)`,
			texpr, spineRel)); err != nil {
			return nil, spineErr(err)
		}
		if err := conn.QueryRowContext(ctx, `SELECT count(*), min(atrium_t), max(atrium_t) FROM atrium_spine`).Scan(&n, &minT, &maxT); err != nil {
			return nil, err
		}
	}
	var job PointInTimeJob
	if elsewhere {
		// The compute resolves paths against its own working directory.
		abs, err := filepath.Abs(req.Spine)
		if err != nil {
			return nil, bad("spine %s: %v", req.Spine, err)
		}
		job = PointInTimeJob{Spine: abs, Format: inFormat, Columns: spineCols,
			Time: slices.IndexFunc(spineCols, func(c pipeline.SourceColumn) bool { return c.Name == req.TimeColumn })}
	}

	groups := spec.GroupBySet(req.Features)
	setNames := make([]string, len(groups))
	for i, g := range groups {
		setNames[i] = g.Set
	}
	unlock, err := e.lockSets(setNames)
	if err != nil {
		return nil, fmt.Errorf("point-in-time join: %w", err)
	}
	defer unlock()
	sel := []string{"sp.* EXCLUDE (atrium_t, atrium_row, atrium_st)"}
	var joins []string
	for gi, g := range groups {
		fs, keys, err := e.set(g.Set)
		if err != nil {
			return nil, fmt.Errorf("point-in-time join: %w", err)
		}
		for _, k := range keys {
			if _, ok := spineTypes[k]; !ok {
				return nil, bad("spine %s has no column %q, the join key of feature set %s (expected columns: %s)", req.Spine, k, g.Set, strings.Join(keys, ", "))
			}
		}
		table := fmt.Sprintf("atrium_set%d", gi)
		views = append(views, table)
		emptyKeyTypes := make([]string, len(keys))
		for ki, k := range keys {
			emptyKeyTypes[ki] = "VARCHAR"
			if pipeline.IntegerType(spineTypes[k]) {
				emptyKeyTypes[ki] = "BIGINT"
			}
		}
		from, to := matchRange(fs, minT, maxT)
		files, stored, err := e.pointInTimeTable(ctx, conn, table, fs, keys, emptyKeyTypes, from, to, maxT.Valid)
		if err != nil {
			return nil, fmt.Errorf("point-in-time join: %w", err)
		}
		setCols, err := describe(ctx, conn, "SELECT * FROM "+table)
		if err != nil {
			return nil, err
		}
		alias := fmt.Sprintf("s%d", gi)
		on := make([]string, 0, len(keys)+1)
		for ki, k := range keys {
			st, kt := spineTypes[k], setCols[ki].Type
			switch {
			case kt == "VARCHAR" && st == "VARCHAR", kt == "BIGINT" && pipeline.IntegerType(st):
			case kt == "VARCHAR" && pipeline.IntegerType(st), kt == "BIGINT" && st == "VARCHAR":
				return nil, bad("spine column %s has type %s but feature set %s stores it as %s", k, st, g.Set, kt)
			default:
				return nil, bad("spine column %s has type %s, expected an integer or text key", k, st)
			}
			on = append(on, fmt.Sprintf("sp.%s = %s.%s", quality.Quote(k), alias, quality.Quote(k)))
		}
		on = append(on, fmt.Sprintf("sp.atrium_st >= %s.atrium_st", alias))
		joins = append(joins, fmt.Sprintf("ASOF LEFT JOIN %s %s ON %s", table, alias, strings.Join(on, " AND ")))
		// Checked again here, not only by the ASOF inequality: a value is used only
		// when it is not after t (a NULL t matches nothing) and within the ttl.
		fresh := fmt.Sprintf("%s.atrium_st.t <= sp.atrium_t", alias)
		if fs.TTL > 0 {
			fresh += fmt.Sprintf(" AND %s.atrium_st.t > sp.atrium_t - INTERVAL '%d microseconds'", alias, fs.TTL.D().Microseconds())
		}
		set := PointInTimeSet{Name: g.Set, Keys: keys, Files: files, From: from, To: to, TTL: fs.TTL.D()}
		for _, f := range g.Features {
			j := indexOf(req.Features, f.Ref)
			sel = append(sel, fmt.Sprintf("CASE WHEN %s THEN %s.%s END AS %s", fresh, alias, quality.Quote(f.Name), quality.Quote(req.Names[j])))
			_, isStored := stored[f.Name]
			set.Features = append(set.Features, PointInTimeFeature{Column: f.Name, Type: f.Type, Stored: isStored, Out: j})
		}
		job.Sets = append(job.Sets, set)
	}
	// The spine's side of the ASOF inequality is (t, max): it matches the row with
	// the greatest (timestamp, write order) not after t, so among rows with the
	// same keys and timestamp the last written wins, without a de-duplication
	// pass. A NULL time matches nothing.
	spine := `(SELECT *, CASE WHEN atrium_t IS NOT NULL THEN {'t': atrium_t, 'o': 9223372036854775807} END AS atrium_st FROM atrium_spine)`
	c := req.Computed
	if c != nil {
		for _, in := range c.Inputs {
			_, isSpine := spineTypes[in.Name]
			if !isSpine && !slices.Contains(req.Names, in.Name) {
				return nil, bad("spine %s has no column %q, a request value of the on-demand features (expected a column of type %s)", req.Spine, in.Name, in.Type)
			}
		}
		for _, col := range c.Columns {
			if _, clash := spineTypes[col.Name]; clash {
				return nil, bad("feature column %q has the name of a spine column; rename the spine column or use full feature names", col.Name)
			}
		}
		sel = append(sel, "sp.atrium_row AS atrium_row")
	}
	query := fmt.Sprintf("SELECT %s FROM %s sp %s ORDER BY sp.atrium_row", strings.Join(sel, ", "), spine, strings.Join(joins, " "))
	if elsewhere {
		// The request is valid: the join runs elsewhere, the rest (on-demand
		// columns, types, order, the output file) here, from its staged rows.
		staging, id, err := e.newStaging()
		if err != nil {
			return nil, fmt.Errorf("point-in-time join: %w", err)
		}
		defer os.RemoveAll(staging)
		job.Staging, job.ID = staging, id
		if query, err = e.joinElsewhere(ctx, pc, job, n, req.Names, c != nil); err != nil {
			return nil, fmt.Errorf("point-in-time join: %w", err)
		}
	}
	outNames := req.Names
	if c != nil {
		if query, err = e.compute(ctx, conn, query, n, c); err != nil {
			return nil, fmt.Errorf("point-in-time join: %w", err)
		}
		defer func() {
			_, _ = conn.ExecContext(context.Background(), "DROP TABLE IF EXISTS atrium_joined")
			_, _ = conn.ExecContext(context.Background(), "DROP TABLE IF EXISTS atrium_computed")
		}()
		outNames = slices.DeleteFunc(slices.Clone(req.Names), func(n string) bool { return slices.Contains(c.Hidden, n) })
		for _, col := range c.Columns {
			outNames = append(outNames, col.Name)
		}
	}
	if err := os.MkdirAll(filepath.Dir(req.Out), 0o755); err != nil {
		return nil, err
	}
	tmp := filepath.Join(filepath.Dir(req.Out), "."+filepath.Base(req.Out)+"."+newID()+".tmp")
	opts := "FORMAT parquet"
	if outFormat == "csv" {
		opts = "FORMAT csv, HEADER true"
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("COPY (%s) TO %s (%s)", query, sqlQuote(tmp), opts)); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("point-in-time join: %w", err)
	}
	if err := os.Rename(tmp, req.Out); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	outCols := make([]string, 0, len(spineCols)+len(req.Names))
	for _, c := range spineCols {
		outCols = append(outCols, c.Name)
	}
	return &offline.PointInTimeResult{Rows: n, Columns: append(outCols, outNames...)}, nil
}

// computeBatch is the number of joined rows Computed.Compute sees at once.
const computeBatch = 8192

// compute runs a point-in-time join's Computed columns: the joined rows go to
// a temp table (DuckDB spills it to its temp directory when large), are read
// back in batches of row numbers, computed in Go and appended to a second
// temp table; it returns the query of the output, both joined by row.
func (e *Engine) compute(ctx context.Context, conn *sql.Conn, query string, rows int64, c *offline.Computed) (string, error) {
	if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE TEMP TABLE atrium_joined AS "+query); err != nil {
		return "", err
	}
	defs := []string{"atrium_row BIGINT"}
	for _, col := range c.Columns {
		defs = append(defs, quality.Quote(col.Name)+" "+col.Type.SQL())
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("CREATE OR REPLACE TEMP TABLE atrium_computed (%s)", strings.Join(defs, ", "))); err != nil {
		return "", err
	}
	inputs := make([]string, len(c.Inputs))
	for i, in := range c.Inputs {
		inputs[i] = quality.Quote(in.Name)
	}
	read := fmt.Sprintf("SELECT atrium_row, %s FROM atrium_joined WHERE atrium_row BETWEEN ? AND ? ORDER BY atrium_row", strings.Join(inputs, ", "))
	in := make([][]online.Value, len(c.Inputs))
	ids := make([]int64, 0, computeBatch)
	scan := make([]any, len(c.Inputs)+1)
	ptrs := make([]any, len(scan))
	for i := range scan {
		ptrs[i] = &scan[i]
	}
	var out []online.Value
	vals := make([]driver.Value, len(c.Columns)+1)
	for lo := int64(1); lo <= rows; lo += computeBatch {
		ids = ids[:0]
		for i := range in {
			in[i] = in[i][:0]
		}
		rs, err := conn.QueryContext(ctx, read, lo, lo+computeBatch-1)
		if err != nil {
			return "", err
		}
		for rs.Next() {
			if err := rs.Scan(ptrs...); err != nil {
				rs.Close()
				return "", err
			}
			ids = append(ids, scan[0].(int64))
			for i, x := range scan[1:] {
				// A value the online path could not see as this input's kind
				// fails the job: a silent null would skew training data from
				// what serving computes.
				v, err := ondemand.Convert(x, c.Inputs[i].Type.Kind())
				if err != nil {
					rs.Close()
					return "", fmt.Errorf("on-demand input %s: %w", c.Inputs[i].Name, err)
				}
				in[i] = append(in[i], v)
			}
		}
		if err := errors.Join(rs.Err(), rs.Close()); err != nil {
			return "", err
		}
		out = slices.Grow(out[:0], len(ids)*len(c.Columns))[:len(ids)*len(c.Columns)]
		if err := c.Compute(in, len(ids), out); err != nil {
			return "", err
		}
		err = conn.Raw(func(dc any) error {
			a, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "atrium_computed")
			if err != nil {
				return err
			}
			for r, id := range ids {
				vals[0] = id
				for k := range c.Columns {
					vals[k+1] = sqlValue(out[r*len(c.Columns)+k])
				}
				if err := a.AppendRow(vals...); err != nil {
					a.Close()
					return err
				}
			}
			return a.Close()
		})
		if err != nil {
			return "", fmt.Errorf("write computed columns: %w", err)
		}
	}
	exclude := append([]string{"atrium_row"}, c.Hidden...)
	return fmt.Sprintf("SELECT j.* EXCLUDE (%s), c.* EXCLUDE (atrium_row) FROM atrium_joined j JOIN atrium_computed c USING (atrium_row) ORDER BY j.atrium_row",
		strings.Join(quoteNames(exclude), ", ")), nil
}

// sqlValue is v as a driver value (nil for null and missing).
func sqlValue(v online.Value) driver.Value {
	switch v.Kind() {
	case online.KindInt64:
		return v.Int64()
	case online.KindFloat64:
		return v.Float64()
	case online.KindString:
		return v.Str()
	case online.KindBool:
		return v.Bool()
	case online.KindTime:
		return v.Time().UTC()
	}
	return nil
}

// matchRange is the range (from, to] of the stored rows of a set that can match
// a spine whose times span [minT, maxT] (a zero from: no lower bound).
func matchRange(fs *spec.FeatureSet, minT, maxT sql.NullTime) (from, to time.Time) {
	if minT.Valid && fs.TTL > 0 {
		from = minT.Time.Add(-fs.TTL.D())
	}
	if maxT.Valid {
		to = maxT.Time
	}
	return from, to
}

// pointInTimeTable defines a temp view of the rows of a set that can match the
// spine (timestamps in (from, to], from matchRange; none when the spine has
// no time, !anyTime) with the keys, atrium_st = (timestamp, write order) and
// the set's columns, and returns the stored files it reads and their columns'
// types by name. emptyKeyTypes are the key types of the empty view used when
// the set has no stored rows in range (the spine's, so the join binds; no row
// can match).
func (e *Engine) pointInTimeTable(ctx context.Context, conn *sql.Conn, table string, fs *spec.FeatureSet, keys, emptyKeyTypes []string, from, to time.Time, anyTime bool) (files []string, stored map[string]string, err error) {
	if anyTime {
		files, err = e.partitions(fs.Name, from, to)
		if err != nil {
			return nil, nil, err
		}
	}
	cols := fs.Columns()
	sel := quoteNames(keys)
	sel = append(sel, `{'t': "timestamp", 'o': atrium_ord} AS atrium_st`)
	for _, c := range cols {
		sel = append(sel, quality.Quote(c.Name))
	}
	if len(files) == 0 {
		defs := make([]string, 0, len(sel))
		for i, k := range keys {
			defs = append(defs, fmt.Sprintf("CAST(NULL AS %s) AS %s", emptyKeyTypes[i], quality.Quote(k)))
		}
		defs = append(defs, "CAST(NULL AS STRUCT(t TIMESTAMP, o BIGINT)) AS atrium_st")
		for _, c := range cols {
			defs = append(defs, fmt.Sprintf("CAST(NULL AS %s) AS %s", c.Type.SQL(), quality.Quote(c.Name)))
		}
		_, err := conn.ExecContext(ctx, fmt.Sprintf("CREATE OR REPLACE TEMP VIEW %s AS SELECT %s WHERE false", table, strings.Join(defs, ", ")))
		return nil, nil, err
	}
	rel, stored, err := storedRelation(ctx, conn, fs, keys, files)
	if err != nil {
		return nil, nil, err
	}
	cond := `"timestamp" <= ` + tsLiteral(to)
	if !from.IsZero() {
		cond += ` AND "timestamp" > ` + tsLiteral(from)
	}
	_, err = conn.ExecContext(ctx, fmt.Sprintf(`CREATE OR REPLACE TEMP VIEW %s AS SELECT %s FROM %s WHERE %s`,
		table, strings.Join(sel, ", "), rel, cond))
	if err != nil {
		return nil, nil, fmt.Errorf("read feature set %s: %w", fs.Name, err)
	}
	return files, stored, nil
}

// noTimeColumn marks why a spine has no time column: the error wraps
// offline.ErrNoTimeColumn and offline.ErrInvalid, and reads as why alone.
func noTimeColumn(why error) error {
	return &explained{kind: offline.ErrInvalid, err: &explained{kind: offline.ErrNoTimeColumn, err: why}}
}

// pickTimeColumn chooses a spine's time column: the only timestamp or date
// column, else the first of timestamp, event_timestamp and ts that exists.
func pickTimeColumn(cols []pipeline.SourceColumn) (string, error) {
	var typed []string
	for _, c := range cols {
		if strings.HasPrefix(c.Type, "TIMESTAMP") || c.Type == "DATE" {
			typed = append(typed, c.Name)
		}
	}
	if len(typed) == 1 {
		return typed[0], nil
	}
	for _, name := range []string{"timestamp", "event_timestamp", "ts"} {
		for _, c := range cols {
			if c.Name == name {
				return name, nil
			}
		}
	}
	if len(typed) > 1 {
		return "", fmt.Errorf("cannot tell which column is the time: %s are all timestamp columns", strings.Join(typed, ", "))
	}
	return "", fmt.Errorf("cannot tell which column is the time: none is a timestamp or named timestamp, event_timestamp or ts (columns: %s)",
		colNames(cols))
}

func indexOf(fs []spec.ResolvedFeature, ref string) int {
	for i, f := range fs {
		if f.Ref == ref {
			return i
		}
	}
	return -1
}

func colNames(cols []pipeline.SourceColumn) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}
