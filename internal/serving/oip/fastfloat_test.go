package oip

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// fastProbes returns number texts of every kind a client writes: shortest
// round-trip reprs of random doubles and floats (Python's, tritonclient's,
// 17 digits or fewer), fixed precisions, random digit strings of 1 to 22
// digits with leading zeros and exponents across the whole range, and the
// edges (zeros, the largest and smallest normals, subnormals, overflow,
// halfway cases).
func fastProbes(n int, seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, 3))
	out := []string{"0", "-0", "0.0", "-0.0", "0e5", "0.000", "1", "-1", "0.1", "0.5", "1e0", "1E+2", "1e-2", "123456789012345678",
		"1234567890123456789", "12345678901234567890", "9007199254740993", "9007199254740992.5", "4.9406564584124654e-324",
		"2.2250738585072014e-308", "2.2250738585072011e-308", "1.7976931348623157e308", "1.7976931348623159e308", "1e309", "1e-400",
		"3.4028234663852886e38", "3.4028236e38", "1.1754943508222875e-38", "1.401298464324817e-45", "0.1000000000000000055511151231257827",
		"100000000000000000000000", "7.038531e-26", "1.00000017881393432617187499", "1.00000005960464477539062500"}
	digits := func(k int) string {
		var b strings.Builder
		for range k {
			b.WriteByte(byte('0' + r.IntN(10)))
		}
		return b.String()
	}
	for len(out) < n {
		switch r.IntN(7) {
		case 6: // a float32 widened and written as a double, as tritonclient writes FP32 data
			out = append(out, strconv.FormatFloat(float64(math.Float32frombits(r.Uint32())), 'g', -1, 64))
		case 0:
			out = append(out, strconv.FormatFloat(math.Float64frombits(r.Uint64()), 'g', -1, 64))
		case 1:
			out = append(out, strconv.FormatFloat(r.NormFloat64()*math.Pow(10, float64(r.IntN(40)-20)), 'g', -1, 64))
		case 2:
			out = append(out, strconv.FormatFloat(float64(math.Float32frombits(r.Uint32())), 'g', -1, 32))
		case 3:
			out = append(out, strconv.FormatFloat(r.Float64()*1000, 'f', r.IntN(20), 64))
		default: // an integer part, a fraction with leading zeros, 1 to 40 digits in all
			s := strings.TrimLeft(digits(1+r.IntN(20)), "0")
			if s == "" {
				s = "0"
			}
			if r.IntN(3) > 0 {
				s += "." + strings.Repeat("0", r.IntN(4)) + digits(1+r.IntN(20))
			}
			if r.IntN(2) == 0 {
				s += fmt.Sprintf("e%d", r.IntN(700)-350)
			}
			if r.IntN(2) == 0 {
				s = "-" + s
			}
			out = append(out, s)
		}
	}
	return out
}

// Wherever the fast path answers, it answers strconv.ParseFloat's value
// bit for bit, for float64 and float32, and it reads the whole number; and
// it answers for nearly all of what clients send (the shortest reprs of
// doubles), else it would be no fast path.
func TestFastFloatMatchesParseFloat(t *testing.T) {
	probes := fastProbes(100_000, 1)
	for e := pow10Min - 2; e <= pow10Max+2; e++ { // every entry of the table
		probes = append(probes, fmt.Sprintf("1e%d", e), fmt.Sprintf("7.2057594037927933e%d", e), fmt.Sprintf("-98765432109876543e%d", e))
	}
	for _, f32 := range []bool{false, true} {
		bitSize, answered := 64, 0
		if f32 {
			bitSize = 32
		}
		for k, s := range probes {
			want, err := strconv.ParseFloat(s, bitSize)
			// The number inside a list, followed by digits after a comma:
			// the digits are read eight at a time where eight bytes follow,
			// and the read stops at the number's end either way. Each
			// number is also read with wordWindow bytes after its start,
			// where the common shapes take shortNumber.
			for _, in := range []string{s + []string{"", ",12345678", "]", ", 7"}[k%4], s + "," + strings.Repeat("1234567890", 4)} {
				got, n, ok := fastNumber([]byte(in), f32)
				if !ok {
					continue
				}
				answered++
				if err != nil {
					t.Fatalf("%s (float%d): fast path answered %v, ParseFloat: %v", in, bitSize, got, err)
				}
				if n != len(s) || math.Float64bits(got) != math.Float64bits(want) {
					t.Fatalf("%s (float%d): fast path %v (%d bytes read), ParseFloat %v", in, bitSize, got, n, want)
				}
			}
		}
		if answered < len(probes) { // half of the two reads of each
			t.Errorf("float%d: the fast path answered %d of %d reads", bitSize, answered, 2*len(probes))
		}
		t.Logf("float%d: fast path answered %d of %d reads", bitSize, answered, 2*len(probes))
	}
	// Python's repr of random doubles (17 digits or fewer, exponents in the
	// normal range): every one takes the fast path.
	r := rand.New(rand.NewPCG(4, 5))
	for range 50_000 {
		s := strconv.FormatFloat(r.NormFloat64()*math.Pow(10, float64(r.IntN(20)-10)), 'g', -1, 64)
		if _, _, ok := fastNumber([]byte(s), false); !ok {
			t.Fatalf("%s: the fast path declined a 17-digit number", s)
		}
		if _, _, ok := fastNumber([]byte(s+strings.Repeat(" ", wordWindow)), false); !ok {
			t.Fatalf("%s: the fast path declined a 17-digit number inside a body", s)
		}
	}
}

