package live

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfpb"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
	"github.com/inferops/inferops/tui"
)

// TestFleetInTheConsole: two TF Serving hosts, one serving only version 1
// while the worker's Predicts target 2. The console shows both hosts, flags
// the skew in the header naming the v1 host, and logs the client's host
// events; a host that stops shows as down with its event.
func TestFleetInTheConsole(t *testing.T) {
	b := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{}}).Broker
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	col, err := cluster.NewCollector(b.ClientConfig(), pipeline.DefaultInput, pipeline.DefaultGroup)
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	full := stacktest.Start(t, stack.Config{Models: &modelserver.Config{}}).Models
	base := filepath.Join(t.TempDir(), "m")
	if _, err := model.Materialize(model.Name, base); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(base, "2")); err != nil {
		t.Fatal(err)
	}
	old := stacktest.Start(t, stack.Config{Models: &modelserver.Config{ModelBasePath: base}}).Models
	tfs, err := tfserving.Dial(tfserving.Config{Address: full.GRPCAddr() + "," + old.GRPCAddr()})
	if err != nil {
		t.Fatal(err)
	}
	defer tfs.Close()
	if _, err := tfs.Predict(ctx, tfserving.PredictRequest{Model: model.Name, Target: tfserving.Target{Version: 2}, Inputs: map[string]*tensor.Tensor{
		model.InputName: {DType: tfpb.DataType_DT_FLOAT, Shape: []int64{1, model.Width}, Float32: make([]float32, model.Width)}}}); err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Collector: col, TFS: tfs, Mode: "attached", Brokers: b.Addrs(), NoWorker: true, Model: model.Name,
		TFServing: tfs.Address(), Interval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go a.Run(ctx)
	hasEvent := func(d tui.Data, s string) bool {
		for _, e := range d.Events.Items {
			if strings.Contains(e.Text, s) {
				return true
			}
		}
		return false
	}
	d := eventually(t, a, "two hosts and the skew flag", 10*time.Second, func(d tui.Data) bool {
		return len(d.Models.Hosts) == 2 && strings.Contains(d.Header.Skew, old.GRPCAddr()) && hasEvent(d, "version skew")
	})
	for _, h := range d.Models.Hosts {
		want := map[string]string{full.GRPCAddr(): "up", old.GRPCAddr(): "excluded"}[h.Addr]
		if h.State != want {
			t.Errorf("host %s is %s, want %s (%s)", h.Addr, h.State, want, h.Reason)
		}
	}
	if !hasEvent(d, old.GRPCAddr()+" gets no my_model v2 traffic") {
		t.Errorf("no exclusion event: %+v", d.Events.Items)
	}
	_ = old.Close()
	eventually(t, a, "the stopped host down, with its event", 10*time.Second, func(d tui.Data) bool {
		for _, h := range d.Models.Hosts {
			if h.Addr == old.GRPCAddr() && h.State == "down" {
				return hasEvent(d, old.GRPCAddr()+" out of rotation")
			}
		}
		return false
	})
}
