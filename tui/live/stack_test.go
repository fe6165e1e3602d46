package live

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/IBM/sarama"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/demo"
	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/infer/perf"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/worker"
	"github.com/inferops/inferops/internal/report"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
	"github.com/inferops/inferops/tui"
)

// stack is the embedded default the console runs, on free ports under
// t.TempDir(): broker, model server, worker pool, demo traffic, collector,
// adapter, and the console model on top.
type consoleStack struct {
	b     *cluster.Broker
	pool  *worker.Pool
	ad    *Adapter
	model *tui.Model
}

func startStack(t *testing.T, workers int) *consoleStack {
	return startStackMode(t, workers, "embedded")
}

func startStackMode(t *testing.T, workers int, mode string) *consoleStack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// Both shipped versions served (TF's default policy serves only the
	// latest), with labels, as an operator doing a canary would run it.
	base := filepath.Join(t.TempDir(), "my_model")
	if _, err := model.Materialize(model.Name, base); err != nil {
		t.Fatal(err)
	}
	mcf := filepath.Join(t.TempDir(), "models.config")
	if err := os.WriteFile(mcf, []byte(fmt.Sprintf(`model_config_list {
  config {
    name: "my_model"
    base_path: %q
    model_platform: "tensorflow"
    model_version_policy { all {} }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
}
`, base)), 0o644); err != nil {
		t.Fatal(err)
	}
	st := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{}, Models: &modelserver.Config{RESTAddr: "-", ModelConfigFile: mcf}})
	b := st.Broker
	tfs, err := tfserving.Dial(tfserving.Config{Address: st.Addrs.GRPC})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tfs.Close() })
	schema := servingSchema(t, ctx, tfs, "my_model")
	kc := b.ClientConfig()
	pool, err := worker.NewPool(kc, tfs, worker.Config{Workers: workers}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pool.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cc := context.WithTimeout(context.Background(), 15*time.Second)
		defer cc()
		_ = pool.Close(c)
	})
	gen, err := demo.Start(ctx, demo.Config{Kafka: kc, Rate: 200, Schema: schema, NoBursts: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gen.Close() })
	col, err := cluster.NewCollector(kc, pipeline.DefaultInput, pipeline.DefaultGroup)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = col.Close() })
	dlq, err := cluster.NewDLQReader(kc, pipeline.DefaultDLQ)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dlq.Close() })
	ad, err := New(Config{Collector: col, DLQReader: dlq, DLQEvery: time.Second, Demo: gen, TFS: tfs, Pool: pool, Mode: mode, Brokers: b.Addrs(),
		Input: pipeline.DefaultInput, Output: pipeline.DefaultOutput, DLQ: pipeline.DefaultDLQ, Group: pipeline.DefaultGroup, Model: "my_model",
		Interval: 300 * time.Millisecond, Labels: map[int64][]string{1: {"stable"}, 2: {"canary"}},
		ReportDir: filepath.Join(t.TempDir(), "reports"), Secrets: []string{plantedSecret}, Version: "test",
		ReportConfig: []report.Setting{{Key: "kafka.sasl.user", Value: "ops", Source: "flag"}},
		Ops:          OpsConfig{Kafka: kc, By: "tester@host"},
		Perf: &PerfRunner{Duration: 3 * time.Second, Rate: 1000, Base: perf.Options{Kafka: kc, TFServing: tfs, Model: "my_model",
			Embedded: true, Workers: 1, HistoryPath: t.TempDir() + "/perf-history.jsonl"}}})
	if err != nil {
		t.Fatal(err)
	}
	ad.Run(ctx)
	m, err := tui.New(tui.Options{Backend: ad, Refresh: 300 * time.Millisecond, NoColor: true})
	if err != nil {
		t.Fatal(err)
	}
	m.SetSize(120, 40)
	return &consoleStack{b: b, pool: pool, ad: ad, model: m}
}