// shortNumber takes the shapes clients write most and leaves the others to
// scanNumber; what it takes, it reads as scanNumber does
// (TestFastFloatMatchesParseFloat compares both with ParseFloat).
func TestShortNumberShapes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		take bool
	}{
		{"-0.25392231576178065", true}, {"1.0971606357761534", true}, {"-123.45678901234567", true},
		{"0", true}, {"-0", true}, {"7", true}, {"1234567", true}, {"1234567.5", true}, {"0.000123", true},
		{"1.2345678901234567]", true}, {"0.123456789012345678", true},
		{"12345678", false},              // eight integer digits
		{"0.1234567890123456789", false}, // twenty digits with the leading 0
		{"1.5e3", false}, {"1E5", false}, {"1.", false}, {"01.5", false}, {"-", false}, {".5", false},
		{"1.5x", false}, {"NaN", false}, {"", false}, {"+1", false},
	} {
		b := []byte(tc.in + strings.Repeat(",", wordWindow))
		_, _, _, n, ok := shortNumber((*[wordWindow]byte)(b))
		if ok != tc.take {
			t.Errorf("%q: shortNumber took it: %v, want %v", tc.in, ok, tc.take)
			continue
		}
		if want := len(strings.TrimSuffix(tc.in, "]")); ok && n != want {
			t.Errorf("%q: read %d bytes, want %d", tc.in, n, want)
		}
	}
}

// exactBinary answers exactly the decimals that are binary fractions, with
// ParseFloat's value, halfway cases rounded to even, and declines the rest.
func TestExactBinary(t *testing.T) {
	for _, tc := range []struct {
		man    uint64
		exp    int
		answer bool
	}{
		{37944549560546875, -15, true},  // a float32 written with 17 digits
		{5, -1, true},                   // 0.5
		{45035996273704965, -1, true},   // 2^52 + 0.5: halfway for float64, to even
		{9007199254740993, 0, false},    // an integer: not its case
		{1, -1, false},                  // 0.1: no binary fraction
		{37944549560546876, -15, false}, // a multiple of 2 but not of 5^15
		{1, -28, false},                 // beyond 5^27
		{16777217, -1, false},           // 1677721.7
		{167772165, -1, true},           // 16777216.5: halfway for float32, to even
	} {
		for _, f32 := range []bool{false, true} {
			got, ok := exactBinary(tc.man, tc.exp, true, f32)
			if ok != tc.answer {
				t.Errorf("%de%d (f32 %v): answered %v, want %v", tc.man, tc.exp, f32, ok, tc.answer)
				continue
			}
			if !ok {
				continue
			}
			bitSize := 64
			if f32 {
				bitSize = 32
			}
			want, err := strconv.ParseFloat(fmt.Sprintf("-%de%d", tc.man, tc.exp), bitSize)
			if err != nil || math.Float64bits(got) != math.Float64bits(want) {
				t.Errorf("%de%d (f32 %v): %v, ParseFloat %v (%v)", tc.man, tc.exp, f32, got, want, err)
			}
		}
	}
}

// The fast path reads a number up to its end and declines anything that
// is not a complete JSON number, leaving it to the general path.
func TestFastFloatDeclines(t *testing.T) {
	for _, tc := range []struct {
		in string
		n  int // bytes read; -1: declined
	}{
		{"1.5,2", 3}, {"1.5]", 3}, {"-2e3 ", 4}, {"0,", 1},
		{"", -1}, {"-", -1}, {"+1", -1}, {".5", -1}, {"1.", -1}, {"1.e5", -1}, {"1e", -1}, {"1e+", -1},
		{"1.5x", -1}, {"1e5.3", -1}, {"01", -1}, {"NaN", -1}, {"Infinity", -1}, {"null", -1}, {"0x10", -1},
		{"1_000", 1}, {"12345678901234567890", -1}, {"1e400", -1}, {"4e-320", -1},
	} {
		// Alone, and followed by the rest of a body (shortNumber's shapes).
		for _, in := range []string{tc.in, tc.in + strings.Repeat(" ", wordWindow)} {
			_, n, ok := fastNumber([]byte(in), false)
			if !ok {
				n = -1
			}
			if n != tc.n {
				t.Errorf("%q: read %d bytes (ok %v), want %d", in, n, ok, tc.n)
			}
		}
	}
}

