package spark

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/spec"
)

var _ duckdb.PointInTimeCompute = (*Compute)(nil)

// pitConf is set on the sessions of point-in-time joins: a set's files
// written before a column was added are read with the column as NULL.
// Shuffle partitions are left to the server (adaptive execution coalesces
// small ones): a join's size is the spine's, which can be anything.
var pitConf = [][2]string{{"spark.sql.parquet.mergeSchema", "true"}}

// JoinPointInTime implements duckdb.PointInTimeCompute.
//
// Spark has no ASOF join. Each set is joined by a union and a window: the
// spine's rows and the set's stored rows are put in one relation, partitioned
// by the set's keys and ordered by (time, stored rows before spine rows,
// write order), and each spine row takes the last stored row before it
// (last(..., ignore nulls) over the rows up to the current one): the stored
// row with the greatest (timestamp, write order) not after t, which the ttl
// then keeps or drops. Its cost is one shuffle and sort of spine + stored
// rows per set, whatever the number of stored rows per key. The alternative,
// a range join (keys equal and t - ttl < ts <= t) reduced with max_by per
// spine row, pairs every spine row with every stored row of its key in the
// window: quadratic for a key with many rows, and unbounded without a ttl.
// The spine's columns travel through each set's window (NULL on the stored
// rows), so several sets are chained windows with no join back by row.
//
// Spine order: atrium_sid is the row's index in a Parquet spine
// (_metadata.row_index); a CSV spine is read as one split (multiLine, as
// runs read CSV sources: a quoted field may hold a newline), so
// monotonically_increasing_id() follows the file's order. Spark's output
// comes back unordered; the engine sorts it by atrium_sid.
func (c *Compute) JoinPointInTime(ctx context.Context, req duckdb.PointInTimeJob) (int64, error) {
	stmts, final, err := pitSQL(req)
	if err != nil {
		return 0, err
	}
	run, err := c.session(ctx, sessionConf, pitConf)
	if err != nil {
		return 0, err
	}
	for _, stmt := range stmts {
		if err := run.exec(ctx, stmt); err != nil {
			return 0, fmt.Errorf("defining the join: %w", err)
		}
	}
	if testHookBeforeWrite != nil {
		testHookBeforeWrite()
	}
	out := filepath.Join(req.Staging, "spark")
	table := "atrium_pit_" + strings.NewReplacer("-", "_").Replace(req.ID)
	// An external table (it has a LOCATION): dropping it keeps the files.
	if err := run.exec(ctx, fmt.Sprintf("CREATE TABLE %s USING parquet LOCATION %s AS %s", table, literal(out), final)); err != nil {
		return 0, fmt.Errorf("joining: %w", err)
	}
	rows, err := run.count(ctx, "SELECT count(*) FROM "+table)
	if derr := run.exec(ctx, "DROP TABLE IF EXISTS "+table); derr != nil {
		c.log.Warn("spark: dropping the output table's catalog entry", "table", table, "err", derr)
	}
	if err != nil {
		return 0, fmt.Errorf("counting the joined rows: %w", err)
	}
	return rows, nil
}

