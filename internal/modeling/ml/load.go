package ml

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/duckdb/duckdb-go/v2/mapping"

	"github.com/atrium-ml/atrium/internal/platform/csvfile"
)

// ErrBadData marks a problem with a user's data: a missing column, a value of
// the wrong type, a missing label. Errors carrying it are *DataError values that
// name the file, column and row.
var ErrBadData = errors.New("bad data")

// DataError is a problem with one data file, found while loading it.
type DataError struct {
	File   string
	Column string // empty when the problem is not about one column
	Row    int    // 1-based data row (the header is not counted); 0 when not about one row
	Msg    string
}

func (e *DataError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Column != "" {
		fmt.Fprintf(&b, ": column %q", e.Column)
	}
	if e.Row > 0 {
		fmt.Fprintf(&b, " row %d", e.Row)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Is makes errors.Is(err, ErrBadData) true for every DataError.
func (e *DataError) Is(target error) bool { return target == ErrBadData }

// LoadOptions says which columns of a data file play which role. Every column
// that has no role and is not ignored is a feature.
type LoadOptions struct {
	// Label names the target column; empty for data to predict on. Its values
	// must be numbers (or booleans); a missing or NaN label is an error.
	Label string
	// Weight names an optional column of per-row weights (finite, >= 0).
	Weight string
	// Group names an optional query column for ranking: rows with the same value
	// form one query. Rows of one query need not be adjacent in the file: Load
	// moves them together, keeping queries in order of first appearance and rows
	// in file order within a query, and sets Dataset.Groups.
	Group string
	// Time names an optional column to order the rows by (ascending; ties keep
	// file order), for time-ordered splits. It is not a feature.
	Time string
	// Features, when set, lists exactly the feature columns to read, in this
	// order; other columns are ignored. A listed column missing from the file is
	// an error, unless exactly one file column has the name once its
	// whitespace is replaced by "_" (LightGBM's text format cannot hold
	// whitespace in feature names); the feature then has the listed name. Used
	// at predict time with the model's features.
	Features []string
	// Categorical lists columns to read as categorical even though the file
	// stores numbers (integer codes such as a store id). Text columns are always
	// categorical.
	Categorical []string
	// Numeric lists columns that must be numeric even when the file stores text
	// (a CSV column with a stray word): each value must parse as a number.
	Numeric []string
	// Ignore lists columns that are not features (ids, free text, timestamps).
	Ignore []string
	// Passthrough lists columns to return as text in Table.Passthrough, such as
	// ids to copy into a prediction file. They may be features too.
	Passthrough []string
	// CheckLabel, when set, is called with every label (after the missing and
	// non-finite checks); a non-empty answer is the problem with that row,
	// reported with the file, column and row ("label is 2, want 0 or 1").
	CheckLabel func(y float64) string
	// Float64 reads numeric features as doubles, kept in Column.Float64 as
	// well as rounded in Column.Values: for prediction, where a tree model
	// must see the value its library would (LightGBM compares doubles).
	// Training leaves it off: float32 columns take half the memory.
	Float64 bool
	// Progress, when set, is called after each chunk of rows is read with the
	// rows read so far and the file's row count (0 when unknown: CSV).
	Progress func(rows, total int)
}

// Table is a loaded data file: the Dataset plus the passthrough columns.
type Table struct {
	*Dataset
	// Path is the file the table was read from.
	Path string
	// Passthrough holds the columns named in LoadOptions.Passthrough, in that
	// order and in the Dataset's row order.
	Passthrough []RawColumn
}

// RawColumn is a column kept as text, with its DuckDB type so that a writer can
// cast it back (an integer id stays an integer in a Parquet output).
type RawColumn struct {
	Name  string
	Type  string   // DuckDB type name, e.g. "BIGINT", "VARCHAR"
	Value []string // "" where Valid is false
	Valid []bool
}

// missingStrings are the texts a CSV file may use for a missing value (pandas
// reads the same ones as NaN). A category literally named "NA" is therefore
// missing too, as in pandas.
var missingStrings = []string{"", "NA", "N/A", "NaN", "nan", "null", "NULL"}

// sourceSQL returns the DuckDB table function that reads path, chosen by the
// file's extension.
func sourceSQL(path string) (string, error) {
	lower := strings.ToLower(path)
	hasSuffix := func(sufs ...string) bool {
		return slices.ContainsFunc(sufs, func(s string) bool { return strings.HasSuffix(lower, s) })
	}
	switch {
	case hasSuffix(".parquet", ".pq"):
		return "read_parquet(" + quoteString(path) + ")", nil
	case hasSuffix(".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz"):
		nulls := make([]string, len(missingStrings))
		for i, s := range missingStrings {
			nulls[i] = quoteString(s)
		}
		return "read_csv(" + quoteString(path) + ", header=true, nullstr=[" + strings.Join(nulls, ", ") + "])", nil
	}
	return "", &DataError{File: path, Msg: "unknown file type: want .csv, .tsv, .csv.gz or .parquet"}
}

// sniffCSV runs DuckDB's CSV sniffer once and returns the read_csv call it
// proposes: the dialect and column types spelled out, with auto_detect=false.
// Reading through it saves a second sniffing pass (describing the columns and
// reading them would each sniff), a large share of the time for small files.
func sniffCSV(ctx context.Context, d *duck, path, src string) (string, error) {
	r, err := d.query(ctx, "SELECT Prompt FROM sniff_csv("+strings.TrimPrefix(src, "read_csv("))
	if err != nil {
		return "", readError(path, err)
	}
	defer r.close()
	var prompt string
	ch, ok, err := r.next()
	if err != nil {
		return "", readError(path, err)
	}
	if ok {
		ch.strings(0, func(_ int, s string) { prompt = strings.Clone(s) })
		ch.destroy()
	}
	// "FROM read_csv('path', auto_detect=false, ..., columns={...});", with
	// the path not escaped: put it back quoted.
	call := strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(prompt, "FROM ")), ";")
	rest, ok := strings.CutPrefix(call, "read_csv('"+path+"'")
	if !ok || !strings.HasSuffix(rest, ")") {
		return src, nil // an unexpected form: let read_csv sniff again
	}
	return "read_csv(" + quoteString(path) + rest, nil
}

