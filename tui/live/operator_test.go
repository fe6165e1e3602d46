package live

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/inferops/inferops/cluster/clustertest"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/tui"
)

// TestConsoleReplaysAndResets drives the console on the embedded stack:
// r on the DLQ panel's reason group replays exactly the planned records,
// with their redrive count, and says so in the events; o then y resets the
// group to latest, stopping and restarting the console's own workers
// (Kafka moves offsets only of a group without members).
func TestConsoleReplaysAndResets(t *testing.T) {
	s := startStack(t, 2)
	d := eventually(t, s.ad, "dead letters in the DLQ panel", 60*time.Second, func(d tui.Data) bool { return len(d.DLQ.Records) > 0 })
	eventually(t, s.ad, "2 members", 30*time.Second, func(d tui.Data) bool { return d.Header.Workers == 2 && len(d.Workers.Members) == 2 })
	_ = d
	s.press(t, "shift+tab", "shift+tab", "r")
	scr := ansi.Strip(s.model.View().Content)
	if !strings.Contains(scr, "to send (dry run: nothing sent yet)") {
		t.Fatalf("no dry-run count after r:\n%s", scr)
	}
	s.ad.ops.mu.Lock()
	plan := s.ad.ops.replay
	s.ad.ops.mu.Unlock()
	if plan == nil || plan.Counts.Send == 0 {
		t.Fatalf("plan %+v", plan)
	}
	reason := plan.Spec.Reasons[0]
	s.press(t, "enter")
	run := eventually(t, s.ad, "the replay to finish", 60*time.Second, func(d tui.Data) bool { return d.Ops.Replay != nil && d.Ops.Replay.Done }).Ops.Replay
	if run.Err != "" || run.Sent != plan.Counts.Send {
		t.Fatalf("replay %+v, want the %d planned", run, plan.Counts.Send)
	}
	sc, err := s.b.ClientConfig().Sarama()
	if err != nil {
		t.Fatal(err)
	}
	var replayed int64
	for _, m := range clustertest.ReadCommitted(t, s.b.Addrs(), sc, pipeline.DefaultInput, time.Second) {
		if clustertest.Header(m, pipeline.HeaderRedrives) == "1" {
			replayed++
		}
	}
	if replayed != plan.Counts.Send {
		t.Errorf("%d records with redrive count 1 in the input, want the %d of %s sent", replayed, plan.Counts.Send, reason)
	}
	eventually(t, s.ad, "the replay's event", 5*time.Second, func(d tui.Data) bool {
		for _, e := range d.Events.Items {
			if e.Kind == pipeline.KindReplay && strings.Contains(e.Text, "tester@host") && strings.Contains(e.Text, "sent to "+pipeline.DefaultInput) {
				return true
			}
		}
		return false
	})

	s.press(t, "o", "enter")
	if scr := ansi.Strip(s.model.View().Content); !strings.Contains(scr, "stops this console's 2 workers for the reset") {
		t.Fatalf("reset plan does not say the console's workers stop:\n%s", scr)
	}
	s.press(t, "y")
	d = eventually(t, s.ad, "the reset and the workers back", 60*time.Second, func(d tui.Data) bool {
		reset := false
		for _, e := range d.Events.Items {
			reset = reset || (e.Kind == pipeline.KindOffsets && strings.Contains(e.Text, "reset to latest"))
		}
		return reset && d.Header.Workers == 2
	})
	if strings.Contains(ansi.Strip(s.model.View().Content), "reset offsets of") {
		t.Error("the reset overlay is still open after y")
	}
}
