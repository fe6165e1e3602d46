package doctor

import (
	"context"
	"testing"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// BenchmarkCheckHost: the host section on this machine's real /proc.
func BenchmarkCheckHost(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if len(CheckHost("/")) == 0 {
			b.Fatal("no checks")
		}
	}
}

// BenchmarkRunEmbedded: one whole doctor run (host, Kafka, TF Serving with
// its 50-call probe) against the embedded broker and model server. The
// Kafka section waits ~2 s between its two group samples by design, so
// this measures that doctor stays well inside its time budget.
func BenchmarkRunEmbedded(b *testing.B) {
	ctx := context.Background()
	st := stacktest.Start(b, stack.Config{Broker: &cluster.BrokerConfig{}, Models: &modelserver.Config{EnableBatching: true}})
	o := Options{Kafka: cluster.Config{Brokers: []string{st.Addrs.Kafka}}, TFServingREST: st.Addrs.REST}
	o.TF.Address = st.Addrs.GRPC
	var probeP99 time.Duration
	for b.Loop() {
		r, err := Run(ctx, o)
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range r.Checks {
			if c.Section != SectionHost && c.Status == Fail {
				b.Fatalf("%s failed: %s", c.ID, c.Seen)
			}
		}
	}
	f, err := GatherTF(ctx, o)
	if err == nil {
		probeP99 = f.P99
	}
	b.ReportMetric(float64(probeP99.Microseconds())/1000, "probe-p99-ms")
}
