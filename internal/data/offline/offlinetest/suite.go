package offlinetest

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/spec"
)

// cases holds the suite's cases, testdata/<group>/<case>/: features.yaml, the
// source files its sets read, and a script. They are embedded so that an engine
// in any package runs them by calling Run.
//
//go:embed testdata
var cases embed.FS

// OpenFunc opens the engine under test over the store kept in dir, an empty
// directory the suite owns when it is first passed. Passing the same dir again
// (after closing the first engine) must open the same store: the suite checks
// that published rows are still there. opts carries the case's catalog, the
// directory its relative source paths resolve against (a local copy of the
// case's files, which scripts may rewrite between runs), and a logger writing
// to the test's log. OpenFunc fails the test itself when the engine cannot
// open; an engine that keeps its data elsewhere (object storage, a cluster)
// maps dir to a location of its own that no other test uses, and one whose
// compute cannot see local files makes opts.BaseDir visible to it.
type OpenFunc func(t *testing.T, dir string, opts offline.Options) offline.Engine

// Run runs every case of the suite against engines from open, each as a subtest
// named <group>/<case>: windows (aggregated and plain sets computed from
// sources), pit (point-in-time joins) and engine (the rest of the contract of
// offline.Engine). Each case gets its own fresh store and its own copy of its
// source files.
func Run(t *testing.T, open OpenFunc) {
	t.Helper()
	groups, err := fs.ReadDir(cases, "testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if !g.IsDir() {
			continue
		}
		t.Run(g.Name(), func(t *testing.T) {
			dirs, err := fs.ReadDir(cases, path.Join("testdata", g.Name()))
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range dirs {
				if d.IsDir() {
					t.Run(d.Name(), func(t *testing.T) {
						runCase(t, open, path.Join("testdata", g.Name(), d.Name()))
					})
				}
			}
		})
	}
}

