package ondemand

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/online"
)

var testVars = []Var{
	{"rent", online.KindFloat64}, {"budget", online.KindFloat64}, {"bedrooms", online.KindInt64},
	{"neighborhood", online.KindString}, {"preferred", online.KindString}, {"furnished", online.KindBool},
	{"listed_at", online.KindTime},
}

// row builds an Input row of testVars from name -> value (unset: Missing).
func row(vals map[string]online.Value) Columns {
	c := make(Columns, len(testVars))
	for i, v := range testVars {
		val, ok := vals[v.Name]
		if !ok {
			val = online.Missing
		}
		c[i] = []online.Value{val}
	}
	return c
}

func TestEval(t *testing.T) {
	f, i, s := online.Float64, online.Int64, online.String
	base := map[string]online.Value{"rent": f(3000), "budget": f(2000), "bedrooms": i(2), "neighborhood": s("Moema"),
		"preferred": s("Lapa|Moema"), "furnished": online.Bool(true), "listed_at": online.Time(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC))}
	with := func(k string, v online.Value) map[string]online.Value {
		m := map[string]online.Value{}
		for a, b := range base {
			m[a] = b
		}
		m[k] = v
		return m
	}
	for _, tc := range []struct {
		name string
		kind online.Kind
		expr string
		in   map[string]online.Value
		want online.Value
		fail bool
	}{
		{"ratio", online.KindFloat64, "rent / budget", base, f(1.5), false},
		{"ratio of a missing budget is null", online.KindFloat64, "rent / budget", with("budget", online.Missing), online.Null, false},
		{"ratio of a null budget is null", online.KindFloat64, "rent / budget", with("budget", online.Null), online.Null, false},
		{"float division by zero is null", online.KindFloat64, "rent / budget", with("budget", f(0)), online.Null, false},
		{"zero over zero is null", online.KindFloat64, "budget / budget", with("budget", f(0)), online.Null, false},
		{"guarded ratio", online.KindFloat64, "budget > 0.0 ? rent / budget : dyn(null)", with("budget", f(0)), online.Null, false},
		{"a null the expression tests reaches it", online.KindFloat64, "budget == null ? -1.0 : rent / budget", with("budget", online.Missing), f(-1), false},
		{"a null tested with != reaches it", online.KindInt64, "null != budget ? 1 : 0", with("budget", online.Null), i(0), false},
		{"another null still propagates", online.KindFloat64, "budget == null ? -1.0 : rent / budget", with("rent", online.Missing), online.Null, false},
		{"int division by zero is an error, null", online.KindInt64, "bedrooms / 0", base, online.Null, true},
		{"int arithmetic", online.KindInt64, "bedrooms * 2 + 1", base, i(5), false},
		{"membership in a split list", online.KindInt64, "neighborhood in preferred.split('|') ? 1 : 0", base, i(1), false},
		{"not a member", online.KindInt64, "neighborhood in preferred.split('|') ? 1 : 0", with("neighborhood", s("Lapa ")), i(0), false},
		{"no substring match", online.KindInt64, "neighborhood in preferred.split('|') ? 1 : 0", with("neighborhood", s("Moe")), i(0), false},
		{"membership of a missing list is null", online.KindInt64, "neighborhood in preferred.split('|') ? 1 : 0", with("preferred", online.Missing), online.Null, false},
		{"string functions", online.KindString, "neighborhood.lowerAscii() + '/' + string(bedrooms)", base, s("moema/2"), false},
		{"bool", online.KindBool, "furnished && rent < 5000.0", base, online.Bool(true), false},
		{"list functions", online.KindInt64, "size(preferred.split('|'))", base, i(2), false},
		{"math", online.KindFloat64, "math.least(rent, budget)", base, f(2000), false},
		{"timestamps", online.KindInt64, "listed_at.getFullYear()", base, i(2026), false},
		{"timestamp output", online.KindTime, "listed_at + duration('24h')", base, online.Time(time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)), false},
		{"a value of the wrong kind is null", online.KindFloat64, "rent / budget", with("budget", s("x")), online.Null, false},
		{"dyn result of the wrong type is an error", online.KindFloat64, "dyn(bedrooms)", base, online.Null, true},
		{"int overflow is an error", online.KindInt64, "bedrooms * 9223372036854775807", base, online.Null, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(testVars, []Expr{{Name: "x", Kind: tc.kind, Source: tc.expr}})
			if err != nil {
				t.Fatal(err)
			}
			out := make([]online.Value, 1)
			err = p.Eval(row(tc.in), 1, out)
			var ee *EvalError
			if got := errors.As(err, &ee); got != tc.fail {
				t.Fatalf("Eval error = %v, want failure %v", err, tc.fail)
			}
			if tc.fail && (ee.Failed[0] != 1 || !strings.Contains(ee.Error(), "x, row 0")) {
				t.Errorf("EvalError = %v (failed %v)", ee, ee.Failed)
			}
			if !equal(out[0], tc.want) {
				t.Errorf("%s = %v (%s), want %v (%s)", tc.expr, out[0], out[0].Kind(), tc.want, tc.want.Kind())
			}
		})
	}
}

