package demo

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	// DuckDB writes the Parquet form of the per-impression tables.
	_ "github.com/duckdb/duckdb-go/v2"
)

// column is a column of a per-impression table, with its DuckDB type.
type column struct{ name, typ string }

// impressionTable is a file layout with one row per impression, rows of a
// session consecutive in RowOrder (not the shown order, which would carry
// the position: ties are broken in row order) and sessions in time order.
type impressionTable struct {
	what    string // names the table in errors: "ranking set", "spine"
	columns []column
	row     func(r *csvRow, s *Session, im *Impression)
}

// tableFile is one file of a table: the sessions of days [from, to).
type tableFile struct {
	path     string
	from, to int
}

// FileSummary counts what one file received.
type FileSummary struct {
	Path           string
	Rows, Sessions int64
}

// writeTable writes each file of t, CSV or Parquet by its extension. Days are
// generated in parallel into temporary header-less CSV parts next to the first
// file, then assembled in day order; a file appears only when complete.
func (m *Market) writeTable(ctx context.Context, t impressionTable, files []tableFile, progress Progress) ([]FileSummary, error) {
	first, last := m.Config.Days, 0
	for _, f := range files {
		if tableFormat(f.path) == "" {
			return nil, fmt.Errorf("%s %s: unknown format, want a .csv or .parquet file", t.what, f.path)
		}
		if f.from < 0 || f.to > m.Config.Days || f.from >= f.to {
			return nil, fmt.Errorf("%s %s: days [%d, %d): want 0 <= from < to <= %d", t.what, f.path, f.from, f.to, m.Config.Days)
		}
		first, last = min(first, f.from), max(last, f.to)
	}
	if len(files) == 0 {
		return nil, nil
	}
	parts, err := os.MkdirTemp(filepath.Dir(files[0].path), ".parts-*")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.what, err)
	}
	defer os.RemoveAll(parts)

	partPath := func(d int) string { return filepath.Join(parts, fmt.Sprintf("day-%05d.csv", d)) }
	days := make([]Summary, m.Config.Days)
	err = m.forDays(ctx, first, last, func(ctx context.Context, d int) error {
		return writeFile(partPath(d), func(w *bufio.Writer) error {
			var row csvRow
			var order []int
			return m.Day(ctx, d, func(s *Session) error {
				order = RowOrder(m.Config.Seed, s, order)
				for _, i := range order {
					t.row(&row, s, &s.Impressions[i])
					row.writeTo(w)
				}
				days[d].addSession(s)
				if progress != nil {
					progress(int64(len(s.Impressions)))
				}
				return nil
			})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.what, err)
	}
	sums := make([]FileSummary, len(files))
	for i, f := range files {
		var paths []string
		sums[i].Path = f.path
		for d := f.from; d < f.to; d++ {
			paths = append(paths, partPath(d))
			sums[i].Rows += days[d].Impressions
			sums[i].Sessions += days[d].Sessions
		}
		if err := t.assemble(ctx, f.path, paths); err != nil {
			return nil, err
		}
	}
	return sums, nil
}

func tableFormat(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return "csv"
	case ".parquet":
		return "parquet"
	}
	return ""
}

// assemble writes the header-less CSV parts, in order, to path.
func (t impressionTable) assemble(ctx context.Context, path string, parts []string) error {
	if tableFormat(path) == "csv" {
		names := make([]string, len(t.columns))
		for i, c := range t.columns {
			names[i] = c.name
		}
		return writeFile(path, func(w *bufio.Writer) error {
			w.WriteString(strings.Join(names, ",") + "\n")
			for _, p := range parts {
				if err := appendFile(w, p); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return t.writeParquet(ctx, path, parts)
}

func appendFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// writeParquet converts the CSV parts to one Parquet file, keeping the row order.
func (t impressionTable) writeParquet(ctx context.Context, path string, parts []string) error {
	cols := make([]string, len(t.columns))
	for i, c := range t.columns {
		cols[i] = fmt.Sprintf("'%s': '%s'", c.name, c.typ)
	}
	files := make([]string, len(parts))
	for i, p := range parts {
		files[i] = sqlString(p)
	}
	query := fmt.Sprintf(`SELECT * FROM read_csv([%s], header = false, delim = ',', quote = '', columns = {%s})`,
		strings.Join(files, ", "), strings.Join(cols, ", "))
	if err := copyToParquet(ctx, query, path); err != nil {
		return fmt.Errorf("%s: %w", t.what, err)
	}
	return nil
}

// copyToParquet writes the result of a DuckDB query to path as Parquet, through
// a temporary file renamed into place. Row order is the query's (DuckDB
// preserves insertion order by default).
func copyToParquet(ctx context.Context, query, path string) (err error) {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp.parquet")
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, fmt.Sprintf("COPY (%s) TO %s (FORMAT parquet, COMPRESSION zstd)", query, sqlString(tmp))); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// sqlString quotes s as a SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
