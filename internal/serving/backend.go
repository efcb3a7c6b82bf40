package serving

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/serving/oip"
	"github.com/atrium-ml/atrium/internal/serving/predlog"
)

// OutputName is the name of the one output tensor of every served model:
// [batch] predictions, or [batch, classes] for multiclass.
const OutputName = "predict"

// RoutingKeyParameter is the request parameter whose value routes a request
// between the primary and a canary (a user id, say). Without it the
// request id is the key.
const RoutingKeyParameter = "routing_key"

// Backend answers the Open Inference Protocol with a Service's models.
type Backend struct {
	svc *Service
}

var _ oip.Backend = (*Backend)(nil)

// NewBackend returns the OIP backend of s.
func NewBackend(s *Service) *Backend { return &Backend{svc: s} }

// oipError carries a serving error with the oip sentinel its status comes
// from; its message is the serving error's alone.
type oipError struct{ sentinel, err error }

func (e oipError) Error() string   { return e.err.Error() }
func (e oipError) Unwrap() []error { return []error{e.sentinel, e.err} }

// toOIP maps this package's errors to the protocol's sentinels.
func toOIP(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound):
		return oipError{oip.ErrModelNotFound, err}
	case errors.Is(err, ErrInvalidInput):
		return oipError{oip.ErrInvalidInput, err}
	case errors.Is(err, ErrModelFormat), errors.Is(err, ErrUnsupportedFlavor):
		return oipError{oip.ErrModelUnusable, err}
	case errors.Is(err, ErrNotReady):
		return oipError{oip.ErrUnavailable, err}
	case meta.IsUnavailable(err), errors.Is(err, context.DeadlineExceeded):
		// The registry or the artifact store did not answer: a retry may
		// succeed. The cause stays in the transport's log.
		return oipError{oip.ErrUnavailable, fmt.Errorf("the model registry did not answer in time; try again (%w)", err)}
	}
	return err
}

// ServerReady reports whether the registry's metadata database answers and
// every model marked LoadAtStart has a version serving.
func (b *Backend) ServerReady(ctx context.Context) bool {
	return b.svc.StartupError() == nil && b.svc.loader.Registry.Ready(ctx) == nil
}

// ModelReady reports whether a model serves. A version that cannot be
// served (its files, its flavor, its feature service), asked for by number
// or the one the alias moved to, is an error wrapping oip.ErrModelUnusable
// that says why (for the alias, also which version still serves); a load
// that may succeed later (the registry did not answer) wraps
// oip.ErrUnavailable. The transports answer both as ready: false.
func (b *Backend) ModelReady(ctx context.Context, name, version string) (bool, error) {
	var err error
	if version == "" {
		err = b.svc.Ready(ctx, name)
	} else {
		_, err = b.svc.Resolve(ctx, name, version, "")
	}
	if err != nil {
		return false, toOIP(err)
	}
	return true, nil
}

// ModelMetadata describes the version that serves name (its alias's, or the
// version asked for): one input per feature, FP64 for numbers and BYTES for
// categories, and the output "predict".
func (b *Backend) ModelMetadata(ctx context.Context, name, version string) (*oip.ModelMetadata, error) {
	d, err := b.svc.primary(ctx, name, version)
	if err != nil {
		return nil, toOIP(err)
	}
	md := &oip.ModelMetadata{Name: name, Versions: []string{d.Version}, Platform: d.Platform,
		Inputs: make([]oip.TensorMetadata, len(d.Inputs))}
	for i, f := range d.Inputs {
		dt := oip.FP64
		if f.Kind == ml.Categorical {
			dt = oip.BYTES
		}
		md.Inputs[i] = oip.TensorMetadata{Name: f.Name, Datatype: dt, Shape: []int64{-1}}
	}
	shape := []int64{-1}
	if k := d.NumOutputs(); k > 1 {
		shape = []int64{-1, int64(k)}
	}
	md.Outputs = []oip.TensorMetadata{{Name: OutputName, Datatype: oip.FP64, Shape: shape}}
	return md, nil
}

