package spec

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// nodeDecoder walks a parsed YAML document by hand instead of reflecting into
// structs: that way every field keeps its line, and one bad field is reported
// without hiding the problems of its neighbours (a strict reflective decoder stops
// at the first one).
type nodeDecoder struct {
	file string
	ps   *Problems
}

func (d *nodeDecoder) add(n ast.Node, format string, args ...any) {
	d.ps.Add(d.file, lineOf(n), format, args...)
}

// lineOf returns the 1-based line where n starts (0 if unknown).
func lineOf(n ast.Node) int {
	if n == nil {
		return 0
	}
	if m, ok := n.(*ast.MappingNode); ok && len(m.Values) > 0 {
		n = m.Values[0]
	}
	if mv, ok := n.(*ast.MappingValueNode); ok && mv.Key != nil {
		n = mv.Key
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line
	}
	return 0
}

// unwrap strips anchors and tags so the value underneath can be decoded.
func unwrap(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		default:
			return n
		}
	}
}

// isNull reports an absent or explicit null value.
func isNull(n ast.Node) bool {
	if n == nil {
		return true
	}
	_, ok := unwrap(n).(*ast.NullNode)
	return ok
}

// mapping decodes the keys of a mapping node with the given field decoders and
// reports unknown and duplicate keys, naming the expected ones. It returns the line
// of each key present and false when n is not a mapping.
func (d *nodeDecoder) mapping(n ast.Node, what string, fields map[string]func(n ast.Node)) (map[string]int, bool) {
	n = unwrap(n)
	mn, ok := n.(ast.MapNode)
	if !ok || n.Type() == ast.NullType {
		d.add(n, "%s: got %s, expected a mapping with keys %s", what, describe(n), keyList(fields))
		return nil, false
	}
	lines := map[string]int{}
	it := mn.MapRange()
	for it.Next() {
		key := it.Key()
		name := scalarText(key)
		if alias, ok := unwrap(it.Value()).(*ast.AliasNode); ok {
			d.add(alias, "%s: %s: YAML aliases are not supported, expected the value written out", what, name)
			continue
		}
		dec, known := fields[name]
		switch {
		case !known:
			d.add(key, "%s: unknown field %q, expected one of %s", what, name, keyList(fields))
		case lines[name] != 0:
			d.add(key, "%s: field %q is given twice, expected it once", what, name)
		default:
			lines[name] = lineOf(key)
			dec(it.Value())
		}
	}
	return lines, true
}

func keyList(fields map[string]func(n ast.Node)) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// seq calls fn for each element of a sequence node. A null node is an empty list.
func (d *nodeDecoder) seq(n ast.Node, what string, fn func(n ast.Node)) {
	if isNull(n) {
		return
	}
	n = unwrap(n)
	sn, ok := n.(*ast.SequenceNode)
	if !ok {
		d.add(n, "%s: got %s, expected a list", what, describe(n))
		return
	}
	for _, v := range sn.Values {
		fn(v)
	}
}

// scalarText is the text of a scalar node (a string, number or bool), "" otherwise.
func scalarText(n ast.Node) string {
	n = unwrap(n)
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value
	case *ast.LiteralNode:
		return v.Value.Value
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		return v.GetToken().Value
	}
	return ""
}

func isScalar(n ast.Node) bool {
	switch unwrap(n).(type) {
	case *ast.StringNode, *ast.LiteralNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		return true
	}
	return false
}

// str decodes a scalar as text (numbers keep their spelling: an expression `1` is "1").
func (d *nodeDecoder) str(n ast.Node, what string) string {
	if isNull(n) {
		return ""
	}
	if !isScalar(n) {
		d.add(n, "%s: got %s, expected a string", what, describe(n))
		return ""
	}
	return scalarText(n)
}

// strs decodes a list of strings.
func (d *nodeDecoder) strs(n ast.Node, what string) []string {
	var out []string
	d.seq(n, what, func(n ast.Node) {
		if s := d.str(n, what); s != "" {
			out = append(out, s)
		} else if isNull(n) {
			d.add(n, "%s: empty element, expected a name", what)
		}
	})
	return out
}

// number decodes an integer or float scalar. A plain (unquoted) scalar
// written as YAML 1.2's float, such as 1e-3, is a number too: goccy/go-yaml
// reads an exponent without a decimal point as a string. A quoted string
// stays a string.
func (d *nodeDecoder) number(n ast.Node, what string) (float64, bool) {
	switch v := unwrap(n).(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		f, err := strconv.ParseFloat(strings.ReplaceAll(v.GetToken().Value, "_", ""), 64)
		if err == nil {
			return f, true
		}
	case *ast.StringNode:
		if f, ok := plainFloat(v); ok {
			return f, true
		}
	}
	d.add(n, "%s: got %s, expected a number", what, describe(n))
	return 0, false
}

// yamlFloat is YAML 1.2's core-schema float, without .inf and .nan.
var yamlFloat = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)

// plainFloat reads an unquoted string scalar written as a finite float.
func plainFloat(s *ast.StringNode) (float64, bool) {
	if tk := s.GetToken(); tk == nil || tk.Type != token.StringType || !yamlFloat.MatchString(s.Value) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s.Value, 64)
	return f, err == nil
}

// scalarValue decodes a scalar to a Go value: int64, float64, bool or string.
func scalarValue(n ast.Node) (any, bool) {
	switch v := unwrap(n).(type) {
	case *ast.IntegerNode:
		if i, err := strconv.ParseInt(strings.ReplaceAll(v.GetToken().Value, "_", ""), 0, 64); err == nil {
			return i, true
		}
		f, err := strconv.ParseFloat(v.GetToken().Value, 64)
		return f, err == nil
	case *ast.FloatNode:
		f, err := strconv.ParseFloat(strings.ReplaceAll(v.GetToken().Value, "_", ""), 64)
		return f, err == nil
	case *ast.BoolNode:
		return v.Value, true
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		return v.Value.Value, true
	}
	return nil, false
}

// describe names a node's kind for error messages.
func describe(n ast.Node) string {
	if n == nil {
		return "nothing"
	}
	switch v := unwrap(n).(type) {
	case *ast.NullNode:
		return "null"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode:
		return fmt.Sprintf("the string %q", v.Value)
	case *ast.IntegerNode, *ast.FloatNode:
		return "the number " + v.GetToken().Value
	case *ast.BoolNode:
		return "the boolean " + v.GetToken().Value
	case *ast.AliasNode:
		return "an alias"
	}
	return n.Type().String()
}
