package oip

// A fast path for the numbers of a tensor's "data": one pass over a JSON
// number's bytes that checks its grammar and gathers its decimal
// significand and exponent, then the Eisel-Lemire algorithm to the nearest
// float64 (or float32), as strconv.ParseFloat does after its own scan. A
// 200 x 30 request is 6,000 numbers of 17 digits: strconv's scan (readFloat)
// plus this package's token and grammar passes (scalar, jsonNumber) were
// most of the request's decoding time.
//
// The fast path answers only when its answer is certain: a JSON number of
// at most 19 significant digits whose conversion Eisel-Lemire can round
// without ambiguity, in the normal range. Anything else (more digits,
// literals, malformed text, overflow, subnormals) goes to the general path
// (parseFloat), which gives strconv.ParseFloat's value and this package's
// errors: the two paths return the same bits wherever both answer
// (TestFastFloatMatchesParseFloat).
//
// eiselLemire64 and eiselLemire32 follow Go's internal/strconv
// (atofeisel.go, BSD licence), itself after Nigel Tao's and Daniel
// Lemire's implementations (https://nigeltao.github.io/blog/2020/eisel-lemire.html);
// the table of powers of ten is computed exactly with math/big, as Go's
// pow10gen.go does, by a test that writes it (pow10tab.go). Exactly
// representable cases (1.5, 250) take strconv's exact float path first
// (exact64, exact32).

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// fastNumber parses the JSON number at the start of b. It returns the
// value (rounded to float32 when f32, then widened), the number's length,
// and ok; ok false means "take the general path", never that b is wrong.
//
// A number of the shape clients write most, a sign, one to seven integer
// digits and a fraction, no exponent, at most 19 digits in all, with
// wordWindow bytes of b from its start, is read from four words without a
// loop or a call (shortNumber); anything else by the digit loops
// (scanNumber), which read any JSON number the fast path takes. Both give
// the same value.
func fastNumber(b []byte, f32 bool) (v float64, n int, ok bool) {
	if len(b) >= wordWindow {
		if man, exp, neg, n, ok := shortNumber((*[wordWindow]byte)(b)); ok {
			v, ok = toFloat(man, exp, neg, f32)
			return v, n, ok
		}
	}
	return scanNumber(b, f32)
}

// wordWindow is the bytes shortNumber reads from a number's start: a sign,
// a word at the integer part, three at the fraction.
const wordWindow = 1 + 8 + 1 + 24

// shortNumber reads the number at the start of w when it has the common
// shape of fastNumber's comment, and returns its significand (all its
// digits, a leading "0" included), decimal exponent, sign and length; ok
// false when it has another shape (or is no number), for scanNumber.
//
// Go's calling convention saves no register across a call, so the digit
// loops' calls kept b, i and the significand on the stack, reloaded at
// every test: 502 instructions a number (callgrind, BenchmarkFastNumber).
// Here every length is a count of digit bytes in a word, and the digits'
// values are computed from the words beside them.
func shortNumber(w *[wordWindow]byte) (man uint64, exp int, neg bool, n int, ok bool) {
	neg = w[0] == '-'
	s := 0
	if neg {
		s = 1
	}
	iw := binary.LittleEndian.Uint64(w[s:])
	ki := digitRun(iw)
	// One to seven integer digits, no leading zero before another digit:
	// "01" and "-" are the general path's to name.
	if ki == 0 || ki == 8 || ki > 1 && iw&0xff == '0' {
		return 0, 0, false, 0, false
	}
	man = wordDigits(iw, ki)
	n = s + ki
	next := byte(iw >> (8 * uint(ki))) // the byte after the integer part
	if next == '.' {
		f := n + 1
		w0 := binary.LittleEndian.Uint64(w[f:])
		w1 := binary.LittleEndian.Uint64(w[f+8:])
		w2 := binary.LittleEndian.Uint64(w[f+16:])
		k0 := digitRun(w0)
		k1 := digitRun(w1) & -(k0 >> 3) // a word counts when the one before it was all digits
		k2 := digitRun(w2) & -(k1 >> 3)
		kf := k0 + k1 + k2
		if k0 == 0 || k2 == 8 || ki+kf > 19 {
			return 0, 0, false, 0, false // "1.", a longer fraction, or more digits than man holds
		}
		man = man*uint64pow10[k0] + wordDigits(w0, k0)
		man = man*uint64pow10[k1] + wordDigits(w1, k1)
		man = man*uint64pow10[k2] + wordDigits(w2, k2)
		exp = -kf
		n = f + kf
		next = w[n]
	}
	if scalarByte[next] {
		return 0, 0, false, 0, false // an exponent, or the token goes on (1.5x)
	}
	return man, exp, neg, n, true
}

