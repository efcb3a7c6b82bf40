package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/quality"
	"github.com/atrium-ml/atrium/internal/spec"
)

// scanBatch is the number of rows ScanLatest hands to its callback at a time.
const scanBatch = 8192

type queryer interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

// storedRelation is a subquery over a set's stored files with the join keys,
// "timestamp", the set's current columns and atrium_ord, the row's position in
// write order (files are listed in name order, which is write order; 2^32 rows
// per file at most). Files written before a column was added read it as NULL; a
// column whose type changed is converted with TRY_CAST (NULL where it does not
// convert). It returns the stored columns' types by name too.
func storedRelation(ctx context.Context, q queryer, fs *spec.FeatureSet, keys []string, files []string) (string, map[string]string, error) {
	list, err := fileList(files)
	if err != nil {
		return "", nil, fmt.Errorf("read stored rows of %s: %w", fs.Name, err)
	}
	src := fmt.Sprintf("read_parquet(%s, union_by_name = true, hive_partitioning = false, file_row_number = true)", list)
	have, err := describe(ctx, q, "SELECT * FROM "+src)
	if err != nil {
		return "", nil, fmt.Errorf("read stored rows of %s: %w", fs.Name, err)
	}
	types := map[string]string{}
	for _, c := range have {
		types[c.Name] = c.Type
	}
	sel := make([]string, 0, len(keys)+4)
	for _, k := range keys {
		if _, ok := types[k]; !ok {
			return "", nil, fmt.Errorf("stored rows of %s have no join key column %q: the entity's keys changed since they were written; rerun the set", fs.Name, k)
		}
		sel = append(sel, quality.Quote(k))
	}
	sel = append(sel, quality.Quote(spec.TimestampColumn))
	for _, c := range fs.Columns() {
		qc := quality.Quote(c.Name)
		switch t, ok := types[c.Name]; {
		case !ok:
			sel = append(sel, fmt.Sprintf("CAST(NULL AS %s) AS %s", c.Type.SQL(), qc))
		case t == c.Type.SQL():
			sel = append(sel, qc)
		default:
			sel = append(sel, fmt.Sprintf("TRY_CAST(%s AS %s) AS %s", qc, c.Type.SQL(), qc))
		}
	}
	sel = append(sel, "file_index * 4294967296 + file_row_number AS atrium_ord")
	return fmt.Sprintf("(SELECT %s FROM %s)", strings.Join(sel, ", "), src), types, nil
}

// ScanLatest implements offline.Engine.
func (e *Engine) ScanLatest(ctx context.Context, set string, from, to time.Time, fn func([]offline.LatestRow) error) error {
	fs, keys, err := e.set(set)
	if err != nil {
		return fmt.Errorf("scan latest: %w", err)
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return nil
	}
	unlock, err := e.lockSet(set, false)
	if err != nil {
		return fmt.Errorf("scan latest %s: %w", set, err)
	}
	defer unlock()
	files, err := e.partitions(set, from, to)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		// Nothing in (from, to]: is there anything at all up to to?
		if !from.IsZero() {
			files, err = e.partitions(set, time.Time{}, to)
			if err != nil {
				return err
			}
		}
		if len(files) == 0 {
			return fmt.Errorf("scan latest %s: %w up to %s", set, offline.ErrNoData, to.UTC().Format(time.DateOnly))
		}
		return nil
	}
	rel, _, err := storedRelation(ctx, e.db, fs, keys, files)
	if err != nil {
		return fmt.Errorf("scan latest %s: %w", set, err)
	}
	cond := "true"
	if !to.IsZero() {
		cond = quality.Quote(spec.TimestampColumn) + " <= " + tsLiteral(to)
	}
	if !from.IsZero() {
		cond += " AND " + quality.Quote(spec.TimestampColumn) + " > " + tsLiteral(from)
	}
	keyList := strings.Join(quoteNames(keys), ", ")
	cols := fs.Columns()
	out := append(quoteNames(keys), quality.Quote(spec.TimestampColumn))
	for _, c := range cols {
		out = append(out, quality.Quote(c.Name))
	}
	query := fmt.Sprintf(`SELECT %s FROM %s WHERE %s
		QUALIFY row_number() OVER (PARTITION BY %s ORDER BY "timestamp" DESC, atrium_ord DESC) = 1`,
		strings.Join(out, ", "), rel, cond, keyList)
	rows, err := e.db.QueryContext(ctx, query)
	if err != nil {
		return fmt.Errorf("scan latest %s: %w", set, err)
	}
	defer rows.Close()
	nk, nv := len(keys), len(cols)
	width := nk + 1 + nv
	dest := make([]any, width)
	ptrs := make([]any, width)
	for i := range dest {
		ptrs[i] = &dest[i]
	}
	batch := make([]offline.LatestRow, 0, scanBatch)
	var backing []any
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("scan latest %s: %w", set, err)
		}
		if len(backing) < nk+nv {
			// One allocation per batch holds every row's keys and values, so rows
			// handed to fn stay valid after it returns.
			backing = make([]any, scanBatch*(nk+nv))
		}
		row := offline.LatestRow{Key: backing[:nk:nk], Values: backing[nk : nk+nv : nk+nv]}
		backing = backing[nk+nv:]
		for i := 0; i < nk; i++ {
			row.Key[i] = normalizeKey(dest[i])
		}
		ts, _ := dest[nk].(time.Time)
		row.TS = ts.UTC()
		for i := 0; i < nv; i++ {
			row.Values[i] = normalizeValue(dest[nk+1+i])
		}
		batch = append(batch, row)
		if len(batch) == scanBatch {
			if err := fn(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("scan latest %s: %w", set, err)
	}
	if len(batch) > 0 {
		return fn(batch)
	}
	return nil
}