// Infer scores a request. Inputs are either one 2-D tensor [batch,
// n_features] in the model's feature order, or one tensor per feature named
// after it, of shape [batch] or [batch, 1]. Numbers may be FP32, FP64,
// INT32, INT64 or BOOL; categorical features also take BYTES (the category
// text; a category the model never saw is missing). NaN is missing. Through
// the alias, the request is also scored by the model's shadow, off path.
func (b *Backend) Infer(ctx context.Context, name, version string, req *oip.InferRequest) (*oip.InferResponse, error) {
	for _, o := range req.Outputs {
		if o.Name != OutputName {
			return nil, oipError{oip.ErrInvalidInput, fmt.Errorf("%w: requested output %q: model %s has one output, %q", ErrInvalidInput, o.Name, name, OutputName)}
		}
	}
	start := time.Now()
	// The request's id is the transport's (X-Request-Id, gRPC x-request-id:
	// the client's when usable, else the server's), not the body's "id":
	// the log's rows then join to the server's logs and to what the client
	// sent in its header, the id is bounded as the header is, and the
	// canary split follows the same key as /v1 predict's. The body's id is
	// only echoed in the answer, as the protocol asks.
	id := server.RequestID(ctx)
	if id == "" {
		id = localRequestID() // a caller without a transport: the log still groups the rows
	}
	key, routingKey := id, ""
	if k, ok := req.Parameters[RoutingKeyParameter].(string); ok && k != "" {
		key, routingKey = k, k
	}
	d, err := b.svc.Resolve(ctx, name, version, key)
	if err != nil {
		return nil, toOIP(err)
	}
	ds, err := datasetOf(d, req.Inputs)
	if err != nil {
		return nil, toOIP(err)
	}
	// The response holds preds, the log a copy of the rows: ds is free
	// once Infer returns.
	defer d.ReleaseDataset(ds)
	mstart := time.Now()
	preds, err := d.Predict(ctx, ds)
	if err != nil {
		return nil, toOIP(err)
	}
	rec := predlog.Record{RequestID: id, Time: start, Route: predlog.RouteInfer, RoutingKey: routingKey,
		Latency: predlog.Latency{Total: time.Since(start), Model: time.Since(mstart)}}
	rows := int64(ds.NumRows())
	shape := []int64{rows}
	if k := d.NumOutputs(); k > 1 {
		shape = []int64{rows, int64(k)}
	}
	if version == "" {
		// The shadow's rows are built now: the transport reuses the
		// request's memory once Infer returns.
		if sh := b.svc.ShadowOf(d); sh != nil {
			if rows, err := datasetOf(sh, req.Inputs); err == nil {
				b.svc.shadowLogged(d, preds, sh, rows, rec)
			} else {
				b.svc.log.Warn("serving: the request does not fit the shadow version's inputs", "model", name, "shadow_version", sh.Version, "err", err)
				b.svc.m.shadow.WithLabelValues(name, "failed").Inc()
			}
		}
	}
	b.svc.logPredictions(d, ds, preds, rec)
	return &oip.InferResponse{ModelName: name, ModelVersion: d.Version, ID: req.ID,
		Outputs: []oip.Tensor{{Name: OutputName, Datatype: oip.FP64, Shape: shape, FP64: preds}}}, nil
}

// primary resolves the version metadata describes: the alias's primary
// (never a canary) or the version asked for.
func (s *Service) primary(ctx context.Context, name, version string) (*Deployed, error) {
	if version == "" {
		if m := s.lookup(name); m != nil {
			if d := m.primary.cur.Load(); d != nil {
				return d, nil
			}
		}
		return s.first(ctx, name)
	}
	return s.Resolve(ctx, name, version, "")
}

