package live

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/infer/demo"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
	"github.com/inferops/inferops/tui"
)

// TestNoWorkerConsoleOverRemoteFleet is issue 14's reproduction, repeated:
// the embedded stack, two `inferops worker --workers 2` processes, steady
// traffic, and a console attached with --no-worker. Before the fleet it
// showed TF Serving latency "no data", both versions at 0 res/s and every
// member at 0 in/s, and refused +. Now latency (the workers' and TF
// Serving's own), per-version traffic and per-instance rates are in its
// data, + then y scales the remote fleet to 5 (Kafka sees 5 members, spread
// 3 + 2), and v then y moves its traffic to version 1.
func TestNoWorkerConsoleOverRemoteFleet(t *testing.T) {
	bin := stacktest.Binary(t)
	st := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{}, Models: &modelserver.Config{}})
	kc := st.Kafka()
	logs := t.TempDir()
	for _, name := range []string{"web-1", "web-2"} {
		cmd := exec.Command(bin, "worker", "--brokers", st.Addrs.Kafka, "--tfserving", st.Addrs.GRPC, "--instance", name, "--workers", "2", "--config=")
		home := t.TempDir()
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_STATE_HOME="+filepath.Join(home, "state"), "INFEROPS_METRICS_ADDR=")
		f, err := os.Create(filepath.Join(logs, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = f
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = f.Close() })
	}
	defer func() {
		if t.Failed() {
			for _, name := range []string{"web-1", "web-2"} {
				b, _ := os.ReadFile(filepath.Join(logs, name+".log"))
				if len(b) > 3000 {
					b = b[len(b)-3000:]
				}
				t.Logf("--- %s (last 3 KB)\n%s", name, b)
			}
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tfs, err := tfserving.Dial(tfserving.Config{Address: st.Addrs.GRPC})
	if err != nil {
		t.Fatal(err)
	}
	defer tfs.Close()
	schema := servingSchema(t, ctx, tfs, pipeline.DefaultModel)
	gen, err := demo.Start(ctx, demo.Config{Kafka: kc, Rate: 300, Schema: schema, NoBursts: true})
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()

	// The console's side, as `inferops --brokers ... --tfserving ...
	// --no-worker` wires it.
	var ctl *fleet.Controller
	deadline := time.Now().Add(60 * time.Second)
	for { // the first worker creates the fleet topics
		octx, ocancel := context.WithTimeout(ctx, 10*time.Second)
		ctl, err = fleet.Open(octx, fleet.ControllerConfig{Kafka: kc, Who: "sre@console-test"})
		ocancel()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	col, err := cluster.NewCollector(kc, pipeline.DefaultInput, pipeline.DefaultGroup)
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	metrics := tfserving.NewMetricsWatcher("http://"+st.Addrs.REST+pipeline.TFServingMetricsPath, pipeline.DefaultModel, 300*time.Millisecond, nil)
	ad, err := New(Config{Collector: col, TFS: tfs, Fleet: ctl, ServerMetrics: metrics, Mode: "attached", Brokers: []string{st.Addrs.Kafka},
		NoWorker: true, Input: pipeline.DefaultInput, Output: pipeline.DefaultOutput, DLQ: pipeline.DefaultDLQ, Group: pipeline.DefaultGroup,
		Model: pipeline.DefaultModel, TFServing: st.Addrs.GRPC, Interval: 300 * time.Millisecond, ReportDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ad.Run(ctx)
	m, err := tui.New(tui.Options{Backend: ad, Refresh: 300 * time.Millisecond, NoColor: true})
	if err != nil {
		t.Fatal(err)
	}
	m.SetSize(120, 40)
	s := &consoleStack{ad: ad, model: m}

	instRates := func(d tui.Data) bool {
		if d.Fleet.Live != 2 {
			return false
		}
		for _, in := range d.Fleet.Instances {
			if in.InRate <= 0 || in.OutRate <= 0 || len(in.Members) != in.Workers {
				return false
			}
		}
		return true
	}
	d := eventually(t, ad, "the remote fleet with its rates, latency and per-version traffic", 90*time.Second, func(d tui.Data) bool {
		v2 := false
		for _, v := range d.Models.Versions {
			v2 = v2 || (v.Version == 2 && v.Served && v.Rate > 50)
		}
		return instRates(d) && d.Header.Workers == 4 && d.Latency.Predict.P99 > 0 && d.Latency.E2E.P99 > 0 && d.Latency.Rows > 50 &&
			v2 && d.Latency.Server.Known && d.Latency.Server.RPS > 0
	})
	for _, in := range d.Fleet.Instances {
		var sum float64
		for _, mb := range in.Members {
			if !strings.HasPrefix(mb.ClientID, "inferops-"+in.Name+"-w") {
				t.Errorf("%s: member %q, want inferops-%s-wN", in.Name, mb.ClientID, in.Name)
			}
			sum += mb.InRate
		}
		if sum <= 0 || in.Control != fleet.ControlNone {
			t.Errorf("%s: members at %.0f in/s, control %s", in.Name, sum, in.Control)
		}
	}
	if d.Header.Served != 2 || d.Models.Err != "" || len(d.Models.Versions) < 2 {
		t.Errorf("models %+v (err %q), served v%d", d.Models.Versions, d.Models.Err, d.Header.Served)
	}
	t.Logf("fleet: %d instances, %.0f in/s; predict p99 %v, e2e p99 %v, TF Serving's own p99 %v at %.0f req/s",
		d.Fleet.Live, d.Fleet.InRate, d.Latency.Predict.P99, d.Latency.E2E.P99, d.Latency.Server.P99, d.Latency.Server.RPS)
	s.model.Update(tui.RefreshMsg{})
	scr := ansi.Strip(s.model.View().Content)
	for _, want := range []string{"workers 4 on 2 instances", "web-1", "web-2", "server ", "└ w2"} {
		if !strings.Contains(scr, want) {
			t.Errorf("screen lacks %q:\n%s", want, scr)
		}
	}

	// + asks first (attached), then y scales the remote fleet.
	s.model.Update(tui.RefreshMsg{})
	s.model.Update(keyMsg("+"))
	if scr := ansi.Strip(s.model.View().Content); !strings.Contains(scr, "scale the fleet (group tf_serving_group) to 5 workers over 2 instances?") {
		t.Fatalf("+ did not ask first:\n%s", scr)
	}
	s.press(t, "y")
	scr = ansi.Strip(s.model.View().Content)
	if !strings.Contains(scr, "2/2 instances applied scale to 5 workers") {
		t.Errorf("the status line lacks the acknowledgement:\n%s", scr)
	}
	d = eventually(t, ad, "5 members in the group, spread 3 + 2", 60*time.Second, func(d tui.Data) bool {
		ws := map[string]int{}
		for _, in := range d.Fleet.Instances {
			ws[in.Name] = len(in.Members)
		}
		return ws["web-1"] == 3 && ws["web-2"] == 2 && len(d.Workers.Members) == 5 && d.Header.GroupState == "Stable" && d.Fleet.Applied == 2
	})
	events := func(d tui.Data) string {
		var b strings.Builder
		for _, e := range d.Events.Items {
			fmt.Fprintf(&b, "%s %s\n", e.Kind, e.Text)
		}
		return b.String()
	}
	if ev := events(d); !strings.Contains(ev, "sre@console-test: scale to 5 workers (seq 1)") || strings.Count(ev, "instances applied scale to 5 workers") != 1 {
		t.Errorf("events: want the change and one acknowledgement:\n%s", ev)
	}

	// e: the triage report has the fleet section, every instance in it.
	mdPath, _, err := ad.ExportReport()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := os.ReadFile(mdPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Fleet: group `tf_serving_group`", "web-1", "web-2", "5 workers"} {
		if !strings.Contains(string(rep), want) {
			t.Errorf("the report lacks %q:\n%s", want, rep)
		}
	}

	// v, version 1, switch now, y: the fleet's traffic moves to version 1
	// (the second step offers "switch now" first, "roll out gradually"
	// below it).
	s.press(t, "v", "down", "enter")
	if scr := ansi.Strip(s.model.View().Content); strings.Contains(scr, "roll out gradually") {
		s.press(t, "enter")
	}
	if scr := ansi.Strip(s.model.View().Content); !strings.Contains(scr, "switch every instance of group tf_serving_group to my_model version 1") {
		t.Fatalf("v did not ask first:\n%s", scr)
	}
	s.press(t, "y")
	eventually(t, ad, "version 1 serving the fleet", 60*time.Second, func(d tui.Data) bool {
		for _, v := range d.Models.Versions {
			if v.Version == 1 && v.Served && v.Rate > 50 {
				return d.Header.Served == 1 && d.Header.Target == "1" && instRates(d)
			}
		}
		return false
	})
}

func keyMsg(k string) tea.KeyPressMsg { return tea.KeyPressMsg{Code: []rune(k)[0], Text: k} }
