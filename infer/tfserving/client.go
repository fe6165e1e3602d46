package tfserving

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfpb"
	"github.com/inferops/inferops/pipeline"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// DefaultSignature is what TF Serving uses when a request names none.
const DefaultSignature = "serving_default"

// Client talks to TF Serving: one host or a fleet of them (--tfserving
// h1:8500,h2:8500 or dns:///name:8500), balancing calls across the hosts in
// rotation with gRPC's own balancer (balancer.go) and probing each host
// (health.go). It is safe for concurrent use.
type Client struct {
	addr    string
	timeout time.Duration
	maxMsg  int
	fleet   *fleet
	predict tfpb.PredictionServiceClient
	models  tfpb.ModelServiceClient
	lat     latencies
}

// Dial prepares a client. The connection is made lazily and re-made after
// failures, so Dial succeeds while the server is down and the first call
// reports UNAVAILABLE with advice instead.
func Dial(cfg Config) (*Client, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	tc, err := cfg.TLS.tlsConfig()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		creds = credentials.NewTLS(tc)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(dialHost),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: cfg.KeepaliveTime, Timeout: 10 * time.Second}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(cfg.MaxMessageBytes), grpc.MaxCallSendMsgSize(cfg.MaxMessageBytes)),
		// Fixed 1 MiB windows instead of BDP estimation: no flow-control
		// pings interleaved with every batch.
		grpc.WithInitialWindowSize(1 << 20),
		grpc.WithInitialConnWindowSize(1 << 20),
		// Reconnect within seconds of a restarted server (gRPC's default
		// backoff grows to 2 minutes, during which every call fails fast
		// with UNAVAILABLE although the server is back).
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 3 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
	}
	f, err := newFleet(cfg, opts)
	if err != nil {
		return nil, err
	}
	rt := router{f}
	return &Client{
		addr:    cfg.Address,
		timeout: cfg.Timeout,
		maxMsg:  cfg.MaxMessageBytes,
		fleet:   f,
		predict: tfpb.NewPredictionServiceClient(rt),
		models:  tfpb.NewModelServiceClient(rt),
	}, nil
}

// Close stops the probes and releases every connection.
func (c *Client) Close() error {
	c.fleet.close()
	return nil
}

// Address is --tfserving as given: one host:port, a list, or a dns:/// name.
func (c *Client) Address() string { return c.addr }

func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= c.timeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.timeout)
}

// TensorInfo describes one signature input or output.
type TensorInfo struct {
	Name  string // graph tensor name, e.g. "features:0"
	DType tfpb.DataType
	Shape []int64 // -1 for unknown sizes; nil for unknown rank
}

// Signature is one SignatureDef; the maps are keyed by alias.
type Signature struct {
	Name, MethodName string
	Inputs, Outputs  map[string]TensorInfo
}

// Metadata is GetModelMetadata's answer.
type Metadata struct {
	Model      string
	Version    int64
	Signatures map[string]Signature
}

// Metadata asks which signatures a model version serves.
func (c *Client) Metadata(ctx context.Context, model string, t Target) (*Metadata, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	op := "GetModelMetadata " + t.describe(model)
	resp, err := c.predict.GetModelMetadata(ctx, &tfpb.GetModelMetadataRequest{
		ModelSpec:     t.Spec(model, ""),
		MetadataField: []string{"signature_def"},
	})
	if err != nil {
		return nil, c.wrap(op, model, err)
	}
	md := &Metadata{Model: resp.GetModelSpec().GetName(), Version: resp.GetModelSpec().GetVersion().GetValue(), Signatures: map[string]Signature{}}
	anyDefs := resp.GetMetadata()["signature_def"]
	if anyDefs == nil {
		return nil, c.wrap(op, model, status.Error(codes.Internal, "response has no signature_def metadata"))
	}
	var defs tfpb.SignatureDefMap
	if err := anyDefs.UnmarshalTo(&defs); err != nil {
		return nil, c.wrap(op, model, status.Errorf(codes.Internal, "signature_def metadata: %v", err))
	}
	conv := func(m map[string]*tfpb.TensorInfo) map[string]TensorInfo {
		out := make(map[string]TensorInfo, len(m))
		for alias, ti := range m {
			out[alias] = TensorInfo{Name: ti.GetName(), DType: ti.GetDtype(), Shape: tensor.ShapeOf(ti.GetTensorShape())}
		}
		return out
	}
	for name, sd := range defs.GetSignatureDef() {
		md.Signatures[name] = Signature{Name: name, MethodName: sd.GetMethodName(), Inputs: conv(sd.GetInputs()), Outputs: conv(sd.GetOutputs())}
	}
	return md, nil
}