// parseCSVAsFloat32 makes DuckDB parse numeric CSV features that its sniffer
// typed DOUBLE straight into FLOAT, the type they are read as: about a third
// faster than parsing doubles and casting, and correctly rounded (no double
// rounding through float64). A number beyond float32's range becomes ±Inf, as
// LightGBM would take it (a Parquet DOUBLE column holding one is an error of
// DuckDB's cast instead). It edits the column types of the sniffer's read_csv
// call (sniffCSV), when the column's entry is found exactly once.
func parseCSVAsFloat32(src string, slots []slot) string {
	if !strings.HasPrefix(src, "read_csv(") || !strings.Contains(src, "columns={") {
		return src
	}
	for _, s := range slots {
		if s.role != roleFeature || s.read != readFloat32 {
			continue
		}
		entry := "'" + s.name + "': 'DOUBLE'"
		if strings.Count(src, entry) == 1 {
			src = strings.Replace(src, entry, "'"+s.name+"': 'FLOAT'", 1)
		}
	}
	return src
}

// typeClass is how Load treats a DuckDB column type.
type typeClass uint8

const (
	classOther   typeClass = iota // dates, lists, blobs: not usable as a feature
	classInteger                  // integer types and BOOLEAN
	classFloat                    // FLOAT, DOUBLE, DECIMAL
	classText                     // VARCHAR, ENUM
)

func classify(typ string) typeClass {
	base, _, _ := strings.Cut(typ, "(")
	switch base {
	case "BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
		"UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT":
		return classInteger
	case "FLOAT", "DOUBLE", "DECIMAL":
		return classFloat
	case "VARCHAR", "ENUM":
		return classText
	}
	return classOther
}

// fileColumn is one column of the file as DuckDB sees it.
type fileColumn struct {
	name, typ string
	class     typeClass
}

// describe returns the file's columns and their inferred types.
func describe(ctx context.Context, d *duck, path, src string) ([]fileColumn, error) {
	r, err := d.query(ctx, "DESCRIBE SELECT * FROM "+src)
	if err != nil {
		return nil, readError(path, err)
	}
	defer r.close()
	var cols []fileColumn
	for {
		ch, ok, err := r.next()
		if err != nil {
			return nil, readError(path, err)
		}
		if !ok {
			break
		}
		start := len(cols)
		ch.strings(0, func(_ int, s string) { cols = append(cols, fileColumn{name: strings.Clone(s)}) })
		ch.strings(1, func(i int, s string) {
			cols[start+i].typ = strings.Clone(s)
			cols[start+i].class = classify(s)
		})
		ch.destroy()
	}
	return cols, nil
}

// csvConversion reads the line, column, value and type out of the message of
// a DuckDB conversion error of its CSV reader: the error is classified by its
// type (duckError), and DuckDB's C API gives these details in no other form.
var csvConversion = regexp.MustCompile(`(?s)CSV Error on Line: (\d+).*Error when converting column "(.*?)"\. (Could not convert string "(.*?)" to '(\w+)')`)

