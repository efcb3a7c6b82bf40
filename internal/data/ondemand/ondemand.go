// Package ondemand computes features at request time: expressions in CEL (the
// Common Expression Language, github.com/google/cel-go) over typed variables,
// compiled once and evaluated over batches of rows. The same Program computes
// a feature service's on-demand features offline (after the point-in-time
// join of `atrium historical`) and online (after the online store read), so
// the two paths cannot drift; rankers combine model scores with it too.
//
// # Semantics
//
// Variables are typed (online.KindInt64 is CEL int, KindFloat64 double,
// KindString string, KindBool bool, KindTime timestamp) and nullable: any of
// them may be null (a missing feature, a missing request value).
//
//   - Missing in, missing out: when a variable the expression reads is null,
//     the result is null without evaluating the expression, unless the
//     expression tests that variable against null itself (budget == null,
//     budget != null); such variables reach the expression as null.
//   - A float64 result that is NaN or infinite is null: x / 0.0 (CEL follows
//     IEEE 754) is a missing value, not an error, as SQL's x / NULLIF(y, 0).
//   - A runtime error (int64 division by zero, an overflow, a failed
//     conversion) makes that row's result null; Eval reports how many rows
//     failed and the first error.
//   - A result of the wrong type (through dyn) is an error of that row.
//
// CEL's type checker does not unify a number with the null literal: write
// `cond ? x : dyn(null)` for a branch without a value.
package ondemand

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"

	"github.com/atrium-ml/atrium/internal/data/online"
)

// Var is an input variable: a name expressions read and the kind of its
// values.
type Var struct {
	Name string
	Kind online.Kind
}

// Expr is an expression to compile: the name and kind of its output and its
// CEL source.
type Expr struct {
	Name   string
	Kind   online.Kind
	Source string
}

// Program is expressions compiled over one list of variables. It is immutable
// and safe for concurrent use.
type Program struct {
	vars  []Var
	index map[string]int
	exprs []compiled
	// memos is the number of memoized calls of all expressions (see memo).
	memos int
}

type compiled struct {
	Expr
	prg cel.Program
	// strict are the variables (indexes into vars) whose null makes the
	// result null without evaluation.
	strict []int
	// memos is the number of memoized calls of the expression, numbered
	// from the Program's count before it.
	memos int
}

// Vars returns the program's variables; do not modify them.
func (p *Program) Vars() []Var { return p.vars }

// Len is the number of expressions (len(Exprs()) without the copy).
func (p *Program) Len() int { return len(p.exprs) }

// Exprs returns the compiled expressions in order (their Source as given).
func (p *Program) Exprs() []Expr {
	out := make([]Expr, len(p.exprs))
	for i, e := range p.exprs {
		out[i] = e.Expr
	}
	return out
}

// celType is the CEL type of a value kind.
func celType(k online.Kind) (*cel.Type, error) {
	switch k {
	case online.KindInt64:
		return cel.IntType, nil
	case online.KindFloat64:
		return cel.DoubleType, nil
	case online.KindString:
		return cel.StringType, nil
	case online.KindBool:
		return cel.BoolType, nil
	case online.KindTime:
		return cel.TimestampType, nil
	}
	return nil, fmt.Errorf("kind %s has no CEL type, expected int64, float64, string, bool or timestamp", k)
}

// env builds the CEL environment of vars: each a nullable variable, with the
// string and math extensions (split, lowerAscii, math.least, ...).
func env(vars []Var) (*cel.Env, map[string]int, error) {
	opts := []cel.EnvOption{ext.Strings(), ext.Math(), ext.Lists()}
	index := make(map[string]int, len(vars))
	var errs []error
	for i, v := range vars {
		t, err := celType(v.Kind)
		if err != nil {
			errs = append(errs, fmt.Errorf("variable %s: %w", v.Name, err))
			continue
		}
		if _, dup := index[v.Name]; dup {
			errs = append(errs, fmt.Errorf("variable %s is declared twice", v.Name))
			continue
		}
		index[v.Name] = i
		opts = append(opts, cel.Variable(v.Name, cel.NullableType(t)))
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	e, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("CEL environment: %w", err)
	}
	return e, index, nil
}

// CompileError is why one expression does not compile. Msg is one line: the
// CEL checker's messages with their columns, joined by "; ".
type CompileError struct {
	// Index is the expression's position in Compile's list.
	Index int
	Name  string
	Msg   string
}

func (e *CompileError) Error() string { return e.Name + ": " + e.Msg }

