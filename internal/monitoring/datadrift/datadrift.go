// Package datadrift compares two tables (CSV or Parquet files, read with
// DuckDB) column by column with internal/monitoring/drift: Evidently's data
// drift report (DataDriftPreset) on files, as `atrium monitor drift` runs it.
//
// Columns are typed from the files: numbers (integers, decimals, floats) are
// numeric, text, booleans and enums categorical, as Evidently's column
// mapping infers them from pandas dtypes. Date, time and nested columns are
// skipped and listed (Evidently leaves datetime columns out of the drift
// table too). Reading is one DuckDB scan per file, both files at once, and
// the columns are then tested in parallel.
package datadrift

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/duckdb/duckdb-go/v2"
	"golang.org/x/sync/errgroup"

	"github.com/atrium-ml/atrium/internal/data/profile"
	"github.com/atrium-ml/atrium/internal/monitoring/drift"
)

// Errors.
var (
	// ErrInput: a file cannot be read as a table, or the column selection
	// does not fit the files.
	ErrInput = errors.New("bad drift input")
)

// Options is one comparison.
type Options struct {
	// Reference and Current are CSV (.csv, .tsv, optionally .gz) or Parquet
	// files; a glob reads several files as one table.
	Reference, Current string
	// Columns restricts the comparison (default: every column of the
	// reference that can be tested).
	Columns []string
	// Overrides set the method and/or threshold of a column.
	Overrides map[string]drift.Options
	// DriftShare is the dataset threshold (default drift.DefaultDriftShare).
	DriftShare float64
	// Parallel bounds the columns tested at once (default GOMAXPROCS).
	Parallel int
}

// Result is the comparison: drift.DatasetResult's fields (columns,
// drifted_count, drifted_share, drift_share, dataset_drift) plus the sizes
// and the columns left out.
type Result struct {
	Reference     string `json:"reference"`
	Current       string `json:"current"`
	ReferenceRows int64  `json:"reference_rows"`
	CurrentRows   int64  `json:"current_rows"`
	drift.DatasetResult
	// Skipped lists the reference columns not tested and why (type).
	Skipped []Skipped `json:"skipped,omitempty"`

	// samples keep the loaded columns for the HTML report's histograms.
	samples map[string][2]column
}

// Skipped is a column left out.
type Skipped struct {
	Column string `json:"column"`
	Reason string `json:"reason"`
}

// Column kinds as read.
type column struct {
	name string
	num  []float64 // numeric: NaN for NULL
	cat  []string  // categorical: "" for NULL
}