// runCase copies a case's files to a work directory, opens an engine over a
// fresh store and runs the script, reporting every command whose output differs
// from the script's.
func runCase(t *testing.T, open OpenFunc, dir string) {
	work := t.TempDir()
	var script []byte
	err := fs.WalkDir(cases, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := cases.ReadFile(p)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, dir+"/")
		if rel == "script" {
			script = b
			return nil
		}
		dst := filepath.Join(work, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	if script == nil {
		t.Fatalf("%s: no script", dir)
	}
	cmds, err := parseScript(path.Join(dir, "script"), string(script))
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := os.ReadFile(filepath.Join(work, "features.yaml"))
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	feats, err := spec.ParseFeatures("features.yaml", catalog)
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	h := &harness{
		t:     t,
		open:  open,
		store: t.TempDir(),
		work:  work,
		feats: feats,
		opts:  offline.Options{Features: feats, BaseDir: work, Logger: slog.New(slog.NewTextHandler(testLog{t}, nil))},
	}
	h.e = open(t, h.store, h.opts)
	t.Cleanup(func() {
		if err := h.e.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	for _, c := range cmds {
		got, err := h.exec(c)
		if err != nil {
			t.Fatalf("%s: %s: %v", c.pos, c, err)
		}
		if got != c.want {
			t.Errorf("%s: %s\n--- got\n%s\n--- want\n%s", c.pos, c, got, c.want)
		}
	}
}

// testLog writes an engine's log lines to the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// harness runs a case's commands against one engine at a time.
type harness struct {
	t     *testing.T
	open  OpenFunc
	store string
	work  string
	feats *spec.Features
	opts  offline.Options
	e     offline.Engine
}

// exec runs a command and returns its output. An error is a mistake in the
// script (an unknown command, bad arguments), not an engine's failure: those
// are part of the output.
func (h *harness) exec(c command) (string, error) {
	switch c.name {
	case "run":
		return h.run(c)
	case "append":
		return h.append(c)
	case "rows":
		return h.rows(c)
	case "scan":
		return h.scan(c)
	case "pit":
		return h.pit(c)
	case "write":
		return h.write(c)
	case "close":
		if len(c.args) != 0 {
			return "", errors.New("close takes no arguments")
		}
		return okOrError(h.e.Close()), nil
	case "reopen":
		if len(c.args) != 0 {
			return "", errors.New("reopen takes no arguments")
		}
		out := okOrError(h.e.Close())
		h.e = h.open(h.t, h.store, h.opts)
		return out, nil
	}
	return "", fmt.Errorf("unknown command %q, expected run, append, rows, scan, pit, write, close or reopen", c.name)
}

// sentinels are the errors of package offline an engine's error is classified by.
var sentinels = []struct {
	name string
	err  error
}{
	{"ErrChecksFailed", offline.ErrChecksFailed},
	{"ErrUnknownSet", offline.ErrUnknownSet},
	{"ErrInvalid", offline.ErrInvalid},
	{"ErrSource", offline.ErrSource},
	{"ErrNoData", offline.ErrNoData},
}

// errorLine spells an engine's error as the sentinels it wraps: messages differ
// between engines, classes do not. An error that wraps none is printed in full,
// which no script expects.
func errorLine(err error) string {
	var names []string
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			names = append(names, s.name)
		}
	}
	if len(names) == 0 {
		return "error wrapping no offline sentinel: " + err.Error()
	}
	return "error: " + strings.Join(names, ", ")
}

func okOrError(err error) string {
	if err != nil {
		return errorLine(err)
	}
	return "ok"
}

// options splits arguments into positional ones and key=value options; a bare
// flag maps to "".
func options(args []string, known ...string) (pos []string, opts map[string]string, err error) {
	opts = map[string]string{}
	for _, a := range args {
		k, v, isOpt := strings.Cut(a, "=")
		if !isOpt && !slices.Contains(known, a) {
			pos = append(pos, a)
			continue
		}
		if !slices.Contains(known, k) {
			return nil, nil, fmt.Errorf("unknown option %q, expected one of %v", k, known)
		}
		opts[k] = v
	}
	return pos, opts, nil
}

// run SET START END [progress]: runs the set over the days START..END and prints
// the error's class (if any), whether the result was published, its partitions,
// rows in and out, and every check's outcome; with progress, the stages reported.
func (h *harness) run(c command) (string, error) {
	pos, opts, err := options(c.args, "progress")
	if err != nil {
		return "", err
	}
	if len(pos) != 3 || len(c.input) != 0 {
		return "", errors.New("usage: run SET START END [progress], no input")
	}
	start, err := offline.ParseDate(pos[1])
	if err != nil {
		return "", err
	}
	end, err := offline.ParseDate(pos[2])
	if err != nil {
		return "", err
	}
	var mu sync.Mutex
	var stages []string
	res, err := h.e.Run(h.t.Context(), offline.RunRequest{Set: pos[0], Start: start, End: end, Progress: func(stage string) {
		mu.Lock()
		defer mu.Unlock()
		stages = append(stages, stage)
	}})
	var out []string
	if err != nil {
		h.t.Logf("%s: %s: %v", c.pos, c, err)
		out = append(out, errorLine(err))
	}
	if res != nil {
		verb := "published"
		if !res.Published {
			verb = "not published"
		}
		out = append(out, fmt.Sprintf("%s %s: %d rows in, %d rows out", verb, partitions(res.Partitions), res.RowsIn, res.RowsOut))
		for _, r := range res.Checks {
			status := "passed"
			if !r.Passed {
				status = "FAILED"
			}
			out = append(out, fmt.Sprintf("check %s [%s]: %s, %d of %d fail", r.Check, r.Level, status, r.Failed, r.Total))
		}
	}
	if _, ok := opts["progress"]; ok {
		mu.Lock()
		out = append(out, "stages: "+strings.Join(stages, ", "))
		mu.Unlock()
	}
	return strings.Join(out, "\n"), nil
}

// partitions spells a run's partitions as a range and a count.
func partitions(p []string) string {
	switch len(p) {
	case 0:
		return "no partitions"
	case 1:
		return "partition " + p[0]
	}
	return fmt.Sprintf("partitions %s..%s (%d)", p[0], p[len(p)-1], len(p))
}

// append SET: appends the input rows, one per line: the join keys, the
// timestamp and the set's columns, comma-separated (see parseRow).
func (h *harness) append(c command) (string, error) {
	if len(c.args) != 1 {
		return "", errors.New("usage: append SET, rows as input")
	}
	set := c.args[0]
	keys, cols, err := offline.Schema(h.feats, set)
	if err != nil {
		// A set the catalog does not know: its rows are parsed as plain values,
		// for the engine to refuse.
		keys, cols = []string{"key"}, nil
	}
	rows := make([]offline.LatestRow, 0, len(c.input))
	for i, line := range c.input {
		r, err := parseRow(line, len(keys), cols)
		if err != nil {
			return "", fmt.Errorf("input line %d: %w", i+1, err)
		}
		rows = append(rows, r)
	}
	err = h.e.Append(h.t.Context(), set, rows)
	if err != nil {
		h.t.Logf("%s: %s: %v", c.pos, c, err)
	}
	return okOrError(err), nil
}

// parseRow reads a row written as keys, timestamp, values. NULL is nil and
// 'text' is the string text whatever the column. Otherwise a key is an int64
// when it reads as one, a float64 when it reads as one (which engines refuse),
// else a string; a value is of its column's type when it reads as one, else a
// string (for the engine to refuse); an empty timestamp is the zero time.
// Extra or missing values are passed as they are.
func parseRow(line string, nkeys int, cols []spec.Column) (offline.LatestRow, error) {
	r := csv.NewReader(strings.NewReader(line))
	r.FieldsPerRecord = -1
	f, err := r.Read()
	if err != nil {
		return offline.LatestRow{}, err
	}
	if len(f) < nkeys+1 {
		return offline.LatestRow{}, fmt.Errorf("%d fields, expected %d keys and a timestamp first", len(f), nkeys)
	}
	row := offline.LatestRow{Key: make([]any, nkeys), Values: make([]any, 0, len(f)-nkeys-1)}
	for i, s := range f[:nkeys] {
		row.Key[i] = parseKey(s)
	}
	if s := f[nkeys]; s != "" {
		if row.TS, err = parseTime(s); err != nil {
			return offline.LatestRow{}, err
		}
	}
	for i, s := range f[nkeys+1:] {
		typ := spec.String
		if i < len(cols) {
			typ = cols[i].Type
		}
		row.Values = append(row.Values, parseValue(s, typ))
	}
	return row, nil
}

func parseKey(s string) any {
	if q, ok := quoted(s); ok {
		return q
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	if x, err := strconv.ParseFloat(s, 64); err == nil {
		return x
	}
	return s
}

func parseValue(s string, typ spec.Type) any {
	if s == "NULL" {
		return nil
	}
	if q, ok := quoted(s); ok {
		return q
	}
	var v any
	var err error
	switch typ {
	case spec.Int64:
		v, err = strconv.ParseInt(s, 10, 64)
	case spec.Float64:
		v, err = strconv.ParseFloat(s, 64)
	case spec.Bool:
		v, err = strconv.ParseBool(s)
	case spec.Timestamp:
		v, err = parseTime(s)
	default:
		return s
	}
	if err != nil {
		return s
	}
	return v
}

func quoted(s string) (string, bool) {
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		return s[1 : len(s)-1], true
	}
	return "", false
}

// parseTime reads a time in UTC: RFC 3339, "2006-01-02 15:04:05[.frac]" or a date.
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, time.DateTime, time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: expected RFC 3339, YYYY-MM-DD HH:MM:SS or YYYY-MM-DD", s)
}

