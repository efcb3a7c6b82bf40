package oip

// The REST request decoder, written by hand: a 200 x 30 tensor is 6,000
// numbers, and reflection-based encoding/json spends most of a request's
// time (and an allocation per element through []any) on them. Here the
// document's structure is walked once, each input's "data" is parsed
// straight into its typed slice, and only the tensor slices and strings are
// allocated.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// maxDepth bounds nesting in a request (encoding/json's limit is 10,000;
// a tensor's nested data is as deep as its shape is long).
const maxDepth = 64

// scanner walks one JSON document. Errors are syntax errors with the byte
// offset; the caller adds which part of the request it was reading.
type scanner struct {
	b     []byte
	i     int
	depth int
	key   int // where the member name being read starts (object)
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) syntax(what string) error {
	if s.i >= len(s.b) {
		return fmt.Errorf("malformed JSON: document ends where %s was expected (byte %d)", what, s.i)
	}
	return fmt.Errorf("malformed JSON at byte %d: want %s, got %s", s.i, what, strconv.QuoteRune(rune(s.b[s.i])))
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return s.syntax(strconv.QuoteRune(rune(c)))
	}
	s.i++
	return nil
}

// object calls fn for each member with s at its value, which fn must
// consume, and s.key at its name.
func (s *scanner) object(fn func(key string) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.depth++; s.depth > maxDepth {
		return fmt.Errorf("malformed JSON at byte %d: nested deeper than %d", s.i, maxDepth)
	}
	defer func() { s.depth-- }()
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.syntax("a member name")
		}
		s.key = s.i
		key, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		s.ws()
		if err := fn(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.syntax("',' or '}'")
		}
	}
}

// array calls fn for each element with s at it, which fn must consume.
func (s *scanner) array(fn func(i int) error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if s.depth++; s.depth > maxDepth {
		return fmt.Errorf("malformed JSON at byte %d: nested deeper than %d", s.i, maxDepth)
	}
	defer func() { s.depth-- }()
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for n := 0; ; n++ {
		s.ws()
		if err := fn(n); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.syntax("',' or ']'")
		}
	}
}

// strToken steps over the string at s.i and returns its token (quotes
// included) and whether it holds escapes.
func (s *scanner) strToken() (tok []byte, escaped bool, err error) {
	start := s.i
	for i := s.i + 1; i < len(s.b); i++ {
		switch c := s.b[i]; {
		case c == '"':
			s.i = i + 1
			return s.b[start:s.i], escaped, nil
		case c == '\\':
			escaped = true
			i++
		case c < 0x20:
			s.i = i
			return nil, false, s.syntax("a string without control characters")
		}
	}
	s.i = len(s.b)
	return nil, false, s.syntax("the end of a string")
}

// str decodes the string at s.i.
func (s *scanner) str() (string, error) {
	b, err := s.strBytes()
	return string(b), err
}

// strBytes decodes the string at s.i; without escapes (and valid UTF-8) the
// result aliases the document.
func (s *scanner) strBytes() ([]byte, error) {
	start := s.i
	tok, escaped, err := s.strToken()
	if err != nil {
		return nil, err
	}
	inner := tok[1 : len(tok)-1]
	if !escaped && utf8.Valid(inner) {
		return inner, nil
	}
	var out string
	if err := json.Unmarshal(tok, &out); err != nil {
		return nil, fmt.Errorf("malformed JSON string at byte %d: %v", start, err)
	}
	return []byte(out), nil
}

// scalar returns the token of the number or literal at s.i (true, false,
// null, and Python's NaN, Infinity, -Infinity).
func (s *scanner) scalar() []byte {
	start, i := s.i, s.i
	for i < len(s.b) && scalarByte[s.b[i]] {
		i++
	}
	s.i = i
	return s.b[start:i]
}

