package oip

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// benchRequest builds a 200 x 30 inference request as tritonclient sends
// it: inline JSON (binary_data=False) or the binary-data extension.
func benchRequest(dt string, binaryData bool) (body []byte, headerLen int) {
	const rows, cols = 200, 30
	rng := rand.New(rand.NewPCG(1, 2))
	vals := make([]float64, rows*cols)
	for i := range vals {
		vals[i] = rng.NormFloat64() * 100
		if dt == FP32 {
			vals[i] = float64(float32(vals[i]))
		}
	}
	doc := `{"id":"bench","inputs":[{"name":"input","shape":[200,30],"datatype":"` + dt + `"`
	if !binaryData {
		// Numbers as Python's json writes what tritonclient sends: the
		// repr of a float64 (a float32 widened, for FP32).
		b := append([]byte(doc), `,"data":[`...)
		for i, v := range vals {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendFloat(b, v, 'g', -1, 64)
		}
		return append(b, `]}],"outputs":[{"name":"predict","parameters":{"binary_data":false}}]}`...), -1
	}
	var raw []byte
	for _, v := range vals {
		if dt == FP32 {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(float32(v)))
		} else {
			raw = binary.LittleEndian.AppendUint64(raw, math.Float64bits(v))
		}
	}
	doc += `,"parameters":{"binary_data_size":` + strconv.Itoa(len(raw)) + `}}],"parameters":{"binary_data_output":true}}`
	return append([]byte(doc), raw...), len(doc)
}

// BenchmarkCodec decodes a 200 x 30 request and encodes a 200-row answer,
// as the REST handler does for each request (the model's time excluded):
//
//	go test -run '^$' -bench Codec -benchmem ./internal/serving/oip/
func BenchmarkCodec(b *testing.B) {
	for _, dt := range []string{FP32, FP64} {
		for _, bin := range []bool{false, true} {
			name := dt + "/json"
			if bin {
				name = dt + "/binary"
			}
			b.Run(name, func(b *testing.B) {
				body, hl := benchRequest(dt, bin)
				pred := make([]float64, 200)
				for i := range pred {
					pred[i] = float64(i) / 7
				}
				resp := &InferResponse{ModelName: "ranker", ModelVersion: "3", ID: "bench",
					Outputs: []Tensor{{Name: "predict", Datatype: FP64, Shape: []int64{200}, FP64: pred}}}
				var req InferRequest
				var specs []inputSpec
				var out []byte
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					if err := decodeRequest(body, hl, &req, &specs); err != nil {
						b.Fatal(err)
					}
					out, _ = appendResponse(out[:0], resp, &req)
				}
			})
		}
	}
}

// BenchmarkCodecEncodingJSON is the baseline of BenchmarkCodec's JSON
// cases: the same request decoded by encoding/json into typed structs (the
// straightforward implementation; NaN, which encoding/json refuses, is
// absent from the benchmark's data) and the answer encoded by it.
func BenchmarkCodecEncodingJSON(b *testing.B) {
	type input struct {
		Name       string         `json:"name"`
		Shape      []int64        `json:"shape"`
		Datatype   string         `json:"datatype"`
		Parameters map[string]any `json:"parameters"`
		Data       []float64      `json:"data"`
	}
	type request struct {
		ID         string           `json:"id"`
		Parameters map[string]any   `json:"parameters"`
		Inputs     []input          `json:"inputs"`
		Outputs    []map[string]any `json:"outputs"`
	}
	type output struct {
		Name     string    `json:"name"`
		Datatype string    `json:"datatype"`
		Shape    []int64   `json:"shape"`
		Data     []float64 `json:"data"`
	}
	type response struct {
		ModelName    string   `json:"model_name"`
		ModelVersion string   `json:"model_version"`
		ID           string   `json:"id"`
		Outputs      []output `json:"outputs"`
	}
	for _, dt := range []string{FP32, FP64} {
		b.Run(dt+"/json", func(b *testing.B) {
			body, _ := benchRequest(dt, false)
			pred := make([]float64, 200)
			for i := range pred {
				pred[i] = float64(i) / 7
			}
			resp := response{ModelName: "ranker", ModelVersion: "3", ID: "bench", Outputs: []output{{Name: "predict", Datatype: FP64, Shape: []int64{200}, Data: pred}}}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				var req request
				if err := json.Unmarshal(body, &req); err != nil {
					b.Fatal(err)
				}
				if _, err := json.Marshal(&resp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
