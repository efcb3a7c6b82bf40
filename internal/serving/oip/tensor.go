package oip

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// refusedDatatypes are the protocol's datatypes Atrium does not serve: no
// model it loads takes them, and refusing them by name tells the caller
// what to send instead (an unknown word gets "unknown datatype").
var refusedDatatypes = map[string]bool{
	"UINT8": true, "UINT16": true, "UINT32": true, "UINT64": true,
	"INT8": true, "INT16": true, "FP16": true, "BF16": true,
}

// supported lists the datatypes Atrium serves, for error messages.
const supported = "BOOL, INT32, INT64, FP32, FP64 or BYTES"

// checkDatatype returns nil for a datatype Atrium serves.
func checkDatatype(dt string) error {
	switch dt {
	case BOOL, INT32, INT64, FP32, FP64, BYTES:
		return nil
	case "":
		return fmt.Errorf("datatype missing: want %s", supported)
	}
	if refusedDatatypes[dt] {
		return fmt.Errorf("datatype %s is not supported: send %s", dt, supported)
	}
	return fmt.Errorf("unknown datatype %s: want %s", strconv.Quote(dt), supported)
}

// elemSize is the size of one element of dt in raw (binary) form; 0 for
// BYTES, whose elements carry their own length.
func elemSize(dt string) int {
	switch dt {
	case BOOL:
		return 1
	case INT32, FP32:
		return 4
	case INT64, FP64:
		return 8
	}
	return 0
}

// maxElements bounds a tensor's declared element count: a shape is checked
// before any memory is sized from it, and no body the server accepts holds
// more elements than this.
const maxElements = 1 << 31

// MaxBytesElements bounds the BYTES elements of one request, all inputs
// together. Each element is a 24-byte slice header however short its text:
// a 64 MiB body of empty strings (4 bytes each in the binary format, 3 in
// JSON) would otherwise take 400-500 MiB of headers. A million strings is
// far more than a batch of categorical features needs (1,000 rows of 30
// categories is 30,000).
const MaxBytesElements = 1 << 20

// checkBytesElements refuses inputs whose shapes declare more BYTES
// elements than MaxBytesElements, before any of them is decoded. A shape
// elements refuses is left to the input's own check.
func checkBytesElements(ts []Tensor) error {
	total := 0
	for _, t := range ts {
		if t.Datatype != BYTES {
			continue
		}
		if n, err := elements(t.Shape); err == nil {
			total += n
		}
		if total > MaxBytesElements {
			return fmt.Errorf("the BYTES inputs have more than %d elements in all, the most a request may carry: send fewer rows per request", MaxBytesElements)
		}
	}
	return nil
}

// elements returns the product of shape, refusing negative dimensions and
// products past maxElements (which would overflow sooner or later).
func elements(shape []int64) (int, error) {
	n := int64(1)
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %s: dimension %d is %d, want >= 0", formatShape(shape), i, d)
		}
		if d != 0 && n > maxElements/d {
			return 0, fmt.Errorf("shape %s: more than %d elements", formatShape(shape), int64(maxElements))
		}
		n *= d
	}
	return int(n), nil
}

func formatShape(shape []int64) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range shape {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(d, 10))
	}
	b.WriteByte(']')
	return b.String()
}

// Len returns the number of elements t holds (in its Datatype's slice).
func (t *Tensor) Len() int {
	switch t.Datatype {
	case BOOL:
		return len(t.Bool)
	case INT32:
		return len(t.Int32)
	case INT64:
		return len(t.Int64)
	case FP32:
		return len(t.FP32)
	case FP64:
		return len(t.FP64)
	case BYTES:
		return len(t.Bytes)
	}
	return 0
}

// rawSize is the size of t's elements in raw form.
func (t *Tensor) rawSize() int {
	if t.Datatype != BYTES {
		return t.Len() * elemSize(t.Datatype)
	}
	n := 4 * len(t.Bytes)
	for _, b := range t.Bytes {
		n += len(b)
	}
	return n
}

// appendRaw appends t's elements in raw form: row-major, little-endian,
// BOOL one byte each, BYTES each a 4-byte little-endian length and its bytes
// (Triton's binary-data extension and the gRPC raw contents share it).
func (t *Tensor) appendRaw(dst []byte) []byte {
	switch t.Datatype {
	case BOOL:
		for _, v := range t.Bool {
			b := byte(0)
			if v {
				b = 1
			}
			dst = append(dst, b)
		}
	case INT32:
		for _, v := range t.Int32 {
			dst = binary.LittleEndian.AppendUint32(dst, uint32(v))
		}
	case INT64:
		for _, v := range t.Int64 {
			dst = binary.LittleEndian.AppendUint64(dst, uint64(v))
		}
	case FP32:
		for _, v := range t.FP32 {
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
		}
	case FP64:
		for _, v := range t.FP64 {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
		}
	case BYTES:
		for _, v := range t.Bytes {
			dst = binary.LittleEndian.AppendUint32(dst, uint32(len(v)))
			dst = append(dst, v...)
		}
	}
	return dst
}

// setRaw fills t (whose Datatype is checked) with the n elements of raw.
// Numeric slices are decoded into fresh memory; BYTES elements alias raw,
// which the caller must keep unchanged while t is used.
func (t *Tensor) setRaw(raw []byte, n int) error {
	if size := elemSize(t.Datatype); size > 0 {
		if len(raw) != n*size {
			return fmt.Errorf("shape %s of %s has %d elements (%d bytes), raw data has %d bytes",
				formatShape(t.Shape), t.Datatype, n, n*size, len(raw))
		}
	}
	switch t.Datatype {
	case BOOL:
		t.Bool = make([]bool, n)
		for i, b := range raw {
			if b > 1 {
				return fmt.Errorf("raw BOOL element %d is %d, want 0 or 1", i, b)
			}
			t.Bool[i] = b == 1
		}
	case INT32:
		t.Int32 = make([]int32, n)
		for i := range t.Int32 {
			t.Int32[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case INT64:
		t.Int64 = make([]int64, n)
		for i := range t.Int64 {
			t.Int64[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
		}
	case FP32:
		t.FP32 = make([]float32, n)
		for i := range t.FP32 {
			t.FP32[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case FP64:
		t.FP64 = make([]float64, n)
		for i := range t.FP64 {
			t.FP64[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
		}
	case BYTES:
		// Each element at least 4 bytes: a count past len(raw)/4 cannot fit,
		// and is refused before sizing memory from it.
		if n > len(raw)/4 {
			return fmt.Errorf("shape %s of BYTES has %d elements, raw data of %d bytes holds at most %d", formatShape(t.Shape), n, len(raw), len(raw)/4)
		}
		t.Bytes = make([][]byte, n)
		off := 0
		for i := range n {
			if len(raw)-off < 4 {
				return fmt.Errorf("raw BYTES element %d: length prefix cut off at byte %d of %d", i, off, len(raw))
			}
			l := int(binary.LittleEndian.Uint32(raw[off:]))
			off += 4
			if l > len(raw)-off {
				return fmt.Errorf("raw BYTES element %d: length %d runs past the data's end (%d bytes left)", i, l, len(raw)-off)
			}
			t.Bytes[i] = raw[off : off+l : off+l]
			off += l
		}
		if off != len(raw) {
			return fmt.Errorf("raw BYTES: %d elements end at byte %d, data has %d bytes", n, off, len(raw))
		}
	}
	return nil
}
