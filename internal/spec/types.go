package spec

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// Type is a feature's value type.
type Type string

// Feature types. Their values in Go are int64, float64, string, bool and time.Time (UTC).
const (
	Int64     Type = "int64"
	Float64   Type = "float64"
	String    Type = "string"
	Bool      Type = "bool"
	Timestamp Type = "timestamp"
)

// Types lists every feature type.
var Types = []Type{Int64, Float64, String, Bool, Timestamp}

// Valid reports whether t is a known type.
func (t Type) Valid() bool { return slices.Contains(Types, t) }

// Numeric reports int64 and float64.
func (t Type) Numeric() bool { return t == Int64 || t == Float64 }

// SQL returns the SQL type that holds t (DuckDB and Spark spell them the same way).
func (t Type) SQL() string {
	switch t {
	case Int64:
		return "BIGINT"
	case Float64:
		return "DOUBLE"
	case String:
		return "VARCHAR"
	case Bool:
		return "BOOLEAN"
	case Timestamp:
		return "TIMESTAMP"
	}
	return ""
}

func typeList() string { return joinNames(Types) }

// Agg is an aggregation of an aggregated feature set.
type Agg string

// Aggregations. Over a window without rows, sum, count and count_distinct are 0
// and the others null.
const (
	Sum           Agg = "sum"
	Count         Agg = "count"
	Avg           Agg = "avg"
	Min           Agg = "min"
	Max           Agg = "max"
	StddevPop     Agg = "stddev_pop"
	StddevSamp    Agg = "stddev_samp"
	CountDistinct Agg = "count_distinct"
	Last          Agg = "last"
)

// Aggs lists every aggregation.
var Aggs = []Agg{Sum, Count, Avg, Min, Max, StddevPop, StddevSamp, CountDistinct, Last}

// Valid reports whether a is a known aggregation.
func (a Agg) Valid() bool { return slices.Contains(Aggs, a) }

// NeedsNumeric reports aggregations defined only on numbers.
func (a Agg) NeedsNumeric() bool {
	return a == Sum || a == Avg || a == StddevPop || a == StddevSamp
}

// IsCount reports aggregations that count values whatever their type.
func (a Agg) IsCount() bool { return a == Count || a == CountDistinct }

// ZeroWhenEmpty reports aggregations whose value over an empty window is 0, not null.
func (a Agg) ZeroWhenEmpty() bool { return a == Sum || a == Count || a == CountDistinct }

// OutputType is the type of the aggregated column for an input of type t.
func (a Agg) OutputType(t Type) Type {
	switch a {
	case Count, CountDistinct:
		return Int64
	case Avg, StddevPop, StddevSamp:
		return Float64
	}
	return t
}

func aggList() string { return joinNames(Aggs) }

