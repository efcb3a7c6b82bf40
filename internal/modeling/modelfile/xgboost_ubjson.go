package modelfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// decodeUBJSON decodes one Universal Binary JSON value (ubjson.org, draft
// 12, as XGBoost writes it: big-endian numbers, optimised containers with $
// type and # count) into the values encoding/json produces: map[string]any,
// []any, float64, string, bool and nil. A count is checked against the bytes
// its elements need from what is left, so a corrupt file cannot make it
// allocate more than a small multiple of its size.
func decodeUBJSON(data []byte) (any, error) {
	d := &ubjDecoder{data: data}
	v, err := d.value(0)
	if err != nil {
		return nil, fmt.Errorf("ubjson at byte %d: %w", d.pos, err)
	}
	return v, nil
}

type ubjDecoder struct {
	data []byte
	pos  int
}

const ubjMaxDepth = 64

var errUBJTruncated = errors.New("truncated")

func (d *ubjDecoder) byte() (byte, error) {
	if d.pos >= len(d.data) {
		return 0, errUBJTruncated
	}
	b := d.data[d.pos]
	d.pos++
	return b, nil
}

func (d *ubjDecoder) take(n int) ([]byte, error) {
	if n < 0 || n > len(d.data)-d.pos {
		return nil, errUBJTruncated
	}
	b := d.data[d.pos : d.pos+n]
	d.pos += n
	return b, nil
}

// marker reads the next type marker, skipping no-ops.
func (d *ubjDecoder) marker() (byte, error) {
	for {
		b, err := d.byte()
		if err != nil || b != 'N' {
			return b, err
		}
	}
}

// number decodes a numeric value of type t.
func (d *ubjDecoder) number(t byte) (float64, error) {
	size := map[byte]int{'i': 1, 'U': 1, 'I': 2, 'l': 4, 'L': 8, 'd': 4, 'D': 8}[t]
	b, err := d.take(size)
	if err != nil {
		return 0, err
	}
	switch t {
	case 'i':
		return float64(int8(b[0])), nil
	case 'U':
		return float64(b[0]), nil
	case 'I':
		return float64(int16(binary.BigEndian.Uint16(b))), nil
	case 'l':
		return float64(int32(binary.BigEndian.Uint32(b))), nil
	case 'L':
		return float64(int64(binary.BigEndian.Uint64(b))), nil
	case 'd':
		return float64(math.Float32frombits(binary.BigEndian.Uint32(b))), nil
	case 'D':
		return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
	}
	return 0, fmt.Errorf("unexpected marker %q", t)
}

// length reads a count or string length (an integer value with its marker).
func (d *ubjDecoder) length() (int, error) {
	t, err := d.marker()
	if err != nil {
		return 0, err
	}
	switch t {
	case 'i', 'U', 'I', 'l', 'L':
	default:
		return 0, fmt.Errorf("length has marker %q, want an integer", t)
	}
	n, err := d.number(t)
	if err != nil {
		return 0, err
	}
	if n < 0 || n > float64(len(d.data)) {
		return 0, fmt.Errorf("length %v exceeds the file", n)
	}
	return int(n), nil
}

func (d *ubjDecoder) str() (string, error) {
	n, err := d.length()
	if err != nil {
		return "", err
	}
	b, err := d.take(n)
	return string(b), err
}

func (d *ubjDecoder) value(depth int) (any, error) {
	t, err := d.marker()
	if err != nil {
		return nil, err
	}
	return d.typed(t, depth)
}

func (d *ubjDecoder) typed(t byte, depth int) (any, error) {
	switch t {
	case 'Z':
		return nil, nil
	case 'T':
		return true, nil
	case 'F':
		return false, nil
	case 'i', 'U', 'I', 'l', 'L', 'd', 'D':
		v, err := d.number(t)
		if err != nil {
			return nil, err
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			// JSON cannot carry them; the model readers reject such values.
			return fmt.Sprint(v), nil
		}
		return v, nil
	case 'C':
		b, err := d.byte()
		return string(rune(b)), err
	case 'S', 'H':
		return d.str()
	case '[', '{':
		if depth >= ubjMaxDepth {
			return nil, errors.New("nested too deeply")
		}
		return d.container(t == '{', depth+1)
	}
	return nil, fmt.Errorf("unknown marker %q", t)
}

// ubjMinSize is the fewest bytes a container element of type t takes (t is 0
// for an untyped container, whose elements carry their marker).
func ubjMinSize(t byte) int {
	switch t {
	case 0, 'i', 'U', 'C', '[', '{':
		return 1 // a marker, a one-byte value, or an empty container's end
	case 'I', 'S', 'H':
		return 2 // S, H: a length's marker and its byte
	case 'l', 'd':
		return 4
	case 'L', 'D':
		return 8
	}
	return 0 // Z, T, F: the marker is the whole value
}

// container decodes an array or object after its opening marker.
func (d *ubjDecoder) container(object bool, depth int) (any, error) {
	var elemType byte
	count := -1
	if d.pos < len(d.data) && d.data[d.pos] == '$' {
		d.pos++
		var err error
		if elemType, err = d.byte(); err != nil {
			return nil, err
		}
		if d.pos >= len(d.data) || d.data[d.pos] != '#' {
			return nil, errors.New("typed container without a count")
		}
	}
	if d.pos < len(d.data) && d.data[d.pos] == '#' {
		d.pos++
		n, err := d.length()
		if err != nil {
			return nil, err
		}
		// Every element takes at least minSize bytes of what is left, so a
		// count is bounded by the file, not only checked against its
		// length: a count of elements that take no bytes (a typed
		// container of Z, T or F) is refused, since it could make
		// each small container expand to len(data) values.
		size := ubjMinSize(elemType)
		if object {
			size += 2 // the key: a length marker and at least one byte of it
		}
		if size == 0 {
			return nil, fmt.Errorf("typed container of %q: elements without bytes are not accepted", elemType)
		}
		if left := len(d.data) - d.pos; n > left/size {
			return nil, fmt.Errorf("count %d exceeds the %d bytes left (elements take at least %d bytes each)", n, left, size)
		}
		count = n
	}
	next := func() (any, error) {
		if elemType != 0 {
			return d.typed(elemType, depth)
		}
		return d.value(depth)
	}
	// end reports whether an unsized container ends here.
	end := func() (bool, error) {
		if count >= 0 {
			return false, nil
		}
		for d.pos < len(d.data) && d.data[d.pos] == 'N' {
			d.pos++
		}
		if d.pos >= len(d.data) {
			return false, errUBJTruncated
		}
		want := byte(']')
		if object {
			want = '}'
		}
		if d.data[d.pos] == want {
			d.pos++
			return true, nil
		}
		return false, nil
	}
	if object {
		obj := map[string]any{}
		for i := 0; count < 0 || i < count; i++ {
			if done, err := end(); err != nil || done {
				return obj, err
			}
			k, err := d.str()
			if err != nil {
				return nil, err
			}
			v, err := next()
			if err != nil {
				return nil, err
			}
			obj[k] = v
		}
		return obj, nil
	}
	var arr []any
	if count >= 0 {
		arr = make([]any, 0, count)
	}
	for i := 0; count < 0 || i < count; i++ {
		if done, err := end(); err != nil || done {
			if arr == nil {
				arr = []any{}
			}
			return arr, err
		}
		v, err := next()
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
	}
	return arr, nil
}
