package ondemand

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"

	"github.com/atrium-ml/atrium/internal/data/online"
)

// Input supplies the value of variable v (an index into Program.Vars) at
// row r. Null and Missing values are both null to expressions, and so is a
// value of another kind than the variable's.
type Input interface {
	Value(v, r int) online.Value
}

// Columns is an Input holding one column of values per variable:
// Columns[v][r].
type Columns [][]online.Value

// Value implements Input.
func (c Columns) Value(v, r int) online.Value { return c[v][r] }

// EvalError reports the rows an expression could not compute (their results
// are null).
type EvalError struct {
	// Failed counts the failed rows of each expression, in Exprs order.
	Failed []int
	// First is the first failure, naming its expression and row.
	First error
}

func (e *EvalError) Error() string {
	n := 0
	for _, f := range e.Failed {
		n += f
	}
	return fmt.Sprintf("%d value(s) could not be computed (null instead); first: %v", n, e.First)
}

// rowActivation resolves the program's variables at one row of an Input,
// without building a map per row. It keeps each variable's last value and
// its CEL form: a value repeated down the rows (the user's features, the
// same for every candidate listing) is converted once, not once per row.
type rowActivation struct {
	p       *Program
	in      Input
	row     int
	last    []online.Value
	lastCEL []ref.Val
	memos   []memoSlot
}

// memoSlot is a memoized call's last result and the inputs it was computed
// from.
type memoSlot struct {
	valid bool
	in    []online.Value
	res   ref.Val
}

// memo wraps a call whose result depends only on the variables vars: when
// they hold the values they held at the last evaluation in the same Eval,
// the last result is returned instead of calling again. CEL's functions are
// pure, so the result is the same.
type memo struct {
	interpreter.Interpretable
	slot int
	vars []int
}

func (m *memo) Eval(act interpreter.Activation) ref.Val {
	a := rowOf(act)
	if a == nil {
		return m.Interpretable.Eval(act)
	}
	s := &a.memos[m.slot]
	if s.valid {
		same := true
		for j, v := range m.vars {
			if a.in.Value(v, a.row) != s.in[j] {
				same = false
				break
			}
		}
		if same {
			return s.res
		}
	}
	s.res = m.Interpretable.Eval(act)
	s.in = s.in[:0]
	for _, v := range m.vars {
		s.in = append(s.in, a.in.Value(v, a.row))
	}
	s.valid = true
	return s.res
}

// rowOf finds the rowActivation under the activation CEL passes a node.
func rowOf(act interpreter.Activation) *rowActivation {
	for act != nil {
		switch x := act.(type) {
		case *rowActivation:
			return x
		case *interpreter.ExecutionFrame:
			act = x.Activation
		default:
			return nil
		}
	}
	return nil
}

func (a *rowActivation) ResolveName(name string) (any, bool) {
	i := a.p.varIndex(name)
	if i < 0 {
		return nil, false
	}
	v := a.in.Value(i, a.row)
	if a.lastCEL[i] != nil && v == a.last[i] {
		return a.lastCEL[i], true
	}
	c := toCEL(v, a.p.vars[i].Kind)
	a.last[i], a.lastCEL[i] = v, c
	return c, true
}

func (a *rowActivation) Parent() interpreter.Activation { return nil }

// toCEL converts a value of kind want to CEL; null, missing and a value of
// another kind are CEL null.
func toCEL(v online.Value, want online.Kind) ref.Val {
	if v.Kind() != want {
		return types.NullValue
	}
	switch want {
	case online.KindInt64:
		return types.Int(v.Int64())
	case online.KindFloat64:
		return types.Double(v.Float64())
	case online.KindString:
		return types.String(v.Str())
	case online.KindBool:
		return types.Bool(v.Bool())
	case online.KindTime:
		return types.Timestamp{Time: v.Time()}
	}
	return types.NullValue
}

// fromCEL converts a result to a value of kind want. A non-finite double is
// null (see the package's semantics).
func fromCEL(v ref.Val, want online.Kind) (online.Value, error) {
	switch x := v.(type) {
	case types.Null:
		return online.Null, nil
	case *types.Err:
		return online.Null, x
	case types.Double:
		if want == online.KindFloat64 {
			if f := float64(x); !math.IsNaN(f) && !math.IsInf(f, 0) {
				return online.Float64(f), nil
			}
			return online.Null, nil
		}
	case types.Int:
		if want == online.KindInt64 {
			return online.Int64(int64(x)), nil
		}
	case types.String:
		if want == online.KindString {
			return online.String(string(x)), nil
		}
	case types.Bool:
		if want == online.KindBool {
			return online.Bool(bool(x)), nil
		}
	case types.Timestamp:
		if want == online.KindTime {
			return online.Time(x.Time.UTC()), nil
		}
	}
	return online.Null, fmt.Errorf("result %v is %s, expected %s", v.Value(), v.Type().TypeName(), want)
}

