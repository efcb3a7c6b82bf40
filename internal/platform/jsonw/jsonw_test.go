package jsonw

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// The fuzzers compare each encoder with encoding/json:
//
//	go test -run '^$' -fuzz FuzzAppendString -fuzztime 60s ./internal/platform/jsonw/
//	go test -run '^$' -fuzz FuzzAppendFloat -fuzztime 60s ./internal/platform/jsonw/
//	go test -run '^$' -fuzz FuzzAppendTimestamp -fuzztime 60s ./internal/platform/jsonw/
//
// Their seeds are the table cases below and testdata/fuzz/<Fuzzer>/; plain
// `go test` runs every seed.

// prefix is what each encoder is given to append to: it must stay untouched.
const prefix = "x:"

// stringCases are strings at every branch of AppendString.
var stringCases = []string{
	"", "plain ascii", `"`, `\`, `a"b\c`, "\b\f\n\r\t", "\x00\x01\x1f\x7f", "<script>&</script>",
	"é ü ñ 日本 🙂", "\u2028\u2029", "a\u2028b\u2029c", "\u2027\u202a", "\xff", "\xc3", "\xc3(", "\xe2\x80",
	"\xed\xa0\x80", // a UTF-16 surrogate: not valid UTF-8, one \ufffd per byte
	"\xf4\x90\x80\x80", "ok\xfe\xffok", "\ufffd", "tab\there", strings.Repeat("<&>", 50),
}

func TestAppendStringCases(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{`a"b\c`, `"a\"b\\c"`},
		{"\b\f\n\r\t\x00\x1f\x7f", `"\b\f\n\r\t\u0000\u001f` + "\x7f" + `"`},
		{"<a&b>", `"\u003ca\u0026b\u003e"`},
		{"é\u2028\u2029", `"é\u2028\u2029"`},
		{"a\xffb\xc3", `"a\ufffdb\ufffd"`},
	}
	for _, tt := range tests {
		if got := string(AppendString([]byte(prefix), tt.in)); got != prefix+tt.want {
			t.Errorf("AppendString(%q) = %s, want %s", tt.in, got, prefix+tt.want)
		}
	}
	for _, s := range stringCases {
		checkString(t, s)
	}
}

// checkString: AppendString writes the bytes json.Marshal writes for s.
func checkString(t *testing.T, s string) {
	t.Helper()
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := AppendString([]byte(prefix), s); !bytes.Equal(got, append([]byte(prefix), want...)) {
		t.Errorf("AppendString(%q) = %s, encoding/json writes %s", s, got, want)
	}
}

// FuzzAppendString: byte-equal to encoding/json for every string.
func FuzzAppendString(f *testing.F) {
	for _, s := range stringCases {
		f.Add(s)
	}
	f.Fuzz(checkString)
}

// floatCases are doubles at the edges of the notation switch and beyond.
var floatCases = []float64{
	0, math.Copysign(0, -1), 1, -2, 0.1, 1.0 / 3, 1300, 1e6, 1234567, 123456789012345678,
	1e20, 1e21, 9.999999999999999e20, -1e21, 1e22, 1e100, 1e300, math.MaxFloat64, -math.MaxFloat64,
	1e-6, 9.999999999999999e-7, 1e-7, -1e-7, 1.5e-9, 1e-10, 1e-100, 5e-324, math.SmallestNonzeroFloat64,
	0.000123, 2.5e-5, 1 << 53, 1<<53 + 1, 9007199254740993,
	math.NaN(), math.Inf(1), math.Inf(-1),
}

