package spec

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// atrium.yaml is decoded by goccy/go-yaml's strict reflective decoder into
// Project, whose many fields (and their yaml tags) are the schema. That
// decoder stops at the first bad value and names it by Go type ("cannot
// unmarshal string into Go struct field Project.Serving of type int"), and a
// bad duration comes out with no line at all. checkProjectYAML walks the
// parsed document against the same Go types first, with the nodeDecoder the
// other project files use, so every bad value is reported at once by its
// field path and line; and it records the line of every field for the
// validation that follows.

var durationType = reflect.TypeFor[time.Duration]()

// projectYAML checks the values of one document against Go types and
// records the line of each field, by path ("serving.models[0].canary").
type projectYAML struct {
	d     *nodeDecoder
	lines map[string]int
}

// checkProjectYAML checks doc (the body of atrium.yaml's document) against
// Project's fields. It returns the line of every field present and the
// problems: unknown or repeated fields, and values the decoder would refuse
// (or, for a fractional integer, silently truncate).
//
// Anchors, aliases and merge keys are not read by the nodeDecoder (it
// refuses them in features/*.yaml): a file using them keeps the lines, but
// its values are left to the reflective decoder, which expands them.
func checkProjectYAML(file string, doc ast.Node) (map[string]int, Problems) {
	var ps Problems
	if doc == nil {
		return map[string]int{}, nil
	}
	c := &projectYAML{d: &nodeDecoder{file: file, ps: &ps}, lines: map[string]int{}}
	c.value(doc, "", reflect.TypeFor[Project]())
	if len(ast.Filter(ast.AliasType, doc)) > 0 || len(ast.Filter(ast.MergeKeyType, doc)) > 0 {
		ps = nil
	}
	return c.lines, ps
}

// given shows a value as written: a scalar as its text (a string quoted),
// anything else by its kind ("a list").
func given(n ast.Node) string {
	switch v := unwrap(n).(type) {
	case *ast.StringNode:
		// The parser reads a plain integer too large for int64 as a
		// string: it is shown as written, not quoted.
		if tk := v.GetToken(); tk != nil && tk.Type == token.StringType {
			if _, err := strconv.ParseFloat(v.Value, 64); err == nil {
				return v.Value
			}
		}
		return strconv.Quote(v.Value)
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return v.GetToken().Value
	}
	return describe(n)
}

// value checks n against t at path. A null leaves the field's zero value
// (its default), as the decoder does.
func (c *projectYAML) value(n ast.Node, path string, t reflect.Type) {
	if isNull(n) {
		return
	}
	bad := func(expected string) { c.d.add(n, "%s: %s, expected %s", path, given(n), expected) }
	if t == durationType {
		s, ok := unwrap(n).(*ast.StringNode)
		switch {
		case !ok:
			bad("a duration with a unit such as 500ms, 10s or 2m")
		default:
			if _, err := time.ParseDuration(s.Value); err != nil {
				bad("a duration such as 500ms, 10s or 2m")
			}
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		c.value(n, path, t.Elem())
	case reflect.Struct:
		c.fields(n, path, t)
	case reflect.Slice:
		i := 0
		c.d.seq(n, path, func(e ast.Node) {
			p := fmt.Sprintf("%s[%d]", path, i)
			i++
			c.lines[p] = lineOf(e)
			c.value(e, p, t.Elem())
		})
	case reflect.String:
		if !isScalar(n) {
			bad("a string")
		}
	case reflect.Bool:
		if _, ok := unwrap(n).(*ast.BoolNode); !ok {
			bad("true or false")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		// The decoder takes 1e3, 1.0 and "12" too: so does this check,
		// but not 1.5, which it would truncate to 1.
		f, ok := numeric(n)
		switch {
		case !ok || f != math.Trunc(f):
			bad("an integer")
		case f < math.MinInt64 || f >= math.MaxInt64 || reflect.Zero(t).OverflowInt(int64(f)):
			bad("an integer within range")
		}
	case reflect.Float32, reflect.Float64:
		switch unwrap(n).(type) {
		case *ast.InfinityNode, *ast.NanNode:
			// Taken by the decoder; the field's own range check refuses them.
		default:
			if _, ok := numeric(n); !ok {
				bad("a number")
			}
		}
	}
}

// numeric reads a number written plain or quoted, as the decoder does.
func numeric(n ast.Node) (float64, bool) {
	var text string
	switch v := unwrap(n).(type) {
	case *ast.IntegerNode:
		text = strings.ReplaceAll(v.GetToken().Value, "_", "")
		if i, err := strconv.ParseInt(text, 0, 64); err == nil {
			return float64(i), true
		}
	case *ast.FloatNode:
		text = strings.ReplaceAll(v.GetToken().Value, "_", "")
	case *ast.StringNode:
		text = v.Value
	default:
		return 0, false
	}
	f, err := strconv.ParseFloat(text, 64)
	return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
}

// fields checks a mapping against the yaml-tagged fields of struct t.
func (c *projectYAML) fields(n ast.Node, path string, t reflect.Type) {
	fields := map[string]func(ast.Node){}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		p := name
		if path != "" {
			p = path + "." + name
		}
		fields[name] = func(v ast.Node) { c.value(v, p, f.Type) }
	}
	what := path
	if what == "" {
		what = "top level"
	}
	lines, _ := c.d.mapping(n, what, fields)
	for k, l := range lines {
		if path != "" {
			k = path + "." + k
		}
		c.lines[k] = l
	}
}