// Eval computes every expression at rows [0, rows) of in into out, row-major:
// out[r*len(Exprs)+e]. out must hold rows*len(Exprs) values. A row an
// expression cannot compute gets null; the error, when not nil, is an
// *EvalError counting them. Eval is safe for concurrent use.
func (p *Program) Eval(in Input, rows int, out []online.Value) error {
	ne := len(p.exprs)
	if len(out) < rows*ne {
		panic(fmt.Sprintf("ondemand: Eval of %d rows x %d expressions into %d values", rows, ne, len(out)))
	}
	act := &rowActivation{p: p, in: in, last: make([]online.Value, len(p.vars)), lastCEL: make([]ref.Val, len(p.vars)), memos: make([]memoSlot, p.memos)}
	var fail *EvalError
	for r := range rows {
		act.row = r
		for e := range p.exprs {
			c := &p.exprs[e]
			if p.hasNull(c.strict, in, r) {
				out[r*ne+e] = online.Null
				continue
			}
			res, _, err := c.prg.Eval(act)
			var v online.Value
			if err == nil {
				v, err = fromCEL(res, c.Kind)
			}
			if err != nil {
				if fail == nil {
					fail = &EvalError{Failed: make([]int, ne), First: fmt.Errorf("%s, row %d: %w", c.Name, r, err)}
				}
				fail.Failed[e]++
				v = online.Null
			}
			out[r*ne+e] = v
		}
	}
	if fail != nil {
		return fail
	}
	return nil
}

// varIndex is the index of variable name, or -1. A few variables are
// scanned (the names CEL passes are those of the AST, so most comparisons
// stop at the length or the pointer); many are looked up in the map.
func (p *Program) varIndex(name string) int {
	if len(p.vars) > 16 {
		if i, ok := p.index[name]; ok {
			return i
		}
		return -1
	}
	for i := range p.vars {
		if p.vars[i].Name == name {
			return i
		}
	}
	return -1
}

// hasNull reports whether one of the variables is null at row r.
func (p *Program) hasNull(vars []int, in Input, r int) bool {
	for _, v := range vars {
		if in.Value(v, r).Kind() != p.vars[v].Kind {
			return true
		}
	}
	return false
}

// Value converts a Go value of an Input to the online.Value of kind k, as
// Convert does; a value Convert refuses is Null. Prefer Convert where the
// caller can report the error: Null silently skews offline values from
// online ones.
func Value(x any, k online.Kind) online.Value {
	v, _ := Convert(x, k)
	return v
}

// Convert converts a Go value scanned from database/sql (nil, any Go
// integer or float type, string, bool, time.Time, *big.Int for HUGEINT, and
// a decimal with a Float64 and a String method, duckdb.Decimal's) to the
// online.Value of kind k. nil is Null. Integers widen to float64; a whole
// decimal or big integer within int64 becomes an int64. Anything else (a
// type of another kind, an integer out of int64's range, an unknown type)
// is an error naming the value and the kind, rather than a Null that
// would differ from what the online path computes.
func Convert(x any, k online.Kind) (online.Value, error) {
	switch v := x.(type) {
	case nil:
		return online.Null, nil
	case int64:
		switch k {
		case online.KindInt64:
			return online.Int64(v), nil
		case online.KindFloat64:
			return online.Float64(float64(v)), nil
		}
	case int:
		return Convert(int64(v), k)
	case int32:
		return Convert(int64(v), k)
	case int16:
		return Convert(int64(v), k)
	case int8:
		return Convert(int64(v), k)
	case uint8:
		return Convert(int64(v), k)
	case uint16:
		return Convert(int64(v), k)
	case uint32:
		return Convert(int64(v), k)
	case uint64:
		if v <= math.MaxInt64 {
			return Convert(int64(v), k)
		}
		if k == online.KindFloat64 {
			return online.Float64(float64(v)), nil
		}
	case uint:
		return Convert(uint64(v), k)
	case *big.Int:
		if v != nil && v.IsInt64() {
			return Convert(v.Int64(), k)
		}
		if v != nil && k == online.KindFloat64 {
			f, _ := new(big.Float).SetInt(v).Float64()
			return online.Float64(f), nil
		}
	case float64:
		if k == online.KindFloat64 {
			return online.Float64(v), nil
		}
	case float32:
		return Convert(float64(v), k)
	case string:
		if k == online.KindString {
			return online.String(v), nil
		}
	case bool:
		if k == online.KindBool {
			return online.Bool(v), nil
		}
	case time.Time:
		if k == online.KindTime {
			return online.Time(v), nil
		}
	case decimal:
		switch k {
		case online.KindFloat64:
			return online.Float64(v.Float64()), nil
		case online.KindInt64:
			// Exact when the decimal is whole: "12", "12.00".
			whole, frac, _ := strings.Cut(v.String(), ".")
			if strings.Trim(frac, "0") == "" {
				if n, err := strconv.ParseInt(whole, 10, 64); err == nil {
					return online.Int64(n), nil
				}
			}
		}
	}
	return online.Null, fmt.Errorf("value %v (%T) cannot be read as %s", clipValue(x), x, k)
}

// decimal is a fixed-point number as database drivers scan DECIMAL
// (duckdb.Decimal), matched by its methods so that this package does not
// import a driver.
type decimal interface {
	Float64() float64
	String() string
}

// clipValue is x for an error message, shortened.
func clipValue(x any) string {
	s := fmt.Sprint(x)
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return s
}