func TestAppendFloatCases(t *testing.T) {
	tests := []struct {
		f                   float64
		plain, point, proto string
	}{
		{0, "0", "0.0", "0"},
		{math.Copysign(0, -1), "-0", "-0.0", "-0"},
		{1300, "1300", "1300.0", "1300"},
		{-2, "-2", "-2.0", "-2"},
		{0.1, "0.1", "0.1", "0.1"},
		{1e6, "1000000", "1000000.0", "1000000"},
		{1e20, "100000000000000000000", "100000000000000000000.0", "100000000000000000000"},
		{1e21, "1e+21", "1e+21", "1e+21"},
		{1e-6, "0.000001", "0.000001", "0.000001"},
		{1e-7, "1e-7", "1e-7", "1e-7"},
		{1.5e-10, "1.5e-10", "1.5e-10", "1.5e-10"},
		{math.NaN(), "null", "null", `"NaN"`},
		{math.Inf(1), "null", "null", `"Infinity"`},
		{math.Inf(-1), "null", "null", `"-Infinity"`},
	}
	for _, tt := range tests {
		for _, c := range []struct {
			name string
			fn   func([]byte, float64) []byte
			want string
		}{{"AppendFloat", AppendFloat, tt.plain}, {"AppendFloatPoint", AppendFloatPoint, tt.point}, {"AppendProtoFloat", AppendProtoFloat, tt.proto}} {
			if got := string(c.fn([]byte(prefix), tt.f)); got != prefix+c.want {
				t.Errorf("%s(%v) = %s, want %s", c.name, tt.f, got, prefix+c.want)
			}
		}
	}
	for _, f := range floatCases {
		checkFloat(t, f)
	}
}

// checkFloat compares the three float encoders with encoding/json. For a
// finite f, AppendFloat and AppendProtoFloat are byte-equal to json.Marshal,
// and AppendFloatPoint is json.Marshal's text or that text and ".0", decoding
// to f itself (the same bits, so -0 stays -0). For NaN and infinities, which
// json.Marshal refuses, the text is the documented literal.
func checkFloat(t *testing.T, f float64) {
	t.Helper()
	plain := string(AppendFloat([]byte(prefix), f))
	point := string(AppendFloatPoint([]byte(prefix), f))
	proto := string(AppendProtoFloat([]byte(prefix), f))
	for _, s := range []*string{&plain, &point, &proto} {
		var ok bool
		if *s, ok = strings.CutPrefix(*s, prefix); !ok {
			t.Fatalf("%v: the prefix was overwritten: %q", f, *s)
		}
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		want := map[bool]string{true: `"Infinity"`, false: `"-Infinity"`}[f > 0]
		if math.IsNaN(f) {
			want = `"NaN"`
		}
		if plain != "null" || point != "null" || proto != want {
			t.Errorf("%v: AppendFloat %s, AppendFloatPoint %s, AppendProtoFloat %s; want null, null, %s", f, plain, point, proto, want)
		}
		return
	}
	want, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if plain != string(want) || proto != string(want) {
		t.Errorf("%v: AppendFloat %s, AppendProtoFloat %s; encoding/json writes %s", f, plain, proto, want)
	}
	if point != string(want) && point != string(want)+".0" {
		t.Errorf("%v: AppendFloatPoint %s, want %s or %s.0", f, point, want, want)
	}
	if !strings.ContainsAny(point, ".e") {
		t.Errorf("%v: AppendFloatPoint %s does not read as a float", f, point)
	}
	var back float64
	if err := json.Unmarshal([]byte(point), &back); err != nil || math.Float64bits(back) != math.Float64bits(f) {
		t.Errorf("%v: AppendFloatPoint %s decodes to %v (%v)", f, point, back, err)
	}
}

// FuzzAppendFloat: see checkFloat. The fuzzer mutates the float's bits, so it
// reaches subnormals, NaN payloads and both infinities.
func FuzzAppendFloat(f *testing.F) {
	for _, x := range floatCases {
		f.Add(x)
	}
	f.Fuzz(checkFloat)
}