// normalizeKey maps a key read from DuckDB to string or int64.
func normalizeKey(v any) any {
	switch k := v.(type) {
	case int32:
		return int64(k)
	case int16:
		return int64(k)
	case int8:
		return int64(k)
	}
	return v
}

// normalizeValue maps a feature value read from DuckDB to the LatestRow types.
func normalizeValue(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.UTC()
	case int32:
		return int64(x)
	case float32:
		return float64(x)
	}
	return v
}

// Append implements offline.Engine.
func (e *Engine) Append(ctx context.Context, set string, rows []offline.LatestRow) error {
	fs, keys, err := e.set(set)
	if err != nil {
		return fmt.Errorf("append: %w", err)
	}
	if len(rows) == 0 {
		return nil
	}
	cols := fs.Columns()
	keyTypes, err := checkRows(set, keys, cols, rows)
	if err != nil {
		return err
	}
	unlock, err := e.lockSet(set, true)
	if err != nil {
		return fmt.Errorf("append %s: %w", set, err)
	}
	defer unlock()
	dir := e.setDir(set)
	if err := recoverSet(dir); err != nil {
		return fmt.Errorf("append %s: recover: %w", set, err)
	}
	if err := e.checkStoredKeyTypes(ctx, fs, keys, keyTypes); err != nil {
		return err
	}
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("append %s: %w", set, err)
	}
	defer conn.Close()
	table := "atrium_push_" + strings.ReplaceAll(newID(), "-", "_")
	defs := make([]string, 0, len(keys)+1+len(cols))
	for i, k := range keys {
		defs = append(defs, quality.Quote(k)+" "+keyTypes[i])
	}
	defs = append(defs, quality.Quote(spec.TimestampColumn)+" TIMESTAMP")
	for _, c := range cols {
		defs = append(defs, quality.Quote(c.Name)+" "+c.Type.SQL())
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("CREATE TABLE %s (%s)", table, strings.Join(defs, ", "))); err != nil {
		return fmt.Errorf("append %s: %w", set, err)
	}
	defer conn.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+table) //nolint:errcheck // best effort
	err = conn.Raw(func(dc any) error {
		a, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", table)
		if err != nil {
			return err
		}
		vals := make([]driver.Value, len(defs))
		for _, r := range rows {
			n := 0
			for _, k := range r.Key {
				vals[n] = driver.Value(k)
				n++
			}
			vals[n] = r.TS.UTC()
			n++
			for _, v := range r.Values {
				vals[n] = driver.Value(v)
				n++
			}
			if err := a.AppendRow(vals...); err != nil {
				a.Close()
				return err
			}
		}
		return a.Close()
	})
	if err != nil {
		return fmt.Errorf("append %s: %w", set, err)
	}
	staging, id, err := e.newStaging()
	if err != nil {
		return fmt.Errorf("append %s: %w", set, err)
	}
	defer os.RemoveAll(staging)
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`COPY (SELECT *, strftime("timestamp", '%%Y-%%m-%%d') AS atrium_date FROM %s)
		TO %s (FORMAT parquet, PARTITION_BY (atrium_date), FILENAME_PATTERN '%s-push-{i}')`,
		table, sqlQuote(staging), id)); err != nil {
		return fmt.Errorf("append %s: write parquet: %w", set, err)
	}
	parts, err := os.ReadDir(staging)
	if err != nil {
		return err
	}
	for _, p := range parts {
		date, ok := strings.CutPrefix(p.Name(), "atrium_date=")
		if !ok {
			continue
		}
		from := filepath.Join(staging, p.Name())
		if err := syncTree(from); err != nil {
			return err
		}
		target := filepath.Join(dir, "date="+date)
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
		files, err := os.ReadDir(from)
		if err != nil {
			return err
		}
		for _, f := range files {
			if err := os.Rename(filepath.Join(from, f.Name()), filepath.Join(target, f.Name())); err != nil {
				return fmt.Errorf("append %s: publish %s: %w", set, date, err)
			}
		}
		if err := syncDir(target); err != nil {
			return err
		}
	}
	return nil
}

