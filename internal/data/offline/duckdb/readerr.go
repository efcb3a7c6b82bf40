package duckdb

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/pipeline"
	"github.com/atrium-ml/atrium/internal/data/quality"
	"github.com/atrium-ml/atrium/internal/platform/csvfile"
	"github.com/atrium-ml/atrium/internal/spec"
)

// This file turns DuckDB's failures to read a user's data files (sources and
// spines) into errors that name the file, the line and the value. DuckDB's own
// messages quote Atrium's generated SQL and the CSV reader's options, which
// mean nothing to the user who wrote the file: they go to the debug log only.

// BadValueError is a value of a data file that cannot be read as what its
// column holds (a timestamp that is not one). It wraps Kind: offline.ErrSource
// for a source's file, offline.ErrInvalid for a spine.
type BadValueError struct {
	File   string // as shown to the user: relative to the repository when inside it
	Line   int    // CSV: the file's 1-based line (the header is line 1); 0 when unknown
	Row    int    // Parquet: the 1-based row; 0 when unknown or for CSV
	Column string
	Value  string
	Want   string // what the column should hold, with an example
	Kind   error
}

func (e *BadValueError) Error() string {
	var at string
	switch {
	case e.Line > 0:
		at = fmt.Sprintf(" line %d", e.Line)
	case e.Row > 0:
		at = fmt.Sprintf(" row %d", e.Row)
	}
	return fmt.Sprintf("%s%s: column %s: %q is not %s", e.File, at, e.Column, e.Value, e.Want)
}

func (e *BadValueError) Unwrap() error { return e.Kind }

// wantTimestamp says what a text time column must hold.
const wantTimestamp = "a timestamp, expected e.g. 2026-12-04 06:00:00 (UTC) or 2026-12-04T06:00:00+02:00"

// display is how a data file is named to the user: relative to the repository
// when it lies inside it.
func (e *Engine) display(path string) string {
	if e.baseDir == "" {
		return path
	}
	if rel, err := filepath.Rel(e.baseDir, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}

// misread reports a CSV schema that DuckDB's sniffer got wrong: it reads a file
// whose rows have different numbers of fields as one column per line, named
// after the whole header, so a column name holding a delimiter is the sign.
func misread(cols []pipeline.SourceColumn) bool {
	for _, c := range cols {
		if strings.ContainsAny(c.Name, csvfile.Delimiters) {
			return true
		}
	}
	return false
}

// csvShape returns the first row of files whose number of fields differs from
// its header's (a *csvfile.FieldCountError naming the file for the user), nil
// when every file is consistent or cannot be checked.
func (e *Engine) csvShape(files []string) error {
	for _, f := range files {
		err := csvfile.Check(f)
		var fe *csvfile.FieldCountError
		if errors.As(err, &fe) {
			fe.File = e.display(f)
			return fe
		}
		if err != nil {
			e.log.Debug("check csv file", "file", f, "err", err)
		}
	}
	return nil
}

// explained is a read failure told in the user's terms. Its text is the
// explanation alone (callers say which source or spine it is about); it wraps
// the sentinel kind and the explanation's own error.
type explained struct {
	kind, err error
}

func (x *explained) Error() string   { return x.err.Error() }
func (x *explained) Unwrap() []error { return []error{x.kind, x.err} }

// readError explains a DuckDB failure reading data files of the given format
// (spec.FormatCSV, ...) for what ("source listings", "spine", for the debug
// log), whose text time column is tsCol ("" when none is cast): a row with the
// wrong number of fields (*csvfile.FieldCountError) or a time that is not one
// (*BadValueError), located; any other failure by its first line, without the
// SQL. The result wraps kind. The raw error goes to the debug log.
func (e *Engine) readError(ctx context.Context, q queryer, what, format string, files []string, tsCol string, kind, err error) error {
	if ctx.Err() != nil {
		return err
	}
	e.log.Debug("read data files", "what", what, "files", len(files), "err", err)
	var de *duckdb.Error
	if errors.As(err, &de) && (de.Type == duckdb.ErrorTypeInvalidInput || de.Type == duckdb.ErrorTypeConversion) {
		// DuckDB's CSV reader reports a row with the wrong number of fields
		// as either type, depending on the column it stops at.
		if format == "csv" {
			if shape := e.csvShape(files); shape != nil {
				return &explained{kind: kind, err: shape}
			}
		}
		if de.Type == duckdb.ErrorTypeConversion && tsCol != "" {
			bad, derr := e.badTimestamp(ctx, q, format, files, tsCol)
			if derr != nil {
				e.log.Debug("locate bad timestamp", "what", what, "err", derr)
			}
			if bad != nil {
				bad.Kind = kind
				return bad
			}
		}
	}
	return &explained{kind: kind, err: errors.New(firstLine(err))}
}

// firstLine is an engine error without the query excerpt and caret DuckDB
// appends (they point into Atrium's generated SQL) and without the reader's
// option dump.
func firstLine(err error) string {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return strings.TrimSpace(msg)
}

// badTimestamp finds the first value of the text column col, in files of the
// given format, that does not convert to a timestamp; nil when all do.
func (e *Engine) badTimestamp(ctx context.Context, q queryer, format string, files []string, col string) (*BadValueError, error) {
	list, err := fileList(files)
	if err != nil {
		return nil, err
	}
	var rel, rowExpr string
	switch format {
	case "parquet":
		rel = fmt.Sprintf("read_parquet(%s, union_by_name = true, filename = 'atrium_file', file_row_number = true)", list)
		rowExpr = "file_row_number + 1"
	case "json":
		rel = fmt.Sprintf("read_json(%s, format = 'auto', union_by_name = true, filename = 'atrium_file')", list)
		rowExpr = "0"
	default:
		rel = fmt.Sprintf("read_csv(%s, union_by_name = true, filename = 'atrium_file')", list)
		rowExpr = "0"
	}
	c := quality.Quote(col)
	var file, value string
	var row int64
	rows, err := q.QueryContext(ctx, fmt.Sprintf(
		`SELECT atrium_file, CAST(%s AS VARCHAR), %s FROM %s WHERE %s IS NOT NULL AND TRY_CAST(%s AS TIMESTAMPTZ) IS NULL LIMIT 1`,
		c, rowExpr, rel, c, c))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	if err := rows.Scan(&file, &value, &row); err != nil {
		return nil, err
	}
	bad := &BadValueError{File: e.display(file), Row: int(row), Column: col, Value: value, Want: wantTimestamp}
	if format == "csv" {
		if line, err := csvfile.FindValue(file, col, value); err == nil {
			bad.Line = line
		}
	}
	return bad, nil
}

// sourceSchema describes a source's relation rel over files, explaining a
// failure or a CSV file the sniffer misread (see misread) with readError and
// csvShape. The error wraps offline.ErrSource and does not name the source.
func (e *Engine) sourceSchema(ctx context.Context, q queryer, src *spec.Source, files []string, rel string) ([]pipeline.SourceColumn, error) {
	cols, err := describe(ctx, q, "SELECT * FROM "+rel)
	if err != nil {
		return nil, e.readError(ctx, q, "source "+src.Name, src.Format, files, "", offline.ErrSource, err)
	}
	if src.Format == spec.FormatCSV && misread(cols) {
		if shape := e.csvShape(files); shape != nil {
			return nil, &explained{kind: offline.ErrSource, err: shape}
		}
	}
	return cols, nil
}