func TestAppendTimestampCases(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, `"1970-01-01T00:00:00Z"`},
		{time.Unix(0, 0), `"1970-01-01T00:00:00Z"`},
		{time.Date(2021, 12, 31, 23, 0, 0, 0, time.UTC), `"2021-12-31T23:00:00Z"`},
		{time.Date(2021, 12, 31, 23, 0, 0, 5e8, time.FixedZone("x", 3600)), `"2021-12-31T22:00:00.500Z"`},
		{time.Date(2021, 1, 1, 0, 0, 0, 1000, time.UTC), `"2021-01-01T00:00:00.000001Z"`},
		{time.Date(2021, 1, 1, 0, 0, 0, 7, time.UTC), `"2021-01-01T00:00:00.000000007Z"`},
		{time.Date(2021, 1, 1, 0, 0, 0, 999_999_999, time.UTC), `"2021-01-01T00:00:00.999999999Z"`},
		{time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), `"0001-01-01T00:00:00.000000001Z"`},
		{time.Date(9999, 12, 31, 23, 59, 59, 0, time.FixedZone("y", -7200)).Add(-2 * time.Hour), `"9999-12-31T23:59:59Z"`},
		{time.Date(1960, 6, 1, 0, 0, 0, 120e6, time.UTC), `"1960-06-01T00:00:00.120Z"`},
	}
	for _, tt := range tests {
		if got := string(AppendTimestamp([]byte(prefix), tt.t)); got != prefix+tt.want {
			t.Errorf("AppendTimestamp(%s) = %s, want %s", tt.t, got, prefix+tt.want)
		}
		checkTimestamp(t, tt.t.Unix(), int64(tt.t.Nanosecond()))
	}
}

// checkTimestamp: for the instant sec.nsec folded into years 1 to 9999 and
// shown in a zone of whole minutes,
// AppendTimestamp's text is a JSON string that encoding/json decodes into the
// same instant json.Marshal's own text decodes into (the bytes differ: see
// AppendTimestamp), in UTC with Z, with 0, 3, 6 or 9 fractional digits, the
// fewest that hold the nanoseconds.
func checkTimestamp(t *testing.T, sec, nsec int64) {
	t.Helper()
	// 0001-01-02T00:00:00Z to 9999-12-30T23:59:59Z: a day inside the range, so
	// that t in a zone (up to 23:59 from UTC) is still in it for json.Marshal.
	const first, last = -62135596800 + 86400, 253402300799 - 86400
	sec = first + ((sec-first)%(last-first+1)+(last-first+1))%(last-first+1)
	nsec = (nsec%1e9 + 1e9) % 1e9
	in := time.Unix(sec, nsec).In(time.FixedZone("z", int(sec%1440)*60))
	got := AppendTimestamp([]byte(prefix), in)
	text, ok := bytes.CutPrefix(got, []byte(prefix))
	if !ok {
		t.Fatalf("%v: the prefix was overwritten: %q", in, got)
	}
	var back time.Time
	if err := json.Unmarshal(text, &back); err != nil {
		t.Fatalf("%v: %s does not decode: %v", in, text, err)
	}
	std, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var stdBack time.Time
	if err := json.Unmarshal(std, &stdBack); err != nil {
		t.Fatal(err)
	}
	if !back.Equal(in) || !back.Equal(stdBack) {
		t.Errorf("%v: %s decodes to %v; encoding/json's %s to %v", in, text, back, std, stdBack)
	}
	s := string(text[1 : len(text)-1])
	if !strings.HasSuffix(s, "Z") || len(s) < len("2006-01-02T15:04:05Z") {
		t.Fatalf("%v: %s is not RFC 3339 in UTC", in, text)
	}
	digits := 0
	if dot := strings.IndexByte(s, '.'); dot >= 0 {
		digits = len(s) - dot - 2
	}
	want := 9
	switch ns := in.Nanosecond(); {
	case ns == 0:
		want = 0
	case ns%1_000_000 == 0:
		want = 3
	case ns%1000 == 0:
		want = 6
	}
	if digits != want {
		t.Errorf("%v: %s has %d fractional digits, want %d", in, text, digits, want)
	}
}

