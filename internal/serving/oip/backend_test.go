package oip

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// testBackend serves a few fixed models, enough to drive every transport
// path:
//
//   - "sum" (versions "1", "2"; default "2"): one FP32 or FP64 input
//     [batch, k]; output "predict" FP64 [batch], each row's sum times the
//     version number (so a test sees which version scored). NaN is a
//     missing value, counted as 0.
//   - "echo": returns every input as an output of the same name, so a
//     round trip through a transport and back shows what it decoded.
//   - "loading": known but not ready (ErrUnavailable).
//   - "broken": fails with an internal error whose text must not reach
//     the caller.
//
// Any other name is ErrModelNotFound. last holds the last request Infer
// saw.
type testBackend struct {
	notReady bool
	mu       sync.Mutex
	last     *InferRequest
}

var errSecret = errors.New("disk /srv/secret/models corrupted")

func (b *testBackend) ServerReady(ctx context.Context) bool { return !b.notReady }

func (b *testBackend) resolve(name, version string) (string, error) {
	switch name {
	case "sum":
		switch version {
		case "":
			return "2", nil
		case "1", "2":
			return version, nil
		}
		return "", fmt.Errorf("%w: sum version %s", ErrModelNotFound, version)
	case "echo", "broken":
		return "1", nil
	case "loading":
		return "", fmt.Errorf("%w: loading is loading", ErrUnavailable)
	}
	return "", fmt.Errorf("%w: no registered model %q", ErrModelNotFound, name)
}

func (b *testBackend) ModelReady(ctx context.Context, name, version string) (bool, error) {
	if name == "loading" {
		return false, nil
	}
	_, err := b.resolve(name, version)
	return err == nil, err
}

func (b *testBackend) ModelMetadata(ctx context.Context, name, version string) (*ModelMetadata, error) {
	if _, err := b.resolve(name, version); err != nil {
		return nil, err
	}
	return &ModelMetadata{Name: name, Versions: []string{"1", "2"}, Platform: "atrium_gbdt",
		Inputs:  []TensorMetadata{{Name: "input", Datatype: FP32, Shape: []int64{-1, 3}}},
		Outputs: []TensorMetadata{{Name: "predict", Datatype: FP64, Shape: []int64{-1}}}}, nil
}

func (b *testBackend) Infer(ctx context.Context, name, version string, req *InferRequest) (*InferResponse, error) {
	b.mu.Lock()
	b.last = req
	b.mu.Unlock()
	v, err := b.resolve(name, version)
	if err != nil {
		return nil, err
	}
	resp := &InferResponse{ModelName: name, ModelVersion: v, ID: req.ID}
	switch name {
	case "broken":
		return nil, fmt.Errorf("load %s: %w", name, errSecret)
	case "echo":
		resp.Outputs = append(resp.Outputs, req.Inputs...)
		return resp, nil
	}
	in := req.Inputs[0]
	if len(req.Inputs) != 1 || len(in.Shape) != 2 {
		return nil, fmt.Errorf("%w: sum takes one input [batch, k]", ErrInvalidInput)
	}
	rows, k := int(in.Shape[0]), int(in.Shape[1])
	out := make([]float64, rows)
	scale := 1.0
	if v == "2" {
		scale = 2
	}
	for r := range rows {
		for j := range k {
			var x float64
			switch in.Datatype {
			case FP32:
				x = float64(in.FP32[r*k+j])
			case FP64:
				x = in.FP64[r*k+j]
			default:
				return nil, fmt.Errorf("%w: inputs[0] %q: datatype %s, want FP32 or FP64", ErrInvalidInput, in.Name, in.Datatype)
			}
			if x == x { // NaN is missing
				out[r] += x
			}
		}
		out[r] *= scale
	}
	resp.Outputs = []Tensor{{Name: "predict", Datatype: FP64, Shape: []int64{int64(rows)}, FP64: out}}
	return resp, nil
}
