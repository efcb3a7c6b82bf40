package serving

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/atrium-ml/atrium/internal/platform/server"
)

// The bodies of predict and rank are decoded in one pass over their tokens
// with jsontext, the syntax layer of encoding/json/v2 (the module that
// mirrors it until Go 1.27 has it in the standard library). Decoding them
// with encoding/json scanned a body five times (the decoder's read, the
// members kept raw, each list counted, then split, then each value parsed):
// 14% of a rank request's CPU at 200 candidates.
//
// The rules are encoding/json's, stricter where RFC 8259 advises: a member
// name twice in one object and invalid UTF-8 are refused (encoding/json
// kept the last and replaced the bytes).

// bodyDecoders keeps decoders (and their state stacks) between requests.
// An idle one reads from noBody: it must not keep a body alive, and a
// jsontext decoder refuses a nil reader.
var bodyDecoders = sync.Pool{New: func() any { return jsontext.NewDecoder(noBody{}) }}

// noBody is an empty reader without state (shared by idle decoders).
type noBody struct{}

func (noBody) Read([]byte) (int, error) { return 0, io.EOF }

// readBody decodes r's body, one JSON object, calling member for each of its
// members with the decoder at the member's value; member reads the value
// and reports whether it knows the name. An unknown member is an error: a
// misspelled "candidate" would otherwise rank nothing.
func readBody(r *http.Request, member func(dec *jsontext.Decoder, name string) (bool, error)) error {
	// Sized from Content-Length when the client sent one (it always does
	// for a body it has whole): io.ReadAll's doubling from 512 bytes was a
	// quarter of decoding a rank request. Only up to 1 MiB ahead of the
	// bytes (a rank body of 500 candidates is about 10 kB): a client's
	// Content-Length is a claim, and the limit on the body is the server's
	// (http.MaxBytesReader).
	// Rank and predict bodies are small (a rank of 500 candidates is about
	// 10 kB): compressing them would cost the client more than it saves.
	// Without this check a gzip body read as JSON failed on its first byte.
	if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		return errInput("Content-Encoding %s: predict and rank take an uncompressed JSON body; leave Content-Encoding out", server.Quote(enc))
	}
	body := new(bytes.Buffer)
	if n := r.ContentLength; n > 0 {
		body.Grow(int(min(n, 1<<20)) + bytes.MinRead)
	}
	if _, err := body.ReadFrom(r.Body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fmt.Errorf("%w: body larger than %d bytes", ErrTooLarge, tooBig.Limit)
		}
		return errInput("body: %v", err)
	}
	dec := bodyDecoders.Get().(*jsontext.Decoder)
	dec.Reset(body)
	defer func() {
		dec.Reset(noBody{}) // drop the body
		bodyDecoders.Put(dec)
	}()
	if err := readObject(dec, "body", func(name string) error {
		known, err := member(dec, name)
		if err == nil && !known {
			err = errInput("body: unknown field %q", name)
		}
		return err
	}); err != nil {
		return err
	}
	switch _, err := dec.ReadToken(); {
	case err == io.EOF:
		return nil
	case err != nil:
		return syntaxError(err)
	}
	return errInput("body: more than one JSON value")
}

// readObject reads an object, calling member with each member's name and
// the decoder at its value. part names the object in errors.
func readObject(dec *jsontext.Decoder, part string, member func(name string) error) error {
	tok, err := dec.ReadToken()
	if err != nil {
		return syntaxError(err)
	}
	if tok.Kind() != '{' {
		return errInput("%s: want an object, got %s", part, kindName(tok.Kind()))
	}
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return syntaxError(err)
		}
		if err := member(tok.String()); err != nil {
			return err
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return syntaxError(err)
	}
	return nil
}

// syntaxError is the request error for malformed JSON (jsontext's error
// names where in the body, as a JSON pointer and a byte offset).
func syntaxError(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return errInput("body: %s", strings.TrimPrefix(err.Error(), "jsontext: "))
}

