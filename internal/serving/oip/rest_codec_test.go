package oip

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func decode(t *testing.T, body []byte, headerLen int) (*InferRequest, error) {
	t.Helper()
	var req InferRequest
	var specs []inputSpec
	err := decodeRequest(body, headerLen, &req, &specs)
	return &req, err
}

// TestDecodeTritonclient decodes requests exactly as tritonclient[http]
// sends them (testdata/tritonclient_*.body and .header, captured from the
// real client against a listener: see testdata/README.md): binary inputs,
// inline JSON with Python's bare NaN, BYTES with \u escapes.
func TestDecodeTritonclient(t *testing.T) {
	nan := float32(math.NaN())
	wantX := []float32{1.5, nan, -2, 0.25, 3, 1e-7}
	for _, tc := range []struct {
		file          string
		wantBinaryOut bool
	}{
		{"tritonclient_binary", true},
		{"tritonclient_json", false},
		{"tritonclient_json_binary_output", true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", tc.file+".body"))
			if err != nil {
				t.Fatal(err)
			}
			hdr, err := os.ReadFile(filepath.Join("testdata", tc.file+".header"))
			if err != nil {
				t.Fatal(err)
			}
			headerLen := -1
			if len(hdr) > 0 {
				if headerLen, err = strconv.Atoi(string(hdr)); err != nil {
					t.Fatal(err)
				}
			}
			req, err := decode(t, body, headerLen)
			if err != nil {
				t.Fatal(err)
			}
			if req.ID != "req-1" || len(req.Inputs) != 3 {
				t.Fatalf("id %q, %d inputs", req.ID, len(req.Inputs))
			}
			x := req.Inputs[0]
			if x.Name != "x" || x.Datatype != FP32 || !reflect.DeepEqual(x.Shape, []int64{2, 3}) || !sameFloat32s(x.FP32, wantX) {
				t.Errorf("x = %+v", x)
			}
			if d := req.Inputs[1]; d.Datatype != BYTES || len(d.Bytes) != 2 || string(d.Bytes[0]) != "north" || string(d.Bytes[1]) != "süd" {
				t.Errorf("district = %+v", d)
			}
			if ids := req.Inputs[2]; !reflect.DeepEqual(ids.Int64, []int64{7, -3}) {
				t.Errorf("ids = %+v", ids)
			}
			if got := binaryOutput(req, "predict"); got != tc.wantBinaryOut {
				t.Errorf("binary output %v, want %v", got, tc.wantBinaryOut)
			}
		})
	}
}

func sameFloat32s(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(a[i] != a[i] && b[i] != b[i]) {
			return false
		}
	}
	return true
}