// rows SET: prints every stored row of the set (header first, sorted by keys and
// timestamp), read through ScanLatest alone so that any engine can be checked:
// a scan up to "to" returns every row at the greatest timestamp stored before
// it, so scans with "to" stepping down through the stored timestamps list each
// (key, timestamp) once, as the row that wins among those written with it.
// Values not of their column's Go type are marked "!<type>".
func (h *harness) rows(c command) (string, error) {
	if len(c.args) != 1 || len(c.input) != 0 {
		return "", errors.New("usage: rows SET, no input")
	}
	keys, cols, err := offline.Schema(h.feats, c.args[0])
	if err != nil {
		return "", err
	}
	var all []offline.LatestRow
	var problems []string
	var to time.Time // zero: no upper bound
	for {
		got, dups, err := h.scanOnce(c.args[0], time.Time{}, to)
		if errors.Is(err, offline.ErrNoData) && !to.IsZero() {
			break // stepped down past the first partition
		}
		if err != nil {
			return errorLine(err), nil
		}
		problems = append(problems, dups...)
		if len(got) == 0 {
			break
		}
		latest := got[0].TS
		for _, r := range got {
			if r.TS.After(latest) {
				latest = r.TS
			}
		}
		if !to.IsZero() && latest.After(to) {
			problems = append(problems, fmt.Sprintf("scan up to %s returned a row at %s", Format(to), Format(latest)))
			break
		}
		for _, r := range got {
			if r.TS.Equal(latest) {
				all = append(all, r)
			}
		}
		to = latest.Add(-time.Nanosecond)
	}
	return strings.Join(append(formatRows(keys, cols, all), problems...), "\n"), nil
}

// scanOnce collects one ScanLatest, and says which keys it returned twice.
func (h *harness) scanOnce(set string, from, to time.Time) (rows []offline.LatestRow, dups []string, err error) {
	seen := map[string]bool{}
	err = h.e.ScanLatest(h.t.Context(), set, from, to, func(batch []offline.LatestRow) error {
		for _, r := range batch {
			k := fmt.Sprint(r.Key...)
			if seen[k] {
				dups = append(dups, fmt.Sprintf("key %s returned twice by one scan", k))
			}
			seen[k] = true
			rows = append(rows, r)
		}
		return nil
	})
	return rows, dups, err
}

