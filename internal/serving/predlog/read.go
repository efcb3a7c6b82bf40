package predlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrNoPredictions means that no published file covers the range asked for:
// monitoring and the skew check report "no data", never a silent pass.
var ErrNoPredictions = errors.New("no logged predictions")

// Files lists the published files of model's log (every model's when model
// is "") in the hours that overlap [since, until), pruning by partition
// directory; a zero since or until leaves that end open. Rows of a listed
// file may still fall outside the range: Source filters them. Temporary
// files are never listed. The list is sorted (partition, then write order).
func Files(dir, model string, since, until time.Time) ([]string, error) {
	root := filepath.Join(dir, "predictions")
	models, err := subdirs(root, "model=")
	if err != nil {
		return nil, err
	}
	var files []string
	for _, m := range models {
		if model != "" && m != modelDir(model) {
			continue
		}
		dates, err := subdirs(filepath.Join(root, m), "date=")
		if err != nil {
			return nil, err
		}
		for _, d := range dates {
			day, err := time.Parse("2006-01-02", strings.TrimPrefix(d, "date="))
			if err != nil || !overlaps(day, 24*time.Hour, since, until) {
				continue
			}
			hours, err := subdirs(filepath.Join(root, m, d), "hour=")
			if err != nil {
				return nil, err
			}
			for _, h := range hours {
				n, err := strconv.Atoi(strings.TrimPrefix(h, "hour="))
				if err != nil || !overlaps(day.Add(time.Duration(n)*time.Hour), time.Hour, since, until) {
					continue
				}
				hdir := filepath.Join(root, m, d, h)
				ents, err := os.ReadDir(hdir)
				if err != nil && !errors.Is(err, os.ErrNotExist) {
					return nil, err
				}
				for _, e := range ents {
					if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") && strings.HasSuffix(e.Name(), ".parquet") {
						files = append(files, filepath.Join(hdir, e.Name()))
					}
				}
			}
		}
	}
	return files, nil
}

// overlaps reports whether [start, start+d) meets [since, until).
func overlaps(start time.Time, d time.Duration, since, until time.Time) bool {
	return (since.IsZero() || start.Add(d).After(since)) && (until.IsZero() || start.Before(until))
}

