package oip

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/atrium-ml/atrium/internal/platform/jsonw"
)

// decodeRequest decodes a REST inference request. headerLen is the value of
// the Inference-Header-Content-Length header (Triton's binary-data
// extension: the body is a JSON header of that many bytes, then the raw
// tensors of the inputs that declare parameters.binary_data_size, in input
// order), or -1 when the request has none (the body is all JSON).
//
// The decoded request shares no memory with body, which the caller may
// reuse once decodeRequest returns.
func decodeRequest(body []byte, headerLen int, req *InferRequest, specs *[]inputSpec) error {
	doc, bin := body, []byte(nil)
	if headerLen >= 0 {
		if headerLen > len(body) {
			return fmt.Errorf("%w: Inference-Header-Content-Length is %d, the body has only %d bytes", ErrInvalidInput, headerLen, len(body))
		}
		doc, bin = body[:headerLen], body[headerLen:]
	}
	if err := decodeJSON(doc, req, specs); err != nil {
		return err
	}
	off := 0
	for i := range req.Inputs {
		t, sp := &req.Inputs[i], &(*specs)[i]
		if sp.binarySz < 0 {
			continue
		}
		what := inputName(i, t.Name)
		if headerLen < 0 {
			return fmt.Errorf("%w: %s: parameters.binary_data_size without an Inference-Header-Content-Length header: send the JSON header's length in it", ErrInvalidInput, what)
		}
		if sp.binarySz > int64(len(bin)-off) {
			return fmt.Errorf("%w: %s: binary_data_size is %d, the binary section has %d bytes left at its offset %d", ErrInvalidInput, what, sp.binarySz, len(bin)-off, off)
		}
		n, _ := elements(t.Shape) // checked by decodeJSON
		raw := bin[off : off+int(sp.binarySz)]
		off += int(sp.binarySz)
		if err := t.setRaw(raw, n); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalidInput, what, err)
		}
	}
	if off != len(bin) {
		return fmt.Errorf("%w: the binary section has %d bytes, the inputs' binary_data_size add up to %d", ErrInvalidInput, len(bin), off)
	}
	for i := range req.Inputs {
		detachBytes(&req.Inputs[i])
	}
	return nil
}

// detachBytes copies the elements of a BYTES tensor, which alias the
// request body, into one block of their own: a backend may keep them past
// the request (a prediction log's entity keys) while the body's buffer is
// reused.
func detachBytes(t *Tensor) {
	if t.Datatype != BYTES || len(t.Bytes) == 0 {
		return
	}
	n := 0
	for _, b := range t.Bytes {
		n += len(b)
	}
	block := make([]byte, 0, n)
	for i, b := range t.Bytes {
		start := len(block)
		block = append(block, b...)
		t.Bytes[i] = block[start:len(block):len(block)]
	}
}

// binaryOutput reports whether the output named name goes in the binary
// section: its requested output's parameters.binary_data when the request
// names it with one, else the request's parameters.binary_data_output.
func binaryOutput(req *InferRequest, name string) bool {
	for _, o := range req.Outputs {
		if o.Name == name {
			if v, ok := o.Parameters["binary_data"].(bool); ok {
				return v
			}
			break
		}
	}
	v, _ := req.Parameters["binary_data_output"].(bool)
	return v
}

// appendResponse appends resp as the REST answer to req: the JSON document,
// then the raw data of the outputs that go in the binary section (see
// binaryOutput). headerLen is the JSON document's length, to send as
// Inference-Header-Content-Length, or -1 when no output is binary (the
// answer is plain JSON).
func appendResponse(dst []byte, resp *InferResponse, req *InferRequest) (_ []byte, headerLen int) {
	start := len(dst)
	dst = append(dst, `{"model_name":`...)
	dst = jsonw.AppendString(dst, resp.ModelName)
	dst = append(dst, `,"model_version":`...)
	dst = jsonw.AppendString(dst, resp.ModelVersion)
	if resp.ID != "" {
		dst = append(dst, `,"id":`...)
		dst = jsonw.AppendString(dst, resp.ID)
	}
	if len(resp.Parameters) > 0 {
		dst = append(dst, `,"parameters":`...)
		dst = appendParameters(dst, resp.Parameters, -1)
	}
	dst = append(dst, `,"outputs":[`...)
	anyBinary := false
	for i := range resp.Outputs {
		t := &resp.Outputs[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"name":`...)
		dst = jsonw.AppendString(dst, t.Name)
		dst = append(dst, `,"datatype":`...)
		dst = jsonw.AppendString(dst, t.Datatype)
		dst = append(dst, `,"shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = jsonw.AppendInt(dst, d)
		}
		dst = append(dst, ']')
		if binaryOutput(req, t.Name) {
			anyBinary = true
			dst = append(dst, `,"parameters":`...)
			dst = appendParameters(dst, t.Parameters, int64(t.rawSize()))
		} else {
			if len(t.Parameters) > 0 {
				dst = append(dst, `,"parameters":`...)
				dst = appendParameters(dst, t.Parameters, -1)
			}
			dst = append(dst, `,"data":`...)
			dst = appendData(dst, t)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, "]}"...)
	if !anyBinary {
		return dst, -1
	}
	headerLen = len(dst) - start
	for i := range resp.Outputs {
		if t := &resp.Outputs[i]; binaryOutput(req, t.Name) {
			dst = t.appendRaw(dst)
		}
	}
	return dst, headerLen
}

// appendParameters writes a parameters object, keys in order, with
// binary_data_size set to binSize when binSize >= 0.
func appendParameters(dst []byte, p map[string]any, binSize int64) []byte {
	dst = append(dst, '{')
	n := 0
	for _, k := range slices.Sorted(maps.Keys(p)) {
		if k == "binary_data_size" || k == "binary_data" && binSize >= 0 {
			continue
		}
		v, err := json.Marshal(p[k])
		if err != nil {
			continue // a value JSON cannot hold (NaN): dropped, not a broken answer
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = jsonw.AppendString(dst, k)
		dst = append(dst, ':')
		dst = append(dst, v...)
	}
	if binSize >= 0 {
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `"binary_data_size":`...)
		dst = jsonw.AppendInt(dst, binSize)
	}
	return append(dst, '}')
}

// appendData writes t's elements as a flat JSON array. NaN and infinities,
// which JSON cannot write, are written as null (tritonclient's as_numpy
// reads null as NaN in a float array); the binary section carries them
// exactly.
func appendData(dst []byte, t *Tensor) []byte {
	dst = append(dst, '[')
	switch t.Datatype {
	case BOOL:
		dst = appendEach(dst, t.Bool, jsonw.AppendBool)
	case INT32:
		dst = appendEach(dst, t.Int32, func(dst []byte, v int32) []byte { return jsonw.AppendInt(dst, int64(v)) })
	case INT64:
		dst = appendEach(dst, t.Int64, jsonw.AppendInt)
	case FP32:
		dst = appendEach(dst, t.FP32, jsonw.AppendFloat32)
	case FP64:
		dst = appendEach(dst, t.FP64, jsonw.AppendFloat)
	case BYTES:
		dst = appendEach(dst, t.Bytes, func(dst []byte, v []byte) []byte { return jsonw.AppendString(dst, string(v)) })
	}
	return append(dst, ']')
}

// appendEach appends vals, comma-separated, each written by appendOne.
func appendEach[T any](dst []byte, vals []T, appendOne func([]byte, T) []byte) []byte {
	for i, v := range vals {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendOne(dst, v)
	}
	return dst
}