// kindName names a token kind in errors.
func kindName(k jsontext.Kind) string {
	switch k {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "nothing"
}

// isNull consumes a null at the decoder and reports whether there was one
// (a member set to null is a member left out, as with encoding/json).
func isNull(dec *jsontext.Decoder) (bool, error) {
	if dec.PeekKind() != 'n' {
		return false, nil
	}
	if _, err := dec.ReadToken(); err != nil {
		return false, syntaxError(err)
	}
	return true, nil
}

// readColumns reads an object of per-row values: each member a list (one
// value per row) or, when scalars, a single value for every row. part names
// the object in errors. A list of more than limit values is refused
// (ErrTooMany) after counting the rest without keeping them: a body of one
// long list costs no more heap than limit values.
func readColumns(dec *jsontext.Decoder, part string, scalars bool, limit int) (map[string]Column, error) {
	if null, err := isNull(dec); null || err != nil {
		return nil, err
	}
	out := map[string]Column{}
	err := readObject(dec, part, func(name string) error {
		if dec.PeekKind() != '[' {
			if !scalars {
				return errInput("%s.%s: want a list, one value per candidate", part, name)
			}
			v, err := readScalar(dec)
			if err != nil {
				return errInput("%s.%s: %v", part, name, err)
			}
			out[name] = Column{Values: []any{v}, Broadcast: true}
			return nil
		}
		if _, err := dec.ReadToken(); err != nil {
			return syntaxError(err)
		}
		var values []any
		n := 0
		for ; dec.PeekKind() != ']'; n++ {
			if n >= limit {
				if err := dec.SkipValue(); err != nil {
					return syntaxError(err)
				}
				continue
			}
			v, err := readScalar(dec)
			if err != nil {
				return errInput("%s.%s[%d]: %v", part, name, n, err)
			}
			values = append(values, v)
		}
		if _, err := dec.ReadToken(); err != nil {
			return syntaxError(err)
		}
		if n > limit {
			return fmt.Errorf("%w: %s.%s has %d values, at most %d per request (serving.max_candidates)", ErrTooMany, part, name, n, limit)
		}
		if values == nil {
			values = []any{}
		}
		out[name] = Column{Values: values}
		return nil
	})
	if len(out) == 0 {
		return nil, err // as no member at all
	}
	return out, err
}

// readContext reads rank's context: one value per key, none null.
func readContext(dec *jsontext.Decoder) (map[string]any, error) {
	if null, err := isNull(dec); null || err != nil {
		return nil, err
	}
	out := map[string]any{}
	err := readObject(dec, "context", func(name string) error {
		v, err := readScalar(dec)
		if err != nil {
			return errInput("context.%s: %v", name, err)
		}
		if v == nil {
			return errInput("context.%s: null, want the key's value", name)
		}
		out[name] = v
		return nil
	})
	return out, err
}

// readScalar reads one value: a string, a number (int64 when it is a whole
// number that fits, else float64), a boolean or null.
func readScalar(dec *jsontext.Decoder) (any, error) {
	if k := dec.PeekKind(); k == '{' || k == '[' {
		if err := dec.SkipValue(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("want a string, a number, a boolean or null, got %s", kindName(k))
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, err
	}
	switch tok.Kind() {
	case '"':
		return tok.String(), nil
	case 't', 'f':
		return tok.Bool(), nil
	case 'n':
		return nil, nil
	}
	raw := tok.String() // a number's text
	if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(raw, 64)
	if err != nil {
		return nil, fmt.Errorf("%s is not a number", raw)
	}
	return f, nil
}

// readString reads a string member (null: empty).
func readString(dec *jsontext.Decoder, part string) (string, error) {
	if null, err := isNull(dec); null || err != nil {
		return "", err
	}
	v, err := readScalar(dec)
	if err != nil {
		return "", errInput("%s: %v", part, err)
	}
	s, ok := v.(string)
	if !ok {
		return "", errInput("%s: want a string", part)
	}
	return s, nil
}

// readInt reads a whole-number member (null: 0).
func readInt(dec *jsontext.Decoder, part string) (int, error) {
	if null, err := isNull(dec); null || err != nil {
		return 0, err
	}
	v, err := readScalar(dec)
	if err != nil {
		return 0, errInput("%s: %v", part, err)
	}
	n, ok := v.(int64)
	if !ok || int64(int(n)) != n {
		return 0, errInput("%s: want a whole number", part)
	}
	return int(n), nil
}

// readBool reads a boolean member (null: false).
func readBool(dec *jsontext.Decoder, part string) (bool, error) {
	if null, err := isNull(dec); null || err != nil {
		return false, err
	}
	v, err := readScalar(dec)
	if err != nil {
		return false, errInput("%s: %v", part, err)
	}
	b, ok := v.(bool)
	if !ok {
		return false, errInput("%s: want true or false", part)
	}
	return b, nil
}