// scan SET [from=TIME] [to=TIME] [stop]: prints what ScanLatest returns (header
// first, sorted by keys); with stop the callback fails on the first batch and
// the output says whether the scan stopped with that error.
func (h *harness) scan(c command) (string, error) {
	pos, opts, err := options(c.args, "from", "to", "stop")
	if err != nil {
		return "", err
	}
	if len(pos) != 1 || len(c.input) != 0 {
		return "", errors.New("usage: scan SET [from=TIME] [to=TIME] [stop], no input")
	}
	var from, to time.Time
	if s, ok := opts["from"]; ok {
		if from, err = parseTime(s); err != nil {
			return "", err
		}
	}
	if s, ok := opts["to"]; ok {
		if to, err = parseTime(s); err != nil {
			return "", err
		}
	}
	set := pos[0]
	if _, ok := opts["stop"]; ok {
		errStop := errors.New("stop")
		calls := 0
		err := h.e.ScanLatest(h.t.Context(), set, from, to, func([]offline.LatestRow) error {
			calls++
			return errStop
		})
		switch {
		case errors.Is(err, errStop):
			return fmt.Sprintf("stopped with the callback's error after %d call(s)", calls), nil
		case err != nil:
			return errorLine(err), nil
		}
		return fmt.Sprintf("not stopped: no error after %d call(s)", calls), nil
	}
	got, dups, err := h.scanOnce(set, from, to)
	if err != nil {
		h.t.Logf("%s: %s: %v", c.pos, c, err)
		return errorLine(err), nil
	}
	keys, cols, err := offline.Schema(h.feats, set)
	if err != nil {
		return "", err
	}
	return strings.Join(append(formatRows(keys, cols, got), dups...), "\n"), nil
}

// formatRows prints rows as CSV lines, header first, sorted by keys (int64
// numerically) then timestamp.
func formatRows(keys []string, cols []spec.Column, rows []offline.LatestRow) []string {
	head := append(append(slices.Clone(keys), "timestamp"), make([]string, len(cols))...)
	for i, c := range cols {
		head[len(keys)+1+i] = c.Name
	}
	rows = slices.Clone(rows)
	slices.SortStableFunc(rows, func(a, b offline.LatestRow) int {
		for i := range min(len(a.Key), len(b.Key)) {
			if c := compareKey(a.Key[i], b.Key[i]); c != 0 {
				return c
			}
		}
		return cmp.Or(cmp.Compare(len(a.Key), len(b.Key)), a.TS.Compare(b.TS))
	})
	out := []string{strings.Join(head, ",")}
	for _, r := range rows {
		cells := make([]string, 0, len(r.Key)+1+len(r.Values))
		for _, k := range r.Key {
			cells = append(cells, cell(k, ""))
		}
		ts := Format(r.TS)
		if r.TS.Location() != time.UTC {
			ts += "!" + r.TS.Location().String()
		}
		cells = append(cells, ts)
		for i, v := range r.Values {
			typ := spec.Type("?")
			if i < len(cols) {
				typ = cols[i].Type
			}
			cells = append(cells, cell(v, typ))
		}
		out = append(out, strings.Join(cells, ","))
	}
	return out
}

// compareKey orders key values: int64 numerically, strings as strings, and
// values of different types by type name.
func compareKey(a, b any) int {
	switch x := a.(type) {
	case int64:
		if y, ok := b.(int64); ok {
			return cmp.Compare(x, y)
		}
	case string:
		if y, ok := b.(string); ok {
			return cmp.Compare(x, y)
		}
	}
	return cmp.Or(cmp.Compare(fmt.Sprintf("%T", a), fmt.Sprintf("%T", b)), cmp.Compare(fmt.Sprint(a), fmt.Sprint(b)))
}

// cell formats a key ("" type) or a value of a column, marking a Go type the
// contract does not allow there.
func cell(v any, typ spec.Type) string {
	s := Format(v)
	if v == "NULL" {
		s = "'NULL'" // the string, not a missing value
	}
	var ok bool
	switch v.(type) {
	case nil:
		ok = typ != ""
	case int64:
		ok = typ == "" || typ == spec.Int64
	case string:
		ok = typ == "" || typ == spec.String
	case float64:
		ok = typ == spec.Float64
	case bool:
		ok = typ == spec.Bool
	case time.Time:
		ok = typ == spec.Timestamp
	}
	if !ok {
		s += fmt.Sprintf("!%T", v)
	}
	return s
}