// TestDecodeData covers every datatype, flat and nested data, and the float
// specials, against the typed slice they must decode to.
func TestDecodeData(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name, input string
		want        Tensor
	}{
		{"fp64 flat", `{"name":"a","shape":[2,2],"datatype":"FP64","data":[1,2.5,-3e2,0]}`,
			Tensor{Name: "a", Datatype: FP64, Shape: []int64{2, 2}, FP64: []float64{1, 2.5, -300, 0}}},
		{"fp64 nested", `{"name":"a","shape":[2,2],"datatype":"FP64","data":[[1,2.5],[-3e2,0]]}`,
			Tensor{Name: "a", Datatype: FP64, Shape: []int64{2, 2}, FP64: []float64{1, 2.5, -300, 0}}},
		{"fp32 nested in 3-d", `{"name":"a","shape":[2,1,2],"datatype":"FP32","data":[[[1,2]],[[3,4]]]}`,
			Tensor{Name: "a", Datatype: FP32, Shape: []int64{2, 1, 2}, FP32: []float32{1, 2, 3, 4}}},
		{"a column for a 1-d shape", `{"name":"a","shape":[3],"datatype":"FP64","data":[[1],[2],[3]]}`,
			Tensor{Name: "a", Datatype: FP64, Shape: []int64{3}, FP64: []float64{1, 2, 3}}},
		{"a row for a 1-d shape", `{"name":"a","shape":[3],"datatype":"INT64","data":[[1,2,3]]}`,
			Tensor{Name: "a", Datatype: INT64, Shape: []int64{3}, Int64: []int64{1, 2, 3}}},
		{"nested with dimensions of 1", `{"name":"a","shape":[2,2],"datatype":"BYTES","data":[[["x"],["y"]],[["z"],["w"]]]}`,
			Tensor{Name: "a", Datatype: BYTES, Shape: []int64{2, 2}, Bytes: [][]byte{[]byte("x"), []byte("y"), []byte("z"), []byte("w")}}},
		{"empty rows", `{"name":"a","shape":[2,0],"datatype":"FP32","data":[[],[]]}`,
			Tensor{Name: "a", Datatype: FP32, Shape: []int64{2, 0}, FP32: []float32{}}},
		{"bytes nested", `{"name":"a","shape":[2,1],"datatype":"BYTES","data":[["x"],["y"]]}`,
			Tensor{Name: "a", Datatype: BYTES, Shape: []int64{2, 1}, Bytes: [][]byte{[]byte("x"), []byte("y")}}},
		{"fp64 specials", `{"name":"a","shape":[5],"datatype":"FP64","data":[NaN,"NaN",null,Infinity,"-Infinity"]}`,
			Tensor{Name: "a", Datatype: FP64, Shape: []int64{5}, FP64: []float64{nan, nan, nan, math.Inf(1), math.Inf(-1)}}},
		{"fp32 rounds to nearest", `{"name":"a","shape":[1,2],"datatype":"FP32","data":[[0.1, 1e-50]]}`,
			Tensor{Name: "a", Datatype: FP32, Shape: []int64{1, 2}, FP32: []float32{0.1, 0}}},
		{"int32", `{"name":"a","shape":[3],"datatype":"INT32","data":[1,-2147483648,3.0]}`,
			Tensor{Name: "a", Datatype: INT32, Shape: []int64{3}, Int32: []int32{1, math.MinInt32, 3}}},
		{"int64", `{"name":"a","shape":[2],"datatype":"INT64","data":[9007199254740993,-1]}`,
			Tensor{Name: "a", Datatype: INT64, Shape: []int64{2}, Int64: []int64{9007199254740993, -1}}},
		{"bool", `{"name":"a","shape":[1,2],"datatype":"BOOL","data":[[true,false]]}`,
			Tensor{Name: "a", Datatype: BOOL, Shape: []int64{1, 2}, Bool: []bool{true, false}}},
		{"bytes", `{"name":"a","shape":[3],"datatype":"BYTES","data":["x","\u00fc\n",""]}`,
			Tensor{Name: "a", Datatype: BYTES, Shape: []int64{3}, Bytes: [][]byte{[]byte("x"), []byte("ü\n"), {}}}},
		{"empty", `{"name":"a","shape":[0,30],"datatype":"FP32","data":[]}`,
			Tensor{Name: "a", Datatype: FP32, Shape: []int64{0, 30}, FP32: []float32{}}},
		{"members in any order", `{"data":[1,2],"datatype":"INT64","shape":[2],"name":"a","extra":{"x":[1]}}`,
			Tensor{Name: "a", Datatype: INT64, Shape: []int64{2}, Int64: []int64{1, 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := decode(t, []byte(`{"inputs":[`+tc.input+`]}`), -1)
			if err != nil {
				t.Fatal(err)
			}
			got := req.Inputs[0]
			if !sameTensor(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestDecodeParameters: the parameters the server reads decode when of
// their type; any other parameter (an extension) passes through whatever
// its type, at every level.
func TestDecodeParameters(t *testing.T) {
	for _, tc := range []struct {
		name, params, inParams, outParams string
		want, wantIn, wantOut             map[string]any
	}{
		{"known", `{"binary_data_output":true,"routing_key":"u1"}`, `{"binary_data_size":4}`, `{"binary_data":false}`,
			map[string]any{"binary_data_output": true, "routing_key": "u1"}, map[string]any{"binary_data_size": int64(4)}, map[string]any{"binary_data": false}},
		{"extensions of any type", `{"priority":1,"timeout":0.5,"tag":null,"ext":{"a":[1]},"binary_data":"x"}`, `{"binary_data":1,"routing_key":2}`, `{"classification":3,"routing_key":4}`,
			map[string]any{"priority": int64(1), "timeout": 0.5, "tag": nil, "ext": map[string]any{"a": []any{1.0}}, "binary_data": "x"},
			map[string]any{"binary_data": int64(1), "routing_key": int64(2)}, map[string]any{"classification": int64(3), "routing_key": int64(4)}},
		{"empty routing key", `{"routing_key":""}`, `{}`, `{}`, map[string]any{"routing_key": ""}, map[string]any{}, map[string]any{}},
		// null is a known parameter left out (as /v1 reads a null
		// routing_key); a byte count has no such reading.
		{"null known parameters", `{"binary_data_output":null,"routing_key":null}`, `{}`, `{"binary_data":null}`,
			map[string]any{"binary_data_output": nil, "routing_key": nil}, map[string]any{}, map[string]any{"binary_data": nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := `{"parameters":` + tc.params + `,"inputs":[{"name":"a","shape":[1],"datatype":"FP32","parameters":` + tc.inParams + `%s}],` +
				`"outputs":[{"name":"p","parameters":` + tc.outParams + `}]}`
			body, hl := fmt.Sprintf(doc, `,"data":[1]`), -1
			if _, ok := tc.wantIn["binary_data_size"]; ok {
				body = fmt.Sprintf(doc, "")
				body, hl = body+"\x00\x00\x80\x3f", len(body)
			}
			req, err := decode(t, []byte(body), hl)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(req.Parameters, tc.want) || !reflect.DeepEqual(req.Inputs[0].Parameters, tc.wantIn) || !reflect.DeepEqual(req.Outputs[0].Parameters, tc.wantOut) {
				t.Errorf("parameters %v, input %v, output %v\nwant %v, %v, %v", req.Parameters, req.Inputs[0].Parameters, req.Outputs[0].Parameters, tc.want, tc.wantIn, tc.wantOut)
			}
		})
	}
}

// sameTensor compares tensors with NaN equal to NaN.
func sameTensor(a, b Tensor) bool {
	fa, fb := a.FP64, b.FP64
	a.FP64, b.FP64 = nil, nil
	a.Parameters, b.Parameters = nil, nil
	if len(fa) != len(fb) {
		return false
	}
	for i := range fa {
		if fa[i] != fb[i] && !(math.IsNaN(fa[i]) && math.IsNaN(fb[i])) {
			return false
		}
	}
	if len(a.Bytes) == 0 && len(b.Bytes) == 0 {
		a.Bytes, b.Bytes = nil, nil
	}
	for i := range a.Bytes {
		if len(a.Bytes[i]) == 0 {
			a.Bytes[i] = []byte{}
		}
	}
	return reflect.DeepEqual(a, b)
}

// TestDecodeErrors: each malformed request is ErrInvalidInput (a 400) with
// a message naming the part at fault.
func TestDecodeErrors(t *testing.T) {
	fp32 := func(vals ...float32) string {
		var b []byte
		for _, v := range vals {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
		return string(b)
	}
	withHeader := func(doc, bin string) (string, int) { return doc + bin, len(doc) }
	const x = `{"name":"a","shape":[1],"datatype":"FP32","data":[1]}`
	// in is x with members added, sent as the only input.
	in := func(members string) string {
		return `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1],` + members + `}]}`
	}
	manyMembers := ""
	for i := range 20 {
		manyMembers += `"m` + strconv.Itoa(i) + `":0,`
	}
	for _, tc := range []struct {
		name      string
		body      string
		headerLen int
		want      string
	}{
		{"empty body", ``, -1, "empty request"},
		{"not an object", `[1]`, -1, "want a JSON object, got a list"},
		{"syntax", `{"inputs":[{"name":"a",}]}`, -1, "malformed JSON at byte 23"},
		{"trailing data", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]}]} x`, -1, "data after the request object"},
		{"no inputs", `{"id":"x"}`, -1, "inputs: want at least one input tensor"},
		{"inputs not a list", `{"inputs":{"a":1}}`, -1, "inputs: want a list of tensors, got an object"},
		{"id a number", `{"id":7,"inputs":[]}`, -1, "id: want a string, got a number"},
		{"name missing", `{"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]}`, -1, "inputs[0]: name missing"},
		{"shape missing", `{"inputs":[{"name":"a","datatype":"FP32","data":[1]}]}`, -1, `inputs[0] "a": shape missing`},
		{"negative shape", `{"inputs":[{"name":"a","shape":[-1,2],"datatype":"FP32","data":[1]}]}`, -1, `inputs[0] "a": shape [-1,2]: dimension 0 is -1`},
		{"shape not ints", `{"inputs":[{"name":"a","shape":[1.5],"datatype":"FP32","data":[1]}]}`, -1, `shape: want integers, got 1.5`},
		{"huge shape", `{"inputs":[{"name":"a","shape":[100000,100000],"datatype":"FP32","data":[1]}]}`, -1, "more than 2147483648 elements"},
		{"datatype missing", `{"inputs":[{"name":"a","shape":[1],"data":[1]}]}`, -1, `inputs[0] "a": datatype missing`},
		{"uint8 refused", `{"inputs":[{"name":"a","shape":[1],"datatype":"UINT8","data":[1]}]}`, -1, `inputs[0] "a": datatype UINT8 is not supported: send BOOL, INT32, INT64, FP32, FP64 or BYTES`},
		{"fp16 refused", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP16","data":[1]}]}`, -1, "datatype FP16 is not supported"},
		{"bf16 refused", `{"inputs":[{"name":"a","shape":[1],"datatype":"BF16","data":[1]}]}`, -1, "datatype BF16 is not supported"},
		{"unknown datatype", `{"inputs":[{"name":"a","shape":[1],"datatype":"FLOAT","data":[1]}]}`, -1, `unknown datatype "FLOAT"`},
		{"data missing", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32"}]}`, -1, `inputs[0] "a": data missing`},
		{"count short", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]},{"name":"rent","shape":[2,2],"datatype":"FP64","data":[1,2,3]}]}`, -1,
			`inputs[1] "rent": shape [2,2] has 4 elements, data has 3`},
		{"count long", `{"inputs":[{"name":"a","shape":[2],"datatype":"INT64","data":[1,2,3]}]}`, -1, `shape [2] has 2 elements, data has more`},
		{"string in numbers", `{"inputs":[{"name":"a","shape":[2],"datatype":"FP64","data":[1,"x"]}]}`, -1, `inputs[0] "a": data: element 1: want a number (FP64), got the string "x"`},
		{"number in bytes", `{"inputs":[{"name":"a","shape":[2],"datatype":"BYTES","data":["x",2]}]}`, -1, `element 1: want a string (BYTES), got 2`},
		{"object in data", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP64","data":[{"v":1}]}]}`, -1, `element 0: want a value, got an object`},
		{"fraction in int", `{"inputs":[{"name":"a","shape":[1],"datatype":"INT64","data":[1.5]}]}`, -1, `want an integer (INT64), got 1.5`},
		{"int32 overflow", `{"inputs":[{"name":"a","shape":[1],"datatype":"INT32","data":[2147483648]}]}`, -1, `2147483648 is out of INT32's range`},
		{"fp32 overflow", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1e39]}]}`, -1, `1e39 is out of FP32's range`},
		{"bad literal", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[nan]}]}`, -1, `inputs[0] "a": data: element 0: want a number (FP32), got nan`},
		{"bool as int", `{"inputs":[{"name":"a","shape":[1],"datatype":"BOOL","data":[1]}]}`, -1, `want true or false (BOOL), got 1`},
		{"NaN string in int", `{"inputs":[{"name":"a","shape":[1],"datatype":"INT64","data":["NaN"]}]}`, -1, `want a number (INT64), got the string "NaN"`},
		{"output without name", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{}]}`, -1, `outputs[0]: name missing`},
		{"both data and binary", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1],"parameters":{"binary_data_size":4}}]}`, -1, `inputs[0] "a": both data and parameters.binary_data_size`},
		{"bad binary size", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":"4"}}]}`, -1, `parameters.binary_data_size: want a byte count`},
		{"binary without header", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}`, -1, `without an Inference-Header-Content-Length header`},
		{"string for many", `{"inputs":[{"name":"a","shape":[3],"datatype":"BYTES","data":"abc"}]}`, -1, `inputs[0] "a": shape [3] has 3 elements: data must be a list`},
		{"number for many", `{"inputs":[{"name":"a","shape":[2],"datatype":"FP64","data":123}]}`, -1, `shape [2] has 2 elements: data must be a list`},
		{"long string clipped", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP64","data":["` + strings.Repeat("x", 1000) + `"]}]}`, -1, `got the string "` + strings.Repeat("x", 40) + `..."`},
		{"long literal clipped", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP64","data":[` + strings.Repeat("7", 500) + `x]}]}`, -1, `got ` + strings.Repeat("7", 40) + `...`},
		{"long bool clipped", `{"inputs":[{"name":"a","shape":[1],"datatype":"BOOL","data":[` + strings.Repeat("t", 500) + `]}]}`, -1, `got ` + strings.Repeat("t", 40) + `...`},
		{"long overflow clipped", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1` + strings.Repeat("0", 500) + `]}]}`, -1, `1` + strings.Repeat("0", 39) + `... is out of FP32's range`},
		{"data past the shape", `{"inputs":[{"name":"a","shape":[1],"datatype":"BYTES","data":["a","b","c"]}]}`, -1, `inputs[0] "a": shape [1] has 1 elements, data has more`},
		{"too many BYTES", `{"inputs":[{"name":"a","shape":[` + strconv.Itoa(MaxBytesElements+1) + `],"datatype":"BYTES","data":[]}]}`, -1,
			"the BYTES inputs have more than 1048576 elements in all"},
		{"too many BYTES in all", `{"inputs":[{"name":"a","shape":[` + strconv.Itoa(MaxBytesElements/2+1) + `],"datatype":"BYTES","data":[]},` +
			`{"name":"n","shape":[` + strconv.Itoa(MaxBytesElements) + `],"datatype":"FP64","data":[]},` +
			`{"name":"b","shape":[` + strconv.Itoa(MaxBytesElements/2) + `],"datatype":"BYTES","data":[]}]}`, -1,
			"the BYTES inputs have more than 1048576 elements in all"},
		// A member named twice, in any object, is refused naming it: read
		// either way, the request is not what one of them says.
		{"inputs twice", `{"inputs":[` + x + `],"inputs":[` + x + `]}`, -1, `invalid inference request: duplicate member "inputs"`},
		{"inputs twice, then empty", `{"inputs":[` + x + `],"inputs":[]}`, -1, `invalid inference request: duplicate member "inputs"`},
		{"inputs twice, empty first", `{"inputs":[],"inputs":[` + x + `]}`, -1, `invalid inference request: duplicate member "inputs"`},
		{"inputs twice, one escaped", `{"inputs":[` + x + `],"\u0069nputs":[` + x + `]}`, -1, `invalid inference request: duplicate member "inputs"`},
		{"outputs twice", `{"inputs":[` + x + `],"outputs":[{"name":"p"}],"outputs":[{"name":"p"}]}`, -1, `invalid inference request: duplicate member "outputs"`},
		{"outputs twice, null first", `{"inputs":[` + x + `],"outputs":null,"outputs":[{"name":"p"}]}`, -1, `invalid inference request: duplicate member "outputs"`},
		{"id twice", `{"id":"a","inputs":[` + x + `],"id":"b"}`, -1, `invalid inference request: duplicate member "id"`},
		{"parameters twice", `{"parameters":{},"inputs":[` + x + `],"parameters":{"routing_key":"u"}}`, -1, `invalid inference request: duplicate member "parameters"`},
		{"unknown member twice", `{"extra":1,"inputs":[` + x + `],"extra":2}`, -1, `invalid inference request: duplicate member "extra"`},
		{"unknown member twice among many", `{` + manyMembers + `"inputs":[` + x + `],"m17":1}`, -1, `invalid inference request: duplicate member "m17"`},
		{"input name twice", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1],"name":"b"}]}`, -1, `inputs[0] "a": duplicate member "name"`},
		{"input shape twice", in(`"shape":[2]`), -1, `invalid inference request: inputs[0] "a": duplicate member "shape"`},
		{"input shape twice, before its name", `{"inputs":[{"shape":[1],"shape":[1],"name":"a","datatype":"FP32","data":[1]}]}`, -1, `invalid inference request: inputs[0]: duplicate member "shape"`},
		{"input datatype twice", in(`"datatype":"FP64"`), -1, `inputs[0] "a": duplicate member "datatype"`},
		{"input data twice", in(`"data":[2]`), -1, `inputs[0] "a": duplicate member "data"`},
		{"input parameters twice", in(`"parameters":{},"parameters":{}`), -1, `inputs[0] "a": duplicate member "parameters"`},
		{"input unknown member twice", in(`"x":1,"x":1`), -1, `inputs[0] "a": duplicate member "x"`},
		{"second input's member twice", `{"inputs":[` + x + `,{"name":"b","datatype":"FP32","datatype":"FP32"}]}`, -1, `inputs[1] "b": duplicate member "datatype"`},
		{"output name twice", `{"inputs":[` + x + `],"outputs":[{"name":"p","name":"q"}]}`, -1, `invalid inference request: outputs[0]: duplicate member "name"`},
		{"output parameters twice", `{"inputs":[` + x + `],"outputs":[{"name":"p","parameters":{},"parameters":{}}]}`, -1, `outputs[0]: duplicate member "parameters"`},
		{"output unknown member twice", `{"inputs":[` + x + `],"outputs":[{"name":"p","x":1,"x":1}]}`, -1, `outputs[0]: duplicate member "x"`},
		{"request parameter twice", `{"inputs":[` + x + `],"parameters":{"routing_key":"a","routing_key":"b"}}`, -1, `invalid inference request: parameters: duplicate member "routing_key"`},
		{"input parameter twice", in(`"parameters":{"binary_data_size":4,"binary_data_size":4}`), -1, `inputs[0] "a": parameters: duplicate member "binary_data_size"`},
		{"output parameter twice", `{"inputs":[` + x + `],"outputs":[{"name":"p","parameters":{"binary_data":true,"binary_data":false}}]}`, -1, `outputs[0].parameters: duplicate member "binary_data"`},
		{"extension parameter twice", `{"inputs":[` + x + `],"parameters":{"priority":1,"priority":2}}`, -1, `parameters: duplicate member "priority"`},
		{"member twice in a parameter's object", `{"inputs":[` + x + `],"parameters":{"ext":{"k":1,"k":2}}}`, -1, `parameters: duplicate member "k" at byte`},
		{"member twice in an unknown member", `{"inputs":[` + x + `],"extra":[{"k":1,"k":2}]}`, -1, `duplicate member "k" at byte 82`},
		{"long duplicate name clipped", `{"inputs":[` + x + `],"` + strings.Repeat("n", 500) + `":1,"` + strings.Repeat("n", 500) + `":1}`, -1, `duplicate member "` + strings.Repeat("n", 40) + `"...`},
		// A known parameter's value of the wrong type is refused, naming what
		// was sent in JSON's terms.
		{"binary size a string", in(`"parameters":{"binary_data_size":"80"}`), -1, `inputs[0] "a": parameters.binary_data_size: want a byte count (an integer >= 0), got the string "80"`},
		{"binary size a float", in(`"parameters":{"binary_data_size":80.0}`), -1, `parameters.binary_data_size: want a byte count (an integer >= 0), got 80.0`},
		{"binary size an exponent", in(`"parameters":{"binary_data_size":8e1}`), -1, `parameters.binary_data_size: want a byte count (an integer >= 0), got 8e1`},
		{"binary size null", in(`"parameters":{"binary_data_size":null}`), -1, `parameters.binary_data_size: want a byte count (an integer >= 0), got null`},
		{"binary size negative", in(`"parameters":{"binary_data_size":-8}`), -1, `parameters.binary_data_size: want a byte count (an integer >= 0), got -8`},
		{"binary size past int64", in(`"parameters":{"binary_data_size":9223372036854775808}`), -1, `got 9223372036854775808`},
		{"binary size a list", in(`"parameters":{"binary_data_size":[80]}`), -1, `parameters.binary_data_size: want a byte count (an integer >= 0), got a list`},
		{"binary output a string", `{"inputs":[` + x + `],"parameters":{"binary_data_output":"true"}}`, -1,
			`invalid inference request: parameters.binary_data_output: want a boolean (true or false), got the string "true"`},
		{"routing key too long", `{"inputs":[` + x + `],"parameters":{"routing_key":"` + strings.Repeat("u", 257) + `"}}`, -1, `parameters.routing_key: want at most 256 bytes, got 257`},
		{"binary output a number", `{"inputs":[` + x + `],"parameters":{"binary_data_output":1}}`, -1, `parameters.binary_data_output: want a boolean (true or false), got 1`},
		{"output binary a string", `{"inputs":[` + x + `],"outputs":[{"name":"p","parameters":{"binary_data":"yes"}}]}`, -1,
			`invalid inference request: outputs[0].parameters.binary_data: want a boolean (true or false), got the string "yes"`},
		{"routing key an object", `{"inputs":[` + x + `],"parameters":{"routing_key":{"a":1}}}`, -1, `invalid inference request: parameters.routing_key: want a string, got an object`},
		{"routing key a number", `{"inputs":[` + x + `],"parameters":{"routing_key":7}}`, -1, `parameters.routing_key: want a string, got 7`},
		{"routing key a bool", `{"inputs":[` + x + `],"parameters":{"routing_key":true}}`, -1, `parameters.routing_key: want a string, got true`},
		// A syntax error wins over a count: the data is not what the count
		// says it is.
		{"trailing comma at the count", `{"inputs":[{"name":"a","shape":[1,10],"datatype":"FP64","data":[1,1,1,1,1,1,1,1,1,1,]}]}`, -1,
			`inputs[0] "a": data: malformed JSON at byte 21: want a JSON value, got ']'`},
		{"trailing comma past the count", `{"inputs":[{"name":"a","shape":[2],"datatype":"INT64","data":[1,2,3,]}]}`, -1, `inputs[0] "a": data: malformed JSON at byte 7: want a JSON value, got ']'`},
		{"trailing comma in strings", `{"inputs":[{"name":"a","shape":[1,2],"datatype":"BYTES","data":[["x","y"],]}]}`, -1, `inputs[0] "a": data: malformed JSON at byte 11: want a JSON value, got ']'`},
		{"bad token past the count", `{"inputs":[{"name":"a","shape":[2],"datatype":"FP32","data":[1,2,3 4]}]}`, -1, `inputs[0] "a": data: malformed JSON at byte 7: want ',' or ']', got '4'`},
		{"nested: rows of the wrong length", `{"inputs":[{"name":"a","shape":[3,2],"datatype":"FP32","data":[[1,2,3],[4,5,6]]}]}`, -1,
			`inputs[0] "a": data nested as [2,3], shape [3,2]: nest it as the shape is (dimensions of 1 aside), or send it flat`},
		{"nested: a row missing", `{"inputs":[{"name":"a","shape":[2,2],"datatype":"FP64","data":[[1,2]]}]}`, -1,
			`inputs[0] "a": shape [2,2] has 4 elements, data has 2`},
		{"nested: rows not all as long", `{"inputs":[{"name":"a","shape":[4],"datatype":"FP64","data":[[1],[2,3],[4]]}]}`, -1,
			`inputs[0] "a": data: element 1: a list at depth 2 has 2 elements, the first there 1 (nested data is regular, as shape [4])`},
		{"nested: a value among rows", `{"inputs":[{"name":"a","shape":[2,2],"datatype":"FP64","data":[[1,2],3,4]}]}`, -1,
			`inputs[0] "a": data: element 2: want a list (nested data is regular, as shape [2,2]), got a value`},
		{"nested: a row among values", `{"inputs":[{"name":"a","shape":[2,2],"datatype":"INT64","data":[1,2,[3,4]]}]}`, -1,
			`inputs[0] "a": data: element 2: a list inside flat data (data is one flat list, or lists nested as shape [2,2])`},
		{"nested: deeper than the first element", `{"inputs":[{"name":"a","shape":[2,2],"datatype":"BYTES","data":[["x","y"],[["z"],["w"]]]}]}`, -1,
			`inputs[0] "a": data: element 2: lists nested deeper than the data's first element (nested data is regular, as shape [2,2])`},
		{"nested: a 1-d shape", `{"inputs":[{"name":"a","shape":[4],"datatype":"FP32","data":[[1,2],[3,4]]}]}`, -1,
			`inputs[0] "a": data nested as [2,2], shape [4]: nest it as the shape is (dimensions of 1 aside), or send it flat`},
		{"nested: a trailing comma", `{"inputs":[{"name":"a","shape":[2,1],"datatype":"FP64","data":[[1],]}]}`, -1,
			`inputs[0] "a": data: element 1: malformed JSON at byte 5: want a value, got ']'`},
		{"deep nesting", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":` + strings.Repeat("[", 100) + `1` + strings.Repeat("]", 100) + `}]}`, -1, "nested deeper than 64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode(t, []byte(tc.body), tc.headerLen)
			if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v\nwant ErrInvalidInput containing %q", err, tc.want)
			}
			// An error echoes a clipped token, never the request.
			if err != nil && len(err.Error()) > 300 {
				t.Errorf("error is %d bytes long: %.100s...", len(err.Error()), err)
			}
		})
	}

	// The binary section's errors.
	doc := func(size int, dt string, shape string) string {
		return `{"inputs":[{"name":"x","shape":` + shape + `,"datatype":"` + dt + `","parameters":{"binary_data_size":` + strconv.Itoa(size) + `}}]}`
	}
	for _, tc := range []struct {
		name      string
		doc, bin  string
		headerLen int // -2: len(doc)
		want      string
	}{
		{"truncated", doc(8, FP32, "[2]"), fp32(1), -2, `inputs[0] "x": binary_data_size is 8, the binary section has 4 bytes left`},
		{"header past body", doc(4, FP32, "[1]"), fp32(1), 1000, `Inference-Header-Content-Length is 1000, the body has only`},
		{"size mismatch", doc(4, FP32, "[2]"), fp32(1), -2, `inputs[0] "x": shape [2] of FP32 has 2 elements (8 bytes), raw data has 4 bytes`},
		{"bytes left over", doc(4, FP32, "[1]"), fp32(1, 2), -2, `the binary section has 8 bytes, the inputs' binary_data_size add up to 4`},
		{"header cuts the JSON", doc(4, FP32, "[1]"), fp32(1), 10, `malformed JSON: the document ends at byte 10`},
		{"bytes length past end", doc(6, BYTES, "[1]"), "\x09\x00\x00\x00ab", -2, `raw BYTES element 0: length 9 runs past the data's end`},
		{"bytes left in tensor", doc(6, BYTES, "[1]"), "\x01\x00\x00\x00ab", -2, `raw BYTES: 1 elements end at byte 5, data has 6 bytes`},
		{"bytes count huge", doc(6, BYTES, "[1000]"), "\x02\x00\x00\x00ab", -2, `holds at most 1`},
		{"bool not 0 or 1", doc(1, BOOL, "[1]"), "\x07", -2, `raw BOOL element 0 is 7`},
		// 4 MiB of empty strings: 1 Mi + 1 elements, 24 MiB of headers.
		{"too many raw BYTES", doc(4*(MaxBytesElements+1), BYTES, "["+strconv.Itoa(MaxBytesElements+1)+"]"), strings.Repeat("\x00", 4*(MaxBytesElements+1)), -2,
			"the BYTES inputs have more than 1048576 elements in all"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, hl := withHeader(tc.doc, tc.bin)
			if tc.headerLen != -2 {
				hl = tc.headerLen
			}
			_, err := decode(t, []byte(body), hl)
			if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v\nwant ErrInvalidInput containing %q", err, tc.want)
			}
		})
	}
}

