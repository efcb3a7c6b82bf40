package predlog

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Route names the endpoint that scored a record.
type Route string

// The routes of the serving layer.
const (
	RouteInfer   Route = "infer"
	RoutePredict Route = "predict"
	RouteRank    Route = "rank"
	// RouteShadow marks the rows a shadow model scored off the response path;
	// they carry the request id of the request they shadowed.
	RouteShadow Route = "shadow"
)

// Field is one request-level entity key (the user of a rank request), logged on
// every row of the request.
type Field struct {
	Name, Value string
}

// Column is one per-row entity key: Values[i] is row i's key.
type Column struct {
	Name   string
	Values []string
}

// Latency is where a request's time went (in JSON, in nanoseconds).
type Latency struct {
	Total time.Duration `json:"total_ns"`
	Fetch time.Duration `json:"fetch_ns"`
	Model time.Duration `json:"model_ns"`
}

// Record is one scored request: Rows rows scored by one model version. Slices
// are row-major and owned by the Writer once logged (see Writer.Log).
type Record struct {
	// RequestID identifies the request; sampling hashes it, so it must be set.
	RequestID string
	// Time is when the request arrived; the zero time means the time Log is
	// called. It is logged in UTC with microsecond precision and chooses the
	// hourly partition.
	Time       time.Time
	Model      string
	Version    string
	Route      Route
	RoutingKey string
	// Rows is the number of scored rows.
	Rows int
	// Context holds request-level entity keys, Entities per-row ones; both go
	// to the entities column of every row, and a name may not be in both.
	Context  []Field
	Entities []Column
	// Features names the numeric features, Values their values, row-major
	// (Rows x len(Features)); NaN is a missing value.
	Features []string
	Values   []float64
	// Categorical names the categorical features, Strings their values,
	// row-major (Rows x len(Categorical)); "" is a missing value.
	Categorical []string
	Strings     []string
	// Outputs is the number of scores per row (1 when zero; the classes of a
	// multiclass model), Scores the scores, row-major (Rows x Outputs).
	Outputs int
	Scores  []float64
	Latency Latency
}

// errRecord wraps every reason a record is refused.
var errRecord = errors.New("invalid prediction log record")

// outputs is the number of scores per row.
func (r *Record) outputs() int {
	if r.Outputs <= 0 {
		return 1
	}
	return r.Outputs
}

// check verifies the shapes that writing relies on. It is O(number of
// columns), not of rows, so Log can afford it.
func (r *Record) check() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w (model %q, request %q): %s", errRecord, r.Model, r.RequestID, fmt.Sprintf(format, a...))
	}
	switch {
	case r.Model == "":
		return bad("no model name")
	case r.Rows <= 0:
		return bad("rows = %d, want at least 1", r.Rows)
	case len(r.Values) != r.Rows*len(r.Features):
		return bad("%d numeric values for %d rows x %d features", len(r.Values), r.Rows, len(r.Features))
	case len(r.Strings) != r.Rows*len(r.Categorical):
		return bad("%d categorical values for %d rows x %d features", len(r.Strings), r.Rows, len(r.Categorical))
	case len(r.Scores) != r.Rows*r.outputs():
		return bad("%d scores for %d rows x %d outputs", len(r.Scores), r.Rows, r.outputs())
	}
	// An empty name cannot be a struct field in the file: DuckDB refuses the
	// whole flush group (every record of the model-hour) over it, so it is
	// refused here, alone.
	for i, c := range r.Entities {
		if c.Name == "" {
			return bad("entity key %d has no name", i)
		}
	}
	if i := slices.Index(r.Features, ""); i >= 0 {
		return bad("numeric feature %d has no name", i)
	}
	if i := slices.Index(r.Categorical, ""); i >= 0 {
		return bad("categorical feature %d has no name", i)
	}
	for i, f := range r.Context {
		if f.Name == "" {
			return bad("context field %d has no name", i)
		}
	}
	for _, c := range r.Entities {
		if len(c.Values) != r.Rows {
			return bad("entity key %q has %d values for %d rows", c.Name, len(c.Values), r.Rows)
		}
	}
	return nil
}
