package retrieval

// JSON of the online API, written by hand on the hot path: entity columns are
// parsed straight into typed key columns and responses are appended into a
// pooled buffer, so serving a request allocates little beyond its strings.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/platform/jsonw"
)

// getRequest is the body of POST /get-online-features (Feast's), as spans of
// the request body:
//
//	{"features": ["set:feature", ...], "feature_service": "name",
//	 "entities": {"join_key": [values...], ...}, "full_feature_names": false,
//	 "request_context": {...}}
//
// request_context holds the request values of on-demand features, a list of
// one value per entity row by name (as Feast's); other members are ignored.
type getRequest struct {
	features   []byte // the raw "features" list; nil when absent or null
	service    string
	hasService bool
	entities   []rawColumn
	context    []rawColumn
	fullNames  bool
}

type rawColumn struct {
	name string
	raw  []byte
}

// decodeGetRequest reads body into d, reusing d's memory. The body is checked
// to be valid JSON as strictly as encoding/json checks it, in the same pass
// that finds the members (a malformed body is then decoded again by
// encoding/json only to say where it is wrong). Type errors are reported only
// for a well-formed body, so a syntax error always wins.
func decodeGetRequest(body []byte, d *getRequest) error {
	*d = getRequest{entities: d.entities[:0], context: d.context[:0]}
	w := jsonWalker{b: body}
	var err error
	if w.space(); w.peek() == '{' {
		err = w.object(func(key []byte) error { return d.member(&w, body, key) })
	} else {
		w.value()
		err = fmt.Errorf("%w: get-online-features: want a JSON object, got %s", ErrInvalidRequest, describe(body))
	}
	if !w.end() {
		var v any
		return jsonError("get-online-features", body, json.Unmarshal(body, &v))
	}
	return err
}

// member reads the value of the request's member key, at w.
func (d *getRequest) member(w *jsonWalker, body, key []byte) error {
	c := w.peek()
	start := w.i
	w.value()
	if w.bad {
		return nil // decodeGetRequest reports the syntax error
	}
	raw := body[start:w.i]
	switch string(key) {
	case "features":
		switch c {
		case 'n':
		case '[':
			d.features = raw
		default:
			return fmt.Errorf("%w: features: want a list of strings (\"set:feature\"), got %s", ErrInvalidRequest, describe(raw))
		}
	case "feature_service":
		switch c {
		case 'n':
		case '"':
			d.service, d.hasService = jsonString(raw), true
		default:
			return fmt.Errorf("%w: feature_service: want a string, got %s", ErrInvalidRequest, describe(raw))
		}
	case "full_feature_names":
		switch c {
		case 'n', 'f':
		case 't':
			d.fullNames = true
		default:
			return fmt.Errorf("%w: full_feature_names: want true or false, got %s", ErrInvalidRequest, describe(raw))
		}
	case "entities":
		switch c {
		case 'n':
		case '{':
			d.entities = appendColumns(d.entities, raw)
		default:
			return fmt.Errorf("%w: entities: want an object of join key lists, got %s", ErrInvalidRequest, describe(raw))
		}
	case "request_context":
		switch c {
		case 'n':
		case '{':
			d.context = appendColumns(d.context, raw)
		default:
			return fmt.Errorf("%w: request_context: want an object of value lists, got %s", ErrInvalidRequest, describe(raw))
		}
	}
	return nil
}

// parseContextColumn parses a request_context column of values of kind k:
// numbers, strings, booleans, RFC 3339 times; null is a null value.
func parseContextColumn(name string, raw []byte, k online.Kind) ([]online.Value, error) {
	var vals []any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&vals); err != nil {
		return nil, fmt.Errorf("%w: request_context.%s: want a list of values, one per entity row", ErrInvalidRequest, name)
	}
	out := make([]online.Value, len(vals))
	for i, x := range vals {
		bad := func() error {
			return fmt.Errorf("%w: request_context.%s[%d]: want a %s value or null, got %v", ErrInvalidRequest, name, i, k, x)
		}
		switch v := x.(type) {
		case nil:
			out[i] = online.Null
		case json.Number:
			switch k {
			case online.KindFloat64:
				f, err := v.Float64()
				if err != nil {
					return nil, bad()
				}
				out[i] = online.Float64(f)
			case online.KindInt64:
				n, err := v.Int64()
				if err != nil {
					return nil, bad()
				}
				out[i] = online.Int64(n)
			default:
				return nil, bad()
			}
		case string:
			switch k {
			case online.KindString:
				out[i] = online.String(v)
			case online.KindTime:
				t, err := time.Parse(time.RFC3339Nano, v)
				if err != nil {
					return nil, bad()
				}
				out[i] = online.Time(t.UTC())
			default:
				return nil, bad()
			}
		case bool:
			if k != online.KindBool {
				return nil, bad()
			}
			out[i] = online.Bool(v)
		default:
			return nil, bad()
		}
	}
	return out, nil
}