// readError turns a DuckDB read failure into a DataError naming the file (and,
// for a CSV value that does not fit the type inferred from the first rows, the
// column, line and value).
func readError(path string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	// DuckDB's CSV reader reports a row with the wrong number of fields as
	// either type, depending on the column where it stops.
	var de *duckError
	if !errors.As(err, &de) || (de.typ != mapping.ErrorTypeInvalidInput && de.typ != mapping.ErrorTypeConversion) {
		return &DataError{File: path, Msg: "cannot read: " + duckMessage(err)}
	}
	if shape := csvShape(path); shape != nil {
		return shape
	}
	if m := csvConversion.FindStringSubmatch(err.Error()); de.typ == mapping.ErrorTypeConversion && m != nil {
		line, _ := strconv.Atoi(m[1])
		msg := fmt.Sprintf("value %q is not a %s (the type DuckDB inferred from the first rows); fix the value, or list the column as categorical if it holds codes", m[4], m[5])
		if m[5] == "FLOAT" || m[5] == "DOUBLE" {
			msg = fmt.Sprintf("value %q is not a number (the column holds numbers in the first rows); fix the value", m[4])
		}
		return &DataError{File: path, Column: m[2], Row: line - 1, Msg: msg}
	}
	return &DataError{File: path, Msg: "cannot read: " + duckMessage(err)}
}

// misread reports columns that DuckDB's CSV sniffer got wrong: it reads a file
// whose rows have different numbers of fields as one column per line, named
// after the whole header, so a column name holding a delimiter is the sign.
func misread(cols []fileColumn) bool {
	for _, c := range cols {
		if strings.ContainsAny(c.name, csvfile.Delimiters) {
			return true
		}
	}
	return false
}

// csvShape returns a DataError for the first line of a CSV file whose number
// of fields differs from its header's; nil when there is none (or path is not
// a CSV file).
func csvShape(path string) error {
	if !strings.HasPrefix(mustSourceSQL(path), "read_csv(") {
		return nil
	}
	var fe *csvfile.FieldCountError
	if !errors.As(csvfile.Check(path), &fe) {
		return nil
	}
	return &DataError{File: path, Msg: fmt.Sprintf("line %d has %d fields, but the header has %d; every row needs one value per column (an empty field for a missing value)",
		fe.Line, fe.Fields, fe.Want)}
}

// mustSourceSQL is sourceSQL's table function, "" for an unknown file type.
func mustSourceSQL(path string) string {
	src, _ := sourceSQL(path)
	return src
}

// role is what a selected column is used for.
type role uint8

const (
	roleFeature role = iota
	roleLabel
	roleWeight
	roleGroup
	rolePassthrough
	roleRowNumber
)

// slot is one column of the SELECT that Load runs.
type slot struct {
	role   role
	name   string // file column
	expr   string
	read   readAs
	target int // feature index, passthrough index
}

// readAs is the Go type a slot's result column is read as.
type readAs uint8

const (
	readFloat32 readAs = iota // CAST AS FLOAT
	readFloat64               // CAST AS DOUBLE
	readInt64                 // CAST AS BIGINT
	readText                  // CAST AS VARCHAR
)

// rowNumberColumn numbers the file's rows before Time reorders them, so that
// errors still name the row of the file.
const rowNumberColumn = "__atrium_row"

// Load reads a CSV or Parquet file into a Dataset. See LoadTable.
func Load(ctx context.Context, path string, opts LoadOptions) (*Dataset, error) {
	t, err := LoadTable(ctx, path, opts)
	if err != nil {
		return nil, err
	}
	return t.Dataset, nil
}

// LoadTable reads a CSV or Parquet file (by extension) with DuckDB, which infers
// the column types. Numeric and boolean columns become Numeric features, text
// columns Categorical ones with their categories sorted (so the codes do not
// depend on row order); NULLs become NaN. Every problem with the file is a
// *DataError (errors.Is(err, ErrBadData)) naming the file, column and row.
func LoadTable(ctx context.Context, path string, opts LoadOptions) (*Table, error) {
	if _, err := os.Stat(path); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &DataError{File: path, Msg: "cannot open: " + err.Error()}
	}
	src, err := sourceSQL(path)
	if err != nil {
		return nil, err
	}
	d, err := openDuck()
	if err != nil {
		return nil, err
	}
	defer d.close()
	var cols []fileColumn
	if strings.HasPrefix(src, "read_csv(") {
		// The sniffer's proposal can fail where plain read_csv works (DuckDB
		// does not escape quotes in column names there): then sniff twice.
		if sniffed, err := sniffCSV(ctx, d, path, src); err == nil {
			if cols, err = describe(ctx, d, path, sniffed); err == nil {
				src = sniffed
			}
		}
	}
	if cols == nil {
		if cols, err = describe(ctx, d, path, src); err != nil {
			return nil, err
		}
	}
	if misread(cols) {
		if shape := csvShape(path); shape != nil {
			return nil, shape
		}
	}
	slots, features, err := plan(path, cols, opts)
	if err != nil {
		return nil, err
	}
	src = parseCSVAsFloat32(src, slots)
	l := &loader{path: path, opts: opts, slots: slots, features: features,
		passthrough: make([]RawColumn, len(opts.Passthrough))}
	for i, name := range opts.Passthrough {
		l.passthrough[i] = RawColumn{Name: name, Type: columnByName(cols, name).typ}
	}
	if err := l.read(ctx, d, selectSQL(src, slots, opts.Time), rowCount(ctx, d, src)); err != nil {
		return nil, err
	}
	return l.finish()
}

