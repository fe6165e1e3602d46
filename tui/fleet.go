// Steering the fleet: with the fleet known (Data.Fleet) and a backend that
// implements Fleet, + and -, v and space change the group's desired state,
// which every instance follows, instead of this process's own pool. The
// embedded console's pool is one instance like any other, so the same keys
// do the same thing embedded and attached.

package tui

import (
	"context"
	"fmt"

	tea "charm.land/bubbletea/v2"
)

// Fleet is what a backend that steers the whole fleet adds to Backend
// (tui/live does, over the fleet's controller). Each call writes the
// group's desired state and waits, within ctx, until every live instance
// that follows control applied it; the string is that acknowledgement as
// the event log shows it ("3/3 instances applied scale to 9 workers in
// 0.4 s").
type Fleet interface {
	// ScaleFleet sets the total workers, spread over the instances.
	ScaleFleet(ctx context.Context, total int) (string, error)
	// ScaleInstance gives one instance n workers; the others keep theirs.
	ScaleInstance(ctx context.Context, instance string, n int) (string, error)
	// TargetFleet sends every instance to a version: "latest", "2" or
	// "label:NAME".
	TargetFleet(ctx context.Context, spec string) (string, error)
	// PauseFleet pauses or resumes fetching on every instance.
	PauseFleet(ctx context.Context, paused bool) (string, error)
}

// instPending is an instance share the last +/- asked for, until the data
// shows it (name "": none).
type instPending struct {
	name string
	n    int
}

// fleetBackend is the backend's Fleet when the fleet is known.
func (m *Model) fleetBackend() (Fleet, bool) {
	if !m.data.Fleet.Known || m.opt.Backend == nil {
		return nil, false
	}
	fb, ok := m.opt.Backend.(Fleet)
	return fb, ok
}

// fleetLoading refuses an action while a backend that steers the fleet
// has not delivered the fleet's first view: acting on this process's pool
// instead (from a worker count not read yet) would be wrong twice.
func (m *Model) fleetLoading(what string) bool {
	if _, ok := m.opt.Backend.(Fleet); ok && !m.data.Fleet.Known && m.data.Fleet.Err == "" {
		m.setStatus(Warn, "cannot "+what+" yet: the fleet is still being read (a second)")
		return true
	}
	return false
}

// selectedInstance is the instance the workers panel's cursor is on, while
// that panel has the focus: +/- then change only its share.
func (m *Model) selectedInstance() (Instance, bool) {
	is := m.data.Fleet.Instances
	if !m.data.Fleet.Known || m.focus != pWorkers || len(is) == 0 {
		return Instance{}, false
	}
	return is[min(max(m.scroll[pWorkers], 0), len(is)-1)], true
}

// fleetTotal is the total the fleet's desired state asks for, or, when it
// sets none, what the instances that follow control run now.
func (m *Model) fleetTotal() int {
	f := &m.data.Fleet
	if f.DesiredWorkers >= 0 {
		return f.DesiredWorkers
	}
	n := 0
	for _, i := range f.Instances {
		if i.State != "lost" && i.Control != "pinned" {
			n += i.Workers
		}
	}
	return n
}

// anyFollowing reports whether the view holds a live instance that follows
// control.
func (m *Model) anyFollowing() bool {
	for _, i := range m.data.Fleet.Instances {
		if i.State != "lost" && i.Control != "pinned" {
			return true
		}
	}
	return false
}

// fleetDone turns a fleet call's outcome into the status line: the
// acknowledgement, or what was asked and why it failed.
func fleetDone(what, ack string, err error, scale bool) actionMsg {
	if err != nil {
		return actionMsg{what: what, err: err, scale: scale}
	}
	return actionMsg{what: ack}
}

