// Package oip is the Open Inference Protocol v2 (KServe V2, as Triton and
// MLServer speak it): its request and response types, their REST encoding
// (JSON, and Triton's binary-data extension) and the GRPCInferenceService.
// It knows nothing of models: a Backend answers for them, so the same
// transport serves registered models today and anything else later.
//
// Invariants every codec keeps: a Tensor holds exactly one typed slice, the
// one its Datatype names, whose length is the product of Shape; a decoded
// request that breaks this is an ErrInvalidInput naming the input.
package oip

import (
	"context"
	"errors"
)

// Datatypes of the protocol that Atrium serves (the spec has more: UINT*,
// FP16, BF16, which a codec refuses with ErrInvalidInput).
const (
	BOOL  = "BOOL"
	INT32 = "INT32"
	INT64 = "INT64"
	FP32  = "FP32"
	FP64  = "FP64"
	BYTES = "BYTES"
)

// Errors a Backend wraps so the transport answers with the protocol's status:
// 404 / NOT_FOUND, 400 / INVALID_ARGUMENT, 503 / UNAVAILABLE (with
// Retry-After: a retry may succeed), and for ErrModelUnusable 503 without
// Retry-After / FAILED_PRECONDITION (no retry helps until the model
// changes). Anything else is an internal error (500, its cause logged, not
// sent).
var (
	ErrModelNotFound = errors.New("model not found")
	ErrInvalidInput  = errors.New("invalid inference request")
	ErrUnavailable   = errors.New("model not ready")
	// ErrModelUnusable: the model version exists but can never load (its
	// files are corrupt or of a flavor not served).
	ErrModelUnusable = errors.New("model cannot be served")
)

// Tensor is one named input or output. Exactly one of the typed slices is
// set, the one Datatype names, in row-major order.
type Tensor struct {
	Name     string
	Datatype string
	Shape    []int64
	// Parameters are the tensor's protocol parameters, passed through.
	Parameters map[string]any

	Bool  []bool
	Int32 []int32
	Int64 []int64
	FP32  []float32
	FP64  []float64
	Bytes [][]byte
}

// RequestedOutput is an entry of a request's "outputs": which output the
// caller wants, and how (Parameters["binary_data"] on REST).
type RequestedOutput struct {
	Name       string
	Parameters map[string]any
}

// InferRequest is a decoded inference request.
type InferRequest struct {
	ID         string
	Parameters map[string]any
	Inputs     []Tensor
	// Outputs is empty when the caller wants every output.
	Outputs []RequestedOutput
}

// InferResponse is what a Backend answers. ModelVersion is the version that
// actually scored the request (the alias resolved), never the alias.
type InferResponse struct {
	ModelName    string
	ModelVersion string
	ID           string
	Parameters   map[string]any
	Outputs      []Tensor
}

// TensorMetadata describes an input or output of a model: -1 in Shape is a
// dimension of any size.
type TensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// ModelMetadata is the answer to GET /v2/models/{name}[/versions/{v}].
type ModelMetadata struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions,omitempty"`
	Platform string           `json:"platform"`
	Inputs   []TensorMetadata `json:"inputs"`
	Outputs  []TensorMetadata `json:"outputs"`
}

// Backend serves models to the transports. version is "" when the caller
// named none (the backend resolves its default, e.g. the model's champion
// alias). Every method honours ctx's deadline.
type Backend interface {
	// ServerReady reports whether the backend can serve (its stores answer).
	ServerReady(ctx context.Context) bool
	ModelReady(ctx context.Context, name, version string) (bool, error)
	ModelMetadata(ctx context.Context, name, version string) (*ModelMetadata, error)
	Infer(ctx context.Context, name, version string, req *InferRequest) (*InferResponse, error)
}