// Compile checks and compiles exprs over vars. An error is every problem at
// once: a *CompileError per bad expression (errors.As finds the first; the
// joined error lists them all), or a problem of the variables.
func Compile(vars []Var, exprs []Expr) (*Program, error) {
	e, index, err := env(vars)
	if err != nil {
		return nil, err
	}
	p := &Program{vars: slices.Clone(vars), index: index}
	var errs []error
	for i, x := range exprs {
		c, msg := compile(e, index, x, p.memos)
		if msg != "" {
			errs = append(errs, &CompileError{Index: i, Name: x.Name, Msg: msg})
			continue
		}
		p.exprs = append(p.exprs, c)
		p.memos += c.memos
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// compile compiles one expression; msg says why it does not compile.
func compile(e *cel.Env, index map[string]int, x Expr, memoBase int) (c compiled, msg string) {
	want, err := celType(x.Kind)
	if err != nil {
		return c, "output " + err.Error()
	}
	if strings.TrimSpace(x.Source) == "" {
		return c, "empty expression"
	}
	ast, iss := e.Compile(x.Source)
	if iss.Err() != nil {
		var msgs []string
		for _, ce := range iss.Errors() {
			// Expressions have no container (namespace): saying so is noise.
			m := strings.TrimSuffix(ce.Message, " (in container '')")
			if loc := ce.Location; loc != nil && loc.Line() > 0 {
				m = fmt.Sprintf("column %d: %s", loc.Column()+1, m)
			}
			if strings.Contains(m, "'_?_:_'") && strings.Contains(m, "null") {
				m += " (a branch without a value is written dyn(null))"
			}
			msgs = append(msgs, m)
		}
		return c, strings.Join(msgs, "; ")
	}
	switch got := ast.OutputType(); got.String() {
	case want.String(), "wrapper(" + want.String() + ")", "null_type", "dyn":
	default:
		hint := ""
		if x.Kind == online.KindFloat64 && got.String() == "int" {
			hint = " (write 1.0, not 1, or double(...))"
		}
		return c, fmt.Sprintf("type mismatch: the expression is %s, expected %s (type %s)%s", got, want, x.Kind, hint)
	}
	calls := memoCalls(ast.NativeRep(), index)
	slots := map[int64]int{}
	for id := range calls {
		slots[id] = memoBase + len(slots)
	}
	decorate := func(i interpreter.Interpretable) (interpreter.Interpretable, error) {
		if vars, ok := calls[i.ID()]; ok {
			return &memo{Interpretable: i, slot: slots[i.ID()], vars: vars}, nil
		}
		return i, nil
	}
	prg, err := e.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CustomDecorator(decorate))
	if err != nil {
		// A memoized call in a place CEL's planner does not expect one:
		// the expression runs without memoization rather than not at all.
		slots = nil
		prg, err = e.Program(ast, cel.EvalOptions(cel.OptOptimize))
	}
	if err != nil {
		return c, err.Error()
	}
	c = compiled{Expr: x, prg: prg, strict: strictVars(ast.NativeRep(), index), memos: len(slots)}
	return c, ""
}

// memoCalls are the function calls of an expression worth computing once
// for rows that repeat their inputs (preferred_neighborhoods.split('|'),
// the same user's for every candidate): calls of named functions (not
// operators, cheap and rarely repeated) outside comprehensions, whose
// subtree reads declared variables only. It maps each call's expression id
// to the variables its subtree reads.
func memoCalls(a *celast.AST, index map[string]int) map[int64][]int {
	refs := a.ReferenceMap()
	out := map[int64][]int{}
	// vars returns the variables e's subtree reads; ok is false when it
	// holds a comprehension or a name that is not a declared variable. A
	// call that is the operand of an index or a field selection is not
	// memoized: CEL plans it as part of an attribute.
	var vars func(e celast.Expr, memoOK bool) ([]int, bool)
	vars = func(e celast.Expr, memoOK bool) ([]int, bool) {
		switch e.Kind() {
		case celast.LiteralKind:
			return nil, true
		case celast.IdentKind:
			if r, ok := refs[e.ID()]; ok && r.Value == nil {
				if i, ok := index[r.Name]; ok {
					return []int{i}, true
				}
			}
			return nil, false
		case celast.SelectKind:
			return vars(e.AsSelect().Operand(), false)
		case celast.ListKind:
			return allVars(e.AsList().Elements(), func(e celast.Expr) ([]int, bool) { return vars(e, true) })
		case celast.CallKind:
			call := e.AsCall()
			fn := call.FunctionName()
			args := call.Args()
			if call.IsMemberFunction() {
				args = append([]celast.Expr{call.Target()}, args...)
			}
			indexing := fn == operators.Index || fn == operators.OptIndex
			got, ok := allVars(args, func(a celast.Expr) ([]int, bool) { return vars(a, !indexing || a != args[0]) })
			if ok && memoOK && len(got) > 0 && !strings.HasPrefix(fn, "_") && !strings.HasPrefix(fn, "@") {
				out[e.ID()] = got
			}
			return got, ok
		}
		return nil, false // comprehensions, maps, structs: not memoized
	}
	vars(a.Expr(), true)
	return out
}

// allVars is the union of the variables of es, in index order.
func allVars(es []celast.Expr, vars func(celast.Expr) ([]int, bool)) ([]int, bool) {
	var out []int
	ok := true
	for _, e := range es {
		v, good := vars(e)
		ok = ok && good
		for _, i := range v {
			if !slices.Contains(out, i) {
				out = append(out, i)
			}
		}
	}
	slices.Sort(out)
	return out, ok
}

// strictVars are the variables the expression reads, except those it
// compares with null (x == null, null != x): those handle their own nulls.
func strictVars(a *celast.AST, index map[string]int) []int {
	refs := a.ReferenceMap()
	read := map[int]bool{}
	aware := map[int]bool{}
	celast.PreOrderVisit(a.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		switch e.Kind() {
		case celast.IdentKind:
			if r, ok := refs[e.ID()]; ok && r.Value == nil {
				if i, ok := index[r.Name]; ok {
					read[i] = true
				}
			}
		case celast.CallKind:
			call := e.AsCall()
			if fn := call.FunctionName(); (fn != operators.Equals && fn != operators.NotEquals) || len(call.Args()) != 2 {
				return
			}
			args := call.Args()
			for k, arg := range args {
				other := args[1-k]
				if arg.Kind() != celast.IdentKind || other.Kind() != celast.LiteralKind || other.AsLiteral() != types.NullValue {
					continue
				}
				if r, ok := refs[arg.ID()]; ok {
					if i, ok := index[r.Name]; ok {
						aware[i] = true
					}
				}
			}
		}
	}))
	var strict []int
	for i := range read {
		if !aware[i] {
			strict = append(strict, i)
		}
	}
	slices.Sort(strict)
	return strict
}
