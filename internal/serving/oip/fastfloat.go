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
// the table of powers of ten is computed once, exactly, with math/big, as
// Go's pow10gen.go does. Exactly representable cases (1.5, 250) take
// strconv's exact float path first (exact64, exact32).

import (
	"encoding/binary"
	"math"
	"math/big"
	"math/bits"
	"sync"
)

// fastNumber parses the JSON number at the start of b. It returns the
// value (rounded to float32 when f32, then widened), the number's length,
// and ok; ok false means "take the general path", never that b is wrong.
func fastNumber(b []byte, f32 bool) (v float64, n int, ok bool) {
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
	if f32 {
		if f, ok := exact32(man, exp, neg); ok {
			return float64(f), i, true
		}
		f, ok := eiselLemire32(man, exp, neg)
		return float64(f), i, ok
	}
	if f, ok := exact64(man, exp, neg); ok {
		return f, i, true
	}
	f, ok := eiselLemire64(man, exp, neg)
	return f, i, ok
}

// eightDigits appends the digits at b[i:] to man (holding nd significant
// digits) up to eight at a time, while the significand keeps within 19
// digits (so man cannot overflow); the caller's byte loop takes the rest,
// and the last eight bytes of b. A 17-digit number is three steps instead
// of seventeen. It returns man, its digit count and the index after them.
func eightDigits(b []byte, i int, man uint64, nd int) (uint64, int, int) {
	for i+8 <= len(b) {
		v := binary.LittleEndian.Uint64(b[i:])
		// A byte is a digit when its high nibble is 3 and adding 6 to it
		// leaves the high nibble 3. A carry out of a byte (from 0xfa and
		// above) only reaches bytes after that non-digit.
		notDigit := (v&0xf0f0f0f0f0f0f0f0 ^ 0x3030303030303030) |
			((v+0x0606060606060606)&0xf0f0f0f0f0f0f0f0 ^ 0x3030303030303030)
		k := bits.TrailingZeros64(notDigit) / 8 // leading digits, 0 to 8
		k = min(k, 19-nd)
		if k <= 0 {
			break
		}
		// The k digits to the top bytes, zeros below them: the same value
		// as eight digits with leading zeros.
		man = man*uint64pow10[k] + parse8(v<<(64-8*k))
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

// pow10Tab holds the 128-bit significands of the powers of ten from
// 10^pow10Min to 10^pow10Max, rounded down, scaled so that the high bit is
// set (pow10Mantissas computes them once).
var pow10Tab struct {
	once sync.Once
	tab  [pow10Max - pow10Min + 1][2]uint64
}

func pow10Mantissas() *[pow10Max - pow10Min + 1][2]uint64 {
	pow10Tab.once.Do(func() {
		ten := big.NewInt(10)
		for e := pow10Min; e <= pow10Max; e++ {
			p := new(big.Int).Exp(ten, big.NewInt(int64(max(e, -e))), nil)
			var m *big.Int
			if e >= 0 {
				if l := p.BitLen(); l <= 128 {
					m = p.Lsh(p, uint(128-l))
				} else {
					m = p.Rsh(p, uint(l-128))
				}
			} else {
				// 2^(127+l) / 10^-e lies in (2^127, 2^128): 10^-e is no
				// power of two.
				m = new(big.Int).Lsh(big.NewInt(1), uint(127+p.BitLen()))
				m.Quo(m, p)
			}
			lo := new(big.Int).And(m, new(big.Int).SetUint64(math.MaxUint64)).Uint64()
			hi := m.Rsh(m, 64).Uint64()
			pow10Tab.tab[e-pow10Min] = [2]uint64{hi, lo}
		}
	})
	return &pow10Tab.tab
}

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
	return &pow10Mantissas()[e-pow10Min], 1 + (e*108853)>>15, true
}

// floatFormat describes an IEEE binary format for eiselLemire.
type floatFormat struct {
	bias     int    // the exponent's bias, negated (-1023)
	mantBits uint   // the stored significand's bits (52)
	expInf   uint64 // the exponent field of Inf and NaN (0x7FF)
}

var (
	float64Format = floatFormat{bias: -1023, mantBits: 52, expInf: 0x7FF}
	float32Format = floatFormat{bias: -127, mantBits: 23, expInf: 0xFF}
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
	sign := uint64(0)
	if neg {
		sign = 1 << (ff.mantBits + uint(bits.Len64(ff.expInf)))
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
	lowMask := uint64(1)<<low - 1
	clz := bits.LeadingZeros64(man)
	man <<= uint(clz)
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
	retMantissa := xHi >> (msb + uint64(low))
	retExp2 -= 1 ^ msb
	if xLo == 0 && xHi&lowMask == 0 && retMantissa&3 == 1 {
		return 0, false // half way between two values
	}
	retMantissa += retMantissa & 1
	retMantissa >>= 1
	if retMantissa>>(ff.mantBits+1) > 0 {
		retMantissa >>= 1
		retExp2++
	}
	if retExp2-1 >= ff.expInf-1 {
		return 0, false // subnormal, or beyond the largest finite value
	}
	return sign | retExp2<<ff.mantBits | retMantissa&(1<<ff.mantBits-1), true
}
