package worker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/tfserving/tfstest"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// TestPipelineFleetHostKilled: the worker on three TF Serving hosts, each
// its own process; one is SIGKILLed while records flow. Every record still
// reaches ai_output (at-least-once: duplicates allowed, nothing in the
// DLQ), and the breaker never opens, because two hosts were healthy
// throughout.
func TestPipelineFleetHostKilled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{}}).Broker
	hosts := []*tfstest.Host{tfstest.Start(t), tfstest.Start(t), tfstest.Start(t)}
	addrs := make([]string, len(hosts))
	for i, h := range hosts {
		addrs[i] = h.GRPC
	}
	tfs, err := tfserving.Dial(tfserving.Config{Address: strings.Join(addrs, ","), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tfs.Close() })
	e := &testEnv{t: t, broker: b, kafka: b.ClientConfig(), tfs: tfs}
	md, err := tfs.Metadata(ctx, pipeline.DefaultModel, tfserving.Target{})
	if err != nil {
		t.Fatal(err)
	}
	if sd, err := md.ServingDefault(); err == nil {
		e.width = int(sd.Inputs[model.InputName].Shape[1])
	}

	in := newInput()
	p := e.pool(Config{Workers: 2})
	wait := e.produceWhile(in, 20, 300, 50*time.Millisecond, 0)
	waitFor(t, "results from every host", 20*time.Second, func() bool {
		for _, h := range tfs.Fleet().Hosts {
			if h.Calls == 0 {
				return false
			}
		}
		return true
	})
	hosts[1].Kill()
	waitFor(t, "the killed host to leave the rotation", 5*time.Second, func() bool {
		for _, h := range tfs.Fleet().Hosts {
			if h.Addr == hosts[1].GRPC {
				return h.State == tfserving.HostDown
			}
		}
		return false
	})
	wait()
	o := e.collect(in, 60*time.Second)
	if len(o.dlq) != 0 {
		t.Fatalf("%d records dead-lettered after a host died: %v", len(o.dlq), o.reasons)
	}
	for _, ev := range p.Events() {
		if ev.Kind == pipeline.KindBreaker {
			t.Errorf("the breaker moved with two healthy hosts left: %s", ev.Message)
		}
	}
	s := p.Stats()
	t.Logf("records=%d retries=%d duplicates=%d breaker=%s", len(in.keys), s.Retries, o.duplicates(), s.Breaker)
}
