package oip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/serving/oip/pb"
)

// GRPCOptions configure the gRPC service.
type GRPCOptions struct {
	Options
	// Authorize checks a call's credential: header is the call's
	// "authorization" metadata (what HTTP clients send as the Authorization
	// header; "" when absent). It returns nil to let the call through, or
	// an error: one carrying a gRPC status (status.Error) is answered with
	// it, any other with UNAUTHENTICATED. auth.Guard.GRPCAuthorizer(
	// server.Infer) is the server's. Nil: no check (tests, the in-process
	// demo). ServerLive and ServerReady are not checked, like the REST
	// health routes.
	Authorize func(ctx context.Context, header string) error
	// CallTimeout is each call's deadline, when the client sets none or a
	// later one: the stores a call reaches get it, as HTTP requests get the
	// server's request timeout. Default 30s.
	CallTimeout time.Duration
	// MaxConcurrentCalls bounds the calls in flight across connections;
	// past it a call is answered UNAVAILABLE at once (a client retries), so
	// a flood cannot queue without bound. Default 1024, the HTTP server's
	// bound on reads.
	MaxConcurrentCalls int
	// Registerer, when set, receives the service's metrics (calls by method
	// and status code, latency by method), the gRPC twin of the HTTP
	// server's atrium_http_requests_total: `atrium serve` passes the
	// registry it serves on /metrics.
	Registerer prometheus.Registerer
}

func (o *GRPCOptions) ensureDefaults() {
	o.Options.ensureDefaults()
	if o.CallTimeout <= 0 {
		o.CallTimeout = 30 * time.Second
	}
	if o.MaxConcurrentCalls <= 0 {
		o.MaxConcurrentCalls = 1024
	}
}

// NewGRPCServer returns a gRPC server with the protocol's
// GRPCInferenceService over b registered (tritonclient[grpc] and KServe's
// clients speak it); the caller serves it on a listener and stops it.
// Further grpc.ServerOptions (TLS credentials, say) are applied after the
// service's own.
func NewGRPCServer(b Backend, opts GRPCOptions, extra ...grpc.ServerOption) *grpc.Server {
	opts.ensureDefaults()
	svc := &grpcService{b: b, opts: opts,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atrium_grpc_requests_total",
			Help: "Open Inference Protocol gRPC calls by method and status code.",
		}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "atrium_grpc_request_duration_seconds",
			Help:    "Open Inference Protocol gRPC call latency by method.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"method"}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(svc.calls, svc.latency)
	}
	s := grpc.NewServer(append([]grpc.ServerOption{
		grpc.UnaryInterceptor(svc.intercept),
		grpc.MaxRecvMsgSize(int(min(opts.MaxBodyBytes, 1<<31-1))),
	}, extra...)...)
	pb.RegisterGRPCInferenceServiceServer(s, svc)
	return s
}