// press sends keys to the console model and runs the commands they return
// (as bubbletea would, but synchronously), feeding results back.
func (s *consoleStack) press(t *testing.T, keys ...string) {
	t.Helper()
	for _, k := range keys {
		s.model.Update(tui.RefreshMsg{})
		var msg tea.KeyPressMsg
		switch k {
		case "enter":
			msg = tea.KeyPressMsg{Code: tea.KeyEnter}
		case "down":
			msg = tea.KeyPressMsg{Code: tea.KeyDown}
		case "esc":
			msg = tea.KeyPressMsg{Code: tea.KeyEscape}
		default:
			msg = tea.KeyPressMsg{Code: []rune(k)[0], Text: k}
		}
		_, cmd := s.model.Update(msg)
		for cmd != nil {
			out := cmd()
			if out == nil {
				break
			}
			_, cmd = s.model.Update(out)
		}
	}
}

// TestKeysScaleTheGroup: + and - change the number of members Kafka sees
// in the group, and the screen says so.
func TestKeysScaleTheGroup(t *testing.T) {
	s := startStack(t, 2)
	members := func(n int) func(tui.Data) bool {
		return func(d tui.Data) bool {
			return d.Header.Workers == n && len(d.Workers.Members) == n && d.Header.GroupState == "Stable"
		}
	}
	eventually(t, s.ad, "2 members", 30*time.Second, members(2))
	s.press(t, "+")
	eventually(t, s.ad, "3 members after +", 30*time.Second, members(3))
	s.press(t, "-", "-")
	eventually(t, s.ad, "1 member after - -", 30*time.Second, members(1))
	s.model.Update(tui.RefreshMsg{})
	if scr := s.model.View().Content; !strings.Contains(scr, "workers 1") {
		t.Errorf("screen does not show workers 1:\n%s", scr)
	}
}

// TestAttachedAsksFirst: on an attached cluster + asks y/n; n changes
// nothing, y scales.
func TestAttachedAsksFirst(t *testing.T) {
	s := startStackMode(t, 2, "attached")
	members := func(n int) func(tui.Data) bool {
		return func(d tui.Data) bool {
			return d.Header.Workers == n && len(d.Workers.Members) == n && d.Header.GroupState == "Stable"
		}
	}
	eventually(t, s.ad, "2 members", 30*time.Second, members(2))
	s.press(t, "+")
	if scr := s.model.View().Content; !strings.Contains(scr, "scale group tf_serving_group to 3 local workers?") {
		t.Fatalf("no confirmation on an attached cluster:\n%s", scr)
	}
	s.press(t, "n")
	time.Sleep(2 * time.Second)
	if d := s.ad.Snapshot(); d.Header.Workers != 2 {
		t.Fatalf("n still scaled: %d workers", d.Header.Workers)
	}
	s.press(t, "+", "y")
	eventually(t, s.ad, "3 members after + y", 30*time.Second, members(3))
}