func (m *Model) scaleFleet(fb Fleet, delta int) tea.Cmd {
	f := &m.data.Fleet
	if inst, ok := m.selectedInstance(); ok {
		switch {
		case inst.State == "lost":
			m.setStatus(Warn, "instance "+inst.Name+" is lost (no telemetry for 3 intervals): it cannot apply a share; esc or tab, then +/- scale the fleet")
			return nil
		case inst.Control == "pinned":
			m.setStatus(Warn, "instance "+inst.Name+" runs with --control=ignore (pinned): scale it on its host")
			return nil
		}
		base := inst.Workers
		if m.instTo.name == inst.Name {
			base = m.instTo.n
		}
		n := base + delta
		if n < 0 {
			m.setStatus(Warn, "instance "+inst.Name+" already runs 0 workers")
			return nil
		}
		m.instTo = instPending{inst.Name, n}
		m.setStatus(Info, fmt.Sprintf("scaling instance %s to %d workers…", inst.Name, n))
		what := fmt.Sprintf("scale instance %s to %d workers", inst.Name, n)
		return m.ask(fmt.Sprintf("scale instance %s to %d workers? (the other instances keep theirs)", inst.Name, n), true, func() tea.Msg {
			ctx, cancel := m.ctx()
			defer cancel()
			ack, err := fb.ScaleInstance(ctx, inst.Name, n)
			return fleetDone(what, ack, err, true)
		})
	}
	if f.DesiredWorkers < 0 && m.scaleTo < 0 && !m.anyFollowing() {
		// No total asked yet and no instance heard: a total counted from
		// nothing would be 0, and + would scale a running fleet to 1.
		m.setStatus(Warn, "cannot scale yet: no instance of the fleet has published its workers (a second)")
		return nil
	}
	base := m.fleetTotal()
	if m.scaleTo >= 0 {
		base = m.scaleTo
	}
	n := base + delta
	if n < 0 {
		m.setStatus(Warn, "the fleet already runs 0 workers (consumption stopped)")
		return nil
	}
	np := f.Partitions
	if np == 0 {
		np = len(m.data.Kafka.Partitions)
	}
	if delta > 0 && np > 0 && n > np {
		m.setStatus(Warn, fmt.Sprintf("%d workers is the most that can consume %d partitions", np, np))
		return nil
	}
	m.scaleTo = n
	m.setStatus(Info, fmt.Sprintf("scaling the fleet to %d workers…", n))
	what := fmt.Sprintf("scale the fleet to %d workers", n)
	return m.ask(fmt.Sprintf("scale the fleet (group %s) to %d workers over %s?", m.data.Group, n, plural(f.Following, "instance")), true, func() tea.Msg {
		ctx, cancel := m.ctx()
		defer cancel()
		ack, err := fb.ScaleFleet(ctx, n)
		return fleetDone(what, ack, err, true)
	})
}

func (m *Model) pauseFleet(fb Fleet) tea.Cmd {
	p := !m.data.Header.Paused
	verb := "resume"
	if p {
		verb = "pause"
	}
	what := verb + " the fleet"
	return m.ask(fmt.Sprintf("%s consumption on every instance of group %s (%d live)?", verb, m.data.Group, m.data.Fleet.Live), true, func() tea.Msg {
		ctx, cancel := m.ctx()
		defer cancel()
		ack, err := fb.PauseFleet(ctx, p)
		return fleetDone(what, ack, err, false)
	})
}

// targetCmd switches the model version: the fleet's target when the fleet
// is steered from here, else this process's pool.
func (m *Model) targetCmd(spec string) func() tea.Msg {
	if fb, ok := m.fleetBackend(); ok {
		return func() tea.Msg {
			ctx, cancel := m.ctx()
			defer cancel()
			ack, err := fb.TargetFleet(ctx, spec)
			return fleetDone("target the fleet to "+spec, ack, err, false)
		}
	}
	return func() tea.Msg {
		ctx, cancel := m.ctx()
		defer cancel()
		return actionMsg{what: "target model version: " + spec, err: m.opt.Backend.SetTarget(ctx, spec)}
	}
}

// targetPrompt is the question before a version switch.
func (m *Model) targetPrompt(label string) string {
	if _, ok := m.fleetBackend(); ok {
		return fmt.Sprintf("switch every instance of group %s to %s %s?", m.data.Group, m.data.Model, label)
	}
	return "switch " + m.data.Model + " to " + label + "?"
}