// ServingDefault is the signature the worker, perf and doctor feed:
// serving_default, or an error naming the signatures the model has.
func (m *Metadata) ServingDefault() (Signature, error) {
	sig, ok := m.Signatures[DefaultSignature]
	if !ok {
		names := make([]string, 0, len(m.Signatures))
		for n := range m.Signatures {
			if n != pipeline.StandInSignature {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		return Signature{}, fmt.Errorf("model %s v%d has no %s signature (it has %s): export it with one", m.Model, m.Version, DefaultSignature, strings.Join(names, ", "))
	}
	if len(sig.Inputs) == 0 || len(sig.Outputs) == 0 {
		return Signature{}, fmt.Errorf("model %s v%d: %s has %d inputs and %d outputs; the worker needs at least one of each", m.Model, m.Version, DefaultSignature, len(sig.Inputs), len(sig.Outputs))
	}
	return sig, nil
}

// StandIn reports that the server marks this model as an inferops
// stand-in (pipeline.StandInSignature): a signature copied from a real
// model with made-up outputs, not the model itself.
func (m *Metadata) StandIn() bool {
	_, ok := m.Signatures[pipeline.StandInSignature]
	return ok
}

// InputSpecs are the signature's inputs in the pipeline's terms, sorted by
// alias.
func (s Signature) InputSpecs() []pipeline.TensorSpec { return specs(s.Inputs) }

// OutputSpecs are the signature's outputs, sorted by alias.
func (s Signature) OutputSpecs() []pipeline.TensorSpec { return specs(s.Outputs) }

func specs(m map[string]TensorInfo) []pipeline.TensorSpec {
	out := make([]pipeline.TensorSpec, 0, len(m))
	for alias, ti := range m {
		out = append(out, pipeline.TensorSpec{Name: alias, DType: ti.DType, Shape: ti.Shape})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// PredictRequest is one batch: a tensor per signature input, the rows
// along each tensor's first dimension.
type PredictRequest struct {
	Model     string
	Target    Target
	Signature string // empty: serving_default
	// Inputs are keyed by input alias. Fixed-size types travel as
	// tensor_content, strings as string_val (tensor.Encode).
	Inputs map[string]*tensor.Tensor
	// OutputFilter limits the outputs computed (empty: all).
	OutputFilter []string
}

// PredictResult is a decoded PredictResponse.
type PredictResult struct {
	Model string
	// Version is the version that really served (from the response
	// model_spec), even when the request asked for latest or a label.
	Version   int64
	Signature string
	Outputs   map[string]tensor.Tensor
}

// Rows returns one float32 slice per batch row of an output; "" picks the
// only output.
func (r *PredictResult) Rows(output string) ([][]float32, error) {
	if output == "" && len(r.Outputs) == 1 {
		for k := range r.Outputs {
			output = k
		}
	}
	t, ok := r.Outputs[output]
	if !ok {
		names := make([]string, 0, len(r.Outputs))
		for k := range r.Outputs {
			names = append(names, k)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("model %s v%d returned no output %q (it returned %s)", r.Model, r.Version, output, strings.Join(names, ", "))
	}
	return t.Rows()
}

// contentPool recycles tensor_content buffers: once Invoke returns the
// request is marshalled and the bytes are free again.
var contentPool = sync.Pool{New: func() any { return new([]byte) }}

// Predict runs one batch.
func (c *Client) Predict(ctx context.Context, r PredictRequest) (*PredictResult, error) {
	op := "Predict " + r.Target.describe(r.Model)
	if err := r.check(); err != nil {
		return nil, &RequestError{Addr: c.addr, Op: op, Err: err}
	}
	bp := contentPool.Get().(*[]byte)
	defer contentPool.Put(bp)
	size := 0
	for _, t := range r.Inputs {
		size += tensor.ContentBytes(t)
	}
	// One buffer for every input's content: sized first, so no append
	// moves it while earlier inputs alias it.
	b := slices.Grow((*bp)[:0], size)
	req := &tfpb.PredictRequest{
		ModelSpec:    r.Target.Spec(r.Model, r.Signature),
		Inputs:       make(map[string]*tfpb.TensorProto, len(r.Inputs)),
		OutputFilter: r.OutputFilter,
	}
	for alias, t := range r.Inputs {
		tp := &tfpb.TensorProto{}
		var err error
		if b, err = tensor.Encode(tp, t, b); err != nil {
			return nil, &RequestError{Addr: c.addr, Op: op, Err: fmt.Errorf("input %q: %v", alias, err)}
		}
		req.Inputs[alias] = tp
	}
	*bp = b
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	start := time.Now()
	resp, err := c.predict.Predict(ctx, req)
	elapsed := time.Since(start)
	if err != nil {
		return nil, c.wrap(op, r.Model, err)
	}
	res := &PredictResult{
		Model:     resp.GetModelSpec().GetName(),
		Version:   resp.GetModelSpec().GetVersion().GetValue(),
		Signature: resp.GetModelSpec().GetSignatureName(),
		Outputs:   make(map[string]tensor.Tensor, len(resp.GetOutputs())),
	}
	for alias, tp := range resp.GetOutputs() {
		t, err := tensor.DecodeTensorMax(tp, int64(c.maxMsg/4)) // bounded like the server's
		if err != nil {
			return nil, c.wrap(op, r.Model, status.Errorf(codes.Internal, "output %q: %v", alias, err))
		}
		res.Outputs[alias] = t
	}
	c.lat.record(res.Version, elapsed)
	return res, nil
}

func (r *PredictRequest) check() error {
	if r.Model == "" {
		return fmt.Errorf("no model name (set --model)")
	}
	if len(r.Inputs) == 0 {
		return fmt.Errorf("no inputs (learn the signature's with Metadata(...).ServingDefault())")
	}
	rows, first := int64(-1), ""
	for alias, t := range r.Inputs {
		if t == nil || len(t.Shape) == 0 || t.Shape[0] <= 0 {
			return fmt.Errorf("input %q has no rows: each input's first dimension is the batch", alias)
		}
		if rows >= 0 && t.Shape[0] != rows {
			return fmt.Errorf("input %q has %d rows, input %q has %d: every input needs the same batch", alias, t.Shape[0], first, rows)
		}
		rows, first = t.Shape[0], alias
	}
	return nil
}

// Latency returns client-side Predict round-trip percentiles per served
// version since the client started (or the last ResetLatency).
func (c *Client) Latency() map[int64]LatencySnapshot { return c.lat.snapshot(false) }

// ResetLatency returns Latency and starts the histograms afresh, for callers
// that report per interval.
func (c *Client) ResetLatency() map[int64]LatencySnapshot { return c.lat.snapshot(true) }

// VersionStatus is one row of GetModelStatus.
type VersionStatus struct {
	Version      int64
	State        string // START, LOADING, AVAILABLE, UNLOADING, END
	ErrorCode    string // OK, NOT_FOUND, ...
	ErrorMessage string
}

// ModelStatus lists every version the server knows of, lowest first.
func (c *Client) ModelStatus(ctx context.Context, model string) ([]VersionStatus, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.models.GetModelStatus(ctx, &tfpb.GetModelStatusRequest{ModelSpec: &tfpb.ModelSpec{Name: model}})
	if err != nil {
		return nil, c.wrap("GetModelStatus "+model, model, err)
	}
	out := make([]VersionStatus, 0, len(resp.GetModelVersionStatus()))
	for _, v := range resp.GetModelVersionStatus() {
		out = append(out, VersionStatus{
			Version:      v.GetVersion(),
			State:        v.GetState().String(),
			ErrorCode:    v.GetStatus().GetErrorCode().String(),
			ErrorMessage: v.GetStatus().GetErrorMessage(),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Reload replaces the server's model config (HandleReloadConfigRequest).
// Like TF Serving it returns once newly added models are available; version
// changes of existing models happen afterwards (poll ModelStatus). With
// several hosts it reaches one (the first that answers): reload each host
// through a client of its own address.
func (c *Client) Reload(ctx context.Context, cfg *tfpb.ModelServerConfig) error {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.models.HandleReloadConfigRequest(ctx, &tfpb.ReloadConfigRequest{Config: cfg})
	if err != nil {
		return c.wrap("HandleReloadConfigRequest", "", err)
	}
	if s := resp.GetStatus(); s.GetErrorCode() != tfpb.Code_OK {
		return c.wrap("HandleReloadConfigRequest", "", status.Error(codes.Code(s.GetErrorCode()), s.GetErrorMessage()))
	}
	return nil
}