// TestRoundTrip encodes tensors of every datatype in a response (JSON and
// binary) and as a binary request, and decodes them back.
func TestRoundTrip(t *testing.T) {
	tensors := []Tensor{
		{Name: "b", Datatype: BOOL, Shape: []int64{2}, Bool: []bool{true, false}},
		{Name: "i32", Datatype: INT32, Shape: []int64{3}, Int32: []int32{math.MinInt32, 0, math.MaxInt32}},
		{Name: "i64", Datatype: INT64, Shape: []int64{1, 2}, Int64: []int64{math.MinInt64, math.MaxInt64}},
		{Name: "f32", Datatype: FP32, Shape: []int64{2, 2}, FP32: []float32{0.1, -1e-7, 3.4e38, 1.5}},
		{Name: "f64", Datatype: FP64, Shape: []int64{3}, FP64: []float64{0.1, -1e-300, 1e21}},
		{Name: "s", Datatype: BYTES, Shape: []int64{2}, Bytes: [][]byte{[]byte("a\"b<"), []byte("süd")}},
	}
	for _, binaryOut := range []bool{false, true} {
		t.Run("binary output "+strconv.FormatBool(binaryOut), func(t *testing.T) {
			resp := &InferResponse{ModelName: "m", ModelVersion: "3", ID: "r", Outputs: tensors}
			req := &InferRequest{Parameters: map[string]any{"binary_data_output": binaryOut}}
			out, hl := appendResponse(nil, resp, req)
			if (hl >= 0) != binaryOut {
				t.Fatalf("header length %d for binary %v", hl, binaryOut)
			}
			// Read the answer back as a request: same JSON shape for tensors.
			doc := strings.Replace(string(out), `"outputs"`, `"inputs"`, 1)
			body := []byte(doc)
			if hl >= 0 {
				hl += len(`"inputs"`) - len(`"outputs"`)
			}
			got, err := decode(t, body, hl)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for i := range tensors {
				if !sameTensor(got.Inputs[i], tensors[i]) {
					t.Errorf("%s: got %+v, want %+v", tensors[i].Name, got.Inputs[i], tensors[i])
				}
			}
			var head map[string]any
			end := len(out)
			if hl >= 0 {
				end = hl + len(`"outputs"`) - len(`"inputs"`)
			}
			if err := json.Unmarshal(out[:end], &head); err != nil {
				t.Fatalf("answer's JSON: %v", err)
			}
			if head["model_name"] != "m" || head["model_version"] != "3" || head["id"] != "r" {
				t.Errorf("answer head %v", head)
			}
		})
	}
}