// scalarByte marks the bytes a number or literal token is made of.
var scalarByte = func() (t [256]bool) {
	for _, c := range []byte("+-.0123456789") {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	return t
}()

// skipData steps over a "data" value without checking its elements, which
// the typed parse after it checks one by one: it only matches brackets and
// steps over strings, so the data costs one full parse, not two.
//
// The stretch up to the next ']' or '"' is found with bytes.IndexByte and
// its '[' counted with bytes.Count, which the runtime vectorises: a 200 x
// 30 list of numbers is about 120 KB, and a byte-at-a-time loop over it
// cost half as much as parsing its numbers. Where the next ']' and the next
// '"' are is kept until the scan passes them, so each byte is searched
// once for each (a list of many strings or of many short lists stays
// linear). Within a stretch the depth only grows, so checking it at the
// stretch's end bounds it everywhere in the stretch.
func (s *scanner) skipData() ([]byte, error) {
	start := s.i
	if c := s.peek(); c != '[' {
		if c == '"' {
			_, _, err := s.strToken()
			return s.b[start:s.i], err
		}
		s.scalar()
		return s.b[start:s.i], nil
	}
	depth := 0
	// The positions of the next ']' and '"' at or after s.i: len(s.b) when
	// there is none, below s.i when not searched yet.
	closing, quote := -1, -1
	for s.i < len(s.b) {
		if closing < s.i {
			closing = s.next(']')
		}
		if quote < s.i {
			quote = s.next('"')
		}
		seg := s.b[s.i:min(closing, quote)]
		if depth += bytes.Count(seg, open); depth > maxDepth {
			return nil, s.tooDeep(depth - bytes.Count(seg, open))
		}
		s.i += len(seg)
		switch {
		case s.i == len(s.b):
		case s.i == quote:
			if _, _, err := s.strToken(); err != nil {
				return nil, err
			}
		default: // at the ']'
			s.i++
			if depth--; depth == 0 {
				return s.b[start:s.i], nil
			}
		}
	}
	return nil, s.syntax("the end of the data list")
}

// next is the position of the first c at or after s.i, or len(s.b).
func (s *scanner) next(c byte) int {
	if j := bytes.IndexByte(s.b[s.i:], c); j >= 0 {
		return s.i + j
	}
	return len(s.b)
}

var open = []byte{'['}

// tooDeep is the error for a list nested deeper than maxDepth in the
// stretch at s.i, entered at depth: the byte of the bracket that goes too
// deep.
func (s *scanner) tooDeep(depth int) error {
	i := s.i
	for ; i < len(s.b); i++ {
		if s.b[i] == '[' {
			if depth++; depth > maxDepth {
				break
			}
		}
	}
	return fmt.Errorf("malformed JSON at byte %d: nested deeper than %d", i, maxDepth)
}

// skip steps over any value, checking its syntax, and that no object in it
// names a member twice.
func (s *scanner) skip() error {
	switch s.peek() {
	case '{':
		var names memberSet
		return s.object(func(key string) error {
			if names.add(key) {
				return fmt.Errorf("duplicate member %s at byte %d", quoteName(key), s.key)
			}
			return s.skip()
		})
	case '[':
		return s.array(func(int) error { return s.skip() })
	case '"':
		_, _, err := s.strToken()
		return err
	}
	start := s.i
	tok := s.scalar()
	if !validScalar(tok) {
		s.i = start
		return s.syntax("a JSON value")
	}
	return nil
}

func validScalar(tok []byte) bool {
	switch string(tok) {
	case "true", "false", "null", "NaN", "Infinity", "-Infinity":
		return true
	}
	return jsonNumber(tok)
}

// span steps over the value at s.i and returns its text.
func (s *scanner) span() ([]byte, error) {
	s.ws()
	start := s.i
	err := s.skip()
	return s.b[start:s.i], err
}

// parameters decodes a parameters object: strings, booleans, numbers (int64
// when integral, else float64), and anything else as encoding/json decodes
// it (the protocol allows only the first three; others pass through). The
// parameters the server reads (known) are checked to be of their type; a
// member named twice is refused.
func (s *scanner) parameters(known paramKinds) (map[string]any, error) {
	if s.peek() == 'n' {
		return nil, s.null()
	}
	m := map[string]any{}
	err := s.object(func(key string) error {
		if _, dup := m[key]; dup {
			return duplicate(key)
		}
		start := s.i
		var v any
		switch c := s.peek(); {
		case c == '"':
			str, err := s.str()
			if err != nil {
				return err
			}
			v = str
		case c == 't' || c == 'f' || c == '-' || c >= '0' && c <= '9':
			tok := s.scalar()
			switch {
			case string(tok) == "true":
				v = true
			case string(tok) == "false":
				v = false
			default:
				if n, err := strconv.ParseInt(string(tok), 10, 64); err == nil {
					v = n
				} else if f, err := strconv.ParseFloat(string(tok), 64); err == nil && jsonNumber(tok) {
					v = f
				} else {
					s.i = start
					return s.syntax("a parameter value")
				}
			}
		default:
			raw, err := s.span()
			if err != nil {
				return err
			}
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("parameter %s: %v", strconv.Quote(key), err)
			}
		}
		if err := known.check(key, v, s.b[start:s.i]); err != nil {
			return err
		}
		m[key] = v
		return nil
	})
	return m, err
}

// paramKinds names the parameters of one object (the request's, an
// input's, an output's) that the server reads, each with the JSON type it
// must have; the others pass through unchecked (the protocol allows
// extension parameters).
type paramKinds func(key string) paramKind

