package online

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"
	"strconv"
	"sync/atomic"
	"time"
)

// Kind is the type of a Value.
type Kind uint8

// Value kinds. The numbers are the stored tags: never renumber them.
const (
	// KindNull is a stored NULL (the zero Value).
	KindNull Kind = iota
	KindInt64
	KindFloat64
	KindString
	// KindBool is a bool; its stored tag is that of false, true has the next one.
	KindBool
	kindTrue
	KindTime
	// KindMissing is never stored: Read reports it for a key without a row, or a
	// feature its row does not hold.
	KindMissing
)

const maxKind = KindTime

func (k Kind) String() string {
	switch k {
	case KindNull:
		return "null"
	case KindInt64:
		return "int64"
	case KindFloat64:
		return "float64"
	case KindString:
		return "string"
	case KindBool, kindTrue:
		return "bool"
	case KindTime:
		return "timestamp"
	case KindMissing:
		return "missing"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one typed feature value: null, int64, float64, string, bool or a
// timestamp (nanosecond precision, years 1678 to 2262). Values are small structs,
// not interfaces, so reading thousands of them allocates nothing but their strings.
// The zero Value is Null.
type Value struct {
	kind Kind
	n    uint64 // int64 bits, float64 bits or unix nanoseconds
	s    string
}

// Null is the stored NULL; Missing marks a value Read did not find.
var (
	Null    = Value{}
	Missing = Value{kind: KindMissing}
)

// Int64 returns an int64 value.
func Int64(v int64) Value { return Value{kind: KindInt64, n: uint64(v)} }

// Float64 returns a float64 value.
func Float64(v float64) Value { return Value{kind: KindFloat64, n: math.Float64bits(v)} }

// String returns a string value.
func String(v string) Value { return Value{kind: KindString, s: v} }

// Bool returns a bool value.
func Bool(v bool) Value {
	if v {
		return Value{kind: kindTrue}
	}
	return Value{kind: KindBool}
}

// Time returns a timestamp value. Times outside years 1678-2262 do not fit in
// int64 nanoseconds and saturate; ValueOf reports them as errors instead.
func Time(t time.Time) Value { return Value{kind: KindTime, n: uint64(t.UnixNano())} }

// ValueOf converts a Go value: nil, int64 (and the other integer types),
// float64, float32, string, bool or time.Time. Anything else is ErrInvalid.
func ValueOf(v any) (Value, error) {
	switch x := v.(type) {
	case nil:
		return Null, nil
	case int64:
		return Int64(x), nil
	case int:
		return Int64(int64(x)), nil
	case int32:
		return Int64(int64(x)), nil
	case int16:
		return Int64(int64(x)), nil
	case int8:
		return Int64(int64(x)), nil
	case uint32:
		return Int64(int64(x)), nil
	case uint16:
		return Int64(int64(x)), nil
	case uint8:
		return Int64(int64(x)), nil
	case float64:
		return Float64(x), nil
	case float32:
		return Float64(float64(x)), nil
	case string:
		return String(x), nil
	case bool:
		return Bool(x), nil
	case time.Time:
		if y := x.Year(); y < 1678 || y > 2261 {
			return Null, fmt.Errorf("%w: timestamp %s is outside 1678-2261", ErrInvalid, x.Format(time.RFC3339))
		}
		return Time(x), nil
	case Value:
		return x, nil
	}
	return Null, fmt.Errorf("%w: value of type %T: want int64, float64, string, bool, time.Time or nil", ErrInvalid, v)
}

// Kind reports the value's type.
func (v Value) Kind() Kind {
	if v.kind == kindTrue {
		return KindBool
	}
	return v.kind
}

// IsNull reports a stored NULL.
func (v Value) IsNull() bool { return v.kind == KindNull }

// IsMissing reports a value Read did not find.
func (v Value) IsMissing() bool { return v.kind == KindMissing }

// Int64 returns the value of an int64 Value (0 for other kinds).
func (v Value) Int64() int64 {
	if v.kind != KindInt64 {
		return 0
	}
	return int64(v.n)
}

// Float64 returns the value of a float64 Value (0 for other kinds).
func (v Value) Float64() float64 {
	if v.kind != KindFloat64 {
		return 0
	}
	return math.Float64frombits(v.n)
}

// Str returns the value of a string Value ("" for other kinds).
func (v Value) Str() string { return v.s }

// Bool returns the value of a bool Value (false for other kinds).
func (v Value) Bool() bool { return v.kind == kindTrue }

// Time returns the value of a timestamp Value, in UTC (the zero time for other kinds).
func (v Value) Time() time.Time {
	if v.kind != KindTime {
		return time.Time{}
	}
	return time.Unix(0, int64(v.n)).UTC()
}

// Any returns the value as a Go value: nil (Null and Missing), int64, float64,
// string, bool or time.Time.
func (v Value) Any() any {
	switch v.kind {
	case KindInt64:
		return v.Int64()
	case KindFloat64:
		return v.Float64()
	case KindString:
		return v.s
	case KindBool:
		return false
	case kindTrue:
		return true
	case KindTime:
		return v.Time()
	}
	return nil
}

// Equal reports whether two values have the same kind and value (NaN equals NaN).
func (v Value) Equal(w Value) bool { return v == w }

func (v Value) String() string {
	switch v.kind {
	case KindNull, KindMissing:
		return v.kind.String()
	case KindString:
		return strconv.Quote(v.s)
	case KindTime:
		return v.Time().Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v.Any())
}

// FormatVersion is the version byte every stored value or row starts with.
// Readers reject any other version with ErrFormat.
const FormatVersion byte = 1

// AppendValue appends the stored encoding of v (without a version byte): its
// kind tag, then an int64 or timestamp as a zig-zag varint, a float64 as 8
// little-endian bytes, or a string as a uvarint length and its bytes.
func AppendValue(dst []byte, v Value) []byte {
	dst = append(dst, byte(v.kind))
	switch v.kind {
	case KindInt64, KindTime:
		dst = binary.AppendVarint(dst, int64(v.n))
	case KindFloat64:
		dst = binary.LittleEndian.AppendUint64(dst, v.n)
	case KindString:
		dst = binary.AppendUvarint(dst, uint64(len(v.s)))
		dst = append(dst, v.s...)
	}
	return dst
}

// DecodeValue decodes a value written by AppendValue at the start of b and
// returns it with the number of bytes it took. With skip, a string value is
// stepped over without being copied (the returned Value is then Null).
func DecodeValue(b []byte, skip bool) (Value, int, error) {
	if len(b) == 0 {
		return Null, 0, fmt.Errorf("%w: truncated value", ErrFormat)
	}
	k := Kind(b[0])
	switch k {
	case KindNull, KindBool, kindTrue:
		return Value{kind: k}, 1, nil
	case KindInt64, KindTime:
		x, w := binary.Varint(b[1:])
		if w <= 0 {
			return Null, 0, fmt.Errorf("%w: truncated %s value", ErrFormat, k)
		}
		return Value{kind: k, n: uint64(x)}, 1 + w, nil
	case KindFloat64:
		if len(b) < 9 {
			return Null, 0, fmt.Errorf("%w: truncated float64 value", ErrFormat)
		}
		return Value{kind: k, n: binary.LittleEndian.Uint64(b[1:])}, 9, nil
	case KindString:
		n, w := binary.Uvarint(b[1:])
		if w <= 0 || uint64(len(b)-1-w) < n {
			return Null, 0, fmt.Errorf("%w: truncated string value", ErrFormat)
		}
		end := 1 + w + int(n)
		if skip {
			return Null, end, nil
		}
		return Value{kind: k, s: intern(b[1+w : end])}, end, nil
	}
	return Null, 0, fmt.Errorf("%w: unknown value tag %d", ErrFormat, b[0])
}

// Short strings are mostly categories ("Mitte", "apartment") that repeat across
// keys and requests. intern returns them from a small direct-mapped cache
// instead of allocating each time: a slot holds the last string hashed to it,
// so memory is bounded and a miss only costs the allocation it would anyway.
const (
	internSlots  = 1 << 12
	internMaxLen = 48
)

var (
	internSeed  = maphash.MakeSeed()
	internCache [internSlots]atomic.Pointer[string]
)

func intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > internMaxLen {
		return string(b)
	}
	slot := &internCache[maphash.Bytes(internSeed, b)&(internSlots-1)]
	if p := slot.Load(); p != nil && *p == string(b) {
		return *p
	}
	s := string(b)
	slot.Store(&s)
	return s
}