// TestResponseNaN: JSON writes NaN as null (tritonclient's as_numpy reads
// null as NaN); the binary section carries it bit for bit.
func TestResponseNaN(t *testing.T) {
	resp := &InferResponse{ModelName: "m", ModelVersion: "1", Outputs: []Tensor{
		{Name: "p", Datatype: FP64, Shape: []int64{2}, FP64: []float64{math.NaN(), 1}},
		{Name: "q", Datatype: FP32, Shape: []int64{2}, FP32: []float32{float32(math.Inf(1)), 0.5}},
	}}
	out, hl := appendResponse(nil, resp, &InferRequest{})
	want := `{"model_name":"m","model_version":"1","outputs":[{"name":"p","datatype":"FP64","shape":[2],"data":[null,1]},{"name":"q","datatype":"FP32","shape":[2],"data":[null,0.5]}]}`
	if hl != -1 || string(out) != want {
		t.Errorf("got %d %s\nwant %s", hl, out, want)
	}
	out, hl = appendResponse(nil, resp, &InferRequest{Outputs: []RequestedOutput{{Name: "p", Parameters: map[string]any{"binary_data": true}}}})
	wantHead := `{"model_name":"m","model_version":"1","outputs":[{"name":"p","datatype":"FP64","shape":[2],"parameters":{"binary_data_size":16}},{"name":"q","datatype":"FP32","shape":[2],"data":[null,0.5]}]}`
	if hl != len(wantHead) || string(out[:hl]) != wantHead {
		t.Fatalf("got %d %s\nwant %s", hl, out, wantHead)
	}
	if v := math.Float64frombits(binary.LittleEndian.Uint64(out[hl:])); !math.IsNaN(v) || len(out) != hl+16 {
		t.Errorf("binary p[0] = %v, %d bytes", v, len(out)-hl)
	}
}