// rowCount returns the number of rows of a Parquet file (from its footer,
// without reading the data), or 0 when it is not cheap to know.
func rowCount(ctx context.Context, d *duck, src string) int {
	if !strings.HasPrefix(src, "read_parquet(") {
		return 0
	}
	r, err := d.query(ctx, "SELECT count(*) FROM "+src)
	if err != nil {
		return 0
	}
	defer r.close()
	ch, ok, err := r.next()
	if err != nil || !ok {
		return 0
	}
	defer ch.destroy()
	if n := data[int64](&ch, 0); len(n) == 1 && n[0] > 0 && n[0] < 1<<40 {
		return int(n[0])
	}
	return 0
}

func columnByName(cols []fileColumn, name string) *fileColumn {
	for i := range cols {
		if cols[i].name == name {
			return &cols[i]
		}
	}
	return nil
}

// columnByUnderscoredName finds the one column whose name, with whitespace
// replaced by "_", is name: the name LightGBM's text format (and so a model
// read from it) has for the column. Nil when no column or several match.
func columnByUnderscoredName(cols []fileColumn, name string) *fileColumn {
	var found *fileColumn
	for i := range cols {
		if strings.Map(underscoreSpace, cols[i].name) == name {
			if found != nil {
				return nil
			}
			found = &cols[i]
		}
	}
	return found
}

// underscoreSpace maps the whitespace the LightGBM writer replaces
// (modelfile.lightgbmName) to "_".
func underscoreSpace(r rune) rune {
	if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
		return '_'
	}
	return r
}

// missingColumn reports a column the options name that the file lacks.
func missingColumn(path, name, what string, cols []fileColumn) error {
	names := make([]string, 0, len(cols))
	for _, c := range cols {
		names = append(names, c.name)
	}
	list := strings.Join(names, ", ")
	if len(names) > 30 {
		list = strings.Join(names[:30], ", ") + fmt.Sprintf(", ... (%d in all)", len(names))
	}
	return &DataError{File: path, Column: name, Msg: fmt.Sprintf("%s column not found; the file has: %s", what, list)}
}

