// Package oiptest is a Backend of fixed toy models, for the tests of the
// Open Inference Protocol's transports and of the clients that drive them
// (tests/interop/triton): answers are known without loading a model.
package oiptest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/atrium-ml/atrium/internal/serving/oip"
)

// Backend serves a few fixed models, enough to drive every transport
// path:
//
//   - "sum" (versions "1", "2"; default "2"): one FP32 or FP64 input
//     [batch, k]; output "predict" FP64 [batch], each row's sum times the
//     version number (so a test sees which version scored). NaN is a
//     missing value, counted as 0.
//   - "echo": returns every input as an output of the same name, so a
//     round trip through a transport and back shows what it decoded.
//   - "loading": known but not ready (ErrUnavailable).
//   - "corrupt": known but can never load (ErrModelUnusable).
//   - "broken": fails with an internal error whose text must not reach
//     the caller.
//   - "wait": sends on Waiting (when set), then blocks until the request's
//     context ends and fails with its error (deadlines and limits).
//
// Any other name is ErrModelNotFound. The zero Backend is ready to use.
type Backend struct {
	// NotReady makes ServerReady report false.
	NotReady atomic.Bool
	// Waiting, when not nil, receives a value each time a "wait" request
	// starts waiting.
	Waiting chan struct{}
	mu      sync.Mutex
	last    *oip.InferRequest
}

var _ oip.Backend = (*Backend)(nil)

// ErrSecret is the cause of "broken"'s failure: a test checks that its text
// reaches the log and never the caller.
var ErrSecret = errors.New("disk /srv/secret/models corrupted")

// Last returns the last request Infer saw.
func (b *Backend) Last() *oip.InferRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

func (b *Backend) ServerReady(ctx context.Context) bool { return !b.NotReady.Load() }

func (b *Backend) resolve(name, version string) (string, error) {
	switch name {
	case "sum":
		switch version {
		case "":
			return "2", nil
		case "1", "2":
			return version, nil
		}
		return "", fmt.Errorf("%w: sum version %s", oip.ErrModelNotFound, version)
	case "echo", "broken", "wait":
		return "1", nil
	case "loading":
		return "", fmt.Errorf("%w: loading is loading", oip.ErrUnavailable)
	case "corrupt":
		return "", fmt.Errorf("%w: corrupt version 1: model.lgb is truncated", oip.ErrModelUnusable)
	}
	return "", fmt.Errorf("%w: no registered model %q", oip.ErrModelNotFound, name)
}

func (b *Backend) ModelReady(ctx context.Context, name, version string) (bool, error) {
	if name == "loading" {
		return false, nil
	}
	_, err := b.resolve(name, version)
	return err == nil, err
}

func (b *Backend) ModelMetadata(ctx context.Context, name, version string) (*oip.ModelMetadata, error) {
	if _, err := b.resolve(name, version); err != nil {
		return nil, err
	}
	return &oip.ModelMetadata{Name: name, Versions: []string{"1", "2"}, Platform: "atrium_gbdt",
		Inputs:  []oip.TensorMetadata{{Name: "input", Datatype: oip.FP32, Shape: []int64{-1, 3}}},
		Outputs: []oip.TensorMetadata{{Name: "predict", Datatype: oip.FP64, Shape: []int64{-1}}}}, nil
}

func (b *Backend) Infer(ctx context.Context, name, version string, req *oip.InferRequest) (*oip.InferResponse, error) {
	b.mu.Lock()
	b.last = req
	b.mu.Unlock()
	v, err := b.resolve(name, version)
	if err != nil {
		return nil, err
	}
	resp := &oip.InferResponse{ModelName: name, ModelVersion: v, ID: req.ID}
	switch name {
	case "broken":
		return nil, fmt.Errorf("load %s: %w", name, ErrSecret)
	case "wait":
		if b.Waiting != nil {
			b.Waiting <- struct{}{}
		}
		<-ctx.Done()
		return nil, fmt.Errorf("wait: %w", ctx.Err())
	case "echo":
		resp.Outputs = append(resp.Outputs, req.Inputs...)
		return resp, nil
	}
	in := req.Inputs[0]
	if len(req.Inputs) != 1 || len(in.Shape) != 2 {
		return nil, fmt.Errorf("%w: sum takes one input [batch, k]", oip.ErrInvalidInput)
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
			case oip.FP32:
				x = float64(in.FP32[r*k+j])
			case oip.FP64:
				x = in.FP64[r*k+j]
			default:
				return nil, fmt.Errorf("%w: inputs[0] %q: datatype %s, want FP32 or FP64", oip.ErrInvalidInput, in.Name, in.Datatype)
			}
			if x == x { // NaN is missing
				out[r] += x
			}
		}
		out[r] *= scale
	}
	resp.Outputs = []oip.Tensor{{Name: "predict", Datatype: oip.FP64, Shape: []int64{int64(rows)}, FP64: out}}
	return resp, nil
}
