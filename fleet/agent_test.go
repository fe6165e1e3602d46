package fleet

import (
	"context"
	"testing"
	"time"
)

// TestFleetFollowsControl runs two instances in one group and steers them
// through a Controller: a total spread over both, a target, a pause, and a
// clean exit that takes an instance out of the roster and the view.
func TestFleetFollowsControl(t *testing.T) {
	e := newEnv(t)
	a := e.instance("alpha", 2, false)
	b := e.instance("beta", 2, false)
	c := e.controller("")
	e.produce("r", 200)

	waitFor(t, "both instances in the view", 30*time.Second, func() bool {
		v := c.View()
		return v.Totals.Live == 2 && v.Totals.Workers == 4
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
	if !a.pool.Paused() || !b.pool.Paused() {
		t.Error("not paused")
	}
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