// appendColumns appends the members of raw, a well-formed JSON object, as
// named raw values (walking it again cannot fail).
func appendColumns(dst []rawColumn, raw []byte) []rawColumn {
	cols := jsonWalker{b: raw}
	_ = cols.object(func(name []byte) error {
		start := cols.i
		cols.value()
		dst = append(dst, rawColumn{name: string(name), raw: raw[start:cols.i]})
		return nil
	})
	return dst
}

// jsonString decodes a JSON string token of a valid document.
func jsonString(tok []byte) string {
	s, _ := unquote(tok)
	return s
}

// unquote decodes tok, a JSON string token with its quotes, to what
// encoding/json decodes it to (escapes resolved, each byte that is not valid
// UTF-8 read as U+FFFD); ok is false when tok is not a valid string token.
// Text without escapes, control characters or invalid UTF-8, the usual case,
// is copied without encoding/json.
func unquote(tok []byte) (s string, ok bool) {
	inner := tok[1 : len(tok)-1]
	plain := utf8.Valid(inner)
	for _, c := range inner {
		if c == '\\' || c < 0x20 {
			plain = false
			break
		}
	}
	if plain {
		return string(inner), true
	}
	if err := json.Unmarshal(tok, &s); err != nil {
		return "", false
	}
	return s, true
}

// maxJSONDepth is encoding/json's limit on nesting.
const maxJSONDepth = 10000

// jsonWalker steps through a JSON document, checking the grammar as it goes
// exactly as json.Valid does (strings may hold any byte but control
// characters; escapes, numbers and literals are checked; nesting is bounded).
// On the first violation it sets bad and stops: every later step is a no-op.
type jsonWalker struct {
	b     []byte
	i     int
	depth int
	bad   bool
}

func (w *jsonWalker) fail() {
	w.bad = true
	w.i = len(w.b)
}

func (w *jsonWalker) space() {
	for w.i < len(w.b) && (w.b[w.i] == ' ' || w.b[w.i] == '\t' || w.b[w.i] == '\n' || w.b[w.i] == '\r') {
		w.i++
	}
}

func (w *jsonWalker) peek() byte {
	if w.i < len(w.b) {
		return w.b[w.i]
	}
	return 0
}

// end reports whether the document was well-formed, with nothing but
// whitespace after its value.
func (w *jsonWalker) end() bool {
	w.space()
	return !w.bad && w.i == len(w.b)
}

// value steps over one value (after any whitespace before it).
func (w *jsonWalker) value() {
	w.space()
	switch c := w.peek(); {
	case c == '{':
		_ = w.object(func([]byte) error { w.value(); return nil })
	case c == '[':
		w.array()
	case c == '"':
		w.str()
	case c == 't':
		w.literal("true")
	case c == 'f':
		w.literal("false")
	case c == 'n':
		w.literal("null")
	case c == '-' || isDigit(c):
		w.number()
	default:
		w.fail()
	}
}

// open consumes '{' or '[' and counts the depth.
func (w *jsonWalker) open() bool {
	w.i++
	if w.depth++; w.depth > maxJSONDepth {
		w.fail()
	}
	return !w.bad
}

// object walks the members of the object at w.i, calling fn with each key
// (unescaped) and w at its value, which fn must step over with w.value. It
// returns fn's first error, after walking the whole object.
func (w *jsonWalker) object(fn func(key []byte) error) error {
	if !w.open() {
		return nil
	}
	defer func() { w.depth-- }()
	if w.space(); w.peek() == '}' {
		w.i++
		return nil
	}
	var first error
	for !w.bad {
		w.space()
		start := w.i
		if w.peek() != '"' {
			w.fail()
			break
		}
		if w.str(); w.bad {
			break
		}
		key := w.b[start+1 : w.i-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			key = []byte(jsonString(w.b[start:w.i]))
		}
		if w.space(); w.peek() != ':' {
			w.fail()
			break
		}
		w.i++
		w.space()
		if err := fn(key); err != nil && first == nil {
			first = err
		}
		w.space()
		switch w.peek() {
		case ',':
			w.i++
		case '}':
			w.i++
			return first
		default:
			w.fail()
		}
	}
	return first
}

