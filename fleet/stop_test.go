package fleet

import (
	"context"
	"testing"
	"time"
)

// TestStopAndRestore: Stop takes every follower to 0 workers (fixed shares
// too), and Restore puts back exactly the desired state before it; with
// none before, every instance returns to its own --workers.
func TestStopAndRestore(t *testing.T) {
	e := newEnv(t)
	a := e.instance("alpha", 2, false)
	b := e.instance("beta", 3, false)
	c := e.controller("")
	waitFor(t, "both instances", 30*time.Second, func() bool { return c.View().Totals.Live == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	wait := func(ch Change, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if ack, err := c.Wait(ctx, ch, nil); err != nil {
			t.Fatalf("%s: %v (%s)", ch, err, ack)
		}
	}

	// No desired state yet: each on its own flags.
	prev, ch, err := c.Stop(ctx, "test")
	wait(ch, err)
	if prev != nil || a.pool.Workers() != 0 || b.pool.Workers() != 0 {
		t.Fatalf("stop: prev %+v, workers %d %d, want nil and 0 0", prev, a.pool.Workers(), b.pool.Workers())
	}
	wait(c.Restore(ctx, prev, "test"))
	if a.pool.Workers() != 2 || b.pool.Workers() != 3 {
		t.Fatalf("restore of no state: workers %d %d, want their own 2 and 3", a.pool.Workers(), b.pool.Workers())
	}
	if d := c.View().Desired; d == nil || d.Workers != nil || d.Shares != nil || d.Target != "" || d.Paused {
		t.Errorf("restored desired state %+v, want nothing set", d)
	}

	// A total with a fixed share and a target.
	wait(c.ScaleInstance(ctx, "beta", 1))
	wait(c.SetTarget(ctx, "1"))
	before := *c.View().Desired
	prev, ch, err = c.Stop(ctx, "test")
	wait(ch, err)
	if a.pool.Workers() != 0 || b.pool.Workers() != 0 {
		t.Fatalf("stop with a fixed share: workers %d %d", a.pool.Workers(), b.pool.Workers())
	}
	if d := c.View().Desired; d.Saved == nil || *d.Saved.Workers != *before.Workers {
		t.Fatalf("the stopped state keeps no saved state: %s", d.Summary())
	}
	// The action is killed here; the next one stops again and must get
	// the state from before the first stop, not the stopped one.
	prev, ch, err = c.Stop(ctx, "test again")
	wait(ch, err)
	if prev == nil || prev.Workers == nil || *prev.Workers != *before.Workers || prev.Shares["beta"] != 1 || prev.Target != "1" {
		t.Fatalf("second stop returned %s, want the state before the first: %s", prev.Summary(), before.Summary())
	}
	wait(c.Restore(ctx, prev, "test"))
	after := c.View().Desired
	if after.Saved != nil {
		t.Errorf("restored state still has a saved state: %s", after.Summary())
	}
	if *after.Workers != *before.Workers || after.Shares["beta"] != 1 || len(after.Shares) != 1 || after.Target != before.Target || after.Paused != before.Paused {
		t.Errorf("restored %s, want %s", after.Summary(), before.Summary())
	}
	if a.pool.Workers()+b.pool.Workers() != *before.Workers || b.pool.Workers() != 1 {
		t.Errorf("after restore: alpha %d beta %d, want the total %d with beta's share 1", a.pool.Workers(), b.pool.Workers(), *before.Workers)
	}
}