func equal(a, b online.Value) bool {
	if a.Kind() != b.Kind() {
		return false
	}
	switch a.Kind() {
	case online.KindFloat64:
		return math.Abs(a.Float64()-b.Float64()) <= 1e-12*math.Abs(b.Float64())
	case online.KindTime:
		return a.Time().Equal(b.Time())
	}
	return a == b
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind online.Kind
		expr string
		want string
	}{
		{"syntax", online.KindFloat64, "rent / ", "column 8: Syntax error"},
		{"unknown variable", online.KindFloat64, "rent / budgt", "undeclared reference to 'budgt'"},
		{"mixed numbers", online.KindFloat64, "rent + bedrooms", "found no matching overload for '_+_'"},
		{"int for a float", online.KindFloat64, "bedrooms * 2", "the expression is int, expected double (type float64) (write 1.0"},
		{"string for an int", online.KindInt64, "neighborhood", "the expression is wrapper(string), expected int"},
		{"null branch", online.KindFloat64, "budget > 0.0 ? rent / budget : null", "a branch without a value is written dyn(null)"},
		{"empty", online.KindFloat64, " ", "empty expression"},
		{"bad output kind", online.KindMissing, "1", "output kind missing has no CEL type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(testVars, []Expr{{Name: "ok", Kind: online.KindFloat64, Source: "rent"}, {Name: "bad", Kind: tc.kind, Source: tc.expr}})
			var ce *CompileError
			if !errors.As(err, &ce) || ce.Index != 1 || ce.Name != "bad" || !strings.Contains(ce.Msg, tc.want) || strings.Contains(ce.Msg, "\n") {
				t.Fatalf("Compile(%q) = %v, want a one-line error of expression 1 containing %q", tc.expr, err, tc.want)
			}
		})
	}
	if _, err := Compile([]Var{{"a", online.KindInt64}, {"a", online.KindFloat64}}, nil); err == nil || !strings.Contains(err.Error(), "declared twice") {
		t.Errorf("duplicate variables: %v", err)
	}
}

// TestEvalBatch evaluates several expressions over several rows: results are
// row-major and each row reads its own values.
func TestEvalBatch(t *testing.T) {
	vars := []Var{{"click", online.KindFloat64}, {"visit", online.KindFloat64}}
	p, err := Compile(vars, []Expr{{"score", online.KindFloat64, "0.7 * click + 0.3 * visit"}, {"best", online.KindFloat64, "math.greatest(click, visit)"}})
	if err != nil {
		t.Fatal(err)
	}
	in := Columns{{online.Float64(1), online.Float64(0), online.Missing}, {online.Float64(0), online.Float64(1), online.Float64(1)}}
	out := make([]online.Value, 6)
	if err := p.Eval(in, 3, out); err != nil {
		t.Fatal(err)
	}
	want := []online.Value{online.Float64(0.7), online.Float64(1), online.Float64(0.3), online.Float64(1), online.Null, online.Null}
	for i := range want {
		if !equal(out[i], want[i]) {
			t.Errorf("out[%d] = %v, want %v", i, out[i], want[i])
		}
	}
}