// Run reads both files and compares them.
func Run(ctx context.Context, o Options) (*Result, error) {
	connector, err := duckdb.NewConnector("", nil)
	if err != nil {
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	defer connector.Close()
	db := sql.OpenDB(connector)
	defer db.Close()

	refRel, err := relation(o.Reference)
	if err != nil {
		return nil, fmt.Errorf("--reference: %w", err)
	}
	curRel, err := relation(o.Current)
	if err != nil {
		return nil, fmt.Errorf("--current: %w", err)
	}
	refTypes, err := describe(ctx, db, refRel)
	if err != nil {
		return nil, fmt.Errorf("reference %s: %w", o.Reference, err)
	}
	curTypes, err := describe(ctx, db, curRel)
	if err != nil {
		return nil, fmt.Errorf("current %s: %w", o.Current, err)
	}
	res := &Result{Reference: o.Reference, Current: o.Current}
	cols, err := selectColumns(o, refTypes, curTypes, res)
	if err != nil {
		return nil, err
	}
	var ref, cur []column
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		ref, res.ReferenceRows, err = load(gctx, db, refRel, cols)
		if err != nil {
			err = fmt.Errorf("read reference %s: %w", o.Reference, err)
		}
		return err
	})
	g.Go(func() (err error) {
		cur, res.CurrentRows, err = load(gctx, db, curRel, cols)
		if err != nil {
			err = fmt.Errorf("read current %s: %w", o.Current, err)
		}
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	res.DatasetResult, err = compare(ctx, ref, cur, o)
	if err != nil {
		return nil, err
	}
	res.samples = make(map[string][2]column, len(ref))
	for i := range ref {
		res.samples[ref[i].name] = [2]column{ref[i], cur[i]}
	}
	return res, nil
}

// compare runs drift's per-column tests in parallel and sums them up as
// drift.Compare does.
func compare(ctx context.Context, ref, cur []column, o Options) (drift.DatasetResult, error) {
	share := o.DriftShare
	if share == 0 {
		share = drift.DefaultDriftShare
	}
	out := drift.DatasetResult{DriftShare: share, Columns: make([]drift.ColumnResult, len(ref))}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(orDefault(o.Parallel, runtime.GOMAXPROCS(0)))
	for i := range ref {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			r, c := ref[i], cur[i]
			var err error
			if r.num != nil {
				out.Columns[i], err = drift.CompareNumeric(r.name, r.num, c.num, o.Overrides[r.name])
			} else {
				out.Columns[i], err = drift.CompareCategorical(r.name, r.cat, c.cat, o.Overrides[r.name])
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return out, err
	}
	for _, c := range out.Columns {
		if c.Drift {
			out.DriftedCount++
		}
	}
	out.DriftedShare = float64(out.DriftedCount) / float64(len(out.Columns))
	out.DatasetDrift = out.DriftedShare >= share
	return out, nil
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// relation is the DuckDB table function reading path.
func relation(path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("%w: no file given", ErrInput)
	}
	lower := strings.ToLower(strings.TrimSuffix(path, ".gz"))
	var rel string
	switch {
	case strings.HasSuffix(lower, ".parquet"):
		rel = "read_parquet(" + sqlQuote(path) + ")"
	case strings.HasSuffix(lower, ".csv"), strings.HasSuffix(lower, ".tsv"):
		rel = "read_csv(" + sqlQuote(path) + ", auto_detect = true)"
	default:
		return "", fmt.Errorf("%w: %s: want a .csv, .tsv or .parquet file", ErrInput, path)
	}
	if !strings.ContainsAny(path, "*?[") {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("%w: %w", ErrInput, err)
		}
	} else if m, _ := filepath.Glob(path); len(m) == 0 {
		return "", fmt.Errorf("%w: %s matches no file", ErrInput, path)
	}
	return rel, nil
}

// colType is a column's name and its kind: "numeric", "categorical" or the
// DuckDB type of a column that cannot be tested.
type colType struct{ name, kind, sqlType string }

func describe(ctx context.Context, db *sql.DB, rel string) ([]colType, error) {
	rows, err := db.QueryContext(ctx, "DESCRIBE SELECT * FROM "+rel)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	defer rows.Close()
	var out []colType
	for rows.Next() {
		var name, typ string
		var null, key, def, extra sql.NullString
		if err := rows.Scan(&name, &typ, &null, &key, &def, &extra); err != nil {
			return nil, err
		}
		out = append(out, colType{name: name, kind: kindOf(typ), sqlType: typ})
	}
	return out, rows.Err()
}

// kindOf maps a DuckDB type to numeric, categorical or "" (not testable).
func kindOf(typ string) string {
	switch profile.SQLKind(typ) {
	case profile.Numeric:
		return "numeric"
	case profile.Categorical:
		return "categorical"
	}
	return ""
}

func selectColumns(o Options, ref, cur []colType, res *Result) ([]colType, error) {
	curBy := map[string]colType{}
	for _, c := range cur {
		curBy[c.name] = c
	}
	refBy := map[string]colType{}
	for _, c := range ref {
		refBy[c.name] = c
	}
	var errs []error
	var out []colType
	take := func(r colType, named bool) {
		c, ok := curBy[r.name]
		switch {
		case r.kind == "":
			if named {
				errs = append(errs, fmt.Errorf("column %q is %s: only numeric and categorical columns can be tested", r.name, r.sqlType))
			} else {
				res.Skipped = append(res.Skipped, Skipped{Column: r.name, Reason: "type " + r.sqlType})
			}
		case !ok:
			errs = append(errs, fmt.Errorf("column %q of the reference is missing from the current data", r.name))
		case c.kind != r.kind:
			errs = append(errs, fmt.Errorf("column %q is %s (%s) in the reference but %s (%s) in the current data", r.name, r.kind, r.sqlType, orType(c.kind), c.sqlType))
		default:
			out = append(out, r)
		}
	}
	if len(o.Columns) > 0 {
		for _, name := range o.Columns {
			r, ok := refBy[name]
			if !ok {
				errs = append(errs, fmt.Errorf("--columns: %q is not a column of the reference (it has %s)", name, names(ref)))
				continue
			}
			take(r, true)
		}
	} else {
		for _, r := range ref {
			take(r, false)
		}
	}
	for name := range o.Overrides {
		if !slices.ContainsFunc(out, func(c colType) bool { return c.name == name }) && !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), fmt.Sprintf("%q", name)) }) {
			errs = append(errs, fmt.Errorf("override for %q, which is not a compared column", name))
		}
	}
	if len(errs) == 0 && len(out) == 0 {
		errs = append(errs, errors.New("no numeric or categorical column to compare"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInput, errors.Join(errs...))
	}
	return out, nil
}

func orType(kind string) string {
	if kind == "" {
		return "not testable"
	}
	return kind
}

func names(cols []colType) string {
	s := make([]string, len(cols))
	for i, c := range cols {
		s[i] = c.name
	}
	return strings.Join(s, ", ")
}

// load reads the columns in one scan. Numbers arrive as DOUBLE (NULL: NaN),
// the rest as VARCHAR (NULL: ""), through the driver's rows directly: the
// database/sql layer's per-value conversion would cost more than the scan.
func load(ctx context.Context, db *sql.DB, rel string, cols []colType) ([]column, int64, error) {
	exprs := make([]string, len(cols))
	out := make([]column, len(cols))
	for i, c := range cols {
		out[i].name = c.name
		if c.kind == "numeric" {
			exprs[i] = "CAST(" + quoteIdent(c.name) + " AS DOUBLE)"
			out[i].num = []float64{}
		} else {
			exprs[i] = "CAST(" + quoteIdent(c.name) + " AS VARCHAR)"
			out[i].cat = []string{}
		}
	}
	q := "SELECT " + strings.Join(exprs, ", ") + " FROM " + rel
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close()
	var n int64
	err = conn.Raw(func(dc any) error {
		qc, ok := dc.(driver.QueryerContext)
		if !ok {
			return errors.New("duckdb driver connection cannot query")
		}
		rows, err := qc.QueryContext(ctx, q, nil)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInput, err)
		}
		defer rows.Close()
		dest := make([]driver.Value, len(cols))
		for {
			if err := rows.Next(dest); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
			n++
			if n%65536 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			for i, v := range dest {
				if out[i].num != nil {
					f, ok := v.(float64)
					if !ok {
						f = math.NaN()
					}
					out[i].num = append(out[i].num, f)
				} else {
					s, _ := v.(string)
					out[i].cat = append(out[i].cat, s)
				}
			}
		}
	})
	return out, n, err
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func sqlQuote(s string) string   { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
