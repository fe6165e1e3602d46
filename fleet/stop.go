package fleet

import (
	"context"
	"maps"
)

// Operator actions that need the group empty (Kafka moves a group's
// offsets only while it has no members) stop the fleet and put it back as
// it was.

// Stop writes a desired state with no worker on any instance that follows
// control (a total of 0, no fixed shares; target and pause kept), and
// returns the state it replaced, nil when there was none, for Restore.
// The record keeps that state (Desired.Saved), so when the action is
// killed before it restores, the next Stop returns the same state again
// and its Restore puts the fleet back as it was before the first. why says
// what the stop is for, in the change and the fleet event.
func (c *Controller) Stop(ctx context.Context, why string) (prev *Desired, ch Change, err error) {
	if cur := c.View().Desired; cur != nil {
		prev = cur.clone()
		if cur.Saved != nil {
			prev = cur.Saved.clone()
		}
	}
	ch, err = c.update(ctx, func(d *Desired, _ int) (string, string, error) {
		zero := 0
		d.Workers, d.Shares = &zero, nil
		d.Saved = savedOf(prev, c.cfg.Group)
		return "stop every worker: " + why, "", nil
	})
	return prev, ch, err
}

// savedOf is what Desired.Saved keeps of prev: the four fields Restore
// writes back (none set when there was no state).
func savedOf(prev *Desired, group string) *Desired {
	s := &Desired{V: ControlSchema, Group: group}
	if prev != nil {
		p := prev.clone()
		s.Workers, s.Shares, s.Target, s.Paused = p.Workers, p.Shares, p.Target, p.Paused
		s.By, s.At, s.Seq = p.By, p.At, p.Seq
	}
	return s
}

// Restore writes prev's workers, shares, target and pause back as a new
// desired state (prev nil: none of them set, so every instance runs on
// its own flags again, as before the first desired state).
func (c *Controller) Restore(ctx context.Context, prev *Desired, why string) (Change, error) {
	return c.update(ctx, func(d *Desired, _ int) (string, string, error) {
		d.Workers, d.Shares, d.Target, d.Paused, d.Saved = nil, nil, "", false, nil
		if prev != nil {
			if prev.Workers != nil {
				n := *prev.Workers
				d.Workers = &n
			}
			d.Shares = maps.Clone(prev.Shares)
			d.Target, d.Paused = prev.Target, prev.Paused
		}
		return "restore " + prev.Summary() + ": " + why, "", nil
	})
}