// digitRun is how many of the eight bytes of w (loaded little-endian, the
// first byte low) are ASCII digits before the first that is not.
func digitRun(w uint64) int {
	// A byte is a digit when its high nibble is 3 and adding 6 to it
	// leaves the high nibble 3. A carry out of a byte (from 0xfa and
	// above) only reaches bytes after that non-digit.
	notDigit := (w&0xf0f0f0f0f0f0f0f0 ^ 0x3030303030303030) |
		((w+0x0606060606060606)&0xf0f0f0f0f0f0f0f0 ^ 0x3030303030303030)
	return bits.TrailingZeros64(notDigit) / 8
}

// wordDigits is the value of the first k digits of w (k from 0 to 8):
// moved to the top bytes, zeros below them, they read as eight digits
// with leading zeros.
func wordDigits(w uint64, k int) uint64 {
	return parse8(w << (64 - 8*uint(k)))
}

// toFloat is man * 10^exp, negated when neg, rounded to the nearest
// float64 (or float32, widened, when f32); ok false when none of the exact
// path, Eisel-Lemire and exactBinary can be sure of it.
func toFloat(man uint64, exp int, neg, f32 bool) (float64, bool) {
	if f32 {
		if f, ok := exact32(man, exp, neg); ok {
			return float64(f), true
		}
		if f, ok := eiselLemire32(man, exp, neg); ok {
			return float64(f), true
		}
		return exactBinary(man, exp, neg, true)
	}
	if f, ok := exact64(man, exp, neg); ok {
		return f, true
	}
	if f, ok := eiselLemire64(man, exp, neg); ok {
		return f, true
	}
	return exactBinary(man, exp, neg, false)
}

// exactBinary is man * 10^exp10 (negated when neg) rounded to the nearest
// float64 (float32 when f32) when it is a binary fraction, m / 2^-exp10:
// exp10 from -27 to -1 and man a multiple of 5^-exp10. Eisel-Lemire cannot
// tell such a value from a halfway case (its truncated power of ten leaves
// the product a hair under the value). A float32 widened to a double and
// written out, as tritonclient writes FP32 data ("37.944549560546875"), is
// one: one number in seven of BenchmarkCodec's FP32 request took strconv's
// slow path for it. The conversion of m rounds once, to nearest even, and
// the division by a power of two (the quotient at least 2^-27, a normal
// number) is exact, so the result is the correctly rounded value, halfway
// cases included.
func exactBinary(man uint64, exp10 int, neg, f32 bool) (float64, bool) {
	if exp10 >= 0 || exp10 < -len(uint64pow5)+1 {
		return 0, false
	}
	p := uint64pow5[-exp10]
	if man%p != 0 {
		return 0, false
	}
	m, d := man/p, uint64(1)<<uint(-exp10)
	f := float64(m) / float64(d)
	if f32 {
		f = float64(float32(m) / float32(d))
	}
	if neg {
		f = -f
	}
	return f, true
}

// uint64pow5 are the powers of five up to 5^27, the largest below 2^64.
var uint64pow5 = func() (t [28]uint64) {
	t[0] = 1
	for i := 1; i < len(t); i++ {
		t[i] = t[i-1] * 5
	}
	return t
}()