// grpcService implements pb.GRPCInferenceServiceServer. The embedded
// Unimplemented server answers UNIMPLEMENTED for methods the proto gains.
type grpcService struct {
	pb.UnimplementedGRPCInferenceServiceServer
	b        Backend
	opts     GRPCOptions
	inFlight atomic.Int64
	calls    *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// intercept gives each call a request id (the caller's x-request-id when
// usable by the HTTP server's rule, else a new one; returned in the response
// header, named by an internal error's answer) and checks its credential.
// The id goes into the context where server.RequestID reads it, as the HTTP
// server puts it: the backend logs predictions under it, so a gRPC call's
// log rows join to its x-request-id.
func (s *grpcService) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (_ any, err error) {
	start := time.Now()
	method := info.FullMethod[strings.LastIndexByte(info.FullMethod, '/')+1:]
	defer func() {
		s.calls.WithLabelValues(method, status.Code(err).String()).Inc()
		s.latency.WithLabelValues(method).Observe(time.Since(start).Seconds())
	}()
	md, _ := metadata.FromIncomingContext(ctx)
	sent := first(md, "x-request-id")
	id := sent
	if !server.UsableRequestID(id) {
		var b [8]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand's contract since Go 1.24)
		id = hex.EncodeToString(b[:])
		if sent != "" {
			server.LogReplacedRequestID(ctx, s.opts.Logger, "grpc", sent, id)
		}
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-request-id", id))
	// A panic in a handler fails the call, not the process: grpc-go does not
	// recover them. It runs before the metrics' defer, which counts the
	// call as INTERNAL.
	defer func() {
		if p := recover(); p != nil {
			s.opts.Logger.Error("inference: panic", "transport", "grpc", "method", method, "request_id", id, "panic", p, "stack", string(debug.Stack()))
			err = status.Error(codes.Internal, "internal error (request id "+id+"); the server log has the details")
		}
	}()
	ctx = server.WithRequestID(ctx, id)
	public := strings.HasSuffix(info.FullMethod, "/ServerLive") || strings.HasSuffix(info.FullMethod, "/ServerReady")
	if !public {
		// Health calls are not counted: a saturated server must still
		// answer its probes.
		if n := s.inFlight.Add(1); n > int64(s.opts.MaxConcurrentCalls) {
			s.inFlight.Add(-1)
			return nil, status.Errorf(codes.Unavailable, "the server is at its limit of %d concurrent calls; retry later", s.opts.MaxConcurrentCalls)
		}
		defer s.inFlight.Add(-1)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.CallTimeout)
	defer cancel()
	if s.opts.Authorize != nil && !public {
		if err := s.opts.Authorize(ctx, first(md, "authorization")); err != nil {
			if _, ok := status.FromError(err); ok {
				return nil, err
			}
			return nil, status.Error(codes.Unauthenticated, err.Error())
		}
	}
	return handler(ctx, req)
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// grpcError is the one place errors become gRPC statuses. An internal
// error's cause goes to the log under the request id, which the answer
// names instead.
func (s *grpcService) grpcError(ctx context.Context, method string, err error) error {
	id := server.RequestID(ctx)
	switch {
	case errors.Is(err, ErrInvalidInput):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrModelNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ErrModelUnusable):
		// FAILED_PRECONDITION, not UNAVAILABLE: clients must not retry.
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, ErrUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		s.opts.Logger.Warn("inference", "transport", "grpc", "method", method, "request_id", id, "err", err)
		return status.Error(codes.Unavailable, "the model did not answer before the call's deadline (request id "+id+")")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "the call was cancelled")
	}
	s.opts.Logger.Error("inference", "transport", "grpc", "method", method, "request_id", id, "err", err)
	return status.Error(codes.Internal, "internal error (request id "+id+"); the server log has the details")
}

func (s *grpcService) ServerLive(context.Context, *pb.ServerLiveRequest) (*pb.ServerLiveResponse, error) {
	return &pb.ServerLiveResponse{Live: true}, nil
}

func (s *grpcService) ServerReady(ctx context.Context, _ *pb.ServerReadyRequest) (*pb.ServerReadyResponse, error) {
	return &pb.ServerReadyResponse{Ready: s.b.ServerReady(ctx)}, nil
}

func (s *grpcService) ModelReady(ctx context.Context, req *pb.ModelReadyRequest) (*pb.ModelReadyResponse, error) {
	if err := nameGiven("name", req.GetName()); err != nil {
		return nil, err
	}
	ok, err := s.b.ModelReady(ctx, req.GetName(), req.GetVersion())
	if errors.Is(err, ErrModelUnusable) || errors.Is(err, ErrUnavailable) {
		// A model that exists but does not serve is an answer, not a
		// failed call: ready false, as Triton answers (tritonclient's
		// is_model_ready then returns False rather than raising). The
		// response has no room for the reason: REST /ready gives it.
		s.opts.Logger.Debug("inference", "transport", "grpc", "method", "ModelReady", "request_id", server.RequestID(ctx), "ready", false, "err", err)
		return &pb.ModelReadyResponse{Ready: false}, nil
	}
	if err != nil {
		return nil, s.grpcError(ctx, "ModelReady", err)
	}
	return &pb.ModelReadyResponse{Ready: ok}, nil
}

func (s *grpcService) ServerMetadata(context.Context, *pb.ServerMetadataRequest) (*pb.ServerMetadataResponse, error) {
	return &pb.ServerMetadataResponse{Name: s.opts.ServerName, Version: s.opts.ServerVersion, Extensions: Extensions}, nil
}

func (s *grpcService) ModelMetadata(ctx context.Context, req *pb.ModelMetadataRequest) (*pb.ModelMetadataResponse, error) {
	if err := nameGiven("name", req.GetName()); err != nil {
		return nil, err
	}
	md, err := s.b.ModelMetadata(ctx, req.GetName(), req.GetVersion())
	if err != nil {
		return nil, s.grpcError(ctx, "ModelMetadata", err)
	}
	tensors := func(ts []TensorMetadata) []*pb.ModelMetadataResponse_TensorMetadata {
		out := make([]*pb.ModelMetadataResponse_TensorMetadata, len(ts))
		for i, t := range ts {
			out[i] = &pb.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape}
		}
		return out
	}
	return &pb.ModelMetadataResponse{Name: md.Name, Versions: md.Versions, Platform: md.Platform,
		Inputs: tensors(md.Inputs), Outputs: tensors(md.Outputs)}, nil
}