type paramKind uint8

const (
	anyParam       paramKind = iota // not read by the server
	boolParam                       // true or false
	stringParam                     // a string
	byteCountParam                  // an integer >= 0
)

// The parameters read in a request: binary_data_output and binary_data
// choose the answer's encoding (rest_codec.go's binaryOutput),
// binary_data_size places an input in the binary section, and routing_key
// chooses between a model's primary and canary versions (the serving
// layer's RoutingKeyParameter).
// MaxRoutingKeyLen bounds a request's routing_key (a user id, say): it is
// written to every row of the prediction log, and a key of any length
// sent per request would fill the log, not route better.
const MaxRoutingKeyLen = 256

func requestParams(key string) paramKind {
	switch key {
	case "binary_data_output":
		return boolParam
	case "routing_key":
		return stringParam
	}
	return anyParam
}

func inputParams(key string) paramKind {
	if key == "binary_data_size" {
		return byteCountParam
	}
	return anyParam
}

func outputParams(key string) paramKind {
	if key == "binary_data" {
		return boolParam
	}
	return anyParam
}

// check refuses a known parameter's value v (of JSON text raw) when it is
// not of its kind.
func (known paramKinds) check(key string, v any, raw []byte) error {
	var want string
	switch known(key) {
	case anyParam:
		return nil
	case boolParam:
		// null is the parameter left out, as /v1 reads a null routing_key.
		if _, ok := v.(bool); ok || string(raw) == "null" {
			return nil
		}
		want = "a boolean (true or false)"
	case stringParam:
		if s, ok := v.(string); ok && key == "routing_key" && len(s) > MaxRoutingKeyLen {
			return &paramError{key: key, msg: fmt.Sprintf("want at most %d bytes, got %d", MaxRoutingKeyLen, len(s))}
		}
		if _, ok := v.(string); ok || string(raw) == "null" {
			return nil
		}
		want = "a string"
	case byteCountParam:
		if n, ok := v.(int64); ok && n >= 0 {
			return nil
		}
		want = "a byte count (an integer >= 0)"
	}
	return &paramError{key: key, msg: "want " + want + ", got " + describeValue(raw)}
}

// paramError is a known parameter of the wrong type; where it is reads
// parameters.binary_data_size, not parameters: binary_data_size.
type paramError struct{ key, msg string }

func (e *paramError) Error() string { return e.key + ": " + e.msg }

// paramsError names where an error in a parameters object is: where is
// "parameters", "outputs[0].parameters"...
func paramsError(where string, err error) error {
	var pe *paramError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s.%w", where, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// describeValue names a JSON value in an error by what was sent: the
// string "80", 80.0, null, an object (clipped to maxTok bytes).
func describeValue(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "the string \"" + string(clip(raw[1:len(raw)-1])) + "\""
	case '{':
		return "an object"
	case '[':
		return "a list"
	}
	return quoteTok(raw)
}

// duplicate is the error for a member named twice in an object: JSON
// leaves its meaning open (encoding/json keeps the last, others the
// first), so the request is refused rather than read one way.
func duplicate(key string) error {
	return fmt.Errorf("duplicate member %s", quoteName(key))
}

// quoteName quotes a member name in an error, clipped to maxTok bytes.
func quoteName(key string) string {
	if len(key) > maxTok {
		return strconv.Quote(key[:maxTok]) + "..."
	}
	return strconv.Quote(key)
}

// memberSet finds a repeated name among the members of an object that a
// decoder does not track by a bit of its own (unknown members, skipped):
// a slice scan while it is small, a map past that, so that an object of
// many members stays linear.
type memberSet struct {
	few  []string
	many map[string]struct{}
}

// add adds key and reports whether it was already there.
func (m *memberSet) add(key string) bool {
	if m.many != nil {
		if _, ok := m.many[key]; ok {
			return true
		}
		m.many[key] = struct{}{}
		return false
	}
	if slices.Contains(m.few, key) {
		return true
	}
	if len(m.few) < 16 {
		m.few = append(m.few, key)
		return false
	}
	m.many = make(map[string]struct{}, 2*len(m.few))
	for _, k := range m.few {
		m.many[k] = struct{}{}
	}
	m.many[key] = struct{}{}
	return false
}

// seen tracks an object's known members, a bit each: set reports whether
// bit was already set (the member is named twice), and sets it.
type seen uint8

func (s *seen) set(bit seen) bool {
	dup := *s&bit != 0
	*s |= bit
	return dup
}

func (s *scanner) null() error {
	start := s.i
	if string(s.scalar()) != "null" {
		s.i = start
		return s.syntax("null")
	}
	return nil
}