// scanNumber is fastNumber for any JSON number, its digits read by loops.
func scanNumber(b []byte, f32 bool) (v float64, n int, ok bool) {
	i := 0
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	var man uint64
	nd := 0 // significant digits in man (leading zeros not counted)
	exp := 0
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		man, nd, i = eightDigits(b, i, man, nd)
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			man = man*10 + uint64(b[i]-'0')
			nd++
		}
	default:
		return 0, 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		if nd == 0 {
			for ; i < len(b) && b[i] == '0'; i++ {
				exp-- // a leading zero of the fraction
			}
		}
		if i < len(b) && b[i] >= '1' && b[i] <= '9' {
			var n int
			man, n, i = eightDigits(b, i, man, nd)
			exp -= n - nd
			nd = n
		}
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			man = man*10 + uint64(b[i]-'0')
			nd++
			exp--
		}
		if i == start {
			return 0, 0, false
		}
	}
	if nd > 19 {
		return 0, 0, false // man overflowed: strconv rounds with its slower paths
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		start, e := i, 0
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if e < 10000 {
				e = e*10 + int(b[i]-'0')
			}
		}
		if i == start {
			return 0, 0, false
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	if i < len(b) && scalarByte[b[i]] {
		return 0, 0, false // the token goes on (1.5x, 1e5.3): the general path names it
	}
	v, ok = toFloat(man, exp, neg, f32)
	return v, i, ok
}

// eightDigits appends the digits at b[i:] to man (holding nd significant
// digits) up to eight at a time, while the significand keeps within 19
// digits (so man cannot overflow); the caller's byte loop takes the rest,
// and the last eight bytes of b. A 17-digit number is three steps instead
// of seventeen. It returns man, its digit count and the index after them.
func eightDigits(b []byte, i int, man uint64, nd int) (uint64, int, int) {
	for i+8 <= len(b) {
		v := binary.LittleEndian.Uint64(b[i:])
		k := min(digitRun(v), 19-nd)
		if k <= 0 {
			break
		}
		man = man*uint64pow10[k] + wordDigits(v, k)
		nd += k
		i += k
		if k < 8 {
			break
		}
	}
	return man, nd, i
}

// parse8 is the value of eight digits loaded little-endian (the first
// digit in the low byte), each byte either an ASCII digit or 0 (a leading
// zero): pairs, then fours, then the eight, each step combining
// neighbours with one multiply.
func parse8(v uint64) uint64 {
	v &= 0x0f0f0f0f0f0f0f0f
	v = v*10 + v>>8 // byte 2k: the pair of digits 2k, 2k+1
	v = v&0x000000ff000000ff*(100+1000000<<32) +
		v>>16&0x000000ff000000ff*(1+10000<<32)
	return v >> 32
}

// uint64pow10 are the powers of ten up to 10^8.
var uint64pow10 = [9]uint64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8}

// exact64 is man * 10^exp10 when both are exact float64 values (man below
// 2^52, |exp10| <= 22), so that one correctly rounded multiplication or
// division gives the nearest float64: numbers like 1.5, which
// Eisel-Lemire's truncated powers leave ambiguous, as strconv does first.
func exact64(man uint64, exp10 int, neg bool) (float64, bool) {
	if man>>52 != 0 || exp10 < -22 || exp10 > 22 {
		return 0, false
	}
	f := float64(man)
	if neg {
		f = -f
	}
	if exp10 >= 0 {
		return f * float64pow10[exp10], true
	}
	return f / float64pow10[-exp10], true
}

// exact32 is exact64 for float32 (man below 2^23, |exp10| <= 10).
func exact32(man uint64, exp10 int, neg bool) (float32, bool) {
	if man>>23 != 0 || exp10 < -10 || exp10 > 10 {
		return 0, false
	}
	f := float32(man)
	if neg {
		f = -f
	}
	if exp10 >= 0 {
		return f * float32pow10[exp10], true
	}
	return f / float32pow10[-exp10], true
}

var (
	float64pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
		1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}
	float32pow10 = [...]float32{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10}
)

const (
	pow10Min = -348
	pow10Max = 347
)

// pow10Tab (pow10tab.go) holds the 128-bit significands of the powers of
// ten from 10^pow10Min to 10^pow10Max, rounded down, scaled so that the
// high bit is set. A table in the source, as Go's strconv has, rather than
// one computed at the first use: the lookup is then one indexed load, where
// the sync.Once in front of a computed one was 22 instructions a number
// (callgrind). TestPow10Table computes it with math/big and writes the file.

