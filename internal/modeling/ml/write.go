package ml

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/duckdb/duckdb-go/v2"
)

// OutputColumn is one column of a table to write: numbers, or a column read
// with LoadOptions.Passthrough (written back with its original type).
type OutputColumn struct {
	Name   string
	Floats []float64  // used when Raw is nil
	Raw    *RawColumn // text values and the DuckDB type to cast them back to
}

// WriteTable writes columns of equal length to path, as CSV (.csv, .tsv) or
// Parquet (.parquet, .pq) by extension, with DuckDB. The file appears
// atomically: it is written beside path and renamed over it, so a failure
// leaves any previous file intact.
func WriteTable(ctx context.Context, path string, cols []OutputColumn) error {
	options, err := copyOptions(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	n := -1
	for _, c := range cols {
		rows := len(c.Floats)
		if c.Raw != nil {
			rows = len(c.Raw.Value)
		}
		if n >= 0 && rows != n {
			return fmt.Errorf("write %s: column %q has %d rows, want %d", path, c.Name, rows, n)
		}
		n = rows
	}
	err = WriteAtomic(path, func(tmp string) error { return copyTo(ctx, tmp, options, cols) })
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// copyOptions returns DuckDB's COPY options for the table file type of path,
// chosen by its extension.
func copyOptions(path string) (string, error) {
	lower := strings.ToLower(path)
	switch {
	case strings.HasSuffix(lower, ".csv"):
		return "FORMAT csv, HEADER true", nil
	case strings.HasSuffix(lower, ".tsv"):
		return "FORMAT csv, HEADER true, DELIMITER '\t'", nil
	case strings.HasSuffix(lower, ".parquet"), strings.HasSuffix(lower, ".pq"):
		return "FORMAT parquet", nil
	}
	return "", errors.New("unknown file type: want .csv, .tsv or .parquet")
}

// CheckTablePath reports an output path WriteTable would refuse (an unknown
// extension), so that a command can refuse it before doing the work.
func CheckTablePath(path string) error {
	_, err := copyOptions(path)
	return err
}

// WriteAtomic makes a file appear at path whole or not at all: write fills a
// temporary file beside path (same directory, same extension, so tools that
// pick a format by extension see the right one), which is then renamed over
// path. On any failure the temporary file is removed and path is untouched.
func WriteAtomic(path string, write func(tmp string) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*"+filepath.Ext(path))
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly after the rename
	if err := f.Close(); err != nil {
		return err
	}
	if err := write(tmp); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// copyTo appends the columns into a DuckDB table and copies it to path.
func copyTo(ctx context.Context, path, options string, cols []OutputColumn) error {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	defs := make([]string, len(cols))
	selects := make([]string, len(cols))
	for i, c := range cols {
		col := fmt.Sprintf("c%d", i)
		defs[i] = col + " DOUBLE"
		selects[i] = col + " AS " + quoteIdent(c.Name)
		if c.Raw != nil {
			defs[i] = col + " VARCHAR"
			if c.Raw.Type != "" && c.Raw.Type != "VARCHAR" {
				selects[i] = fmt.Sprintf("CAST(%s AS %s) AS %s", col, c.Raw.Type, quoteIdent(c.Name))
			}
		}
	}
	if _, err := conn.ExecContext(ctx, "CREATE TEMP TABLE out ("+strings.Join(defs, ", ")+")"); err != nil {
		return err
	}
	err = conn.Raw(func(dc any) error {
		app, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "out")
		if err != nil {
			return err
		}
		row := make([]driver.Value, len(cols))
		rows := 0
		if len(cols) > 0 {
			rows = len(cols[0].Floats)
			if cols[0].Raw != nil {
				rows = len(cols[0].Raw.Value)
			}
		}
		for r := range rows {
			if r%65536 == 0 {
				if err := ctx.Err(); err != nil {
					app.Close()
					return err
				}
			}
			for i, c := range cols {
				switch {
				case c.Raw == nil:
					row[i] = c.Floats[r]
				case c.Raw.Valid[r]:
					row[i] = c.Raw.Value[r]
				default:
					row[i] = nil
				}
			}
			if err := app.AppendRow(row...); err != nil {
				app.Close()
				return err
			}
		}
		return app.Close()
	})
	if err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, fmt.Sprintf("COPY (SELECT %s FROM out) TO %s (%s)", strings.Join(selects, ", "), quoteString(path), options))
	return err
}