func (w *jsonWalker) array() {
	if !w.open() {
		return
	}
	defer func() { w.depth-- }()
	if w.space(); w.peek() == ']' {
		w.i++
		return
	}
	for !w.bad {
		w.value()
		w.space()
		switch w.peek() {
		case ',':
			w.i++
		case ']':
			w.i++
			return
		default:
			w.fail()
		}
	}
}

// str steps over the string at w.i.
func (w *jsonWalker) str() {
	b := w.b
	for i := w.i + 1; i < len(b); {
		switch c := b[i]; {
		case c == '"':
			w.i = i + 1
			return
		case c == '\\':
			if i+1 >= len(b) {
				w.fail()
				return
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					w.fail()
					return
				}
				i += 6
			default:
				w.fail()
				return
			}
		case c < 0x20:
			w.fail()
			return
		default:
			i++
		}
	}
	w.fail()
}

// number steps over the number at w.i: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (w *jsonWalker) number() {
	b, i := w.b, w.i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		w.fail()
		return
	}
	if i < len(b) && b[i] == '.' {
		if i++; i >= len(b) || !isDigit(b[i]) {
			w.fail()
			return
		}
		i = digits(b, i)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		if i++; i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			w.fail()
			return
		}
		i = digits(b, i)
	}
	w.i = i
}

func (w *jsonWalker) literal(lit string) {
	if len(w.b)-w.i < len(lit) || string(w.b[w.i:w.i+len(lit)]) != lit {
		w.fail()
		return
	}
	w.i += len(lit)
}

func digits(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') }

// jsonError describes a JSON decoding error with where it happened.
func jsonError(what string, body []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case len(bytes.TrimSpace(body)) == 0:
		return fmt.Errorf("%w: %s: empty body, want a JSON object", ErrInvalidRequest, what)
	case errors.As(err, &se):
		return fmt.Errorf("%w: %s: malformed JSON at byte %d: %v", ErrInvalidRequest, what, se.Offset, se)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "body"
		}
		return fmt.Errorf("%w: %s: %s: want %s, got JSON %s", ErrInvalidRequest, what, field, jsonTypeName(te.Type.String()), te.Value)
	}
	return fmt.Errorf("%w: %s: %v", ErrInvalidRequest, what, err)
}

func jsonTypeName(goType string) string {
	switch goType {
	case "[]string":
		return "a list of strings"
	case "string", "*string":
		return "a string"
	case "bool":
		return "true or false"
	case "map[string]json.RawMessage":
		return "an object"
	}
	return goType
}

// jsonScanner reads the elements of one JSON array (an entity or df column).
type jsonScanner struct {
	b    []byte
	i    int
	path string // "entities.listing_id", for errors
	n    int    // index of the element being read
}

func (s *jsonScanner) skipSpace() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s[%d]: %s", ErrInvalidRequest, s.path, s.n, fmt.Sprintf(format, args...))
}

// open consumes '['.
func (s *jsonScanner) open() error {
	s.skipSpace()
	if s.i >= len(s.b) || s.b[s.i] != '[' {
		return fmt.Errorf("%w: %s: want a list of values, got %s", ErrInvalidRequest, s.path, describe(s.b))
	}
	s.i++
	s.n = 0
	return nil
}

// next reports whether another element follows, consuming the ',' or ']'.
func (s *jsonScanner) next() (bool, error) {
	s.skipSpace()
	if s.i >= len(s.b) {
		return false, fmt.Errorf("%w: %s: unterminated list", ErrInvalidRequest, s.path)
	}
	if s.n == 0 {
		if s.b[s.i] == ']' {
			s.i++
			return false, nil
		}
		return true, nil
	}
	switch s.b[s.i] {
	case ']':
		s.i++
		return false, nil
	case ',':
		s.i++
		return true, nil
	}
	return false, fmt.Errorf("%w: %s: malformed list after element %d", ErrInvalidRequest, s.path, s.n-1)
}