// A data array that mixes numbers the fast path takes with ones it leaves
// decodes to ParseFloat's values; a malformed number is refused with the
// input's name and the element's position, whichever path met it.
func TestDecodeDataFastAndGeneral(t *testing.T) {
	probes := fastProbes(2000, 7)
	var keep []string
	for _, s := range probes {
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			keep = append(keep, s)
		}
	}
	keep = append(keep, "NaN", "Infinity", "-Infinity", "null", `"NaN"`, "1234567890123456789012345", "4e-320")
	// Spaced, every element goes through the list's loop; with lone
	// commas, item reads runs of plain numbers itself and hands the rest
	// back.
	for _, sep := range []string{" ,\n", ","} {
		body := `{"inputs":[{"name":"x","shape":[` + strconv.Itoa(len(keep)) + `],"datatype":"FP64","data":[` + strings.Join(keep, sep) + `]}]}`
		req, err := decode(t, []byte(body), -1)
		if err != nil {
			t.Fatalf("separator %q: %v", sep, err)
		}
		for i, s := range keep {
			want, _ := strconv.ParseFloat(strings.Trim(s, `"`), 64)
			if s == "null" {
				want = math.NaN()
			}
			if got := req.Inputs[0].FP64[i]; math.Float64bits(got) != math.Float64bits(want) && !(got != got && want != want) {
				t.Fatalf("separator %q: element %d %s: %v, want %v", sep, i, s, got, want)
			}
		}
	}
	// shape is "4" unless given: nested data needs a shape it matches.
	for _, tc := range []struct{ data, want, shape string }{
		{`[1.5,2.x,3]`, `inputs[0] "x": data: element 1: want a number (FP64), got 2.x`, ""},
		{`[1.5,2,3e]`, `inputs[0] "x": data: element 2: want a number (FP64), got 3e`, ""},
		{`[0.25,01]`, `inputs[0] "x": data: element 1: want a number (FP64), got 01`, ""},
		{`[1,+2]`, `inputs[0] "x": data: element 1: want a number (FP64), got +2`, ""},
		{`[1,2,]`, `inputs[0] "x": data: element 2: malformed JSON at byte 5: want a value, got ']'`, ""},
		{`[1,2,3,4,5]`, `inputs[0] "x": shape [4] has 4 elements, data has more`, ""},
		{`[[1,2],[3,4,5]]`, `inputs[0] "x": shape [2,2] has 4 elements, data has more`, "2,2"},
		{`[1.5, 2.x, 3]`, `inputs[0] "x": data: element 1: want a number (FP64), got 2.x`, ""},
		{`[1.5, 2, 3e]`, `inputs[0] "x": data: element 2: want a number (FP64), got 3e`, ""},
		{`[0.25, 01]`, `inputs[0] "x": data: element 1: want a number (FP64), got 01`, ""},
		{`[[1, 2], [3, -]]`, `inputs[0] "x": data: element 3: want a number (FP64), got -`, "2,2"},
		{`[1, +2]`, `inputs[0] "x": data: element 1: want a number (FP64), got +2`, ""},
		{`[1, .5]`, `inputs[0] "x": data: element 1: want a number (FP64), got .5`, ""},
		{`[1, 1e999]`, `inputs[0] "x": data: element 1: 1e999 is out of FP64's range`, ""},
		{`[1 2]`, `inputs[0] "x": data: malformed JSON at byte 3: want ',' or ']'`, ""},
	} {
		shape := cmp.Or(tc.shape, "4")
		body := `{"inputs":[{"name":"x","shape":[` + shape + `],"datatype":"FP64","data":` + tc.data + `}]}`
		_, err := decode(t, []byte(body), -1)
		if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("data %s: err = %v\nwant ErrInvalidInput containing %q", tc.data, err, tc.want)
		}
	}
}

// BenchmarkFastNumber parses the 6,000 numbers of BenchmarkCodec's FP64
// request one after the other, as item does, without the list's scanning:
//
//	go test -run '^$' -bench FastNumber ./internal/serving/oip/
func BenchmarkFastNumber(b *testing.B) {
	body, _ := benchRequest(FP64, false)
	start := strings.Index(string(body), `"data":[`) + len(`"data":[`)
	var sum float64
	for b.Loop() {
		for i := start; body[i] != ']'; i++ {
			f, n, ok := fastNumber(body[i:], false)
			if !ok {
				b.Fatalf("declined %.30s", body[i:])
			}
			sum += f
			i += n
			if body[i] == ']' {
				break
			}
		}
	}
	if math.IsNaN(sum) {
		b.Fatal("NaN")
	}
}
