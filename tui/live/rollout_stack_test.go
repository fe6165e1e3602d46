package live

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/infer/demo"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/worker"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
	"github.com/inferops/inferops/rollout"
	"github.com/inferops/inferops/tui"
)

// TestRolloutFromTheConsole: on the embedded stack under demo traffic, a
// fleet instance serving version 1 and a console over the fleet: v, version
// 2, "roll out gradually", y starts a rollout on a short plan (50%, 100%,
// held 2 s); the rollout panel's data follows it step by step (warm-up,
// 50%, 100%, the gates judged by the driver) and it ends promoted, the
// fleet's target 2 and the screen saying so. Quitting the console while a
// rollout runs is TestRolloutConsoleCloseHolds.
func TestRolloutFromTheConsole(t *testing.T) {
	s := rolloutConsole(t)
	d := eventually(t, s.ad, "v1 serving the fleet", 60*time.Second, func(d tui.Data) bool {
		return d.Fleet.Known && d.Fleet.Live == 1 && d.Header.Served == 1 && len(d.Models.Versions) >= 2
	})
	if d.Rollout.Exists() || d.Rollout.DefaultPlan == "" {
		t.Fatalf("before: rollout %+v", d.Rollout)
	}
	// The picker: latest, version 1, version 2; then "roll out gradually".
	s.press(t, "v", "down", "down", "enter", "down", "enter")
	if scr := ansi.Strip(s.model.View().Content); !strings.Contains(scr, "out gradually to version 2") || !strings.Contains(scr, "steps 50,100%") {
		t.Fatalf("no confirmation naming the plan:\n%s", scr)
	}
	s.press(t, "y")
	if scr := ansi.Strip(s.model.View().Content); !strings.Contains(scr, "driven from this console") {
		t.Fatalf("status line after y:\n%s", scr)
	}
	seen := map[string]bool{}
	var gates []tui.RolloutGate
	last := ""
	d = eventually(t, s.ad, "the rollout promoted", 2*time.Minute, func(d tui.Data) bool {
		r := d.Rollout
		if now := fmt.Sprintf("%s step %d: %s; gates %+v", r.State, r.Step, r.Message, r.Gates); now != last {
			last = now
			t.Logf("%s", now) // the panel's data as it changes, for a failure's story
		}
		switch {
		case r.State == tui.RolloutWarming:
			seen["warming"] = true
		case r.State == tui.RolloutCanary && r.Step >= 0:
			seen[pctf(r.Steps[r.Step])] = true
			if r.GatesBy == "driver" && len(r.Gates) > 0 {
				gates = r.Gates
			}
			if r.Comparison != nil && r.Comparison.Candidate.RowRate > 0 {
				seen["candidate traffic"] = true
			}
		}
		return r.State == tui.RolloutPromoted
	})
	t.Logf("seen %v; last gates %+v", seen, gates)
	for _, want := range []string{"50%", "100%", "candidate traffic"} {
		if !seen[want] {
			t.Errorf("the panel's data never showed %s: %v", want, seen)
		}
	}
	if len(gates) < 3 {
		t.Errorf("gates %+v, want latency, errors and psi as the driver judged them", gates)
	}
	if d.Rollout.Candidate != "2" || d.Rollout.Baseline != "1" || d.Header.Target != "2" {
		t.Errorf("after: rollout %s -> %s, fleet target %q", d.Rollout.Baseline, d.Rollout.Candidate, d.Header.Target)
	}
	s.press(t, "R")
	if scr := ansi.Strip(s.model.View().Content); !strings.Contains(scr, "PROMOTED 2 (was 1)") {
		t.Errorf("rollout panel after promotion:\n%s", scr)
	}
	eventually(t, s.ad, "the driver's end in the event log", 10*time.Second, func(d tui.Data) bool {
		for _, e := range d.Events.Items {
			if strings.Contains(e.Text, "rollout "+d.Rollout.ID+" promoted") {
				return true
			}
		}
		return false
	})
}

// rolloutConsole is the embedded stack with one fleet instance on version
// 1 (as the console's own pool would be), demo traffic, and a console
// over the fleet whose "roll out gradually" plan is short.
func rolloutConsole(t *testing.T) *consoleStack {
	t.Helper()
	st := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{}, Models: &modelserver.Config{RESTAddr: "-"}})
	kc := st.Kafka()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tfs, err := tfserving.Dial(tfserving.Config{Address: st.Addrs.GRPC})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tfs.Close() })
	schema := servingSchema(t, ctx, tfs, pipeline.DefaultModel)

	// The instance, as the console's own pool or `inferops worker` runs.
	wcfg := worker.Config{Instance: "web-1", Workers: 2, DrainTimeout: 3 * time.Second, Target: tfserving.Target{Version: 1}}
	agent, err := fleet.NewAgent(fleet.AgentConfig{Kafka: kc, Worker: wcfg, TFServing: tfs, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 60*time.Second)
	plan, err := agent.Prepare(pctx)
	pcancel()
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Configure(&wcfg); err != nil {
		t.Fatal(err)
	}
	pool, err := worker.NewPool(kc, tfs, wcfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pool.Start(ctx); err != nil {
		t.Fatal(err)
	}
	agent.Run(pool, plan)
	t.Cleanup(func() {
		c, cc := context.WithTimeout(context.Background(), 15*time.Second)
		defer cc()
		_ = pool.Close(c)
		_ = agent.Close(c)
	})
	gen, err := demo.Start(ctx, demo.Config{Kafka: kc, Rate: 300, Schema: schema, NoBursts: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gen.Close() })

	octx, ocancel := context.WithTimeout(ctx, 30*time.Second)
	ctl, err := fleet.Open(octx, fleet.ControllerConfig{Kafka: kc, Who: "sre@console-test"})
	ocancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctl.Close() })
	col, err := cluster.NewCollector(kc, pipeline.DefaultInput, pipeline.DefaultGroup)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = col.Close() })
	opts := rollout.DefaultOptions()
	opts.Steps, opts.Hold, opts.MinSamples, opts.Warmup = "50,100", 2*time.Second, 20, 10
	opts.LatencySlack = 40 * time.Millisecond // -race on a small shared machine
	opts.MaxPSI = 1                           // v1 and v2 are different networks (PSI ~0.13)
	ad, err := New(Config{Collector: col, TFS: tfs, Fleet: ctl, Demo: gen, Mode: "embedded", Brokers: []string{st.Addrs.Kafka}, Instance: "web-1",
		Input: pipeline.DefaultInput, Output: pipeline.DefaultOutput, DLQ: pipeline.DefaultDLQ, Group: pipeline.DefaultGroup, Model: pipeline.DefaultModel,
		TFServing: st.Addrs.GRPC, Interval: 300 * time.Millisecond, Ops: OpsConfig{Kafka: kc, By: "sre@console-test"}, Rollout: opts})
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(ctx)
	ad.Run(actx)
	t.Cleanup(func() { stop(); ad.Wait() })
	m, err := tui.New(tui.Options{Backend: ad, Refresh: 300 * time.Millisecond, NoColor: true, ActionTimeout: 90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m.SetSize(120, 40)
	return &consoleStack{ad: ad, model: m}
}

// pctf is a step as the panel writes it.
func pctf(p float64) string { return fmt.Sprintf("%.4g%%", p) }
