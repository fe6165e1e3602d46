package live

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/demo"
	"github.com/inferops/inferops/infer/tfpb"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
	"github.com/inferops/inferops/tui"
)

// servingSchema is the record schema of model's serving signature, as
// the worker and the demo build it.
func servingSchema(t *testing.T, ctx context.Context, tfs *tfserving.Client, model string) *pipeline.Schema {
	t.Helper()
	md, err := tfs.Metadata(ctx, model, tfserving.Target{})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := md.ServingDefault()
	if err != nil {
		t.Fatal(err)
	}
	schema, err := pipeline.NewSchema(sig.InputSpecs(), pipeline.SchemaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return schema
}

// eventually polls the adapter until ok holds or the deadline passes.
func eventually(t *testing.T, a *Adapter, what string, within time.Duration, ok func(tui.Data) bool) tui.Data {
	t.Helper()
	deadline := time.Now().Add(within)
	var d tui.Data
	for time.Now().Before(deadline) {
		d = a.Snapshot()
		if ok(d) {
			return d
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not true within %s; last data: kafka err %q, %d partitions, header %+v, %d members, models %+v, events %+v",
		what, within, d.Kafka.Err, len(d.Kafka.Partitions), d.Header, len(d.Workers.Members), d.Models.Versions, d.Events.Items)
	return d
}

// TestKafkaSide runs the adapter against the embedded broker with demo
// traffic and no worker: the lag table fills with every partition and
// real produce rates, every record counted as lag (nothing committed: the
// earliest reset reads it all), the group that never consumed is NOTFOUND
// with the header saying so, the throughput history grows, the hot key
// shows as rate skew, and the demo keys work.
func TestKafkaSide(t *testing.T) {
	b := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{}}).Broker
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	col, err := cluster.NewCollector(b.ClientConfig(), pipeline.DefaultInput, pipeline.DefaultGroup)
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	schema, err := pipeline.NewSchema([]pipeline.TensorSpec{{Name: pipeline.FieldFeatures, DType: tfpb.DataType_DT_FLOAT, Shape: []int64{-1, 32}}}, pipeline.SchemaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gen, err := demo.Start(ctx, demo.Config{Kafka: b.ClientConfig(), Rate: 500, Schema: schema, NoBursts: true, HotKeyShare: 0.3})
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	a, err := New(Config{Collector: col, Demo: gen, Mode: "embedded", Brokers: b.Addrs(), NoWorker: true,
		Input: pipeline.DefaultInput, Output: pipeline.DefaultOutput, DLQ: pipeline.DefaultDLQ, Group: pipeline.DefaultGroup, Model: "my_model",
		Interval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	a.Run(ctx)
	d := eventually(t, a, "produce rates on every partition", 20*time.Second, func(d tui.Data) bool {
		if len(d.Kafka.Partitions) != 12 || len(d.Flow.In) < 3 {
			return false
		}
		var in float64
		for _, p := range d.Kafka.Partitions {
			in += p.ProduceRate
		}
		return in > 100
	})
	var lag int64
	for _, p := range d.Kafka.Partitions {
		if p.Lag < 0 || (p.Lag > 0) != p.NoCommit {
			t.Errorf("partition %d: lag %d no-commit %v with nothing committed, want the records there, marked no commit", p.ID, p.Lag, p.NoCommit)
		}
		lag += p.Lag
	}
	if d.Kafka.TotalLag != lag || d.Kafka.NoCommitLag != lag || lag == 0 {
		t.Errorf("total lag %d (no commit %d), want the partitions' %d > 0", d.Kafka.TotalLag, d.Kafka.NoCommitLag, lag)
	}
	if d.Header.Health != "NOTFOUND" || !strings.Contains(d.Header.Notice, `group "tf_serving_group" does not exist`) {
		t.Errorf("header health %q notice %q, want NOTFOUND and the group named", d.Header.Health, d.Header.Notice)
	}
	if d.Workers.Skew.RatePeakToAvg < 1.5 {
		t.Errorf("rate skew peak/avg %.2f with a 30%% hot key, want >= 1.5", d.Workers.Skew.RatePeakToAvg)
	}
	if d.DemoRate != 500 || d.Mode != "embedded" || !d.NoWorker {
		t.Errorf("header fields: demo %v mode %q noWorker %v", d.DemoRate, d.Mode, d.NoWorker)
	}
	r, err := a.AdjustDemoRate(+1)
	if err != nil || r != 1000 {
		t.Fatalf("AdjustDemoRate(+1) = %v, %v; want 1000", r, err)
	}
	d = a.Snapshot()
	if d.DemoRate != 1000 || len(d.Events.Items) == 0 || d.Events.Items[0].Kind != "demo" {
		t.Errorf("after ]: demo rate %v, events %+v", d.DemoRate, d.Events.Items)
	}
	// Without a worker every write action explains itself.
	if err := a.ScaleTo(ctx, 2); err == nil {
		t.Error("ScaleTo without a worker succeeded")
	}

	// The screen renders this real data at the smallest supported size.
	m := tui.NewStatic(d, true)
	m.SetSize(80, 24)
	if s := m.View().Content; len(s) == 0 {
		t.Fatal("empty screen")
	}
}