// token returns the raw text of the next scalar (number, string with quotes,
// true, false, null) and its first byte.
func (s *jsonScanner) token() ([]byte, byte, error) {
	s.skipSpace()
	if s.i >= len(s.b) {
		return nil, 0, s.errorf("missing value")
	}
	start := s.i
	c := s.b[s.i]
	switch {
	case c == '"':
		s.i++
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '\\':
				s.i += 2
				continue
			case '"':
				s.i++
				return s.b[start:s.i], c, nil
			}
			s.i++
		}
		return nil, 0, s.errorf("unterminated string")
	case c == '[' || c == '{':
		return nil, 0, s.errorf("want a single value, got a nested %s", map[byte]string{'[': "list", '{': "object"}[c])
	}
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', ']', ' ', '\t', '\n', '\r':
			return s.b[start:s.i], c, nil
		}
		s.i++
	}
	return s.b[start:s.i], c, nil
}

// str decodes a JSON string token (with its quotes).
func (s *jsonScanner) str(tok []byte) (string, error) {
	out, ok := unquote(tok)
	if !ok {
		return "", s.errorf("malformed string %s", tok)
	}
	return out, nil
}

// integer decodes a JSON number token that holds an integer (1, -7, 3.0, 1e3).
func (s *jsonScanner) integer(tok []byte) (int64, error) {
	if v, err := strconv.ParseInt(string(tok), 10, 64); err == nil {
		return v, nil
	}
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil || f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
		return 0, s.errorf("want an integer, got %s", tok)
	}
	return int64(f), nil
}

func describe(b []byte) string {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return "an object"
		case '"':
			return "a string"
		case 'n':
			return "null"
		case 't', 'f':
			return "a boolean"
		}
		return "a number"
	}
	return "nothing"
}

// parseKeyColumn parses an entity column of join-key type typ into c. With
// KeyAny the first value decides the column's type.
func parseKeyColumn(path string, raw []byte, typ KeyType, c *entityCol) error {
	return parseKeyColumnMax(path, raw, typ, c, -1)
}

// parseKeyColumnMax is parseKeyColumn refusing a column of more than max
// values (max < 0: no bound) as soon as it has read one too many: a request
// over the entity limit costs the memory of max values, not of the whole
// column it sends.
func parseKeyColumnMax(path string, raw []byte, typ KeyType, c *entityCol, max int) error {
	s := jsonScanner{b: raw, path: path}
	if err := s.open(); err != nil {
		return err
	}
	c.typ, c.ints, c.strs = typ, c.ints[:0], c.strs[:0]
	inferred := typ == KeyAny
	for {
		more, err := s.next()
		if err != nil {
			return err
		}
		if !more {
			break
		}
		if max >= 0 && s.n >= max {
			return fmt.Errorf("%w: %s: more than %d rows, at most %d per request", ErrInvalidRequest, path, max, max)
		}
		tok, first, err := s.token()
		if err != nil {
			return err
		}
		if first == 'n' {
			return s.errorf("null join key: every entity row needs a %s value", typ)
		}
		if typ == KeyAny {
			typ = KeyString
			if first != '"' {
				typ = KeyInt64
			}
			c.typ = typ
		}
		// why is only for error messages: built when one is (not per value).
		why := func() string {
			if inferred {
				return fmt.Sprintf("holds %s values", typ)
			}
			if typ == KeyString {
				return "is a string join key"
			}
			return "is an int64 join key"
		}
		switch {
		case typ == KeyInt64 && first == '"':
			return s.errorf("want an integer (%s %s), got the string %s", c.name, why(), tok)
		case typ == KeyInt64:
			v, err := s.integer(tok)
			if err != nil {
				return err
			}
			c.ints = append(c.ints, v)
		case first != '"':
			return s.errorf("want a string (%s %s), got %s", c.name, why(), tok)
		default:
			v, err := s.str(tok)
			if err != nil {
				return err
			}
			c.strs = append(c.strs, v)
		}
		s.n++
	}
	s.skipSpace()
	if s.i != len(s.b) {
		return fmt.Errorf("%w: %s: unexpected data after the list", ErrInvalidRequest, path)
	}
	return nil
}

var (
	statusJSON = func() [5][]byte {
		var out [5][]byte
		for i, n := range statusNames {
			out[i] = []byte(`"` + n + `"`)
		}
		return out
	}()
	// epochJSON is the event time of a cell without one (key columns, missing
	// rows): protobuf's default Timestamp, as Feast's server writes it.
	epochJSON = jsonw.AppendTimestamp(nil, time.Time{})
)