// inputSpec is an input as read from the JSON header, before its data is
// parsed (a member order of data before datatype or shape is allowed).
type inputSpec struct {
	data     []byte // "data"'s text; nil when absent
	hasShape bool
	binarySz int64 // parameters.binary_data_size, -1 when absent
}

// The known members of the request object, of an input and of an output.
const (
	reqID seen = 1 << iota
	reqParameters
	reqInputs
	reqOutputs
)

const (
	inName seen = 1 << iota
	inDatatype
	inShape
	inParameters
	inData
)

const (
	outName seen = 1 << iota
	outParameters
)

// decodeJSON decodes the JSON document of a request (the whole body, or the
// header before the binary section) into req. Input data sent inline is
// parsed; inputs with binary_data_size are left for decodeBinary, which
// returns their sizes in order in specs. A member named twice in any object
// is refused.
func decodeJSON(doc []byte, req *InferRequest, specs *[]inputSpec) error {
	*req = InferRequest{}
	*specs = (*specs)[:0]
	s := scanner{b: doc}
	if c := s.peek(); c != '{' {
		if c == 0 {
			return fmt.Errorf("%w: empty request: want a JSON object with \"inputs\"", ErrInvalidInput)
		}
		return fmt.Errorf("%w: request: want a JSON object, got %s", ErrInvalidInput, describe(c))
	}
	var known seen
	var others memberSet
	err := s.object(func(key string) error {
		switch key {
		case "id":
			if known.set(reqID) {
				return duplicate(key)
			}
			if s.peek() == 'n' {
				return s.null()
			}
			if s.peek() != '"' {
				return fmt.Errorf("id: want a string, got %s", describe(s.peek()))
			}
			id, err := s.str()
			req.ID = id
			return err
		case "parameters":
			if known.set(reqParameters) {
				return duplicate(key)
			}
			p, err := s.parameters(requestParams)
			if err != nil {
				return paramsError("parameters", err)
			}
			req.Parameters = p
			return nil
		case "inputs":
			if known.set(reqInputs) {
				return duplicate(key)
			}
			if s.peek() != '[' {
				return fmt.Errorf("inputs: want a list of tensors, got %s", describe(s.peek()))
			}
			return s.array(func(i int) error {
				req.Inputs = append(req.Inputs, Tensor{})
				*specs = append(*specs, inputSpec{binarySz: -1})
				return s.input(&req.Inputs[i], &(*specs)[i], i)
			})
		case "outputs":
			if known.set(reqOutputs) {
				return duplicate(key)
			}
			if s.peek() == 'n' {
				return s.null()
			}
			if s.peek() != '[' {
				return fmt.Errorf("outputs: want a list of {\"name\": ...}, got %s", describe(s.peek()))
			}
			return s.array(func(i int) error {
				req.Outputs = append(req.Outputs, RequestedOutput{})
				return s.output(&req.Outputs[i], i)
			})
		}
		if others.add(key) {
			return duplicate(key)
		}
		return s.skip()
	})
	if err != nil && s.i >= len(s.b) {
		// Cut short (a header length that ends inside the JSON, say): the
		// part that was being read when it ended is beside the point.
		err = fmt.Errorf("malformed JSON: the document ends at byte %d, inside the request object", len(s.b))
	}
	if err == nil {
		if s.ws(); s.i != len(s.b) {
			err = fmt.Errorf("malformed JSON at byte %d: data after the request object", s.i)
		}
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	if len(req.Inputs) == 0 {
		return fmt.Errorf("%w: inputs: want at least one input tensor", ErrInvalidInput)
	}
	if err := checkBytesElements(req.Inputs); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	for i := range req.Inputs {
		t, sp := &req.Inputs[i], &(*specs)[i]
		if err := finishInput(t, sp, i); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidInput, err)
		}
	}
	return nil
}

// inputName names input i in errors: inputs[1] "rent".
func inputName(i int, name string) string {
	if name == "" {
		return fmt.Sprintf("inputs[%d]", i)
	}
	return fmt.Sprintf("inputs[%d] %s", i, strconv.Quote(name))
}

