package spark

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/offline/duckdb"
	"github.com/atrium-ml/atrium/internal/spec"
)

// sourceSQL is the statements that define req.Relation in a Spark session: a
// view per file, read by Spark's own reader, and their union by column name
// with the types DuckDB gave them (req.Schema), so a plan sees the same
// columns and types on both engines. CSV columns are read as text and cast,
// which parses them as DuckDB inferred them rather than as Spark's own
// inference would.
func sourceSQL(req duckdb.StageRequest) ([]string, error) {
	src := req.Plan.Source
	types := make(map[string]string, len(req.Schema))
	for _, c := range req.Schema {
		t, err := sparkType(c.Type)
		if err != nil {
			return nil, fmt.Errorf("%w: source %s: column %s: %v", offline.ErrSource, src.Name, c.Name, err)
		}
		types[c.Name] = t
	}
	var stmts, parts []string
	for i, f := range req.Files {
		view := fmt.Sprintf("atrium_file_%d", i)
		have := map[string]bool{}
		var cols []string
		for _, c := range f.Columns {
			have[c.Name] = true
			cols = append(cols, quote(c.Name)+" STRING")
		}
		switch src.Format {
		case spec.FormatParquet:
			stmts = append(stmts, fmt.Sprintf("CREATE OR REPLACE TEMPORARY VIEW %s USING parquet OPTIONS (path %s)", view, literal(hadoopPath(f.Path))))
		case spec.FormatJSON:
			// DuckDB reads a JSON array or one object per line; Spark needs
			// to be told which (multiLine reads one array or object per file).
			stmts = append(stmts, fmt.Sprintf("CREATE OR REPLACE TEMPORARY VIEW %s USING json OPTIONS (path %s, multiLine '%t')", view, literal(hadoopPath(f.Path)), jsonArray(f.Path)))
		default:
			// Columns by position, all text: the file's header names them.
			stmts = append(stmts, fmt.Sprintf("CREATE OR REPLACE TEMPORARY VIEW %s (%s) USING csv OPTIONS (path %s, header 'true', escape '\"', multiLine 'true')",
				view, strings.Join(cols, ", "), literal(hadoopPath(f.Path))))
		}
		sel := make([]string, 0, len(req.Schema))
		for _, c := range req.Schema {
			if have[c.Name] {
				sel = append(sel, fmt.Sprintf("CAST(%s AS %s) AS %s", quote(c.Name), types[c.Name], quote(c.Name)))
			} else {
				sel = append(sel, fmt.Sprintf("CAST(NULL AS %s) AS %s", types[c.Name], quote(c.Name)))
			}
		}
		parts = append(parts, fmt.Sprintf("SELECT %s FROM %s", strings.Join(sel, ", "), view))
	}
	stmts = append(stmts, fmt.Sprintf("CREATE OR REPLACE TEMPORARY VIEW %s AS %s", req.Relation, strings.Join(parts, " UNION ALL ")))
	return stmts, nil
}

// jsonArray reports a JSON file whose first non-blank byte opens an array.
func jsonArray(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false // Spark reports the file
	}
	defer f.Close()
	var buf [512]byte
	n, _ := f.Read(buf[:])
	trimmed := bytes.TrimLeft(buf[:n], " \t\r\n\ufeff")
	return len(trimmed) > 0 && trimmed[0] == '['
}

// sparkType maps a DuckDB column type to the Spark type holding the same values.
func sparkType(t string) (string, error) {
	switch {
	case t == "BOOLEAN", t == "TINYINT", t == "SMALLINT", t == "INTEGER", t == "BIGINT", t == "FLOAT", t == "DOUBLE", t == "DATE":
		return t, nil
	case t == "UTINYINT":
		return "SMALLINT", nil
	case t == "USMALLINT":
		return "INTEGER", nil
	case t == "UINTEGER":
		return "BIGINT", nil
	case t == "UBIGINT", t == "HUGEINT":
		return "DECIMAL(38,0)", nil
	case strings.HasPrefix(t, "DECIMAL"):
		return t, nil
	case t == "VARCHAR":
		return "STRING", nil
	case strings.HasPrefix(t, "TIMESTAMP"):
		// Instants in UTC (the session's zone), with or without a zone in the file.
		return "TIMESTAMP", nil
	}
	return "", fmt.Errorf("type %s has no Spark equivalent here, expected a number, text, boolean, date or timestamp", t)
}

// hadoopPath escapes the characters Hadoop expands as a glob in a path
// option, so a file is read by its exact name.
func hadoopPath(p string) string {
	return strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `{`, `\{`).Replace(p)
}