// plan decides what to read from each file column.
func plan(path string, cols []fileColumn, opts LoadOptions) ([]slot, []Column, error) {
	var slots []slot
	need := func(name, what string) (*fileColumn, error) {
		c := columnByName(cols, name)
		if c == nil {
			return nil, missingColumn(path, name, what, cols)
		}
		return c, nil
	}
	// Roles first: their columns are never features.
	notFeature := map[string]bool{}
	for _, r := range []struct {
		name, what string
		role       role
	}{
		// The row-number slot (time ordering) comes first: the other slots
		// report errors by file row number, read from it.
		{opts.Time, "time", roleRowNumber},
		{opts.Label, "label", roleLabel}, {opts.Weight, "weight", roleWeight}, {opts.Group, "group", roleGroup},
	} {
		if r.name == "" {
			continue
		}
		if notFeature[r.name] {
			return nil, nil, &DataError{File: path, Column: r.name, Msg: "used for two roles (label, weight, group, time)"}
		}
		notFeature[r.name] = true
		c, err := need(r.name, r.what)
		if err != nil {
			return nil, nil, err
		}
		s := slot{role: r.role, name: c.name, expr: quoteIdent(c.name)}
		switch r.role {
		case roleLabel, roleWeight:
			if c.class == classText {
				s.read = readText // parsed in Go, so that a bad value is reported with its row
				s.expr = "CAST(" + s.expr + " AS VARCHAR)"
			} else if c.class == classInteger || c.class == classFloat {
				s.read = readFloat64
				s.expr = "CAST(" + s.expr + " AS DOUBLE)"
			} else {
				return nil, nil, &DataError{File: path, Column: c.name, Msg: fmt.Sprintf("%s column has type %s, want numbers", r.what, c.typ)}
			}
		case roleGroup:
			if c.class == classInteger {
				s.read = readInt64
				s.expr = "CAST(" + s.expr + " AS BIGINT)"
			} else {
				s.read = readText
				s.expr = "CAST(" + s.expr + " AS VARCHAR)"
			}
		case roleRowNumber:
			// Time orders the rows; what is read is the file row number.
			s = slot{role: roleRowNumber, name: rowNumberColumn, expr: rowNumberColumn, read: readInt64}
		}
		slots = append(slots, s)
	}
	for _, name := range opts.Ignore {
		if _, err := need(name, "ignored"); err != nil {
			return nil, nil, err
		}
		notFeature[name] = true
	}
	for i, name := range opts.Passthrough {
		c, err := need(name, "passthrough")
		if err != nil {
			return nil, nil, err
		}
		slots = append(slots, slot{role: rolePassthrough, name: c.name, expr: "CAST(" + quoteIdent(c.name) + " AS VARCHAR)", read: readText, target: i})
	}
	forceCat := setOf(opts.Categorical)
	forceNum := setOf(opts.Numeric)
	for _, name := range opts.Categorical {
		if forceNum[name] {
			return nil, nil, &DataError{File: path, Column: name, Msg: "listed as both categorical and numeric"}
		}
	}
	var featureCols []*fileColumn
	var featureNames []string // the features' names: the file's, or the ones opts.Features asks for
	if opts.Features != nil {
		for _, name := range opts.Features {
			c := columnByName(cols, name)
			if c == nil {
				c = columnByUnderscoredName(cols, name)
			}
			if c == nil {
				return nil, nil, missingColumn(path, name, "feature", cols)
			}
			featureCols = append(featureCols, c)
			featureNames = append(featureNames, name)
		}
	} else {
		for i := range cols {
			if !notFeature[cols[i].name] {
				featureCols = append(featureCols, &cols[i])
				featureNames = append(featureNames, cols[i].name)
			}
		}
		for _, name := range append(slices.Clone(opts.Categorical), opts.Numeric...) {
			if _, err := need(name, "feature"); err != nil {
				return nil, nil, err
			}
			if notFeature[name] {
				return nil, nil, &DataError{File: path, Column: name, Msg: "listed as a feature kind but also has a role or is ignored"}
			}
		}
	}
	features := make([]Column, len(featureCols))
	for i, c := range featureCols {
		name := featureNames[i]
		features[i].Name = name
		q := quoteIdent(c.name)
		s := slot{role: roleFeature, name: c.name, target: i}
		switch {
		case c.class == classOther:
			return nil, nil, &DataError{File: path, Column: c.name, Msg: fmt.Sprintf("type %s cannot be a feature (want numbers, booleans or text); derive a numeric column from it or ignore it", c.typ)}
		case forceCat[name] && c.class == classFloat:
			// Whole numbers print without a fraction so that 3.0 in one file
			// and 3 in another are the same category.
			features[i].Kind = Categorical
			s.read = readText
			s.expr = fmt.Sprintf("CASE WHEN %[1]s = trunc(%[1]s) AND abs(%[1]s) < 9e15 THEN CAST(CAST(%[1]s AS BIGINT) AS VARCHAR) ELSE CAST(%[1]s AS VARCHAR) END", q)
		case forceCat[name] || c.class == classText && !forceNum[name]:
			features[i].Kind = Categorical
			s.read = readText
			s.expr = "CAST(" + q + " AS VARCHAR)"
		case c.class == classText: // forced numeric: parsed in Go, bad values reported with their row
			features[i].Kind = Numeric
			s.read = readText
			s.expr = q
		case opts.Float64:
			features[i].Kind = Numeric
			s.read = readFloat64
			s.expr = "CAST(" + q + " AS DOUBLE)"
		default:
			features[i].Kind = Numeric
			s.read = readFloat32
			s.expr = "CAST(" + q + " AS FLOAT)"
		}
		slots = append(slots, s)
	}
	return slots, features, nil
}

