package doctor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfpb"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
)

func tfCheck(id, name string) Check {
	return Check{Section: SectionTFServing, ID: id, Name: name}
}

func (o Options) startTFFix(addr string) string {
	if o.embeddedTF {
		return "no --tfserving given, so doctor checked the embedded default " + pipeline.DefaultGRPCAddr +
			": start it with 'make run' or 'inferops serve', or pass --tfserving host:8500"
	}
	return "is tensorflow_model_server running there with --port " + portsOf([]string{addr}) + "? check --tfserving and firewalls"
}

// CheckTFServing runs the TF Serving checks within ctx on every host behind
// --tfserving (a list, or a dns:/// name resolved to all its addresses):
// reachable, model status, versions and labels, a Predict probe; with
// several hosts, version skew across them; then batching (Prometheus page).
func CheckTFServing(ctx context.Context, o Options) []Check {
	hosts, err := o.tfHosts(ctx)
	if err != nil {
		reach := tfCheck("tfserving.reachable", "gRPC reachable")
		reach.Status, reach.Seen = Fail, err.Error()
		reach.Want = "--tfserving resolves to at least one TF Serving host"
		reach.Fix = "check the name in --tfserving and the DNS servers in /etc/resolv.conf, or list the hosts: --tfserving h1:8500,h2:8500"
		return []Check{reach, o.batchingCheck(ctx)}
	}
	per := make([][]Check, len(hosts))
	facts := make([]*TFFacts, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			per[i], facts[i] = o.checkTFHost(ctx, h)
			if len(hosts) > 1 {
				for j := range per[i] {
					per[i][j].Host = h
					per[i][j].Name += " (" + h + ")"
					if per[i][j].ID == "tfserving.reachable" && per[i][j].Status == Fail {
						per[i][j].Why = "the workers leave this host out of the rotation: the other hosts take its share, with that much less headroom"
					}
				}
			}
		}()
	}
	wg.Wait()
	var out []Check
	for _, cs := range per {
		out = append(out, cs...)
	}
	if len(hosts) > 1 {
		out = append(out, JudgeSkew(o.Model, hosts, facts))
	}
	return append(out, o.batchingCheck(ctx))
}