// BenchmarkEval is the request path of a ranker: 200 candidate rows x 2
// expressions (the demo's user x listing features).
func BenchmarkEval(b *testing.B) {
	vars := []Var{{"rent", online.KindFloat64}, {"budget", online.KindFloat64}, {"neighborhood", online.KindString}, {"preferred_neighborhoods", online.KindString}}
	p, err := Compile(vars, []Expr{
		{"rent_to_budget", online.KindFloat64, "rent / budget"},
		{"neighborhood_match", online.KindInt64, "neighborhood in preferred_neighborhoods.split('|') ? 1 : 0"},
	})
	if err != nil {
		b.Fatal(err)
	}
	const rows = 200
	in := make(Columns, 4)
	hoods := []string{"Moema", "Lapa", "Pinheiros", "Vila Madalena", "Centro"}
	for r := range rows {
		in[0] = append(in[0], online.Float64(1000+float64(r)*10))
		in[1] = append(in[1], online.Float64(2500))
		in[2] = append(in[2], online.String(hoods[r%len(hoods)]))
		in[3] = append(in[3], online.String("Moema|Pinheiros"))
	}
	out := make([]online.Value, rows*2)
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Eval(in, rows, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows*2), "ns/value")
}

// BenchmarkEvalRanker is a ranker's combination of two model scores over 200
// candidates: arithmetic only.
func BenchmarkEvalRanker(b *testing.B) {
	p, err := Compile([]Var{{"click", online.KindFloat64}, {"visit", online.KindFloat64}},
		[]Expr{{"score", online.KindFloat64, "0.7 * click + 0.3 * visit"}})
	if err != nil {
		b.Fatal(err)
	}
	const rows = 200
	in := make(Columns, 2)
	for r := range rows {
		in[0] = append(in[0], online.Float64(float64(r)/rows))
		in[1] = append(in[1], online.Float64(1-float64(r)/rows))
	}
	out := make([]online.Value, rows)
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Eval(in, rows, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/value")
}

// TestMemoizedCallsMatchFreshOnes evaluates expressions with memoized calls
// over rows that repeat some inputs and change others, and compares every
// value with an evaluation of that row alone (nothing to reuse).
func TestMemoizedCallsMatchFreshOnes(t *testing.T) {
	vars := []Var{{"a", online.KindString}, {"b", online.KindString}, {"n", online.KindInt64}}
	p, err := Compile(vars, []Expr{
		{"in_split", online.KindInt64, "b in a.split('|') ? n : -n"},
		{"sizes", online.KindInt64, "size(a.split('|')) * 100 + size(b.lowerAscii()) + n"},
		{"comprehension", online.KindBool, "a.split('|').exists(x, x == b)"},
		{"nested", online.KindString, "a.split('|')[0].upperAscii() + b.substring(0, 1)"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.memos == 0 {
		t.Fatal("no call memoized")
	}
	as := []string{"x|y", "x|y", "x|y", "y|Zz|x", "y|Zz|x", "x|y", "", "x|y"}
	bs := []string{"x", "y", "Q", "Zz", "Zz", "x", "x", "y"}
	in := make(Columns, 3)
	for r := range as {
		in[0] = append(in[0], online.String(as[r]))
		in[1] = append(in[1], online.String(bs[r]))
		in[2] = append(in[2], online.Int64(int64(r%3)))
	}
	ne := len(p.Exprs())
	out := make([]online.Value, len(as)*ne)
	if err := p.Eval(in, len(as), out); err != nil {
		t.Fatal(err)
	}
	for r := range as {
		one := make([]online.Value, ne)
		if err := p.Eval(Columns{in[0][r : r+1], in[1][r : r+1], in[2][r : r+1]}, 1, one); err != nil {
			t.Fatal(err)
		}
		for e := range ne {
			if out[r*ne+e] != one[e] {
				t.Errorf("row %d %s: batch %v, alone %v", r, p.Exprs()[e].Name, out[r*ne+e].Any(), one[e].Any())
			}
		}
	}
}

// TestEvalConcurrent evaluates one Program from several goroutines (run with
// -race): the memoized calls keep their state per Eval, not in the Program.
func TestEvalConcurrent(t *testing.T) {
	p, err := Compile([]Var{{"a", online.KindString}, {"n", online.KindInt64}},
		[]Expr{{"k", online.KindInt64, "size(a.split('|')) + n"}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	for g := range 4 {
		go func() {
			in := Columns{{online.String(strings.Repeat("x|", g))}, {online.Int64(int64(g))}}
			out := make([]online.Value, 1)
			for range 200 {
				if err := p.Eval(in, 1, out); err != nil {
					done <- err
					return
				}
				if out[0].Int64() != int64(2*g+1) {
					done <- fmt.Errorf("goroutine %d: %v, want %d", g, out[0].Any(), 2*g+1)
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