func (s *grpcService) ModelInfer(ctx context.Context, preq *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	if err := nameGiven("model_name", preq.GetModelName()); err != nil {
		return nil, err
	}
	req, err := fromProto(preq)
	if err != nil {
		return nil, s.grpcError(ctx, "ModelInfer", err)
	}
	resp, err := s.b.Infer(ctx, preq.GetModelName(), preq.GetModelVersion(), req)
	if err != nil {
		return nil, s.grpcError(ctx, "ModelInfer", err)
	}
	if resp.ID == "" {
		resp.ID = req.ID
	}
	return toProto(resp, len(preq.GetRawInputContents()) > 0), nil
}

// nameGiven refuses a request without the model's name (field): the
// registry's own words for it name its REST API's parameter.
func nameGiven(field, name string) error {
	if name == "" {
		return status.Errorf(codes.InvalidArgument, "%s missing: name the registered model", field)
	}
	return nil
}

// fromProto converts a gRPC request, its tensors sent as raw contents (what
// tritonclient sends) or typed contents, checking each as the REST codec
// does.
func fromProto(p *pb.ModelInferRequest) (*InferRequest, error) {
	req := &InferRequest{ID: p.GetId(), Parameters: fromProtoParams(p.GetParameters())}
	// The request parameter the server reads (REST checks it as JSON:
	// requestParams): of another type it would be ignored without a word.
	if v, ok := p.GetParameters()["routing_key"]; ok {
		if _, ok := v.GetParameterChoice().(*pb.InferParameter_StringParam); !ok {
			return nil, fmt.Errorf("%w: parameters.routing_key: want a string (string_param), got %s", ErrInvalidInput, protoParamKind(v))
		}
		if n := len(v.GetStringParam()); n > MaxRoutingKeyLen {
			return nil, fmt.Errorf("%w: parameters.routing_key: want at most %d bytes, got %d", ErrInvalidInput, MaxRoutingKeyLen, n)
		}
	}
	raw := p.GetRawInputContents()
	if len(p.GetInputs()) == 0 {
		return nil, fmt.Errorf("%w: inputs: want at least one input tensor", ErrInvalidInput)
	}
	if len(raw) > 0 && len(raw) != len(p.GetInputs()) {
		return nil, fmt.Errorf("%w: raw_input_contents has %d entries, want one per input (%d)", ErrInvalidInput, len(raw), len(p.GetInputs()))
	}
	req.Inputs = make([]Tensor, len(p.GetInputs()))
	for i, in := range p.GetInputs() {
		req.Inputs[i] = Tensor{Name: in.GetName(), Datatype: in.GetDatatype(), Shape: in.GetShape()}
	}
	if err := checkBytesElements(req.Inputs); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	for i, in := range p.GetInputs() {
		t := &req.Inputs[i]
		*t = Tensor{Name: in.GetName(), Datatype: in.GetDatatype(), Shape: in.GetShape(), Parameters: fromProtoParams(in.GetParameters())}
		if err := fromProtoTensor(t, in.GetContents(), raw, i); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidInput, inputName(i, t.Name), err)
		}
	}
	for _, o := range p.GetOutputs() {
		req.Outputs = append(req.Outputs, RequestedOutput{Name: o.GetName(), Parameters: fromProtoParams(o.GetParameters())})
	}
	return req, nil
}

