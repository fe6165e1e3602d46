package live

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/charmbracelet/x/ansi"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/cluster/clustertest"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
	"github.com/inferops/inferops/tui"
)

// watch starts an adapter with no worker on b, refreshing every 200 ms.
func watch(t *testing.T, b *cluster.Broker, group string, dlq bool) *Adapter {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	col, err := cluster.NewCollector(b.ClientConfig(), pipeline.DefaultInput, group)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Collector: col, Mode: "attached", Brokers: b.Addrs(), NoWorker: true,
		Input: pipeline.DefaultInput, Output: pipeline.DefaultOutput, DLQ: pipeline.DefaultDLQ, Group: group, Model: "my_model",
		Interval: 200 * time.Millisecond, DLQEvery: 200 * time.Millisecond}
	if dlq {
		r, err := cluster.NewDLQReader(b.ClientConfig(), pipeline.DefaultDLQ)
		if err != nil {
			t.Fatal(err)
		}
		cfg.DLQReader = r
		t.Cleanup(func() { _ = r.Close() })
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.Run(ctx)
	t.Cleanup(func() { cancel(); a.Wait(); _ = col.Close() })
	return a
}

func hasEvent(d tui.Data, kind string, text ...string) bool {
	for _, e := range d.Events.Items {
		if e.Kind != kind {
			continue
		}
		ok := true
		for _, s := range text {
			ok = ok && strings.Contains(e.Text, s)
		}
		if ok {
			return true
		}
	}
	return false
}

// TestConsoleShowsStuckRebalance is the third reproduction in the
// console: a member killed without leaving holds the group in
// PreparingRebalance when a new one joins; the header counts the seconds
// and names the member awaited, the event log says so and doctor's advice
// explains the session timeout, and the end of it is an event too.
func TestConsoleShowsStuckRebalance(t *testing.T) {
	b := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{}}).Broker
	sc, err := b.ClientConfig().Sarama()
	if err != nil {
		t.Fatal(err)
	}
	a := watch(t, b, "stuck", false)
	clustertest.VanishedMember(t, b.Addrs(), sc, "stuck", pipeline.DefaultInput, "worker-dead", 12*time.Second)
	eventually(t, a, "the dead member's group Stable", 20*time.Second, func(d tui.Data) bool {
		return d.Header.GroupState == "Stable" && len(d.Workers.Members) == 1
	})
	clustertest.Member(t, b.Addrs(), sc, "stuck", pipeline.DefaultInput, "worker-new")
	d := eventually(t, a, "the rebalance counted and explained", 20*time.Second, func(d tui.Data) bool {
		return d.Header.Rebalance >= 6*time.Second && hasEvent(d, pipeline.KindAdvice, "group stuck rebalancing")
	})
	if d.Header.GroupState != "PreparingRebalance" || d.Header.RebalanceAtLeast ||
		!strings.Contains(d.Header.Notice, "waiting for 1 of 2 members to rejoin: worker-dead on ") {
		t.Errorf("header %+v, want PreparingRebalance timed from its start and a notice naming worker-dead", d.Header)
	}
	if !hasEvent(d, pipeline.KindRebalance, "has been rebalancing for", "worker-dead") {
		t.Errorf("no rebalance event naming worker-dead: %+v", d.Events.Items)
	}
	if !hasEvent(d, pipeline.KindAdvice, "worker-dead", "10s session") {
		t.Errorf("the advice does not name the member or the session timeout: %+v", d.Events.Items)
	}
	m := tui.NewStatic(d, true)
	m.SetSize(120, 40)
	if scr := ansi.Strip(m.View().Content); !strings.Contains(scr, "PreparingRebalance") || !strings.Contains(scr, "▲ group stuck has been rebalancing for") {
		t.Errorf("screen does not show the rebalance:\n%s", scr)
	}
	d = eventually(t, a, "the rebalance over once worker-dead's session expired", 30*time.Second, func(d tui.Data) bool {
		return d.Header.GroupState == "Stable" && d.Header.Rebalance == 0 && d.Header.Notice == ""
	})
	if !hasEvent(d, pipeline.KindRebalance, "-> Stable after rebalancing for") { // from Preparing or Completing, as the samples fall
		t.Errorf("no event for the end of the rebalance: %+v", d.Events.Items)
	}
}

// TestConsoleDLQReadsTheTopic: dead letters written by another process
// (here a plain producer, some without any inferops header) show in the
// DLQ panel, grouped by reason, with the topic's own count.
func TestConsoleDLQReadsTheTopic(t *testing.T) {
	b := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{}}).Broker
	sc, err := b.ClientConfig().Sarama()
	if err != nil {
		t.Fatal(err)
	}
	sc.Producer.Return.Successes = true
	prod, err := sarama.NewSyncProducer(b.Addrs(), sc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	a := watch(t, b, pipeline.DefaultGroup, true)
	eventually(t, a, "an empty DLQ read", 20*time.Second, func(d tui.Data) bool { return !d.DLQ.At.IsZero() && d.DLQ.Err == "" })
	bad := &pipeline.RecordError{Reason: pipeline.ReasonWrongWidth, Detail: "7 features, model wants 16"}
	for i := 0; i < 5; i++ {
		m := &sarama.ProducerMessage{Topic: pipeline.DefaultDLQ, Value: sarama.StringEncoder(`{"features":[1,2,3,4,5,6,7]}`)}
		for _, h := range pipeline.DeadLetterHeaders(bad, pipeline.DefaultInput, 4, int64(1000+i), 28, nil) {
			m.Headers = append(m.Headers, sarama.RecordHeader{Key: h.Key, Value: h.Value})
		}
		if _, _, err := prod.SendMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 2; i++ {
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: pipeline.DefaultDLQ, Value: sarama.StringEncoder("written by hand")}); err != nil {
			t.Fatal(err)
		}
	}
	d := eventually(t, a, "7 dead letters from the topic", 20*time.Second, func(d tui.Data) bool { return d.DLQ.Total == 7 && d.DLQ.Read == 7 })
	reasons := map[string]int{}
	for _, r := range d.DLQ.Records {
		reasons[r.Reason]++
		if r.Reason == pipeline.ReasonWrongWidth && !strings.HasPrefix(r.Source, "ai_input/4/100") {
			t.Errorf("source %q, want ai_input/4/100x", r.Source)
		}
	}
	if reasons[pipeline.ReasonWrongWidth] != 5 || reasons[pipeline.ReasonUnknown] != 2 {
		t.Errorf("reasons %v, want 5 wrong_width and 2 unknown", reasons)
	}
	m := tui.NewStatic(d, true)
	m.SetSize(120, 40)
	if scr := ansi.Strip(m.View().Content); !strings.Contains(scr, "in topic 7 · newest 7 read") || !strings.Contains(scr, "× 2 unknown") || !strings.Contains(scr, "× 5 wrong_width") {
		t.Errorf("DLQ panel:\n%s", scr)
	}
	// The triage report lists them too, oldest first.
	if in := a.reportInput(); len(in.DLQ) != 7 || in.DLQ[0].Time.After(in.DLQ[6].Time) {
		t.Errorf("report input DLQ: %d records, want 7 oldest first", len(in.DLQ))
	}
}