// checkRows validates pushed rows against the set's keys and columns, converting
// Go ints to int64 in place, and returns the SQL type of each key.
func checkRows(set string, keys []string, cols []spec.Column, rows []offline.LatestRow) ([]string, error) {
	keyTypes := make([]string, len(keys))
	bad := func(i int, format string, args ...any) error {
		return fmt.Errorf("append %s: %w: row %d: %s", set, offline.ErrInvalid, i, fmt.Sprintf(format, args...))
	}
	for i := range rows {
		r := &rows[i]
		if len(r.Key) != len(keys) {
			return nil, bad(i, "%d key values, expected %d (%s)", len(r.Key), len(keys), strings.Join(keys, ", "))
		}
		if r.TS.IsZero() {
			return nil, bad(i, "no timestamp")
		}
		if len(r.Values) != len(cols) {
			return nil, bad(i, "%d values, expected %d (the set's columns)", len(r.Values), len(cols))
		}
		for j, k := range r.Key {
			var t string
			switch v := k.(type) {
			case string:
				t = "VARCHAR"
			case int64:
				t = "BIGINT"
			case int:
				r.Key[j], t = int64(v), "BIGINT"
			default:
				return nil, bad(i, "key %s is %T, expected string or int64", keys[j], k)
			}
			if keyTypes[j] == "" {
				keyTypes[j] = t
			} else if keyTypes[j] != t {
				return nil, bad(i, "key %s is %s but earlier rows have %s", keys[j], t, keyTypes[j])
			}
		}
		for j, v := range r.Values {
			conv, ok := convertValue(v, cols[j].Type)
			if !ok {
				return nil, bad(i, "column %s is %T, expected %s", cols[j].Name, v, cols[j].Type)
			}
			r.Values[j] = conv
		}
	}
	return keyTypes, nil
}

// convertValue checks a pushed value against a column type (nil is NULL).
func convertValue(v any, t spec.Type) (any, bool) {
	if v == nil {
		return nil, true
	}
	switch t {
	case spec.Int64:
		switch x := v.(type) {
		case int64:
			return x, true
		case int:
			return int64(x), true
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
				return int64(x), true
			}
		}
	case spec.Float64:
		switch x := v.(type) {
		case float64:
			return x, true
		case int64:
			return float64(x), true
		case int:
			return float64(x), true
		}
	case spec.String:
		s, ok := v.(string)
		return s, ok
	case spec.Bool:
		b, ok := v.(bool)
		return b, ok
	case spec.Timestamp:
		if x, ok := v.(time.Time); ok {
			return x.UTC(), true
		}
	}
	return nil, false
}

// checkStoredKeyTypes refuses pushed keys whose types differ from the stored rows'.
func (e *Engine) checkStoredKeyTypes(ctx context.Context, fs *spec.FeatureSet, keys, keyTypes []string) error {
	files, err := e.partitions(fs.Name, time.Time{}, time.Time{})
	if err != nil || len(files) == 0 {
		return err
	}
	list, err := fileList(files[len(files)-1:])
	if err != nil {
		return fmt.Errorf("append %s: %w", fs.Name, err)
	}
	have, err := describe(ctx, e.db, "SELECT * FROM read_parquet("+list+")")
	if err != nil {
		return fmt.Errorf("append %s: %w", fs.Name, err)
	}
	for i, k := range keys {
		for _, c := range have {
			if c.Name == k && c.Type != keyTypes[i] {
				return fmt.Errorf("append %s: %w: key %s is %s in the pushed rows but %s in the stored rows", fs.Name, offline.ErrInvalid, k, keyTypes[i], c.Type)
			}
		}
	}
	return nil
}

func quoteNames(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = quality.Quote(n)
	}
	return out
}

func tsLiteral(t time.Time) string {
	return "TIMESTAMP '" + t.UTC().Format("2006-01-02 15:04:05.999999") + "'"
}