func fromProtoTensor(t *Tensor, c *pb.InferTensorContents, raw [][]byte, i int) error {
	if t.Name == "" {
		return errors.New("name missing")
	}
	if err := checkDatatype(t.Datatype); err != nil {
		return err
	}
	n, err := elements(t.Shape)
	if err != nil {
		return err
	}
	if len(raw) > 0 {
		if c != nil {
			return errors.New("both contents and raw_input_contents: send every input one way")
		}
		return t.setRaw(raw[i], n)
	}
	if err := oneContents(c, t.Datatype); err != nil {
		return err
	}
	var got int
	switch t.Datatype {
	case BOOL:
		t.Bool, got = c.GetBoolContents(), len(c.GetBoolContents())
	case INT32:
		t.Int32, got = c.GetIntContents(), len(c.GetIntContents())
	case INT64:
		t.Int64, got = c.GetInt64Contents(), len(c.GetInt64Contents())
	case FP32:
		t.FP32, got = c.GetFp32Contents(), len(c.GetFp32Contents())
	case FP64:
		t.FP64, got = c.GetFp64Contents(), len(c.GetFp64Contents())
	case BYTES:
		t.Bytes, got = c.GetBytesContents(), len(c.GetBytesContents())
	}
	if got != n {
		return fmt.Errorf("shape %s has %d elements, contents has %d %s values", formatShape(t.Shape), n, got, t.Datatype)
	}
	return nil
}

// oneContents refuses typed contents with values in a field other than
// the datatype's: which of the two the client meant is a guess (read as the
// datatype's field alone, an FP64 tensor sent in fp32_contents and
// fp64_contents would score the fp64 values and ignore the others).
func oneContents(c *pb.InferTensorContents, dt string) error {
	fields := []struct {
		name, dt string
		n        int
	}{
		{"bool_contents", BOOL, len(c.GetBoolContents())}, {"int_contents", INT32, len(c.GetIntContents())},
		{"int64_contents", INT64, len(c.GetInt64Contents())}, {"uint_contents", "", len(c.GetUintContents())},
		{"uint64_contents", "", len(c.GetUint64Contents())}, {"fp32_contents", FP32, len(c.GetFp32Contents())},
		{"fp64_contents", FP64, len(c.GetFp64Contents())}, {"bytes_contents", BYTES, len(c.GetBytesContents())},
	}
	want := ""
	for _, f := range fields {
		if f.dt == dt {
			want = f.name
		}
	}
	for _, f := range fields {
		if f.n > 0 && f.dt != dt {
			return fmt.Errorf("contents.%s holds %d values for a %s tensor, whose values go in contents.%s only", f.name, f.n, dt, want)
		}
	}
	return nil
}

