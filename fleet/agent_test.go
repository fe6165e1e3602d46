package fleet

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// TestFleetFollowsControl runs two instances in one group and steers them
// through a Controller: a total spread over both, a target, a pause, and a
// clean exit that takes an instance out of the roster and the view.
func TestFleetFollowsControl(t *testing.T) {
	e := newEnv(t)
	a := e.instance("alpha", 2, false)
	b := e.instance("beta", 2, false)
	pinned := e.instance("gamma", 1, true) // --control=ignore
	c := e.controller("")
	e.produce("r", 200)

	waitFor(t, "the three instances in the view", 30*time.Second, func() bool {
		v := c.View()
		return v.Totals.Live == 3 && v.Totals.Workers == 5
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ch, err := c.Scale(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := c.Wait(ctx, ch, nil)
	if err != nil {
		t.Fatalf("scale 3: %v (%s)", err, ack)
	}
	if a.pool.Workers() != 2 || b.pool.Workers() != 1 {
		t.Errorf("after scale 3: alpha %d beta %d workers, want 2 and 1 (sorted by name, the first gets the extra)", a.pool.Workers(), b.pool.Workers())
	}
	if pinned.pool.Workers() != 1 || len(ack.Pinned) != 1 || ack.Pinned[0] != "gamma" {
		t.Errorf("the pinned instance runs %d workers (want its own 1) and the ack lists pinned %v", pinned.pool.Workers(), ack.Pinned)
	}
	if g, _ := c.View().Instance("gamma"); g.ControlState != ControlPinned {
		t.Errorf("gamma shows %s, want pinned", g.ControlState)
	}
	if al, _ := c.View().Instance("alpha"); len(al.TFServing) != 1 || al.TFServing[0].State != "up" {
		t.Errorf("alpha's snapshot carries TF Serving hosts %+v, want the one host up", al.TFServing)
	}
	t.Logf("ack: %s", ack)

	ch, err = c.SetTarget(ctx, "1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, ch, nil); err != nil {
		t.Fatal(err)
	}
	if a.pool.Target().String() != "1" || b.pool.Target().String() != "1" {
		t.Errorf("targets %s %s, want 1", a.pool.Target(), b.pool.Target())
	}
	ch, err = c.SetPaused(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, ch, nil); err != nil {
		t.Fatal(err)
	}
	if !a.pool.Paused() || !b.pool.Paused() || pinned.pool.Paused() {
		t.Error("the followers are not paused, or the pinned one is")
	}
	// A new instance applies the current state when it starts: its share,
	// target 1, paused, before a member fetches anything.
	d := e.instance("delta", 4, false)
	if !d.pool.Paused() || d.pool.Target().String() != "1" || d.plan.Workers != 1 || d.pool.Workers() != 1 {
		t.Errorf("delta started with paused %v target %s workers %d (plan %+v), want paused, 1, its share 1 of 3", d.pool.Paused(), d.pool.Target(), d.pool.Workers(), d.plan)
	}
	waitFor(t, "the roster re-spreads 3 over alpha, beta and delta", 30*time.Second, func() bool {
		return a.pool.Workers() == 1 && b.pool.Workers() == 1 && d.pool.Workers() == 1
	})
	d.stop()
	b.stop()
	waitFor(t, "beta's tombstone", 10*time.Second, func() bool {
		_, ok := c.View().Instance("beta")
		return !ok
	})
	left := time.Now()
	waitFor(t, "alpha takes the whole total after beta left the roster", 30*time.Second, func() bool { return a.pool.Workers() == 3 })
	t.Logf("alpha re-spread %v after beta left", time.Since(left).Round(10*time.Millisecond))
	ch, err = c.SetPaused(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, ch, nil); err != nil {
		t.Fatal(err)
	}
	if a.pool.Paused() {
		t.Error("still paused after resume")
	}
	var kinds []string
	for _, ev := range c.View().Events {
		kinds = append(kinds, ev.Message)
	}
	t.Logf("events: %q", kinds)
}

// TestNewerControlRecordIsNotApplied: a record a newer inferops marks as
// needing its schema (compat 3) is read, not applied, and the instance
// says why; unknown fields of a compatible one are ignored.
func TestNewerControlRecordIsNotApplied(t *testing.T) {
	e := newEnv(t)
	in := e.instance("old", 2, false)
	sc, err := e.kafka.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	sc.Producer.Return.Successes = true
	prod, err := sarama.NewSyncProducer(e.kafka.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	send := func(v string) {
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "inferops.control", Key: sarama.StringEncoder("tf_serving_group"), Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatal(err)
		}
	}
	send(`{"v":3,"compat":3,"group":"tf_serving_group","seq":1,"workers":1,"paused":true,"by":"new@host","at":"2026-01-01T00:00:00Z","mirror":{"to":3}}`)
	waitFor(t, "the refusal in the instance's control state", 15*time.Second, func() bool {
		return strings.Contains(in.agent.Control().Error, "needs a newer inferops")
	})
	if in.pool.Paused() || in.pool.Workers() != 2 {
		t.Errorf("an incompatible record was applied: paused %v, workers %d", in.pool.Paused(), in.pool.Workers())
	}
	send(`{"v":3,"group":"tf_serving_group","seq":2,"workers":1,"by":"new@host","at":"2026-01-01T00:00:01Z","mirror":{"to":3}}`)
	waitFor(t, "the compatible record applied", 15*time.Second, func() bool {
		c := in.agent.Control()
		return c.Seq == 2 && c.Error == "" && in.pool.Workers() == 1
	})
}