// pitSQL is the statements that define a point-in-time join's views in a
// Spark session and the query of its output (see JoinPointInTime and
// duckdb.PointInTimeCompute for the columns).
func pitSQL(req duckdb.PointInTimeJob) (stmts []string, final string, err error) {
	n := len(req.Columns)
	cols := make([]string, n) // the spine's columns as atrium_c<i>, in Spark's types
	var spine string
	switch req.Format {
	case "csv":
		// Columns by position, all text: the header names them; cast below
		// to the types DuckDB inferred, as runs read CSV sources.
		defs := make([]string, n)
		for i := range req.Columns {
			defs[i] = fmt.Sprintf("atrium_r%d STRING", i)
		}
		stmts = append(stmts, fmt.Sprintf("CREATE OR REPLACE TEMPORARY VIEW atrium_spine_file (%s) USING csv OPTIONS (path %s, header 'true', escape '\"', multiLine 'true')",
			strings.Join(defs, ", "), literal(hadoopPath(req.Spine))))
		spine = "atrium_spine_file"
	case "parquet":
		spine = "parquet." + quote(hadoopPath(req.Spine))
	default:
		return nil, "", fmt.Errorf("spine %s: format %q, expected csv or parquet", req.Spine, req.Format)
	}
	sel := make([]string, 0, n+2)
	for i, c := range req.Columns {
		t, err := sparkType(c.Type)
		if err != nil {
			return nil, "", fmt.Errorf("spine %s: column %s: %w", req.Spine, c.Name, err)
		}
		src := quote(c.Name)
		if req.Format == "csv" {
			src = fmt.Sprintf("atrium_r%d", i)
		}
		cols[i] = fmt.Sprintf("atrium_c%d", i)
		sel = append(sel, fmt.Sprintf("CAST(%s AS %s) AS %s", src, t, cols[i]))
	}
	if req.Format == "csv" {
		sel = append(sel, "monotonically_increasing_id() AS atrium_sid")
	} else {
		sel = append(sel, "_metadata.row_index AS atrium_sid")
	}
	if req.Time < 0 || req.Time >= n {
		return nil, "", fmt.Errorf("spine %s: time column %d of %d", req.Spine, req.Time, n)
	}
	// Typed as DuckDB's (sparkType), the time is a timestamp, a date or text:
	// text with an offset is converted by CAST, without one it is UTC (the
	// session's time zone), as in DuckDB.
	sel = append(sel, fmt.Sprintf("CAST(%s AS TIMESTAMP) AS atrium_t", cols[req.Time]))
	stmts = append(stmts, fmt.Sprintf("CREATE OR REPLACE TEMPORARY VIEW atrium_pit_0 AS SELECT %s FROM %s", strings.Join(sel, ", "), spine))

	// carried are the columns each step passes on: the spine's, its row and
	// time, and the features joined so far.
	carried := append(append([]string{}, cols...), "atrium_sid", "atrium_t")
	for i, set := range req.Sets {
		prev, next := fmt.Sprintf("atrium_pit_%d", i), fmt.Sprintf("atrium_pit_%d", i+1)
		var outs []string
		if len(set.Files) == 0 {
			// Nothing stored can match: every feature is NULL.
			for _, f := range set.Features {
				outs = append(outs, fmt.Sprintf("CAST(NULL AS %s) AS atrium_f%d", Dialect.Type(f.Type), f.Out))
			}
			stmts = append(stmts, fmt.Sprintf("CREATE OR REPLACE TEMPORARY VIEW %s AS SELECT %s, %s FROM %s", next, strings.Join(carried, ", "), strings.Join(outs, ", "), prev))
		} else {
			s, err := setSQL(req, set, carried, prev, next)
			if err != nil {
				return nil, "", err
			}
			stmts = append(stmts, s...)
		}
		for _, f := range set.Features {
			carried = append(carried, fmt.Sprintf("atrium_f%d", f.Out))
		}
	}

	// Naive timestamps are written without a time zone (TIMESTAMP_NTZ), the
	// type DuckDB reads as TIMESTAMP; TIMESTAMP WITH TIME ZONE stays an instant.
	outSel := []string{"atrium_sid"}
	for i, c := range req.Columns {
		outSel = append(outSel, ntz(cols[i], strings.HasPrefix(c.Type, "TIMESTAMP") && c.Type != "TIMESTAMP WITH TIME ZONE"))
	}
	for _, set := range req.Sets {
		for _, f := range set.Features {
			outSel = append(outSel, ntz(fmt.Sprintf("atrium_f%d", f.Out), f.Type == spec.Timestamp))
		}
	}
	return stmts, fmt.Sprintf("SELECT %s FROM atrium_pit_%d", strings.Join(outSel, ", "), len(req.Sets)), nil
}