func fromProtoParams(p map[string]*pb.InferParameter) map[string]any {
	if len(p) == 0 {
		return nil
	}
	m := make(map[string]any, len(p))
	for k, v := range p {
		switch c := v.GetParameterChoice().(type) {
		case *pb.InferParameter_BoolParam:
			m[k] = c.BoolParam
		case *pb.InferParameter_Int64Param:
			m[k] = c.Int64Param
		case *pb.InferParameter_StringParam:
			m[k] = c.StringParam
		case *pb.InferParameter_DoubleParam:
			m[k] = c.DoubleParam
		case *pb.InferParameter_Uint64Param:
			m[k] = c.Uint64Param
		}
	}
	return m
}

// protoParamKind names the choice an InferParameter holds, in the proto's
// field names.
func protoParamKind(v *pb.InferParameter) string {
	switch v.GetParameterChoice().(type) {
	case *pb.InferParameter_BoolParam:
		return "a bool_param"
	case *pb.InferParameter_Int64Param:
		return "an int64_param"
	case *pb.InferParameter_StringParam:
		return "a string_param"
	case *pb.InferParameter_DoubleParam:
		return "a double_param"
	case *pb.InferParameter_Uint64Param:
		return "a uint64_param"
	}
	return "a parameter without a value"
}

func toProtoParams(m map[string]any) map[string]*pb.InferParameter {
	if len(m) == 0 {
		return nil
	}
	p := make(map[string]*pb.InferParameter, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case bool:
			p[k] = &pb.InferParameter{ParameterChoice: &pb.InferParameter_BoolParam{BoolParam: v}}
		case int64:
			p[k] = &pb.InferParameter{ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: v}}
		case int:
			p[k] = &pb.InferParameter{ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: int64(v)}}
		case string:
			p[k] = &pb.InferParameter{ParameterChoice: &pb.InferParameter_StringParam{StringParam: v}}
		case float64:
			p[k] = &pb.InferParameter{ParameterChoice: &pb.InferParameter_DoubleParam{DoubleParam: v}}
		case uint64:
			p[k] = &pb.InferParameter{ParameterChoice: &pb.InferParameter_Uint64Param{Uint64Param: v}}
		}
	}
	return p
}

// toProto converts a response: outputs as raw_output_contents when the
// request came raw (as tritonclient sends it, and reads raw answers), else
// as typed contents.
func toProto(resp *InferResponse, raw bool) *pb.ModelInferResponse {
	out := &pb.ModelInferResponse{ModelName: resp.ModelName, ModelVersion: resp.ModelVersion, Id: resp.ID,
		Parameters: toProtoParams(resp.Parameters), Outputs: make([]*pb.ModelInferResponse_InferOutputTensor, len(resp.Outputs))}
	for i := range resp.Outputs {
		t := &resp.Outputs[i]
		o := &pb.ModelInferResponse_InferOutputTensor{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape, Parameters: toProtoParams(t.Parameters)}
		out.Outputs[i] = o
		if raw {
			out.RawOutputContents = append(out.RawOutputContents, t.appendRaw(make([]byte, 0, t.rawSize())))
			continue
		}
		c := &pb.InferTensorContents{}
		switch t.Datatype {
		case BOOL:
			c.BoolContents = t.Bool
		case INT32:
			c.IntContents = t.Int32
		case INT64:
			c.Int64Contents = t.Int64
		case FP32:
			c.Fp32Contents = t.FP32
		case FP64:
			c.Fp64Contents = t.FP64
		case BYTES:
			c.BytesContents = t.Bytes
		}
		o.Contents = c
	}
	return out
}

var _ pb.GRPCInferenceServiceServer = (*grpcService)(nil)

// ServeGRPC serves s on ln until ctx is cancelled, then stops it the way
// the HTTP server shuts down: no new calls, calls in flight get up to grace
// to finish, then the rest are cut. It returns nil after a shutdown, or the
// error that stopped the server first. It closes ln.
func ServeGRPC(ctx context.Context, s *grpc.Server, ln net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("grpc serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(grace):
		s.Stop() // cuts the calls still running; GracefulStop then returns
		<-stopped
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}