// FuzzDecodeRequest: no body, with or without a header length, panics the
// decoder; a request it accepts keeps the package's invariant (each tensor
// holds exactly the product of its shape in its datatype's slice) and its
// answer encodes.
//
//	go test -run '^$' -fuzz FuzzDecodeRequest -fuzztime 60s ./internal/serving/oip/
func FuzzDecodeRequest(f *testing.F) {
	for _, name := range []string{"tritonclient_binary", "tritonclient_json", "tritonclient_json_binary_output"} {
		body, err := os.ReadFile(filepath.Join("testdata", name+".body"))
		if err != nil {
			f.Fatal(err)
		}
		hdr, _ := os.ReadFile(filepath.Join("testdata", name+".header"))
		n, err := strconv.Atoi(string(hdr))
		if err != nil {
			n = -1
		}
		f.Add(body, n)
	}
	f.Add([]byte(`{"inputs":[{"name":"a","shape":[2],"datatype":"BYTES","data":["x","\u00fc"]}]}`), -1)
	f.Add([]byte(`{"inputs":[{"name":"a","shape":[1,2],"datatype":"BOOL","data":[[true,false]]}],"outputs":[{"name":"a","parameters":{"binary_data":true}}]}`), -1)
	f.Fuzz(func(t *testing.T, body []byte, headerLen int) {
		if headerLen < -1 {
			headerLen = -1
		}
		var req InferRequest
		var specs []inputSpec
		if err := decodeRequest(body, headerLen, &req, &specs); err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("error %v is not ErrInvalidInput", err)
			}
			return
		}
		for i := range req.Inputs {
			in := &req.Inputs[i]
			n, err := elements(in.Shape)
			if err != nil || in.Len() != n {
				t.Fatalf("input %d: shape %v, %d elements (%v)", i, in.Shape, in.Len(), err)
			}
		}
		resp := &InferResponse{ModelName: "m", ModelVersion: "1", Outputs: req.Inputs}
		out, hl := appendResponse(nil, resp, &req)
		end := len(out)
		if hl >= 0 {
			end = hl
		}
		if !json.Valid(out[:end]) {
			t.Fatalf("answer is not valid JSON: %s", out[:end])
		}
	})
}