func setOf(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// selectSQL builds the query that reads every slot, in file order or ordered
// by the time column (ties in file order).
func selectSQL(src string, slots []slot, timeCol string) string {
	exprs := make([]string, len(slots))
	for i, s := range slots {
		exprs[i] = fmt.Sprintf("%s AS c%d", s.expr, i)
	}
	q := "SELECT " + strings.Join(exprs, ", ") + " FROM "
	if timeCol == "" {
		return q + src
	}
	return q + "(SELECT *, row_number() OVER () AS " + rowNumberColumn + " FROM " + src + ") ORDER BY " +
		quoteIdent(timeCol) + " NULLS LAST, " + rowNumberColumn
}

// catBuilder assigns category codes in order of first appearance; finish sorts them.
type catBuilder struct {
	codes    map[string]int32
	cats     []string
	firstRow []int // row index where each category first appeared
}

func (b *catBuilder) code(s string, row int) float32 {
	c, ok := b.codes[s]
	if !ok {
		c = int32(len(b.cats))
		s = strings.Clone(s)
		b.codes[s] = c
		b.cats = append(b.cats, s)
		b.firstRow = append(b.firstRow, row)
	}
	return float32(c)
}

// loader accumulates the result of the SELECT.
type loader struct {
	path        string
	opts        LoadOptions
	slots       []slot
	features    []Column
	cats        []*catBuilder // per feature; nil for numeric
	label       []float64
	weight      []float64
	groupInt    []int64
	groupText   []string
	rowNumbers  []int64 // file row numbers (1-based) when rows were reordered
	passthrough []RawColumn
	n           int
}

// read runs the SELECT and appends its chunks. capacity, when known, is the
// number of rows, so that the columns are allocated once.
func (l *loader) read(ctx context.Context, d *duck, sql string, capacity int) error {
	r, err := d.query(ctx, sql)
	if err != nil {
		return readError(l.path, err)
	}
	defer r.close()
	l.cats = make([]*catBuilder, len(l.features))
	for i := range l.features {
		f := &l.features[i]
		f.Values = make([]float32, 0, capacity)
		if f.Kind == Numeric && l.opts.Float64 {
			f.Float64 = make([]float64, 0, capacity)
		}
		if f.Kind == Categorical {
			l.cats[i] = &catBuilder{codes: map[string]int32{}}
		}
	}
	for _, s := range l.slots {
		switch s.role {
		case roleLabel:
			l.label = make([]float64, 0, capacity)
		case roleWeight:
			l.weight = make([]float64, 0, capacity)
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		ch, ok, err := r.next()
		if err != nil {
			return readError(l.path, err)
		}
		if !ok {
			return nil
		}
		err = l.chunk(&ch)
		ch.destroy()
		if err != nil {
			return err
		}
		if l.opts.Progress != nil {
			l.opts.Progress(l.n, capacity)
		}
	}
}

// chunk appends one result chunk. The slots fill separate slices, so they
// are read in parallel (text columns, looked up in a map value by value, are
// the slow ones); only the row-number slot goes first, since the others name
// rows by it in their errors.
func (l *loader) chunk(ch *duckChunk) error {
	base := l.n
	for j, s := range l.slots {
		if s.role == roleRowNumber {
			l.rowNumbers = append(l.rowNumbers, data[int64](ch, j)...)
		}
	}
	errs := make([]error, len(l.slots))
	workers := min(runtime.GOMAXPROCS(0), len(l.slots))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for j := w; j < len(l.slots); j += workers {
				errs[j] = l.slot(ch, j, base)
			}
		})
	}
	wg.Wait()
	l.n += ch.n
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// slot appends slot j of a chunk whose first row is row base of the result.
func (l *loader) slot(ch *duckChunk, j, base int) error {
	nan32 := float32(math.NaN())
	s := l.slots[j]
	mask := ch.valid(j)
	switch s.role {
	case roleFeature:
		f := &l.features[s.target]
		if s.read == readFloat32 {
			vals := data[float32](ch, j)
			start := len(f.Values)
			f.Values = append(f.Values, vals...)
			if mask != nil {
				for i := range vals {
					if !isValid(mask, i) {
						f.Values[start+i] = nan32
					}
				}
			}
			return nil
		}
		if s.read == readFloat64 {
			vals := data[float64](ch, j)
			start := len(f.Float64)
			f.Float64 = append(f.Float64, vals...)
			f.Values = slices.Grow(f.Values, ch.n)[:base+ch.n]
			for i := range vals {
				if mask != nil && !isValid(mask, i) {
					f.Float64[start+i] = math.NaN()
				}
				f.Values[base+i] = float32(f.Float64[start+i])
			}
			return nil
		}
		f.Values = slices.Grow(f.Values, ch.n)[:base+ch.n]
		for i := base; i < base+ch.n; i++ {
			f.Values[i] = nan32
		}
		if cb := l.cats[s.target]; cb != nil {
			ch.strings(j, func(i int, v string) { f.Values[base+i] = cb.code(v, base+i) })
			return nil
		}
		if f.Float64 != nil {
			f.Float64 = slices.Grow(f.Float64, ch.n)[:base+ch.n]
			for i := base; i < base+ch.n; i++ {
				f.Float64[i] = math.NaN()
			}
		}
		var bad error
		ch.strings(j, func(i int, v string) {
			bits := 32
			if f.Float64 != nil {
				bits = 64
			}
			x, err := strconv.ParseFloat(strings.TrimSpace(v), bits)
			if err != nil && bad == nil {
				bad = &DataError{File: l.path, Column: s.name, Row: l.rowNumber(base + i), Msg: fmt.Sprintf("value %q is not a number", v)}
			}
			f.Values[base+i] = float32(x)
			if f.Float64 != nil {
				f.Float64[base+i] = x
			}
		})
		if bad != nil {
			return bad
		}
	case roleLabel, roleWeight:
		dst := &l.label
		if s.role == roleWeight {
			dst = &l.weight
		}
		start := len(*dst)
		if s.read == readFloat64 {
			*dst = append(*dst, data[float64](ch, j)...)
		} else {
			*dst = slices.Grow(*dst, ch.n)[:start+ch.n]
			var bad error
			ch.strings(j, func(i int, v string) {
				x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil && bad == nil {
					bad = &DataError{File: l.path, Column: s.name, Row: l.rowNumber(base + i), Msg: fmt.Sprintf("value %q is not a number", v)}
				}
				(*dst)[start+i] = x
			})
			if bad != nil {
				return bad
			}
		}
		what := "label"
		if s.role == roleWeight {
			what = "weight"
		}
		for i := 0; i < ch.n; i++ {
			v := (*dst)[start+i]
			switch {
			case !isValid(mask, i):
				return &DataError{File: l.path, Column: s.name, Row: l.rowNumber(base + i), Msg: "missing " + what}
			case math.IsNaN(v) || math.IsInf(v, 0):
				return &DataError{File: l.path, Column: s.name, Row: l.rowNumber(base + i), Msg: fmt.Sprintf("%s is %v, want a finite number", what, v)}
			case s.role == roleWeight && v < 0:
				return &DataError{File: l.path, Column: s.name, Row: l.rowNumber(base + i), Msg: fmt.Sprintf("weight is %v, want >= 0", v)}
			case s.role == roleLabel && l.opts.CheckLabel != nil:
				if msg := l.opts.CheckLabel(v); msg != "" {
					return &DataError{File: l.path, Column: s.name, Row: l.rowNumber(base + i), Msg: msg}
				}
			}
		}
	case roleGroup:
		for i := 0; i < ch.n; i++ {
			if !isValid(mask, i) {
				return &DataError{File: l.path, Column: s.name, Row: l.rowNumber(base + i), Msg: "missing group (query) id"}
			}
		}
		if s.read == readInt64 {
			l.groupInt = append(l.groupInt, data[int64](ch, j)...)
		} else {
			ch.strings(j, func(_ int, v string) { l.groupText = append(l.groupText, strings.Clone(v)) })
		}
	case roleRowNumber:
		// Read by chunk before the other slots.
	case rolePassthrough:
		p := &l.passthrough[s.target]
		p.Value = slices.Grow(p.Value, ch.n)[:base+ch.n]
		p.Valid = slices.Grow(p.Valid, ch.n)[:base+ch.n]
		clear(p.Value[base:])
		clear(p.Valid[base:])
		ch.strings(j, func(i int, v string) {
			p.Value[base+i] = strings.Clone(v)
			p.Valid[base+i] = true
		})
	}
	return nil
}