// TestVersionSwitchChangesServedVersion: picking version 1 in the v menu
// makes new results carry model_version 1 on the output topic.
func TestVersionSwitchChangesServedVersion(t *testing.T) {
	s := startStack(t, 2)
	d := eventually(t, s.ad, "results from version 2", 30*time.Second, func(d tui.Data) bool { return d.Header.Served == 2 && len(d.Models.Versions) >= 2 })
	if d.Models.Versions[0].Version != 1 {
		t.Fatalf("models panel versions %+v, want 1 then 2", d.Models.Versions)
	}
	if d.Models.StandIn || len(d.Models.Inputs) != 1 || d.Models.Inputs[0] != (tui.ModelTensor{Name: "features", DType: "DT_FLOAT", Shape: "[-1,32]"}) ||
		len(d.Models.Outputs) != 1 || d.Models.Outputs[0].Name != "score" {
		t.Fatalf("models panel signature %+v -> %+v (stand-in %v)", d.Models.Inputs, d.Models.Outputs, d.Models.StandIn)
	}
	// The picker lists latest, then each version in order: down once is v1.
	s.press(t, "v", "down", "enter")
	if tgt := s.pool.Target(); tgt.Version != 1 {
		t.Fatalf("worker target %v after picking version 1", tgt)
	}
	eventually(t, s.ad, "served version 1 on screen", 30*time.Second, func(d tui.Data) bool { return d.Header.Served == 1 && d.Header.Target == "1" })

	// New results on the output topic carry model_version 1.
	sc, _ := s.b.ClientConfig().Sarama()
	client, err := sarama.NewClient(s.b.Addrs(), sc)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	parts, _ := client.Partitions(pipeline.DefaultOutput)
	got := make(chan int64, 64)
	for _, p := range parts {
		pc, err := cons.ConsumePartition(pipeline.DefaultOutput, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		go func() {
			for m := range pc.Messages() {
				var r struct {
					V int64 `json:"model_version"`
				}
				if json.Unmarshal(m.Value, &r) == nil {
					select {
					case got <- r.V:
					default:
					}
				}
			}
		}()
	}
	deadline := time.After(20 * time.Second)
	for seen := 0; seen < 20; seen++ {
		select {
		case v := <-got:
			if v != 1 {
				t.Fatalf("a result produced after the switch carries model_version %d, want 1", v)
			}
		case <-deadline:
			t.Fatalf("only %d new results within 20 s", seen)
		}
	}
}

// TestPerfRunFromTheConsole: p, enter runs the first scenario to the end
// and the perf panel shows its results table.
func TestPerfRunFromTheConsole(t *testing.T) {
	s := startStack(t, 2)
	eventually(t, s.ad, "worker running", 30*time.Second, func(d tui.Data) bool { return d.Header.Workers == 2 })
	s.press(t, "p", "enter")
	eventually(t, s.ad, "perf progress", 30*time.Second, func(d tui.Data) bool { return d.Perf.Running != nil })
	d := eventually(t, s.ad, "perf result", 120*time.Second, func(d tui.Data) bool { return d.Perf.Result != nil || d.Perf.Err != "" })
	if d.Perf.Err != "" {
		t.Fatalf("perf run failed: %s", d.Perf.Err)
	}
	if d.Perf.Result.Scenario != "small" || len(d.Perf.Result.Metrics) == 0 {
		t.Fatalf("result %+v", d.Perf.Result)
	}
	s.model.Update(tui.RefreshMsg{})
	scr := s.model.View().Content
	for _, want := range []string{"this run", "kafka msg/s", "latency p99", "small"} {
		if !strings.Contains(scr, want) {
			t.Errorf("perf table: %q missing from the screen:\n%s", want, scr)
		}
	}
}

// TestPauseShowsAdvice: space pauses consumption; the lag then grows and
// doctor's advice rules put the fix in the event log; space resumes.
func TestPauseShowsAdvice(t *testing.T) {
	s := startStack(t, 2)
	// Pause only once the group has committed, so its lag is measured.
	eventually(t, s.ad, "results flowing", 30*time.Second, func(d tui.Data) bool { return d.Header.Workers == 2 && d.Header.Served == 2 })
	time.Sleep(2 * time.Second)
	s.press(t, "space")
	eventually(t, s.ad, "paused in the header", 10*time.Second, func(d tui.Data) bool { return d.Header.Paused })
	d := eventually(t, s.ad, "advice while paused", 60*time.Second, func(d tui.Data) bool {
		for _, e := range d.Events.Items {
			if e.Kind == "advice" && e.Level != tui.Info {
				return true
			}
		}
		return false
	})
	for _, e := range d.Events.Items {
		if e.Kind == "advice" {
			t.Logf("advice: %s", e.Text)
		}
	}
	s.press(t, "space")
	eventually(t, s.ad, "resumed", 10*time.Second, func(d tui.Data) bool { return !d.Header.Paused })
	// The demo's malformed records reach the DLQ panel through the topic.
	d = eventually(t, s.ad, "dead letters read from the DLQ topic", 30*time.Second, func(d tui.Data) bool { return d.DLQ.Total > 0 && d.DLQ.Read > 0 })
	for _, r := range d.DLQ.Records {
		if !pipeline.IsReason(r.Reason) || !strings.HasPrefix(r.Source, pipeline.DefaultInput+"/") {
			t.Errorf("dead letter %+v: want one of the worker's reasons and its source", r)
		}
	}
}