func (s *scanner) input(t *Tensor, sp *inputSpec, i int) error {
	if s.peek() != '{' {
		return fmt.Errorf("inputs[%d]: want a tensor object, got %s", i, describe(s.peek()))
	}
	var known seen
	var others memberSet
	return s.object(func(key string) error {
		var bit seen
		switch key {
		case "name":
			bit = inName
		case "datatype":
			bit = inDatatype
		case "shape":
			bit = inShape
		case "parameters":
			bit = inParameters
		case "data":
			bit = inData
		}
		if bit != 0 && known.set(bit) || bit == 0 && others.add(key) {
			return fmt.Errorf("%s: %w", inputName(i, t.Name), duplicate(key))
		}
		switch bit {
		case inName:
			if s.peek() != '"' {
				return fmt.Errorf("inputs[%d].name: want a string, got %s", i, describe(s.peek()))
			}
			name, err := s.str()
			t.Name = name
			return err
		case inDatatype:
			if s.peek() != '"' {
				return fmt.Errorf("%s: datatype: want a string, got %s", inputName(i, t.Name), describe(s.peek()))
			}
			dt, err := s.str()
			t.Datatype = dt
			return err
		case inShape:
			sp.hasShape = true
			if s.peek() != '[' {
				return fmt.Errorf("%s: shape: want a list of integers, got %s", inputName(i, t.Name), describe(s.peek()))
			}
			t.Shape = make([]int64, 0, 2)
			return s.array(func(int) error {
				tok := s.scalar()
				d, err := strconv.ParseInt(string(tok), 10, 64)
				if err != nil {
					return fmt.Errorf("%s: shape: want integers, got %s", inputName(i, t.Name), quoteTok(tok))
				}
				t.Shape = append(t.Shape, d)
				return nil
			})
		case inParameters:
			p, err := s.parameters(inputParams)
			if err != nil {
				return fmt.Errorf("%s: %w", inputName(i, t.Name), paramsError("parameters", err))
			}
			t.Parameters = p
			if n, ok := p["binary_data_size"].(int64); ok { // checked by inputParams
				sp.binarySz = n
			}
			return nil
		case inData:
			raw, err := s.skipData()
			sp.data = raw
			return err
		}
		return s.skip()
	})
}

func (s *scanner) output(o *RequestedOutput, i int) error {
	if s.peek() != '{' {
		return fmt.Errorf("outputs[%d]: want {\"name\": ...}, got %s", i, describe(s.peek()))
	}
	var known seen
	var others memberSet
	err := s.object(func(key string) error {
		switch key {
		case "name":
			if known.set(outName) {
				return fmt.Errorf("outputs[%d]: %w", i, duplicate(key))
			}
			if s.peek() != '"' {
				return fmt.Errorf("outputs[%d].name: want a string, got %s", i, describe(s.peek()))
			}
			name, err := s.str()
			o.Name = name
			return err
		case "parameters":
			if known.set(outParameters) {
				return fmt.Errorf("outputs[%d]: %w", i, duplicate(key))
			}
			p, err := s.parameters(outputParams)
			if err != nil {
				return paramsError(fmt.Sprintf("outputs[%d].parameters", i), err)
			}
			o.Parameters = p
			return nil
		}
		if others.add(key) {
			return fmt.Errorf("outputs[%d]: %w", i, duplicate(key))
		}
		return s.skip()
	})
	if err == nil && o.Name == "" {
		err = fmt.Errorf("outputs[%d]: name missing", i)
	}
	return err
}

