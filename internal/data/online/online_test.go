package online

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"
)

func TestKeys(t *testing.T) {
	tests := []struct {
		parts []any
		str   string
	}{
		{[]any{"paris"}, `("paris")`},
		{[]any{int64(-3)}, `(-3)`},
		{[]any{42, "a b"}, `(42, "a b")`},
		{[]any{int32(7), ""}, `(7, "")`},
	}
	for _, tt := range tests {
		k, err := KeyOf(tt.parts...)
		if err != nil {
			t.Fatalf("KeyOf(%v): %v", tt.parts, err)
		}
		if k.String() != tt.str {
			t.Errorf("KeyOf(%v).String() = %s, want %s", tt.parts, k, tt.str)
		}
		parts, err := k.Parts()
		if err != nil || len(parts) != len(tt.parts) {
			t.Fatalf("Parts of %s: %v, %v", k, parts, err)
		}
	}
	if MustKey("1") == MustKey(1) || MustKey("a", "bc") == MustKey("ab", "c") {
		t.Error("distinct keys encode the same")
	}
	// Byte order of int64 keys is numeric order.
	if !(MustKey(-5) < MustKey(3) && MustKey(3) < MustKey(300)) {
		t.Error("int64 keys do not sort numerically")
	}
	for _, bad := range []Key{"", "x", "i123", "s\x05ab"} {
		if err := bad.Check(); !errors.Is(err, ErrInvalid) {
			t.Errorf("Check(%q) = %v, want ErrInvalid", string(bad), err)
		}
	}
	if _, err := KeyOf(1.5); !errors.Is(err, ErrInvalid) {
		t.Errorf("KeyOf(1.5) = %v, want ErrInvalid", err)
	}
	if _, err := KeyOf(); !errors.Is(err, ErrInvalid) {
		t.Errorf("KeyOf() = %v, want ErrInvalid", err)
	}
}

func TestValueEncoding(t *testing.T) {
	values := []Value{
		Null, Int64(0), Int64(math.MinInt64), Int64(math.MaxInt64), Float64(math.Inf(-1)),
		Float64(3.25), String(""), String("héllo\x00"), Bool(true), Bool(false),
		Time(time.Date(2262, 1, 1, 0, 0, 0, 1, time.UTC)), Time(time.Unix(0, -1)),
	}
	var b []byte
	for _, v := range values {
		b = AppendValue(b, v)
	}
	for i, want := range values {
		got, n, err := DecodeValue(b, false)
		if err != nil || !got.Equal(want) {
			t.Fatalf("value %d: decoded %v (%v), want %v", i, got, err, want)
		}
		b = b[n:]
	}
	if len(b) != 0 {
		t.Errorf("%d bytes left over", len(b))
	}
	for _, bad := range [][]byte{{}, {byte(KindInt64)}, {byte(KindFloat64), 1, 2}, {byte(KindString), 5, 'a'}, {200}, {byte(KindMissing)}} {
		if _, _, err := DecodeValue(bad, false); !errors.Is(err, ErrFormat) {
			t.Errorf("DecodeValue(%v) = %v, want ErrFormat", bad, err)
		}
	}
}

func TestValueOf(t *testing.T) {
	when := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	tests := []struct {
		in   any
		kind Kind
		back any
	}{
		{nil, KindNull, nil},
		{int64(5), KindInt64, int64(5)},
		{int32(-5), KindInt64, int64(-5)},
		{float32(0.5), KindFloat64, 0.5},
		{"s", KindString, "s"},
		{true, KindBool, true},
		{false, KindBool, false},
		{when, KindTime, when.UTC()},
	}
	for _, tt := range tests {
		v, err := ValueOf(tt.in)
		if err != nil || v.Kind() != tt.kind || v.Any() != tt.back {
			t.Errorf("ValueOf(%v) = %v (%s, %v), want kind %s, back %v", tt.in, v, v.Kind(), err, tt.kind, tt.back)
		}
	}
	for _, bad := range []any{uint64(1), []int{1}, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if _, err := ValueOf(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValueOf(%v) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestInternedStringsStayCorrect(t *testing.T) {
	// More distinct strings than cache slots, read twice and concurrently: every
	// decoded string must be the one encoded, whatever the slots hold.
	var enc [][]byte
	for i := range 3 * internSlots {
		enc = append(enc, AppendValue(nil, String(fmt.Sprintf("v%d", i%(internSlots+7)))))
	}
	done := make(chan error, 2)
	for range 2 {
		go func() {
			for i, b := range enc {
				v, _, err := DecodeValue(b, false)
				if want := fmt.Sprintf("v%d", i%(internSlots+7)); err != nil || v.Str() != want {
					done <- fmt.Errorf("value %d: %q (%v), want %q", i, v.Str(), err, want)
					return
				}
			}
			done <- nil
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestLayouts(t *testing.T) {
	features := []string{"a", "b", "c"}
	l, err := DecodeLayout(AppendLayout(nil, features))
	if err != nil || fmt.Sprint(l.Features()) != "[a b c]" {
		t.Fatalf("layout round trip: %v, %v", l, err)
	}
	for _, bad := range [][]byte{nil, {9, 1, 1, 'a'}, {FormatVersion, 2, 1, 'a'}, append(AppendLayout(nil, features), 0)} {
		if _, err := DecodeLayout(bad); !errors.Is(err, ErrFormat) {
			t.Errorf("DecodeLayout(%v) = %v, want ErrFormat", bad, err)
		}
	}
	var row []byte
	for _, v := range []Value{Int64(1), String("skipped"), Float64(2.5)} {
		row = AppendValue(row, v)
	}
	var p Projection
	p.Project(l, []string{"c", "zz", "a"})
	out := []Value{Missing, Missing, Missing}
	if _, err := DecodeValues(row, l, &p, out, nil); err != nil {
		t.Fatal(err)
	}
	if out[0] != Float64(2.5) || !out[1].IsMissing() || out[2] != Int64(1) {
		t.Errorf("projected values %v", out)
	}
	if _, err := DecodeValues(row[:len(row)-1], l, &p, out, nil); !errors.Is(err, ErrFormat) {
		t.Errorf("truncated row: %v, want ErrFormat", err)
	}
	if _, err := DecodeValues(append(row, 0), l, &p, out, nil); !errors.Is(err, ErrFormat) {
		t.Errorf("row with trailing bytes: %v, want ErrFormat", err)
	}
}