// rowNumber maps a row index of the result to the 1-based row of the file.
// The row-number slot precedes every other slot (see plan), so it is filled for
// the current chunk before any other column can report an error.
func (l *loader) rowNumber(i int) int {
	if l.rowNumbers != nil {
		return int(l.rowNumbers[i])
	}
	return i + 1
}

func (l *loader) finish() (*Table, error) {
	if l.n == 0 {
		return nil, &DataError{File: l.path, Msg: "no data rows"}
	}
	for i, cb := range l.cats {
		if cb == nil {
			continue
		}
		f := &l.features[i]
		if l.opts.Features == nil && !slices.Contains(l.opts.Categorical, f.Name) {
			if err := l.checkNotNumeric(f.Name, cb); err != nil {
				return nil, err
			}
		}
		f.Categories = sortCategories(cb, f.Values)
	}
	ds := &Dataset{Columns: l.features, Label: l.label, Weight: l.weight}
	t := &Table{Dataset: ds, Path: l.path, Passthrough: l.passthrough}
	if l.opts.Group != "" {
		l.groupRows(t)
	}
	if err := ds.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", l.path, err)
	}
	return t, nil
}

// sortCategories renumbers the codes of values so that categories are in
// sorted order, and returns the sorted categories. Categories that are all
// numbers (integer codes read as categorical) sort by value, so "2" < "10".
func sortCategories(cb *catBuilder, values []float32) []string {
	order := make([]int32, len(cb.cats)) // new position -> old code
	for i := range order {
		order[i] = int32(i)
	}
	nums := make([]float64, len(cb.cats))
	numeric := true
	for i, c := range cb.cats {
		x, err := strconv.ParseFloat(c, 64)
		numeric = numeric && err == nil
		nums[i] = x
	}
	slices.SortFunc(order, func(a, b int32) int {
		if numeric && nums[a] != nums[b] {
			return cmp.Compare(nums[a], nums[b])
		}
		return strings.Compare(cb.cats[a], cb.cats[b])
	})
	remap := make([]float32, len(order)) // old code -> new code
	sorted := make([]string, len(order))
	for newCode, old := range order {
		remap[old] = float32(newCode)
		sorted[newCode] = cb.cats[old]
	}
	for i, v := range values {
		if v == v { // not NaN
			values[i] = remap[int32(v)]
		}
	}
	return sorted
}

