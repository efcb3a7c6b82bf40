package online

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Key is an encoded entity key: the values of a set's join keys, in join_keys
// order, each tagged with its type, so the string "1" and the integer 1 are
// different keys and composite keys cannot collide ("a","bc" vs "ab","c").
// Join-key values are strings or int64s. Keys are built with KeyOf or, without
// allocating per part, with AppendStringKey / AppendIntKey into a reused buffer.
//
// The encoding is part of the stored format: a string part is 's', its length as
// a uvarint, and its bytes; an int64 part is 'i' and 8 big-endian bytes of the
// value with the sign bit flipped (so byte order is numeric order).
type Key string

const (
	keyString = 's'
	keyInt    = 'i'
)

// AppendStringKey appends a string join-key value to an encoded key.
func AppendStringKey(dst []byte, s string) []byte {
	dst = append(dst, keyString)
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// AppendIntKey appends an int64 join-key value to an encoded key.
func AppendIntKey(dst []byte, v int64) []byte {
	dst = append(dst, keyInt)
	return binary.BigEndian.AppendUint64(dst, uint64(v)^(1<<63))
}

// KeyOf encodes join-key values: each a string or an integer (int, int32, int64).
func KeyOf(parts ...any) (Key, error) {
	var b []byte
	for i, p := range parts {
		switch v := p.(type) {
		case string:
			b = AppendStringKey(b, v)
		case int64:
			b = AppendIntKey(b, v)
		case int:
			b = AppendIntKey(b, int64(v))
		case int32:
			b = AppendIntKey(b, int64(v))
		default:
			return "", fmt.Errorf("%w: key part %d is %T, want string or int64", ErrInvalid, i, p)
		}
	}
	if len(b) == 0 {
		return "", fmt.Errorf("%w: empty key", ErrInvalid)
	}
	return Key(b), nil
}

// MustKey is KeyOf for literals in tests and examples; it panics on an error.
func MustKey(parts ...any) Key {
	k, err := KeyOf(parts...)
	if err != nil {
		panic(err)
	}
	return k
}

// Parts decodes the key into its values (string or int64).
func (k Key) Parts() ([]any, error) {
	var out []any
	err := k.walk(func(s string, i int64, isInt bool) {
		if isInt {
			out = append(out, i)
		} else {
			out = append(out, s)
		}
	})
	return out, err
}

// Check reports whether k is a well-formed, non-empty key.
func (k Key) Check() error {
	return k.walk(func(string, int64, bool) {})
}

func (k Key) walk(fn func(s string, i int64, isInt bool)) error {
	if len(k) == 0 {
		return fmt.Errorf("%w: empty key", ErrInvalid)
	}
	for rest := string(k); len(rest) > 0; {
		switch rest[0] {
		case keyInt:
			if len(rest) < 9 {
				return fmt.Errorf("%w: key %q: truncated int64 part", ErrInvalid, string(k))
			}
			fn("", int64(binary.BigEndian.Uint64([]byte(rest[1:9]))^(1<<63)), true)
			rest = rest[9:]
		case keyString:
			n, w := binary.Uvarint([]byte(rest[1:min(len(rest), 11)]))
			if w <= 0 || uint64(len(rest)-1-w) < n {
				return fmt.Errorf("%w: key %q: truncated string part", ErrInvalid, string(k))
			}
			fn(rest[1+w:1+w+int(n)], 0, false)
			rest = rest[1+w+int(n):]
		default:
			return fmt.Errorf("%w: key %q: unknown part tag %q", ErrInvalid, string(k), rest[0])
		}
	}
	return nil
}

// String renders the key for messages: (42, "paris").
func (k Key) String() string {
	var b strings.Builder
	b.WriteByte('(')
	n := 0
	err := k.walk(func(s string, i int64, isInt bool) {
		if n > 0 {
			b.WriteString(", ")
		}
		n++
		if isInt {
			b.WriteString(strconv.FormatInt(i, 10))
		} else {
			b.WriteString(strconv.Quote(s))
		}
	})
	if err != nil {
		return fmt.Sprintf("(malformed key %q)", string(k))
	}
	b.WriteByte(')')
	return b.String()
}
