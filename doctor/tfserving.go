package doctor

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

func tfCheck(id, name string) Check {
	return Check{Section: SectionTFServing, ID: id, Name: name}
}

func (o Options) startTFFix() string {
	if o.embeddedTF {
		return "no --tfserving given, so doctor checked the embedded default " + DefaultTFServing +
			": start it with 'make run' or 'inferops serve', or pass --tfserving host:8500"
	}
	return "is tensorflow_model_server running there with --port " + portsOf([]string{o.TFServing}) + "? check --tfserving and firewalls"
}

// CheckTFServing runs the TF Serving checks within ctx.
func CheckTFServing(ctx context.Context, o Options) []Check {
	reach := tfCheck("tfserving.reachable", "gRPC reachable")
	reach.Want = "accepts TCP on the gRPC port"
	reach.Why = "every worker sends Predict here; unreachable means the whole pipeline stops at the DLQ or lags"
	_, failed := dialAll(ctx, []string{o.TFServing})
	if len(failed) > 0 {
		reach.Status = Fail
		reach.Seen = o.TFServing + ": " + dialReason(failed[o.TFServing])
		reach.Fix = o.startTFFix()
		out := []Check{reach}
		if o.TFServingREST != "" {
			out = append(out, checkBatching(ctx, o))
		}
		return out
	}
	reach.Status, reach.Seen = Pass, o.TFServing
	out := []Check{reach}
	if o.TFServingREST != "" {
		out = append(out, checkBatching(ctx, o))
	}
	return out
}

// checkBatching reads the Prometheus page: TF Serving only exports the
// batching_session metrics when --enable_batching is on.
func checkBatching(ctx context.Context, o Options) Check {
	c := tfCheck("tfserving.batching", "server-side batching")
	c.Want = fmt.Sprintf("on (max_batch_size %d, batch_timeout_micros %d)", SeedMaxBatchSize, SeedBatchTimeoutMicro)
	c.Why = "without batching every Predict runs alone: the seed's QPS needs batches of up to 64 formed within 1 ms"
	c.Fix = "start tensorflow_model_server with --enable_batching=true --batching_parameters_file=/models/batching_config.txt " +
		"(write it with 'inferops doctor --print tfserving-batching')"
	samples, err := fetchMetrics(ctx, o.TFServingREST)
	var nm errNoMetrics
	switch {
	case errors.As(err, &nm):
		c.Status = Info
		c.Seen = "unknown: " + o.TFServingREST + MetricsPath + " " + err.Error()
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