// checkNotNumeric catches the classic CSV mistake of a numeric column with a
// few stray words ("n/a", "abc"), which type inference turns into a text
// column: a text column whose distinct values are mostly numbers, except for a
// few, is reported instead of silently becoming categorical.
func (l *loader) checkNotNumeric(name string, cb *catBuilder) error {
	numbers, words, firstWord := 0, 0, -1
	for i, s := range cb.cats {
		if _, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
			numbers++
		} else {
			words++
			if firstWord < 0 || cb.firstRow[i] < cb.firstRow[firstWord] {
				firstWord = i
			}
		}
	}
	if words == 0 || numbers < 4*words {
		return nil
	}
	return &DataError{File: l.path, Column: name, Row: l.rowNumber(cb.firstRow[firstWord]),
		Msg: fmt.Sprintf("value %q is not a number, but %d of the column's %d distinct values are; fix the value, or list the column as categorical", cb.cats[firstWord], numbers, numbers+words)}
}

// groupRows sets Groups from the group column, moving the rows of each query
// together (stably) when the file interleaves queries.
func (l *loader) groupRows(t *Table) {
	n := l.n
	var id, sizes []int // query index of each row, in order of first appearance; rows per query
	if l.groupInt != nil {
		id, sizes = firstAppearance(l.groupInt)
	} else {
		id, sizes = firstAppearance(l.groupText)
	}
	t.Groups = sizes
	contiguous := true
	for i := 1; i < n; i++ {
		if id[i] != id[i-1] && id[i] != id[i-1]+1 {
			contiguous = false
			break
		}
	}
	if contiguous {
		return
	}
	// Counting sort by query index: perm[k] is the old row at new position k.
	next := make([]int, len(sizes))
	for q := 1; q < len(sizes); q++ {
		next[q] = next[q-1] + sizes[q-1]
	}
	perm := make([]int, n)
	for i, q := range id {
		perm[next[q]] = i
		next[q]++
	}
	t.permute(perm)
}

// firstAppearance numbers the distinct keys in order of first appearance and
// returns each key's number and the count of each number.
func firstAppearance[K comparable](keys []K) (id, counts []int) {
	seen := map[K]int{}
	id = make([]int, len(keys))
	for i, k := range keys {
		q, ok := seen[k]
		if !ok {
			q = len(counts)
			seen[k] = q
			counts = append(counts, 0)
		}
		id[i] = q
		counts[q]++
	}
	return id, counts
}

// permute reorders the rows of a table: row k becomes old row perm[k].
func (t *Table) permute(perm []int) {
	for i := range t.Columns {
		t.Columns[i].Values = gather(t.Columns[i].Values, perm)
		t.Columns[i].Float64 = gather(t.Columns[i].Float64, perm)
	}
	t.Label = gather(t.Label, perm)
	t.Weight = gather(t.Weight, perm)
	for i := range t.Passthrough {
		t.Passthrough[i].Value = gather(t.Passthrough[i].Value, perm)
		t.Passthrough[i].Valid = gather(t.Passthrough[i].Valid, perm)
	}
}

// gather returns s[rows[0]], s[rows[1]], ...; nil for a nil s.
func gather[T any](s []T, rows []int) []T {
	if s == nil {
		return nil
	}
	out := make([]T, len(rows))
	for k, r := range rows {
		out[k] = s[r]
	}
	return out
}