// pow10 returns 10^e's 128-bit significand, as a pointer into the table,
// and its binary exponent: 10^e = mant/2^128 * 2^exp. A pointer rather than
// the two words: returned by value, they were copied through the stack
// twice, and eiselLemire's loads of them waited on those stores (7% of
// BenchmarkFastNumber).
func pow10(e int) (mant *[2]uint64, exp int, ok bool) {
	if e < pow10Min || e > pow10Max {
		return nil, 0, false
	}
	// floor(e * log2(10)) for |e| <= 500.
	return &pow10Tab[e-pow10Min], 1 + (e*108853)>>15, true
}

// floatFormat describes an IEEE binary format for eiselLemire.
type floatFormat struct {
	bias     int    // the exponent's bias, negated (-1023)
	mantBits uint   // the stored significand's bits (52)
	expInf   uint64 // the exponent field of Inf and NaN (0x7FF)
	sign     uint64 // the sign bit (1 << 63)
}

var (
	float64Format = floatFormat{bias: -1023, mantBits: 52, expInf: 0x7FF, sign: 1 << 63}
	float32Format = floatFormat{bias: -127, mantBits: 23, expInf: 0xFF, sign: 1 << 31}
)

// eiselLemire64 returns man * 10^exp10 (negated when neg) rounded to the
// nearest float64, or ok false when it cannot be sure of the rounding or
// the result is not a normal number.
func eiselLemire64(man uint64, exp10 int, neg bool) (float64, bool) {
	b, ok := eiselLemire(man, exp10, neg, &float64Format)
	return math.Float64frombits(b), ok
}

// eiselLemire32 is eiselLemire64 for float32.
func eiselLemire32(man uint64, exp10 int, neg bool) (float32, bool) {
	b, ok := eiselLemire(man, exp10, neg, &float32Format)
	return math.Float32frombits(uint32(b)), ok
}

// eiselLemire returns the bits of man * 10^exp10 (negated when neg) rounded
// to the nearest value of format ff, computed with 64 bits whatever the
// format (Go's eiselLemire64 and eiselLemire32 in one).
func eiselLemire(man uint64, exp10 int, neg bool, ff *floatFormat) (uint64, bool) {
	// Every variable shift is masked to 63, which its count never
	// exceeds: without the mask Go adds three instructions to each for the
	// counts of 64 and more (a tenth of the function, callgrind).
	sign := uint64(0)
	if neg {
		sign = ff.sign
	}
	if man == 0 {
		return sign, true
	}
	pow, exp2, ok := pow10(exp10)
	if !ok {
		return 0, false
	}
	// The bits below the result's significand and its rounding bit.
	low := uint(61 - ff.mantBits)
	lowMask := uint64(1)<<(low&63) - 1
	clz := bits.LeadingZeros64(man)
	man <<= uint(clz) & 63
	retExp2 := uint64(exp2+63-ff.bias) - uint64(clz)
	xHi, xLo := bits.Mul64(man, pow[0])
	if xHi&lowMask == lowMask && xLo+man < man {
		yHi, yLo := bits.Mul64(man, pow[1])
		mergedHi, mergedLo := xHi, xLo+yHi
		if mergedLo < xLo {
			mergedHi++
		}
		if mergedHi&lowMask == lowMask && mergedLo+1 == 0 && yLo+man < man {
			return 0, false
		}
		xHi, xLo = mergedHi, mergedLo
	}
	msb := xHi >> 63
	retMantissa := xHi >> ((msb + uint64(low)) & 63)
	retExp2 -= 1 ^ msb
	if xLo == 0 && xHi&lowMask == 0 && retMantissa&3 == 1 {
		return 0, false // half way between two values
	}
	retMantissa += retMantissa & 1
	retMantissa >>= 1
	if retMantissa>>((ff.mantBits+1)&63) > 0 {
		retMantissa >>= 1
		retExp2++
	}
	if retExp2-1 >= ff.expInf-1 {
		return 0, false // subnormal, or beyond the largest finite value
	}
	mb := ff.mantBits & 63
	return sign | retExp2<<mb | retMantissa&(1<<mb-1), true
}