// subdirs lists the directories of dir whose names start with prefix, sorted.
func subdirs(dir, prefix string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// Source returns a DuckDB table expression of the rows of model's log (every
// model's when model is "") with since <= timestamp < until (zero: open
// end), for queries such as "SELECT features.rent FROM " + src. Its columns are
// those of the package doc plus the partitions date (DATE) and hour
// (INTEGER). It returns ErrNoPredictions when no file covers the range.
func Source(dir, model string, since, until time.Time) (string, error) {
	files, err := Files(dir, model, since, until)
	if err != nil {
		return "", fmt.Errorf("prediction log %s: %w", dir, err)
	}
	if len(files) == 0 {
		what := "any model"
		if model != "" {
			what = "model " + strconv.Quote(model)
		}
		return "", fmt.Errorf("%w for %s in %s", ErrNoPredictions, what, describeRange(since, until))
	}
	quoted := make([]string, len(files))
	for i, f := range files {
		quoted[i] = sqlQuote(f)
	}
	var where []string
	if !since.IsZero() {
		where = append(where, `"timestamp" >= `+timestampLiteral(since))
	}
	if !until.IsZero() {
		where = append(where, `"timestamp" < `+timestampLiteral(until))
	}
	src := fmt.Sprintf("read_parquet([%s], hive_partitioning = true, union_by_name = true, hive_types = {'date': DATE, 'hour': INTEGER})", strings.Join(quoted, ", "))
	if len(where) == 0 {
		return src, nil
	}
	return fmt.Sprintf("(SELECT * FROM %s WHERE %s)", src, strings.Join(where, " AND ")), nil
}

func timestampLiteral(t time.Time) string {
	return "TIMESTAMP '" + t.UTC().Format("2006-01-02 15:04:05.999999") + "'"
}

func describeRange(since, until time.Time) string {
	f := func(t time.Time, open string) string {
		if t.IsZero() {
			return open
		}
		return t.UTC().Format(time.RFC3339)
	}
	return "[" + f(since, "start") + ", " + f(until, "now") + ")"
}

// Row is one logged row as Read returns it. Features and Categorical hold
// the row's values; a missing value, or a feature of another version read
// from the same files, is absent.
type Row struct {
	RequestID   string             `json:"request_id"`
	Row         int                `json:"row"`
	NRows       int                `json:"n_rows"`
	Time        time.Time          `json:"timestamp"`
	Model       string             `json:"model"`
	Version     string             `json:"model_version"`
	Route       Route              `json:"route"`
	RoutingKey  string             `json:"routing_key,omitempty"`
	SampleRate  float64            `json:"sample_rate"`
	Latency     Latency            `json:"latency"`
	Entities    map[string]string  `json:"entities,omitempty"`
	Features    map[string]float64 `json:"features,omitempty"`
	Categorical map[string]string  `json:"categorical,omitempty"`
	// Scores has one score for a single-output model, one per class for a
	// multiclass one.
	Scores []float64 `json:"scores"`
}

// rowOrder is the order of Read: time, then request, route, model and row.
const rowOrder = `"timestamp", request_id, route, model, "row"`

// Read returns the rows of Source(dir, model, since, until) in time order
// (then request id, route, model and row), through a private in-memory
// DuckDB. Meant for tests, the CLI and small windows; monitoring queries
// Source.
func Read(ctx context.Context, dir, model string, since, until time.Time) ([]Row, error) {
	src, err := Source(dir, model, since, until)
	if err != nil {
		return nil, err
	}
	return query(ctx, dir, `SELECT * FROM `+src+` ORDER BY `+rowOrder)
}

// Tail returns the newest n rows of Source(dir, model, since, until), in
// Read's order.
func Tail(ctx context.Context, dir, model string, since, until time.Time, n int) ([]Row, error) {
	src, err := Source(dir, model, since, until)
	if err != nil {
		return nil, err
	}
	desc := strings.ReplaceAll(rowOrder, ",", " DESC,") + " DESC"
	return query(ctx, dir, fmt.Sprintf(`SELECT * FROM (SELECT * FROM %s ORDER BY %s LIMIT %d) ORDER BY %s`, src, desc, max(n, 0), rowOrder))
}

func query(ctx context.Context, dir, q string) ([]Row, error) {
	var out []Row
	err := withDB(ctx, dir, func(db *sql.DB) error {
		var err error
		out, err = scanRows(ctx, db, q)
		return err
	})
	return out, err
}

// scanRows runs q, whose columns are the log's, and converts its rows.
func scanRows(ctx context.Context, db *sql.DB, q string) ([]Row, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []Row
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		r, err := toRow(cols, vals)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// toRow converts one scanned row; columns the files lack are skipped.
func toRow(cols []string, vals []any) (Row, error) {
	var r Row
	for i, c := range cols {
		v := vals[i]
		if v == nil {
			continue
		}
		var ok bool
		switch c {
		case "request_id":
			r.RequestID, ok = v.(string)
		case "row":
			r.Row, ok = asInt(v)
		case "n_rows":
			r.NRows, ok = asInt(v)
		case "timestamp":
			r.Time, ok = v.(time.Time)
			r.Time = r.Time.UTC()
		case "model":
			r.Model, ok = v.(string)
		case "model_version":
			r.Version, ok = v.(string)
		case "route":
			var s string
			s, ok = v.(string)
			r.Route = Route(s)
		case "routing_key":
			r.RoutingKey, ok = v.(string)
		case "sample_rate":
			r.SampleRate, ok = v.(float64)
		case "latency_ms":
			r.Latency.Total, ok = asDuration(v)
		case "fetch_ms":
			r.Latency.Fetch, ok = asDuration(v)
		case "model_ms":
			r.Latency.Model, ok = asDuration(v)
		case "entities":
			var m map[string]any
			if m, ok = v.(map[string]any); ok {
				r.Entities = map[string]string{}
				for k, x := range m {
					if s, isStr := x.(string); isStr {
						r.Entities[k] = s
					}
				}
			}
		case "features":
			var m map[string]any
			if m, ok = v.(map[string]any); ok {
				r.Features, r.Categorical = map[string]float64{}, map[string]string{}
				for k, x := range m {
					switch x := x.(type) {
					case float64:
						r.Features[k] = x
					case string:
						r.Categorical[k] = x
					}
				}
			}
		case "score":
			var s float64
			s, ok = v.(float64)
			r.Scores = []float64{s}
		case "scores":
			var l []any
			if l, ok = v.([]any); ok {
				r.Scores = make([]float64, len(l))
				for j, x := range l {
					f, isF := x.(float64)
					if !isF {
						f = math.NaN()
					}
					r.Scores[j] = f
				}
			}
		default:
			ok = true // partitions and columns of later formats
		}
		if !ok {
			return Row{}, fmt.Errorf("column %s: unexpected %T", c, v)
		}
	}
	return r, nil
}

func asInt(v any) (int, bool) {
	switch v := v.(type) {
	case int32:
		return int(v), true
	case int64:
		return int(v), true
	}
	return 0, false
}

func asDuration(v any) (time.Duration, bool) {
	f, ok := v.(float64)
	return time.Duration(math.Round(f * float64(time.Millisecond))), ok
}