// FuzzAppendTimestamp: see checkTimestamp.
func FuzzAppendTimestamp(f *testing.F) {
	for _, x := range []struct{ sec, nsec int64 }{
		{0, 0}, {1, 1}, {1_700_000_000, 500_000_000}, {1_700_000_000, 123_456_000}, {-1, 999_999_999},
		{-62135596800, 0}, {253402300799, 999_999_999}, {math.MaxInt64, math.MinInt64},
	} {
		f.Add(x.sec, x.nsec)
	}
	f.Fuzz(checkTimestamp)
}

func TestAppendIntBool(t *testing.T) {
	for _, v := range []int64{0, -1, 42, math.MaxInt64, math.MinInt64} {
		want, _ := json.Marshal(v)
		if got := AppendInt([]byte(prefix), v); string(got) != prefix+string(want) {
			t.Errorf("AppendInt(%d) = %s, want %s", v, got, want)
		}
	}
	for _, v := range []bool{false, true} {
		want, _ := json.Marshal(v)
		if got := AppendBool([]byte(prefix), v); string(got) != prefix+string(want) {
			t.Errorf("AppendBool(%v) = %s, want %s", v, got, want)
		}
	}
}

// Benchmarks of the encoders against encoding/json's Marshal of the same value:
//
//	go test -run '^$' -bench . -benchmem ./internal/platform/jsonw/
func BenchmarkAppendString(b *testing.B) {
	for _, c := range []struct{ name, s string }{
		{"ascii", "mlflow-artifacts:/1/0123456789abcdef0123456789abcdef/artifacts"},
		{"escapes", `path "C:\temp" <a&b>` + "\n"},
		{"utf8", "Zürich–München 日本語 ünïcödé"},
	} {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 0, 256)
			for b.Loop() {
				buf = AppendString(buf[:0], c.s)
			}
		})
		b.Run(c.name+"/encoding-json", func(b *testing.B) {
			for b.Loop() {
				_, _ = json.Marshal(c.s)
			}
		})
	}
}

func BenchmarkAppendFloat(b *testing.B) {
	fs := []float64{0.1, 1.0 / 3, 1300, 1e-7, 123.456, 2.5e21}
	buf := make([]byte, 0, 256)
	for b.Loop() {
		buf = buf[:0]
		for _, f := range fs {
			buf = AppendFloat(buf, f)
		}
	}
}

// checkFloat32 compares AppendFloat32 with encoding/json's float32 text
// (null for NaN and infinities).
func checkFloat32(t *testing.T, f float32) {
	t.Helper()
	got, ok := strings.CutPrefix(string(AppendFloat32([]byte(prefix), f)), prefix)
	if !ok {
		t.Fatalf("%v: the prefix was overwritten: %q", f, got)
	}
	if f64 := float64(f); math.IsNaN(f64) || math.IsInf(f64, 0) {
		if got != "null" {
			t.Errorf("%v: AppendFloat32 %s, want null", f, got)
		}
		return
	}
	want, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%v: AppendFloat32 %s; encoding/json writes %s", f, got, want)
	}
}

func TestAppendFloat32Cases(t *testing.T) {
	for _, f := range []float32{0, 0.1, -2, 1e-6, 1e-7, 1.5e-10, 3.4028235e38, 1e21, 1e20, 1.4e-45, float32(math.NaN()), float32(math.Inf(-1))} {
		checkFloat32(t, f)
	}
	for _, f := range floatCases {
		checkFloat32(t, float32(f))
	}
	if got := string(AppendFloat32(nil, 0.1)); got != "0.1" {
		t.Errorf("AppendFloat32(0.1) = %s, want 0.1 (the float32's shortest text)", got)
	}
}

// FuzzAppendFloat32: see checkFloat32.
func FuzzAppendFloat32(f *testing.F) {
	f.Add(float32(0.1))
	f.Add(float32(1e-7))
	f.Fuzz(checkFloat32)
}