// TestDecodeAllocationBounded: the declared shape is a claim, not a size to
// allocate: a body padded to look long enough for a huge shape allocates in
// proportion to what it holds, not to the shape (before, a 4 MiB body with
// shape [4194304] BYTES reserved 96 MiB of slice headers up front).
func TestDecodeAllocationBounded(t *testing.T) {
	for _, tc := range []struct {
		name, dt, data string
		n              int
	}{
		{"bytes", BYTES, `"a"`, MaxBytesElements},
		{"fp64", FP64, `1`, 4 << 20},
		{"int64", INT64, `1`, 4 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.n
			// One element padded with whitespace to n bytes: the length check
			// (n <= len(data)) passes, the element count does not.
			data := "[" + strings.Repeat(" ", n) + tc.data + "]"
			body := []byte(`{"inputs":[{"name":"x","datatype":"` + tc.dt + `","shape":[` + strconv.Itoa(n) + `],"data":` + data + `}]}`)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := decode(t, body, -1)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "data has 1") {
				t.Errorf("err = %v, want the element count refused", err)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
				t.Errorf("decoding a %d MiB body allocated %d MiB, want under 8 MiB", len(body)>>20, got>>20)
			}
		})
	}
}

// TestReadBodyDeclaredLength: a body's declared length sizes the buffer
// only up to maxPreGrow, so a client declaring 64 MiB reserves 1 MiB until
// bytes arrive; a body within it is read without regrowing.
func TestReadBodyDeclaredLength(t *testing.T) {
	a := NewAPI(nil, Options{})
	for _, tc := range []struct {
		name     string
		declared int64
		body     string
		maxCap   int
	}{
		{"declares 64 MiB, sends 5 bytes", 64 << 20, "hello", 2 * maxPreGrow},
		{"declares its length", 5, "hello", 5 + 2*bytes.MinRead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/v2/models/m/infer", strings.NewReader(tc.body))
			r.ContentLength = tc.declared
			var buf bytes.Buffer
			if err := a.readBody(httptest.NewRecorder(), r, &buf); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tc.body || buf.Cap() > tc.maxCap {
				t.Errorf("read %q into a buffer of capacity %d, want %q in at most %d", buf.String(), buf.Cap(), tc.body, tc.maxCap)
			}
		})
	}
}