// finishInput checks an input's name, datatype and shape, and parses its
// inline data.
func finishInput(t *Tensor, sp *inputSpec, i int) error {
	what := inputName(i, t.Name)
	if t.Name == "" {
		return fmt.Errorf("%s: name missing", what)
	}
	if err := checkDatatype(t.Datatype); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !sp.hasShape {
		return fmt.Errorf("%s: shape missing", what)
	}
	n, err := elements(t.Shape)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch {
	case sp.binarySz >= 0 && sp.data != nil:
		return fmt.Errorf("%s: both data and parameters.binary_data_size: send the tensor one way", what)
	case sp.binarySz >= 0:
		return nil // decodeBinary reads it
	case sp.data == nil:
		return fmt.Errorf("%s: data missing (or parameters.binary_data_size with the tensor in the binary section)", what)
	}
	// Data is at least one byte per element and separator: a shape asking
	// for more elements than the text can hold is refused before sizing
	// memory from it.
	if n > len(sp.data) {
		return fmt.Errorf("%s: shape %s has %d elements, data has fewer", what, formatShape(t.Shape), n)
	}
	// A list of n > 1 elements is the only data that can hold them: a lone
	// scalar or string is refused here rather than parsed against the shape.
	if n > 1 && (len(sp.data) == 0 || sp.data[0] != '[') {
		return fmt.Errorf("%s: shape %s has %d elements: data must be a list", what, formatShape(t.Shape), n)
	}
	d := dataParser{s: scanner{b: sp.data}, t: t, max: n, leaf: 1}
	d.init(min(n, (len(sp.data)+1)/2, maxPrealloc))
	if err := d.value(); errors.Is(err, errDataLonger) {
		// The parse stopped at the first element past the shape: a syntax
		// error after it (a trailing comma, say) is the one to name.
		chk := scanner{b: sp.data}
		if err := chk.skip(); err != nil {
			return fmt.Errorf("%s: data: %w", what, err)
		}
		return fmt.Errorf("%s: shape %s has %d elements, data has more", what, formatShape(t.Shape), n)
	} else if err != nil {
		return fmt.Errorf("%s: data: %w", what, err)
	}
	if got := t.Len(); got != n {
		return fmt.Errorf("%s: shape %s has %d elements, data has %d", what, formatShape(t.Shape), n, got)
	}
	if err := d.nesting(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// dataParser appends the elements of a (flat or nested) data array to its
// tensor's typed slice.
//
// Data is flat (one list of elements) or nested as the shape is (a list of
// shape[0] lists of shape[1] ... elements), as the protocol has it; the
// data's first element decides which. Nested data must be regular (every
// list at a depth as long as the first) and nested as the shape is but for
// dimensions of 1 (a column [[1],[2],[3]] for shape [3], as numpy's
// tolist() gives it, reads as the client meant); other nesting is refused:
// read as flat, [[1,2,3],[4,5,6]] for shape [3,2] would put the elements
// in other rows than the client meant.
type dataParser struct {
	s          scanner
	t          *Tensor
	n          int  // elements read
	max        int  // the shape's element count: parsing stops past it
	float, f32 bool // the tensor is FP32 or FP64; FP32
	// depth is the number of lists open around the element being read (1
	// in the data's own list); leaf is the depth that holds elements: 1
	// for flat data; for nested data the depth of its first element (0
	// until one is read).
	depth, leaf int
	nested      bool
	kids        int // the elements of the innermost open list read so far
	// dims[k] is the length of the lists at depth k+1 of nested data, as
	// the first of them had it (-1 before).
	dims []int
}

// errDataLonger stops a data array with more elements than its shape: they
// are not parsed into memory only to be refused.
var errDataLonger = errors.New("data longer than the shape")

// maxPrealloc bounds the elements reserved before parsing: the shape is the
// client's claim, the data's length only an upper bound (two bytes per
// element and separator), so past this the slice grows by append as
// elements are actually read.
const maxPrealloc = 64 << 10

// init reserves room for n elements; n is already bounded by the data's
// length and maxPrealloc.
func (d *dataParser) init(n int) {
	d.f32 = d.t.Datatype == FP32
	d.float = d.f32 || d.t.Datatype == FP64
	switch d.t.Datatype {
	case BOOL:
		d.t.Bool = make([]bool, 0, n)
	case INT32:
		d.t.Int32 = make([]int32, 0, n)
	case INT64:
		d.t.Int64 = make([]int64, 0, n)
	case FP32:
		d.t.FP32 = make([]float32, 0, n)
	case FP64:
		d.t.FP64 = make([]float64, 0, n)
	case BYTES:
		d.t.Bytes = make([][]byte, 0, n)
	}
}

// value reads the array (or lone scalar, for a 0-d tensor) at d.s.
func (d *dataParser) value() error {
	if d.s.peek() == '[' {
		return d.list()
	}
	if d.s.peek() == '{' {
		return fmt.Errorf("element %d: want a value, got an object", d.n)
	}
	if d.n == d.max {
		return errDataLonger
	}
	if d.nested && d.leaf == 0 && d.depth > 1 {
		d.leaf = d.depth // the first element: every element is as deep
	}
	// A ']' here follows a trailing comma: element names that syntax error.
	if d.depth != d.leaf && d.depth > 0 && d.s.peek() != ']' {
		return fmt.Errorf("element %d: want a list (nested data is regular, as shape %s), got a value", d.n, formatShape(d.t.Shape))
	}
	if err := d.element(); err != nil {
		return fmt.Errorf("element %d: %w", d.n, err)
	}
	d.n++
	return nil
}

// item reads an element of a list: value, with a float tensor's plain
// numbers parsed here first (fastfloat.go), 6,000 times in a 200 x 30
// request, without value's and element's checks of what the element is.
// Plain numbers that follow it, each after a lone comma, are read here too,
// without a return to the list's loop for each; item stops at the first
// separator it does not take, so the list's loop sees every separator that
// is not a lone comma between two such numbers.
func (d *dataParser) item(i int) error {
	d.kids = i + 1
	if !d.float || d.n >= d.max || d.depth != d.leaf {
		return d.value()
	}
	f, n, ok := fastNumber(d.s.b[d.s.i:], d.f32)
	if !ok {
		return d.value()
	}
	before := d.t.Len()
	if d.f32 {
		d.t.FP32, d.s.i = floatRun(d.t.FP32, d.s.b, d.s.i, f, n, d.max-d.n)
	} else {
		d.t.FP64, d.s.i = floatRun(d.t.FP64, d.s.b, d.s.i, f, n, d.max-d.n)
	}
	d.n += d.t.Len() - before
	return nil
}

// list reads a list of the data: the data's own, or one of its nested
// lists, whose length it checks against the first list at its depth.
func (d *dataParser) list() error {
	if d.depth == 1 && d.kids == 1 {
		d.nested, d.leaf = true, 0 // the data's first element is a list
	}
	switch {
	case d.depth > 0 && !d.nested:
		return fmt.Errorf("element %d: a list inside flat data (data is one flat list, or lists nested as shape %s)", d.n, formatShape(d.t.Shape))
	case d.nested && d.leaf > 0 && d.depth >= d.leaf:
		return fmt.Errorf("element %d: lists nested deeper than the data's first element (nested data is regular, as shape %s)", d.n, formatShape(d.t.Shape))
	}
	outer, before := d.kids, d.n
	d.kids = 0
	d.depth++
	level := d.depth
	err := d.s.array(d.item)
	d.depth--
	got := d.kids
	d.kids = outer
	if err != nil || !d.nested {
		return err
	}
	if level == d.leaf {
		got = d.n - before // item reads a run of numbers at once
	}
	for len(d.dims) < level {
		d.dims = append(d.dims, -1)
	}
	switch want := d.dims[level-1]; {
	case want < 0:
		d.dims[level-1] = got
	case got != want:
		return fmt.Errorf("element %d: a list at depth %d has %d elements, the first there %d (nested data is regular, as shape %s)",
			before, level, got, want, formatShape(d.t.Shape))
	}
	return nil
}

// nesting checks, once the data is read, that nested data is nested as
// the shape is, dimensions of 1 aside.
func (d *dataParser) nesting() error {
	if !d.nested {
		return nil
	}
	var got, want []int64
	for _, n := range d.dims {
		if n != 1 {
			got = append(got, int64(n))
		}
	}
	for _, n := range d.t.Shape {
		if n != 1 {
			want = append(want, n)
		}
	}
	if !slices.Equal(got, want) {
		dims := make([]int64, len(d.dims))
		for i, n := range d.dims {
			dims[i] = int64(n)
		}
		return fmt.Errorf("data nested as %s, shape %s: nest it as the shape is (dimensions of 1 aside), or send it flat", formatShape(dims), formatShape(d.t.Shape))
	}
	return nil
}

// floatRun appends f, the number of n bytes at b[i:], to out, then the plain
// numbers that follow it each after a lone comma, at most room in all; it
// returns out and the index of the first byte it did not take (a
// separator). The slice is kept in a local rather than appended through
// the tensor: through it, every append reloaded and stored its header.
func floatRun[T float32 | float64](out []T, b []byte, i int, f float64, n, room int) ([]T, int) {
	var zero T
	_, f32 := any(zero).(float32)
	for end := len(out) + room; ; {
		i += n
		out = append(out, T(f))
		var ok bool
		if len(out) >= end || i+1 >= len(b) || b[i] != ',' {
			return out, i
		}
		if f, n, ok = fastNumber(b[i+1:], f32); !ok {
			return out, i // the comma and what follows it, to the list's loop
		}
		i++
	}
}

// element appends the scalar at d.s.
func (d *dataParser) element() error {
	t := d.t
	if t.Datatype == BYTES {
		if d.s.peek() != '"' {
			return fmt.Errorf("want a string (BYTES), got %s", quoteTok(d.peekTok()))
		}
		b, err := d.s.strBytes()
		t.Bytes = append(t.Bytes, b)
		return err
	}
	// A plain number in a list took item's fast path: what reaches here is
	// what it declined (or a 0-d tensor's lone value), for the general path
	// to parse or name.
	var tok []byte
	if d.s.peek() == '"' {
		// "NaN", "Infinity", "-Infinity": protobuf's JSON mapping of the
		// float specials, which some clients send.
		var err error
		if tok, err = d.s.strBytes(); err != nil {
			return err
		}
		if t.Datatype != FP32 && t.Datatype != FP64 || !isSpecial(tok) {
			return fmt.Errorf("want a number (%s), got the string %s", t.Datatype, strconv.Quote(string(clip(tok))))
		}
	} else {
		tok = d.s.scalar()
		if len(tok) == 0 {
			return d.s.syntax("a value")
		}
	}
	switch t.Datatype {
	case FP64, FP32:
		f, err := parseFloat(tok, t.Datatype)
		if err != nil {
			return err
		}
		if t.Datatype == FP64 {
			t.FP64 = append(t.FP64, f)
		} else {
			t.FP32 = append(t.FP32, float32(f))
		}
	case INT64, INT32:
		v, err := parseInt(tok, t.Datatype)
		if err != nil {
			return err
		}
		if t.Datatype == INT64 {
			t.Int64 = append(t.Int64, v)
		} else {
			t.Int32 = append(t.Int32, int32(v))
		}
	case BOOL:
		switch string(tok) {
		case "true":
			t.Bool = append(t.Bool, true)
		case "false":
			t.Bool = append(t.Bool, false)
		default:
			return fmt.Errorf("want true or false (BOOL), got %s", quoteTok(tok))
		}
	}
	return nil
}

func (d *dataParser) peekTok() []byte {
	save := d.s.i
	tok, _ := d.s.span()
	d.s.i = save
	return tok
}

// maxTok is how much of a bad token an error message echoes: enough to
// recognise it, not a megabyte of the request written back and logged.
const maxTok = 40

// clip shortens tok to maxTok bytes, marking the cut with "...".
func clip(tok []byte) []byte {
	if len(tok) > maxTok {
		return append(tok[:maxTok:maxTok], "..."...)
	}
	return tok
}

func isSpecial(tok []byte) bool {
	switch string(tok) {
	case "NaN", "Infinity", "-Infinity":
		return true
	}
	return false
}

// parseFloat reads a number token as FP32 or FP64. Besides JSON numbers it
// takes NaN, Infinity and -Infinity (Python's json module writes them bare,
// and tritonclient sends a NaN feature so with binary_data=False) and null
// (a missing value, which is what Atrium writes for NaN).
func parseFloat(tok []byte, dt string) (float64, error) {
	switch string(tok) {
	case "NaN", "null":
		return math.NaN(), nil
	case "Infinity":
		return math.Inf(1), nil
	case "-Infinity":
		return math.Inf(-1), nil
	}
	if !jsonNumber(tok) {
		return 0, fmt.Errorf("want a number (%s), got %s", dt, quoteTok(tok))
	}
	bits := 64
	if dt == FP32 {
		bits = 32
	}
	// tok aliases the request body and ParseFloat keeps no reference to it
	// (an error copies the text): no per-element string allocation.
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(tok), len(tok)), bits)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			if !math.IsInf(f, 0) {
				return f, nil // underflow to zero or a subnormal: the nearest value
			}
			return 0, fmt.Errorf("%s is out of %s's range", clip(tok), dt)
		}
		return 0, fmt.Errorf("want a number (%s), got %s", dt, quoteTok(tok))
	}
	return f, nil
}