// tfHosts is every host --tfserving names; a dns:/// name is resolved by
// the client the worker uses, so doctor checks the hosts the worker uses.
func (o Options) tfHosts(ctx context.Context) ([]string, error) {
	a, err := tfserving.ParseAddress(o.TF.Address)
	if err != nil {
		return nil, err
	}
	if a.DNS == "" {
		return a.Hosts, nil
	}
	cfg := o.TF
	cfg.Model = o.Model
	c, err := tfserving.Dial(cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	fl := c.Probe(ctx)
	if len(fl.Hosts) == 0 {
		if fl.Err != "" {
			return nil, errors.New(fl.Err)
		}
		return nil, fmt.Errorf("%s resolves to no address", o.TF.Address)
	}
	hosts := make([]string, len(fl.Hosts))
	for i, h := range fl.Hosts {
		hosts[i] = h.Addr
	}
	return hosts, nil
}

// checkTFHost is the checks of one host; facts is nil when the host was
// not reachable or does not speak TF Serving's API.
func (o Options) checkTFHost(ctx context.Context, addr string) ([]Check, *TFFacts) {
	reach := tfCheck("tfserving.reachable", "gRPC reachable")
	reach.Want = "accepts TCP on the gRPC port"
	reach.Why = "every worker sends Predict here; unreachable means the whole pipeline stops at the DLQ or lags"
	if _, failed := dialAll(ctx, []string{addr}); len(failed) > 0 {
		reach.Status = Fail
		reach.Seen = unreachable(failed, []string{addr})
		reach.Fix = o.startTFFix(addr)
		return []Check{reach}, nil
	}
	reach.Status, reach.Seen = Pass, addr
	ho := o
	ho.TF.Address = addr
	facts, err := GatherTF(ctx, ho)
	if err != nil {
		proto := tfCheck("tfserving.protocol", "TF Serving API")
		proto.Status, proto.Seen = Fail, err.Error()
		proto.Want = "gRPC PredictionService and ModelService answer"
		proto.Why = "workers speak gRPC to this port; a TLS mismatch or a non-gRPC port fails every Predict"
		proto.Fix = "is this TF Serving's --port (gRPC, not the REST port)? does it need --tfserving-tls / --tfserving-tls-ca-file?"
		return []Check{reach, proto}, nil
	}
	return append([]Check{reach}, JudgeTF(facts)...), &facts
}

func (o Options) batchingCheck(ctx context.Context) Check {
	if o.TFServingREST != "" {
		return checkBatching(ctx, o)
	}
	c := tfCheck("tfserving.batching", "server-side batching")
	c.Status, c.Seen = Info, "not checked: no REST address"
	c.Fix = "pass --tfserving-rest host:8501 (TF Serving's --rest_api_port) to read its Prometheus metrics"
	return c
}

// GatherTF asks TF Serving about the model and runs the Predict probe. It
// returns an error only when the server does not speak the API at all;
// a missing model or failing Predict are facts for JudgeTF.
func GatherTF(ctx context.Context, o Options) (TFFacts, error) {
	o.SetDefaults()
	f := TFFacts{Addr: o.TF.Address, Model: o.Model, SLO: o.PredictSLO}
	client, err := tfserving.Dial(o.TF)
	if err != nil {
		return f, err
	}
	defer client.Close()
	vs, err := client.ModelStatus(ctx, o.Model)
	switch {
	case isAPIError(err):
		return f, err
	case err != nil:
		f.StatusErr = err.Error()
		return f, nil
	}
	for _, v := range vs {
		vs := VersionState{Version: v.Version, State: v.State}
		if v.ErrorCode != "" && v.ErrorCode != "OK" {
			vs.Error = strings.TrimSpace(v.ErrorCode + ": " + v.ErrorMessage)
		}
		f.Versions = append(f.Versions, vs)
	}
	for _, l := range tfserving.ProbeLabels {
		if md, err := client.Metadata(ctx, o.Model, tfserving.Target{Label: l}); err == nil {
			if f.Labels == nil {
				f.Labels = map[string]int64{}
			}
			f.Labels[l] = md.Version
		}
	}
	md, err := client.Metadata(ctx, o.Model, tfserving.Target{})
	if err != nil {
		f.SignatureErr = err.Error()
		return f, nil
	}
	sig, err := md.ServingDefault()
	if err != nil {
		f.SignatureErr = err.Error()
		return f, nil
	}
	f.StandIn = md.StandIn()
	f.Signature = describeSignature(sig)
	in, err := probeInputs(sig)
	if err != nil {
		f.SignatureErr = err.Error()
		return f, nil
	}
	probe(ctx, client, o, in, &f)
	return f, nil
}

// describeSignature is "x DT_FLOAT [-1] -> y DT_FLOAT [-1]".
func describeSignature(sig tfserving.Signature) string {
	side := func(specs []pipeline.TensorSpec) string {
		parts := make([]string, len(specs))
		for i, s := range specs {
			parts[i] = s.String()
		}
		return strings.Join(parts, ", ")
	}
	return side(sig.InputSpecs()) + " -> " + side(sig.OutputSpecs())
}

// probeInputs is one plausible, non-degenerate row for every input of the
// signature (all zeros can hit shortcuts): sizes the signature leaves open
// are 1.
func probeInputs(sig tfserving.Signature) (map[string]*tensor.Tensor, error) {
	in := map[string]*tensor.Tensor{}
	for _, spec := range sig.InputSpecs() {
		shape := []int64{1}
		if len(spec.Shape) > 1 {
			for _, d := range spec.Shape[1:] {
				shape = append(shape, max(d, 1))
			}
		}
		n := 1
		for _, d := range shape {
			n *= int(d)
		}
		t := &tensor.Tensor{DType: spec.DType, Shape: shape}
		for i := range n {
			switch spec.DType {
			case tfpb.DataType_DT_FLOAT, tfpb.DataType_DT_HALF, tfpb.DataType_DT_BFLOAT16:
				t.Float32 = append(t.Float32, float32(i%7)/7)
			case tfpb.DataType_DT_DOUBLE:
				t.Float64 = append(t.Float64, float64(i%7)/7)
			case tfpb.DataType_DT_INT8, tfpb.DataType_DT_INT16, tfpb.DataType_DT_INT32, tfpb.DataType_DT_INT64,
				tfpb.DataType_DT_UINT8, tfpb.DataType_DT_UINT16, tfpb.DataType_DT_UINT32:
				t.Int64 = append(t.Int64, int64(i%7))
			case tfpb.DataType_DT_UINT64:
				t.Uint64 = append(t.Uint64, uint64(i%7))
			case tfpb.DataType_DT_BOOL:
				t.Bool = append(t.Bool, i%2 == 1)
			case tfpb.DataType_DT_STRING:
				t.Strings = append(t.Strings, []byte("inferops doctor"))
			default:
				return nil, fmt.Errorf("input %q is %s, which doctor cannot make a probe row for", spec.Name, spec.DType)
			}
		}
		in[spec.Name] = t
	}
	return in, nil
}

// isAPIError: the server does not speak TF Serving's gRPC (UNAVAILABLE after
// a TCP connect means TLS or HTTP/1 on the other side; UNIMPLEMENTED means
// some other gRPC service).
func isAPIError(err error) bool {
	var te *tfserving.Error
	if !errors.As(err, &te) {
		return false
	}
	switch te.Code() {
	case codes.Unavailable, codes.Unimplemented, codes.DeadlineExceeded, codes.Unauthenticated:
		return true
	}
	return false
}

// probe sends o.ProbeRequests single-row Predicts one after another and
// records their latency; it stops early, with what it has, when ctx ends.
func probe(ctx context.Context, c *tfserving.Client, o Options, in map[string]*tensor.Tensor, f *TFFacts) {
	req := tfserving.PredictRequest{Model: o.Model, Inputs: in}
	lat := make([]time.Duration, 0, o.ProbeRequests)
	for i := 0; i < o.ProbeRequests && ctx.Err() == nil; i++ {
		start := time.Now()
		_, err := c.Predict(ctx, req)
		d := time.Since(start)
		if err != nil {
			if ctx.Err() != nil {
				break // the budget ran out mid-call: not the server's fault
			}
			f.ProbeErrors++
			if f.ProbeErr == "" {
				f.ProbeErr = err.Error()
			}
		}
		lat = append(lat, d)
	}
	f.ProbeN = len(lat)
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	f.P50 = percentile(lat, 0.50)
	f.P99 = percentile(lat, 0.99)
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(float64(len(sorted))*q+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// checkBatching reads the Prometheus page: TF Serving only exports the
// batching_session metrics when --enable_batching is on.
func checkBatching(ctx context.Context, o Options) Check {
	c := tfCheck("tfserving.batching", "server-side batching")
	c.Want = fmt.Sprintf("on (max_batch_size %d, batch_timeout_micros %d)", SeedMaxBatchSize, SeedBatchTimeoutMicro)
	c.Why = "without batching every Predict runs alone: the seed's QPS needs batches of up to 64 formed within 1 ms"
	c.Fix = "start tensorflow_model_server with --enable_batching=true --batching_parameters_file=/models/batching_config.txt " +
		"(write it with 'inferops doctor --print tfserving-batching')"
	samples, err := tfserving.FetchMetrics(ctx, "http://"+o.TFServingREST+pipeline.TFServingMetricsPath)
	var nm tfserving.NoMetricsError
	switch {
	case errors.As(err, &nm):
		c.Status = Info
		c.Seen = "unknown: " + o.TFServingREST + pipeline.TFServingMetricsPath + " " + err.Error()
		c.Fix = "expose metrics: --monitoring_config_file with prometheus_config { enable: true }"
		return c
	case err != nil:
		c.Status = Info
		c.Seen = "unknown: REST " + o.TFServingREST + " unreachable (" + dialReason(err) + ")"
		c.Fix = "pass --tfserving-rest host:8501 (TF Serving's --rest_api_port) to read its metrics"
		return c
	}
	st := batchingFrom(samples)
	if !st.Present {
		c.Status = Warn
		c.Seen = "off (no " + strings.TrimSuffix(batchingPrefix, ":") + " metrics)"
		return c
	}
	c.Status = Pass
	c.Seen = "on"
	if st.Batches > 0 {
		c.Seen += fmt.Sprintf(" (%.0f batches, average %.1f records)", st.Batches, st.AvgBatch)
	}
	return c
}