// appendHeader encodes the response up to its first result.
func appendHeader(dst []byte, names []string) []byte {
	dst = append(dst, `{"metadata":{"feature_names":[`...)
	for i, n := range names {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonw.AppendString(dst, n)
	}
	return append(dst, `]},"results":[`...)
}

// appendValue writes a value as a JSON scalar: numbers, strings, booleans,
// timestamps as RFC 3339 strings; null for Null, Missing, NaN and infinities
// (JSON has no literal for those). Doubles keep a fraction when whole
// ("1300.0", as Python's json writes Feast's doubles): clients that type
// numbers by their text then decode a float64 feature as a float even when it
// holds a whole number.
func appendValue(dst []byte, v online.Value) []byte {
	switch v.Kind() {
	case online.KindInt64:
		return jsonw.AppendInt(dst, v.Int64())
	case online.KindFloat64:
		return jsonw.AppendFloatPoint(dst, v.Float64())
	case online.KindString:
		return jsonw.AppendString(dst, v.Str())
	case online.KindBool:
		return jsonw.AppendBool(dst, v.Bool())
	case online.KindTime:
		return jsonw.AppendTimestamp(dst, v.Time())
	}
	return append(dst, "null"...)
}

// appendResponse encodes v as Feast's column-major response. Row-level facts
// (event time as JSON, max-age check) are computed once per set and row, not
// once per feature: a 100 x 50 response has 5,000 cells but at most 100 rows per set.
func appendResponse(dst []byte, v *Vectors) []byte {
	p := v.plan
	v.prepareRows()
	dst = append(dst, p.header...)
	for c := range p.joinKeys {
		if c > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"values":[`...)
		col := v.keyCols[c]
		for r := range v.rows {
			if r > 0 {
				dst = append(dst, ',')
			}
			if col.typ == KeyInt64 {
				dst = jsonw.AppendInt(dst, col.ints[r])
			} else {
				dst = jsonw.AppendString(dst, col.strs[r])
			}
		}
		dst = appendRepeated(append(dst, `],"statuses":[`...), statusJSON[StatusPresent], v.rows)
		dst = appendRepeated(append(dst, `],"event_timestamps":[`...), epochJSON, v.rows)
		dst = append(dst, "]}"...)
	}
	for i, out := range p.outputs {
		if i > 0 || len(p.joinKeys) > 0 {
			dst = append(dst, ',')
		}
		if out.query < 0 {
			dst = appendOnDemand(dst, v, out)
			continue
		}
		res := &v.results[out.query]
		nf := len(p.queries[out.query].Features)
		meta := v.rowMeta[out.query*v.rows : (out.query+1)*v.rows]
		dst = append(dst, `{"values":[`...)
		for r := range v.rows {
			if r > 0 {
				dst = append(dst, ',')
			}
			dst = appendValue(dst, res.Values[r*nf+out.feature])
		}
		dst = append(dst, `],"statuses":[`...)
		for r := range v.rows {
			if r > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, statusJSON[cellStatus(res.Values[r*nf+out.feature], meta[r].stale)]...)
		}
		dst = append(dst, `],"event_timestamps":[`...)
		for r := range v.rows {
			if r > 0 {
				dst = append(dst, ',')
			}
			if res.Values[r*nf+out.feature].IsMissing() {
				dst = append(dst, epochJSON...)
			} else {
				dst = append(dst, v.tsJSON[meta[r].start:meta[r].end]...)
			}
		}
		dst = append(dst, "]}"...)
	}
	return append(dst, "]}\n"...)
}

// appendOnDemand encodes an on-demand feature's column: PRESENT values, or
// null with NULL_VALUE; computed values have no event time of their own.
func appendOnDemand(dst []byte, v *Vectors, out output) []byte {
	dst = append(dst, `{"values":[`...)
	for r := range v.rows {
		if r > 0 {
			dst = append(dst, ',')
		}
		dst = appendValue(dst, v.odValue(out, r))
	}
	dst = append(dst, `],"statuses":[`...)
	for r := range v.rows {
		if r > 0 {
			dst = append(dst, ',')
		}
		st := StatusPresent
		if v.odValue(out, r).IsNull() {
			st = StatusNullValue
		}
		dst = append(dst, statusJSON[st]...)
	}
	dst = appendRepeated(append(dst, `],"event_timestamps":[`...), epochJSON, v.rows)
	return append(dst, "]}"...)
}

func appendRepeated(dst, item []byte, n int) []byte {
	for r := range n {
		if r > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, item...)
	}
	return dst
}