// jsonNumber reports whether tok is a number in JSON's grammar,
// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? (ParseFloat also takes hex,
// underscores, "inf" and a leading '+').
func jsonNumber(tok []byte) bool {
	i := 0
	if i < len(tok) && tok[i] == '-' {
		i++
	}
	switch {
	case i < len(tok) && tok[i] == '0':
		i++
	case i < len(tok) && tok[i] >= '1' && tok[i] <= '9':
		i = digits(tok, i)
	default:
		return false
	}
	if i < len(tok) && tok[i] == '.' {
		if i++; i >= len(tok) || !isDigit(tok[i]) {
			return false
		}
		i = digits(tok, i)
	}
	if i < len(tok) && (tok[i] == 'e' || tok[i] == 'E') {
		if i++; i < len(tok) && (tok[i] == '+' || tok[i] == '-') {
			i++
		}
		if i >= len(tok) || !isDigit(tok[i]) {
			return false
		}
		i = digits(tok, i)
	}
	return i == len(tok)
}

func digits(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parseInt reads an integer token (1, -7; 3.0 and 1e3 when whole) into the
// range of dt.
func parseInt(tok []byte, dt string) (int64, error) {
	v, err := strconv.ParseInt(unsafe.String(unsafe.SliceData(tok), len(tok)), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(string(tok), 64)
		if ferr != nil || !jsonNumber(tok) || f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
			return 0, fmt.Errorf("want an integer (%s), got %s", dt, quoteTok(tok))
		}
		v = int64(f)
	}
	if dt == INT32 && (v < math.MinInt32 || v > math.MaxInt32) {
		return 0, fmt.Errorf("%d is out of INT32's range", v)
	}
	return v, nil
}

// quoteTok names a bad token in an error message, clipped to maxTok bytes.
func quoteTok(tok []byte) string {
	if len(tok) == 0 {
		return "nothing"
	}
	return string(clip(tok))
}

func describe(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case 0:
		return "nothing"
	}
	return "a number"
}