// pit (features=REF,... | service=NAME) [time=COLUMN] [full-names] [spine=parquet]:
// point-in-time joins the input (a CSV spine, written to spine.csv, or converted
// to spine.parquet) and prints the output read back (header first, spine order).
// The join runs twice, to a CSV and to a Parquet file; a difference between
// them, or with the result's row count and columns, is printed after the rows.
func (h *harness) pit(c command) (string, error) {
	pos, opts, err := options(c.args, "features", "service", "time", "full-names", "spine")
	if err != nil {
		return "", err
	}
	if len(pos) != 0 || len(c.input) == 0 {
		return "", errors.New("usage: pit (features=REF,... | service=NAME) [time=COLUMN] [full-names] [spine=parquet], the spine as input")
	}
	var feats []spec.ResolvedFeature
	switch refs, svc := opts["features"], opts["service"]; {
	case refs != "" && svc == "":
		feats, err = h.feats.Resolve(strings.Split(refs, ",")...)
	case svc != "" && refs == "":
		feats, err = h.feats.ResolveService(svc)
	default:
		return "", errors.New("pit needs features=REF,... or service=NAME")
	}
	if err != nil {
		return "", err
	}
	names := make([]string, len(feats))
	for i, f := range feats {
		names[i] = f.Name
		if _, full := opts["full-names"]; full {
			names[i] = f.Set + "__" + f.Name
		}
	}
	spine := filepath.Join(h.work, "spine.csv")
	if err := os.WriteFile(spine, []byte(strings.Join(c.input, "\n")+"\n"), 0o644); err != nil {
		return "", err
	}
	switch opts["spine"] {
	case "parquet":
		pq := filepath.Join(h.work, "spine.parquet")
		if err := toParquet(spine, pq); err != nil {
			return "", err
		}
		spine = pq
	case "", "csv":
	default:
		return "", fmt.Errorf("spine=%s: expected csv or parquet", opts["spine"])
	}
	outDir := h.t.TempDir()
	var outputs [2]string
	for i, name := range []string{"out.csv", "out.parquet"} {
		out := filepath.Join(outDir, name)
		res, err := h.e.PointInTime(h.t.Context(), offline.PointInTimeRequest{Spine: spine, TimeColumn: opts["time"], Features: feats, Names: names, Out: out})
		if err != nil {
			h.t.Logf("%s: %s: %v", c.pos, c, err)
			outputs[i] = errorLine(err)
			continue
		}
		read := "read_csv"
		if strings.HasSuffix(name, ".parquet") {
			read = "read_parquet"
		}
		lines := Lines(h.t, fmt.Sprintf("SELECT * FROM %s(%s)", read, literal(out)))
		if res.Rows != int64(len(lines)-1) || strings.Join(res.Columns, ",") != lines[0] {
			lines = append(lines, fmt.Sprintf("%s: the result says %d rows, columns %s", name, res.Rows, strings.Join(res.Columns, ",")))
		}
		outputs[i] = strings.Join(lines, "\n")
	}
	if outputs[0] != outputs[1] {
		return "--- out.csv\n" + outputs[0] + "\n--- out.parquet\n" + outputs[1], nil
	}
	return outputs[0], nil
}

// literal quotes a path as a SQL string.
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// execDuckDB runs one statement on a fresh in-memory DuckDB (to prepare inputs).
func execDuckDB(query string) error {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(context.Background(), query); err != nil {
		return fmt.Errorf("%s: %w", query, err)
	}
	return nil
}

// write PATH: writes the input lines to PATH under the case's directory (to
// change a source between runs). A PATH ending in .parquet gets the input, a
// CSV file, as Parquet (column types as DuckDB reads them from the CSV), so
// that Parquet sources are text in the case too.
func (h *harness) write(c command) (string, error) {
	if len(c.args) != 1 || !filepath.IsLocal(c.args[0]) {
		return "", errors.New("usage: write PATH (relative, inside the case), the content as input")
	}
	p := filepath.Join(h.work, c.args[0])
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	content := []byte(strings.Join(c.input, "\n") + "\n")
	if !strings.HasSuffix(p, ".parquet") {
		return "", os.WriteFile(p, content, 0o644)
	}
	csvFile := filepath.Join(h.t.TempDir(), "input.csv")
	if err := os.WriteFile(csvFile, content, 0o644); err != nil {
		return "", err
	}
	return "", toParquet(csvFile, p)
}

// toParquet writes a CSV file as Parquet.
func toParquet(csvFile, parquetFile string) error {
	return execDuckDB(fmt.Sprintf("COPY (SELECT * FROM read_csv(%s)) TO %s (FORMAT parquet)", literal(csvFile), literal(parquetFile)))
}