// datasetOf builds the rows of a request for d's inputs.
func datasetOf(d *Deployed, inputs []oip.Tensor) (*ml.Dataset, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidInput}, args...)...)
	}
	if len(inputs) == 0 {
		return nil, bad("no inputs: send one [batch, %d] tensor or one tensor per feature (%s)", len(d.Inputs), inputNames(d))
	}
	for i := range inputs {
		if err := checkTensor(&inputs[i]); err != nil {
			return nil, err
		}
	}
	if len(inputs) == 1 && len(inputs[0].Shape) == 2 && (d.InputIndex(inputs[0].Name) < 0 || len(d.Inputs) > 1) {
		return matrixDataset(d, &inputs[0])
	}
	var rows int64 = -1
	cols := make([]*oip.Tensor, len(d.Inputs))
	for i := range inputs {
		t := &inputs[i]
		j := d.InputIndex(t.Name)
		if j < 0 {
			return nil, bad("input %q is not a feature of model %s version %s; its features are %s (or send one [batch, %d] tensor)",
				t.Name, d.Name, d.Version, inputNames(d), len(d.Inputs))
		}
		if cols[j] != nil {
			return nil, bad("input %q is given twice", t.Name)
		}
		if len(t.Shape) < 1 || len(t.Shape) > 2 || (len(t.Shape) == 2 && t.Shape[1] != 1) {
			return nil, bad("input %q has shape %v, expected [batch] or [batch, 1] for one feature", t.Name, t.Shape)
		}
		if rows >= 0 && t.Shape[0] != rows {
			return nil, bad("input %q has %d rows, the other inputs %d", t.Name, t.Shape[0], rows)
		}
		rows = t.Shape[0]
		cols[j] = t
	}
	var missing []string
	for j, c := range cols {
		if c == nil {
			missing = append(missing, d.Inputs[j].Name)
		}
	}
	if len(missing) > 0 {
		return nil, bad("missing input(s) %s: model %s version %s takes one tensor per feature (%s)",
			strings.Join(missing, ", "), d.Name, d.Version, inputNames(d))
	}
	ds := d.NewDataset(int(rows))
	for j, t := range cols {
		if err := fillColumn(d, j, &ds.Columns[j], t, 0, 1); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// matrixDataset reads one [batch, n_features] tensor, row-major.
func matrixDataset(d *Deployed, t *oip.Tensor) (*ml.Dataset, error) {
	if n := int64(len(d.Inputs)); t.Shape[1] != n {
		return nil, fmt.Errorf("%w: input %q has shape %v, expected [batch, %d]: model %s version %s has %d features (%s)",
			ErrInvalidInput, t.Name, t.Shape, n, d.Name, d.Version, n, inputNames(d))
	}
	ds := d.NewDataset(int(t.Shape[0]))
	for j := range d.Inputs {
		if err := fillColumn(d, j, &ds.Columns[j], t, j, len(d.Inputs)); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// fillColumn sets column j of the dataset from t's values at offset,
// offset+stride, ... (stride 1 for a per-feature tensor, n_features for a
// matrix).
func fillColumn(d *Deployed, j int, c *ml.Column, t *oip.Tensor, offset, stride int) error {
	f := d.Inputs[j]
	rows := len(c.Values)
	num := func(get func(i int) float64) {
		if c.Kind == ml.Numeric {
			for r := range rows {
				c.Float64[r] = get(offset + r*stride)
			}
			return
		}
		// Category codes given as numbers: the code itself (NaN, and
		// values that are no code, are missing).
		for r := range rows {
			v := get(offset + r*stride)
			if v >= 0 && v == math.Trunc(v) && v < 1<<24 && (f.Categories == nil || int(v) < len(f.Categories)) {
				c.Values[r] = float32(v)
			}
		}
	}
	switch t.Datatype {
	case oip.FP64:
		num(func(i int) float64 { return t.FP64[i] })
	case oip.FP32:
		num(func(i int) float64 { return float64(t.FP32[i]) })
	case oip.INT64:
		num(func(i int) float64 { return float64(t.Int64[i]) })
	case oip.INT32:
		num(func(i int) float64 { return float64(t.Int32[i]) })
	case oip.BOOL:
		num(func(i int) float64 {
			if t.Bool[i] {
				return 1
			}
			return 0
		})
	case oip.BYTES:
		if f.Kind != ml.Categorical {
			return fmt.Errorf("%w: input %q is BYTES, but feature %q of model %s version %s is numeric: send FP32, FP64, INT32 or INT64",
				ErrInvalidInput, t.Name, f.Name, d.Name, d.Version)
		}
		for r := range rows {
			c.Values[r], _ = d.CategoryCode(j, string(t.Bytes[offset+r*stride]))
		}
	default:
		return fmt.Errorf("%w: input %q has datatype %s, expected FP32, FP64, INT32, INT64 or BYTES", ErrInvalidInput, t.Name, t.Datatype)
	}
	return nil
}

// inputNames lists a model's features for error messages.
func inputNames(d *Deployed) string {
	const max = 20
	names := make([]string, 0, min(len(d.Inputs), max+1))
	for i, f := range d.Inputs {
		if i == max {
			names = append(names, fmt.Sprintf("... %d more", len(d.Inputs)-max))
			break
		}
		names = append(names, f.Name)
	}
	return strings.Join(names, ", ")
}

// checkTensor checks the codecs' invariant that Backend relies on: the
// typed slice of the tensor's datatype holds the product of its shape.
func checkTensor(t *oip.Tensor) error {
	n := int64(1)
	for _, d := range t.Shape {
		if d < 0 || (d > 0 && n > math.MaxInt32/d) {
			return fmt.Errorf("%w: input %q has shape %v, expected non-negative dimensions", ErrInvalidInput, t.Name, t.Shape)
		}
		n *= d
	}
	var have int
	switch t.Datatype {
	case oip.FP64:
		have = len(t.FP64)
	case oip.FP32:
		have = len(t.FP32)
	case oip.INT64:
		have = len(t.Int64)
	case oip.INT32:
		have = len(t.Int32)
	case oip.BOOL:
		have = len(t.Bool)
	case oip.BYTES:
		have = len(t.Bytes)
	default:
		return fmt.Errorf("%w: input %q has datatype %s, expected FP32, FP64, INT32, INT64 or BYTES", ErrInvalidInput, t.Name, t.Datatype)
	}
	if int64(have) != n {
		return fmt.Errorf("%w: input %q has %d values, its shape %v needs %d", ErrInvalidInput, t.Name, have, t.Shape, n)
	}
	return nil
}