func joinNames[T ~string](list []T) string {
	s := make([]string, len(list))
	for i, v := range list {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// Column is an output column of a feature set.
type Column struct {
	Name string `json:"name"`
	Type Type   `json:"type"`
	// Feature, Agg and Window say where an aggregated column comes from (zero for
	// plain and derived columns).
	Feature string   `json:"-"`
	Agg     Agg      `json:"-"`
	Window  Duration `json:"-"`
	// Derived marks a derived column.
	Derived bool `json:"-"`
}

// AggColumnName is the name of the column of feature f, aggregation a and window w.
func AggColumnName(f string, a Agg, w Duration) string {
	return f + "_" + string(a) + "_" + w.String()
}

// Columns returns the set's feature columns in output order (join keys and the
// timestamp come first in stored rows and are not included): for a plain set its
// features; for an aggregated set one column per feature, aggregation and window
// (feature, then aggregation, then window order); then the derived features.
func (fs *FeatureSet) Columns() []Column {
	var cols []Column
	for _, f := range fs.Features {
		if !fs.Aggregated() {
			cols = append(cols, Column{Name: f.Name, Type: f.Type})
			continue
		}
		for _, a := range f.Aggs {
			for _, w := range fs.Windows {
				cols = append(cols, Column{Name: AggColumnName(f.Name, a, w), Type: a.OutputType(f.Type), Feature: f.Name, Agg: a, Window: w})
			}
		}
	}
	for _, d := range fs.Derived {
		cols = append(cols, Column{Name: d.Name, Type: d.Type, Derived: true})
	}
	return cols
}

// Column returns the output column named name.
func (fs *FeatureSet) Column(name string) (Column, bool) {
	for _, c := range fs.Columns() {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// CheckKind names a data-quality check.
type CheckKind string

// Checks. not_null, between, in_set and unique apply to a column; row_count,
// freshness and unique (of join keys + timestamp) to a whole feature set.
const (
	NotNull   CheckKind = "not_null"
	Between   CheckKind = "between"
	InSet     CheckKind = "in_set"
	Unique    CheckKind = "unique"
	RowCount  CheckKind = "row_count"
	Freshness CheckKind = "freshness"
)

// Check levels.
const (
	LevelError = "error"
	LevelWarn  = "warn"
)

// Check is a data-quality check on a feature column or a whole set, run on a
// pipeline's output before it is published. Written as a bare name (not_null) or a
// mapping with one check key plus optional mostly and level:
//
//	{between: [0, 1], mostly: 0.99, level: warn}
type Check struct {
	Kind CheckKind `json:"kind"`
	// Min and Max bound between (inclusive; nil = open) and row_count.
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
	// Values are the allowed values of in_set (int64, float64, bool or string).
	Values []any `json:"values,omitempty"`
	// Within is freshness's bound: the newest row must be at most this old at the
	// run's end.
	Within Duration `json:"within,omitempty"`
	// Mostly is the fraction of rows that must pass (default 1: all).
	Mostly float64 `json:"mostly,omitempty"`
	// Level is error (default: a failure stops the run) or warn (recorded only).
	Level string `json:"level,omitempty"`
	Pos   `json:"-"`
}

// EffectiveMostly is Mostly with its default applied.
func (c *Check) EffectiveMostly() float64 {
	if c.Mostly == 0 {
		return 1
	}
	return c.Mostly
}

// EffectiveLevel is Level with its default applied.
func (c *Check) EffectiveLevel() string {
	if c.Level == "" {
		return LevelError
	}
	return c.Level
}

// String describes the check: "between [100, 100000]", "row_count >= 1".
func (c *Check) String() string {
	s := string(c.Kind)
	num := func(p *float64) string {
		if p == nil {
			return "null"
		}
		return fmt.Sprint(*p)
	}
	switch c.Kind {
	case Between:
		s += fmt.Sprintf(" [%s, %s]", num(c.Min), num(c.Max))
	case RowCount:
		s += fmt.Sprintf(" [%s, %s]", num(c.Min), num(c.Max))
	case InSet:
		s += fmt.Sprintf(" %v", c.Values)
	case Freshness:
		s += " " + c.Within.String()
	}
	if c.Mostly != 0 && c.Mostly != 1 {
		s += fmt.Sprintf(" mostly %g", c.Mostly)
	}
	return s
}

var checkKinds = map[CheckKind]bool{NotNull: true, Between: true, InSet: true, Unique: true, RowCount: true, Freshness: true}

func checkKindList() string {
	s := make([]string, 0, len(checkKinds))
	for k := range checkKinds {
		s = append(s, string(k))
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

func (d *nodeDecoder) checks(n ast.Node, what string) []*Check {
	var out []*Check
	d.seq(n, what, func(n ast.Node) {
		if c := d.check(n); c != nil {
			out = append(out, c)
		}
	})
	return out
}

// check decodes one check; it returns nil (after reporting) when it is malformed.
func (d *nodeDecoder) check(n ast.Node) *Check {
	c := &Check{Pos: Pos{File: d.file, Line: lineOf(n)}}
	if isScalar(n) {
		c.Kind = CheckKind(scalarText(n))
		switch {
		case c.Kind == NotNull || c.Kind == Unique:
			return c
		case checkKinds[c.Kind]:
			d.add(n, "check %s needs arguments, expected {%s: ...}", c.Kind, c.Kind)
		default:
			d.add(n, "unknown check %q, expected one of %s", c.Kind, checkKindList())
		}
		return nil
	}
	ok := true
	fields := map[string]func(ast.Node){
		"mostly": func(v ast.Node) {
			if m, good := d.number(v, "check mostly"); good {
				if m <= 0 || m > 1 {
					d.add(v, "check mostly: %g is out of range, expected a fraction in (0, 1]", m)
					ok = false
				}
				c.Mostly = m
			} else {
				ok = false
			}
		},
		"level": func(v ast.Node) {
			c.Level = d.str(v, "check level")
			if c.Level != LevelError && c.Level != LevelWarn {
				d.add(v, "check level: %q, expected error or warn", c.Level)
				ok = false
			}
		},
	}
	for kind := range checkKinds {
		fields[string(kind)] = func(v ast.Node) {
			if c.Kind != "" {
				d.add(v, "check: both %s and %s given, expected one check per list item", c.Kind, kind)
				ok = false
				return
			}
			c.Kind = kind
			if !d.checkArgs(c, v) {
				ok = false
			}
		}
	}
	if _, isMap := d.mapping(n, "check", fields); !isMap {
		return nil
	}
	if c.Kind == "" {
		d.add(n, "check: no check named, expected one of %s", checkKindList())
		return nil
	}
	if !ok {
		return nil
	}
	return c
}

func (d *nodeDecoder) checkArgs(c *Check, v ast.Node) bool {
	switch c.Kind {
	case NotNull, Unique:
		if b, isBool := unwrap(v).(*ast.BoolNode); isNull(v) || (isBool && b.Value) {
			return true
		}
		d.add(v, "check %s: got %s, expected no argument (or true)", c.Kind, describe(v))
		return false
	case Between:
		var bounds []*float64
		d.seq(v, "check between", func(b ast.Node) {
			if isNull(b) {
				bounds = append(bounds, nil)
			} else if f, ok := d.number(b, "check between bound"); ok {
				bounds = append(bounds, &f)
			} else {
				bounds = append(bounds, nil)
			}
		})
		if len(bounds) != 2 || (bounds[0] == nil && bounds[1] == nil) {
			d.add(v, "check between: expected [min, max] (either may be null for no bound)")
			return false
		}
		c.Min, c.Max = bounds[0], bounds[1]
		if c.Min != nil && c.Max != nil && *c.Min > *c.Max {
			d.add(v, "check between: min %g is greater than max %g", *c.Min, *c.Max)
			return false
		}
		return true
	case InSet:
		d.seq(v, "check in_set", func(e ast.Node) {
			if val, ok := scalarValue(e); ok {
				c.Values = append(c.Values, val)
			} else {
				d.add(e, "check in_set: got %s, expected a string, number or boolean", describe(e))
			}
		})
		if len(c.Values) == 0 {
			d.add(v, "check in_set: expected a non-empty list of allowed values")
			return false
		}
		return true
	case RowCount:
		good := true
		d.mapping(v, "check row_count", map[string]func(ast.Node){
			"min": func(b ast.Node) {
				if f, ok := d.number(b, "check row_count min"); ok {
					c.Min = &f
				} else {
					good = false
				}
			},
			"max": func(b ast.Node) {
				if f, ok := d.number(b, "check row_count max"); ok {
					c.Max = &f
				} else {
					good = false
				}
			},
		})
		if good && c.Min == nil && c.Max == nil {
			d.add(v, "check row_count: expected {min: N} and/or {max: N}")
			return false
		}
		return good
	case Freshness:
		w, err := ParseDuration(d.str(v, "check freshness"))
		if err != nil || w <= 0 {
			d.add(v, "check freshness: got %s, expected a positive duration such as 1d", describe(v))
			return false
		}
		c.Within = w
		return true
	}
	return false
}