// setSQL is the statements that join one set's stored rows to the relation
// prev (with the carried columns) into next (see JoinPointInTime).
func setSQL(req duckdb.PointInTimeJob, set duckdb.PointInTimeSet, carried []string, prev, next string) ([]string, error) {
	index := map[string]int{}
	for i, c := range req.Columns {
		index[c.Name] = i
	}
	keyOf := map[string]string{} // spine column -> stored key
	var part, notNull []string
	for _, k := range set.Keys {
		i, ok := index[k]
		if !ok {
			return nil, fmt.Errorf("feature set %s: join key %s is not a spine column", set.Name, k)
		}
		keyOf[fmt.Sprintf("atrium_c%d", i)] = quote(k)
		part = append(part, fmt.Sprintf("atrium_c%d", i))
		notNull = append(notNull, quote(k)+" IS NOT NULL")
	}
	// The stored rows: keys, time, write order (file name, then row; the
	// files of one date are in one directory and named in write order, and
	// rows of the same keys and timestamp share a date) and the features.
	ts := fmt.Sprintf("CAST(%s AS TIMESTAMP)", quote(spec.TimestampColumn))
	cond := append(notNull, fmt.Sprintf("%s <= timestamp_micros(%d)", ts, set.To.UnixMicro()))
	if !set.From.IsZero() {
		cond = append(cond, fmt.Sprintf("%s > timestamp_micros(%d)", ts, set.From.UnixMicro()))
	}
	hit := []string{"'t', " + ts, "'f', _metadata.file_name", "'r', _metadata.row_index"}
	for _, f := range set.Features {
		v := fmt.Sprintf("CAST(%s AS %s)", quote(f.Column), Dialect.Type(f.Type))
		if !f.Stored {
			v = fmt.Sprintf("CAST(NULL AS %s)", Dialect.Type(f.Type))
		}
		hit = append(hit, fmt.Sprintf("'v%d', %s", f.Out, v))
	}
	stored := make([]string, len(carried))
	for i, c := range carried {
		stored[i] = "NULL"
		if k, ok := keyOf[c]; ok {
			stored[i] = k
		}
		stored[i] += " AS " + c
	}
	union := fmt.Sprintf(`SELECT %s, atrium_t AS atrium_w, 1 AS atrium_kind, NULL AS atrium_m FROM %s
UNION ALL
SELECT %s, %s AS atrium_w, 0 AS atrium_kind, named_struct(%s) AS atrium_m FROM parquet.%s WHERE %s`,
		strings.Join(carried, ", "), prev,
		strings.Join(stored, ", "), ts, strings.Join(hit, ", "), quote(fileGlob(set.Files)), strings.Join(cond, " AND "))
	// A spine row with a NULL time sorts first and takes nothing; one with a
	// NULL key is alone in its partition (stored rows with a NULL key are
	// left out).
	window := fmt.Sprintf(`SELECT *, last(atrium_m, true) OVER (PARTITION BY %s ORDER BY atrium_w, atrium_kind, atrium_m.f, atrium_m.r ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS atrium_hit FROM (%s) AS atrium_u`,
		strings.Join(part, ", "), union)
	fresh := "atrium_hit.t <= atrium_t"
	if set.TTL > 0 {
		fresh += fmt.Sprintf(" AND unix_micros(atrium_hit.t) > unix_micros(atrium_t) - %d", set.TTL.Microseconds())
	}
	outs := make([]string, 0, len(set.Features))
	for _, f := range set.Features {
		outs = append(outs, fmt.Sprintf("CASE WHEN %s THEN atrium_hit.v%d END AS atrium_f%d", fresh, f.Out, f.Out))
	}
	return []string{fmt.Sprintf("CREATE OR REPLACE TEMPORARY VIEW %s AS SELECT %s, %s FROM (%s) AS atrium_x WHERE atrium_kind = 1",
		next, strings.Join(carried, ", "), strings.Join(outs, ", "), window)}, nil
}

// fileGlob is a Hadoop path pattern matching exactly files (absolute
// paths): dir/{rest1,rest2,...} with dir the directory common to all, and
// the paths' pattern characters escaped (a pattern must start at the root:
// Hadoop takes "{/a,/b}" as relative).
func fileGlob(files []string) string {
	if len(files) == 1 {
		return hadoopPath(files[0])
	}
	dir := files[0]
	for _, f := range files[1:] {
		for !strings.HasPrefix(f, dir) {
			dir = dir[:len(dir)-1]
		}
	}
	dir = dir[:strings.LastIndexByte(dir, '/')+1]
	esc := strings.NewReplacer(`,`, `\,`, `}`, `\}`)
	q := make([]string, len(files))
	for i, f := range files {
		q[i] = esc.Replace(hadoopPath(f[len(dir):]))
	}
	return hadoopPath(dir) + "{" + strings.Join(q, ",") + "}"
}

// ntz selects col, as TIMESTAMP_NTZ when naive.
func ntz(col string, naive bool) string {
	if naive {
		return fmt.Sprintf("CAST(%s AS TIMESTAMP_NTZ) AS %s", col, col)
	}
	return col
}
