// Package jsonw appends JSON scalars to byte slices: the one encoder of the
// hand-written JSON fast paths (Feast's online-features response, MLflow's
// run, metric and search answers), where reflection-based encoding/json costs
// more than the request's real work.
//
// Every function appends to dst and returns the extended slice, like
// strconv.Append*, so an answer is written into one reused buffer. The output
// is what encoding/json writes for the same Go value, byte for byte, except
// where a function's doc names the difference (JSON has no literal for NaN and
// infinities; Feast's clients want whole doubles written as doubles).
// FuzzAppendString, FuzzAppendFloat and FuzzAppendTimestamp hold them to that.
package jsonw

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendString appends s as a JSON string, byte for byte what encoding/json's
// Marshal writes: `"` and `\` escaped, \b \f \n \r \t by their short escapes,
// other control characters and the HTML-sensitive <, > and & as \u00XX
// (lower-case hex), U+2028 and U+2029 as \u2028 and \u2029 (they end lines in
// JavaScript), and each byte that is not part of valid UTF-8 as \ufffd, so the
// output is always valid UTF-8 and valid JSON. Everything else is copied as it
// is (no \u escapes for non-ASCII text).
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0 // s[start:i] is plain text not yet copied
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if plain[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default: // other control characters, <, >, &
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// plain[c] reports whether the ASCII byte c is copied into a JSON string as it
// is (encoding/json's htmlSafeSet): printable, and none of " \ < > &.
var plain = func() (t [utf8.RuneSelf]bool) {
	for c := byte(0x20); c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// AppendFloat appends f as a JSON number, byte for byte what encoding/json
// writes for a float64: the shortest decimal that reads back as f, in plain
// notation for 1e-6 <= |f| < 1e21 (and 0) and in exponent notation otherwise
// (1e+21, 1e-7: ECMAScript's Number.prototype.toString cutoffs). NaN and
// infinities, which JSON cannot write and encoding/json refuses, are written
// as null: a reader sees a missing value, which is what Feast's clients get
// for a NaN feature.
func AppendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	return appendNumber(dst, f)
}

// AppendFloatPoint is AppendFloat, except that a whole number written without
// an exponent gets ".0" (1300.0, -2.0, 0.0, as Python's json module writes a
// float): clients that type numbers by their text, such as Python's json,
// then decode a float64 as a float even when it holds a whole number. The
// number is the same as encoding/json's (equal once decoded), not its bytes.
func AppendFloatPoint(dst []byte, f float64) []byte {
	dst = AppendFloat(dst, f)
	// Whole and below 1e21: written in plain notation, as digits only. False
	// for NaN (NaN != NaN) and infinities.
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		dst = append(dst, '.', '0')
	}
	return dst
}

// AppendProtoFloat is AppendFloat, except that NaN and infinities are written
// the way protobuf's JSON mapping writes a double: the strings "NaN",
// "Infinity" and "-Infinity" (what MLflow's server sends, and its client reads
// back as the float).
func AppendProtoFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	return appendNumber(dst, f)
}

// AppendFloat32 is AppendFloat for a float32, byte for byte what
// encoding/json writes for one: the shortest decimal that reads back as the
// same float32 (0.1, not the float64 0.10000000149011612); null for NaN and
// infinities.
func AppendFloat32(dst []byte, f float32) []byte {
	f64 := float64(f)
	if math.IsNaN(f64) || math.IsInf(f64, 0) {
		return append(dst, "null"...)
	}
	return appendNumberBits(dst, f64, 32)
}

// appendNumber writes the finite f as encoding/json writes a float64.
func appendNumber(dst []byte, f float64) []byte { return appendNumberBits(dst, f, 64) }

// appendNumberBits writes the finite f as encoding/json writes a float of
// that many bits (32 or 64).
func appendNumberBits(dst []byte, f float64, bits int) []byte {
	abs := math.Abs(f)
	plain := abs < 1e21 && (abs >= 1e-6 || abs == 0)
	if bits == 32 {
		// encoding/json compares a float32 with the cutoffs as float32s:
		// the float32 nearest 1e-6 is below the float64 1e-6.
		plain = float32(abs) < 1e21 && (float32(abs) >= 1e-6 || abs == 0)
	}
	if plain {
		return strconv.AppendFloat(dst, f, 'f', -1, bits)
	}
	dst = strconv.AppendFloat(dst, f, 'e', -1, bits)
	// A one-digit negative exponent comes padded (1e-07): encoding/json drops
	// the zero. Positive exponents here are at least 21.
	if n := len(dst); dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
		dst[n-2] = dst[n-1]
		dst = dst[:n-1]
	}
	return dst
}

// AppendInt appends v as a JSON number (as encoding/json writes an int64).
func AppendInt(dst []byte, v int64) []byte { return strconv.AppendInt(dst, v, 10) }

// AppendBool appends true or false.
func AppendBool(dst []byte, v bool) []byte { return strconv.AppendBool(dst, v) }

// epoch is protobuf's default Timestamp (seconds and nanos 0) as JSON.
const epoch = `"1970-01-01T00:00:00Z"`

// AppendTimestamp appends t as a JSON string the way protobuf's JSON mapping
// writes a google.protobuf.Timestamp (what Feast's feature server returns):
// RFC 3339 in UTC with a Z, and 0, 3, 6 or 9 fractional digits, the fewest
// that hold t's nanoseconds. The zero time.Time is written as the Unix epoch,
// protobuf's default Timestamp, which is how an unset event time reads on
// Feast's wire. The mapping is defined for years 1 to 9999; t is expected to
// lie in them.
//
// encoding/json writes a time.Time in RFC 3339 too, with the offset of t's
// location and trailing zeros of the fraction trimmed: the two decode to the
// same instant, their bytes differ.
func AppendTimestamp(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, epoch...)
	}
	t = t.UTC()
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, "2006-01-02T15:04:05")
	if ns := t.Nanosecond(); ns != 0 {
		switch {
		case ns%1_000_000 == 0:
			dst = appendFraction(dst, ns/1_000_000, 3)
		case ns%1000 == 0:
			dst = appendFraction(dst, ns/1000, 6)
		default:
			dst = appendFraction(dst, ns, 9)
		}
	}
	return append(dst, 'Z', '"')
}

// appendFraction appends '.' and v as exactly digits decimal digits (v < 10^digits).
func appendFraction(dst []byte, v, digits int) []byte {
	dst = append(dst, '.')
	var buf [9]byte
	for i := digits - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, buf[:digits]...)
}
