// Operator actions on Kafka from the console: replaying a reason group of
// the DLQ panel (r) and resetting the offsets of the lag table's
// partitions (o), each planned first and confirmed.

package tui

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// Operator is what a backend offers for operator actions; a backend
// without it (a static view) has none. Plans are dry runs: they change
// nothing, and the action that follows carries out the last plan shown.
type Operator interface {
	// PlanReplay counts what replaying reason's dead letters would send.
	PlanReplay(ctx context.Context, reason string) (*ReplayPlan, error)
	// StartReplay sends the last planned replay at rate records/s (0: no
	// limit) in the background; progress shows in Data.Ops.
	StartReplay(rate float64) error
	// PlanReset works out moving the group on partitions (as typed:
	// "0,3,5-7"; "" all) to `to` (earliest, latest, a time, an offset, -N).
	PlanReset(ctx context.Context, partitions, to string) (*ResetPlan, error)
	// ApplyReset carries out the last reset planned.
	ApplyReset(ctx context.Context) (string, error)
}

// OpsData is what the operator actions show between refreshes.
type OpsData struct {
	Replay *ReplayRun // the running or last replay; nil: none yet
}

// ReplayRun is a replay's progress.
type ReplayRun struct {
	Reason      string
	Sent, Total int64
	Rate        float64       // records/s so far
	ETA         time.Duration // -1: unknown
	Done        bool
	Err         string
}

// ReplayPlan is a replay's dry run.
type ReplayPlan struct {
	Reason, Filter, Group string
	Send                  int64
	AlreadySent           int64
	OverLimit, Truncated  int64 // left in the DLQ: at --max-redrives, cut copies
	BadCount              int64
	MaxRedrives           int
	Earlier               []string // earlier replays whose records are left out
	Warnings              []string
}

// ResetPlan is an offset reset worked out, not yet applied.
type ResetPlan struct {
	Group, Topic, To    string
	Rows                []ResetRow
	LagBefore, LagAfter int64
	Skipped, Reread     int64
	// Members are the group's members; Local says each is this console's
	// own worker, which the backend stops for the reset and restarts.
	Members []string
	Local   bool
	// Fleet says the members are elsewhere and the backend will stop the
	// fleet's workers through control for the reset and restore them.
	Fleet    bool
	Warnings []string
}

// ResetRow is one partition of a ResetPlan (Current -1: no commit).
type ResetRow struct {
	Partition           int32
	Current, New        int64
	LagBefore, LagAfter int64
	Skipped, Reread     int64
	Note                string
}

type opsPhase int

const (
	opsPlanning opsPhase = iota // waiting for the backend's plan
	opsPlanned                  // the plan is shown: confirm or cancel
	opsEditing                  // reset: typing partitions and target
	opsApplying
)

// opsState is the open replay or reset overlay.
type opsState struct {
	phase  opsPhase
	reason string // replay
	rate   string // replay: records/s typed, "" = no limit
	replay *ReplayPlan
	parts  string // reset: partition list typed
	to     string // reset: target typed
	field  int    // reset: 0 partitions, 1 target
	reset  *ResetPlan
	err    string
}

type replayPlannedMsg struct {
	plan *ReplayPlan
	err  error
}

type resetPlannedMsg struct {
	plan *ResetPlan
	err  error
}

func (m *Model) operator() (Operator, bool) {
	if m.opt.Backend == nil {
		return nil, false
	}
	op, ok := m.opt.Backend.(Operator)
	return op, ok
}

// dlqGroup is one reason of the DLQ panel with its records, newest first.
type dlqGroup struct {
	reason string
	recs   []DeadLetter
}

// dlqGroups groups the panel's records by reason, in reason order, so a
// new dead letter changes its own group's lines and does not reshuffle the
// panel (every moved line is bytes over SSH).
func (m *Model) dlqGroups() []*dlqGroup {
	var groups []*dlqGroup
	idx := map[string]*dlqGroup{}
	for _, r := range m.data.DLQ.Records {
		g := idx[r.Reason]
		if g == nil {
			g = &dlqGroup{reason: r.Reason}
			idx[r.Reason] = g
			groups = append(groups, g)
		}
		g.recs = append(g.recs, r)
	}
	sortGroups(groups)
	return groups
}

// openReplay plans replaying the DLQ panel's selected reason group.
func (m *Model) openReplay() tea.Cmd {
	if m.denied("replay dead letters") {
		return nil
	}
	op, ok := m.operator()
	if !ok {
		m.setStatus(Warn, "cannot replay dead letters: this console has no Kafka access for it")
		return nil
	}
	m.focusOn(pDLQ)
	groups := m.dlqGroups()
	if len(groups) == 0 {
		m.setStatus(Warn, "no dead letters to replay")
		return nil
	}
	g := groups[min(m.scroll[pDLQ], len(groups)-1)]
	if r := m.data.Ops.Replay; r != nil && !r.Done {
		m.setStatus(Warn, "a replay of "+r.Reason+" is still running")
		return nil
	}
	m.ov, m.ops = ovReplay, opsState{phase: opsPlanning, reason: g.reason, rate: "100"}
	return func() tea.Msg {
		ctx, cancel := m.ctx()
		defer cancel()
		p, err := op.PlanReplay(ctx, g.reason)
		return replayPlannedMsg{p, err}
	}
}

// openReset opens the reset overlay for the lag table's partitions (the
// filter's rows; all without one).
func (m *Model) openReset() tea.Cmd {
	if m.denied("reset offsets") {
		return nil
	}
	if _, ok := m.operator(); !ok {
		m.setStatus(Warn, "cannot reset offsets: this console has no Kafka access for it")
		return nil
	}
	m.focusOn(pLag)
	// The lag table's filter selects the partitions; the field can be
	// edited before the plan.
	parts := ""
	if m.filter != "" {
		ids := make([]string, 0, len(m.order))
		for _, i := range m.order {
			ids = append(ids, itoa(int(m.data.Kafka.Partitions[i].ID)))
		}
		parts = strings.Join(ids, ",")
	}
	m.ov, m.ops = ovReset, opsState{phase: opsEditing, parts: parts, to: "latest", field: 1}
	return nil
}

// onOpsMsg takes a plan the backend worked out.
func (m *Model) onOpsMsg(msg tea.Msg) {
	m.dirty = true
	switch msg := msg.(type) {
	case replayPlannedMsg:
		if m.ov != ovReplay {
			return
		}
		m.ops.phase, m.ops.replay = opsPlanned, msg.plan
		if msg.err != nil {
			m.ops.err = msg.err.Error()
		}
	case resetPlannedMsg:
		if m.ov != ovReset {
			return
		}
		if msg.err != nil {
			m.ops.phase, m.ops.err = opsEditing, msg.err.Error()
			return
		}
		m.ops.phase, m.ops.reset, m.ops.err = opsPlanned, msg.plan, ""
	}
}

// opsKey handles keys while the replay or reset overlay is open.
func (m *Model) opsKey(k tea.KeyPressMsg) tea.Cmd {
	o := &m.ops
	if key.Matches(k, m.keys.Back) {
		if m.ov == ovReset && o.phase == opsPlanned {
			o.phase, o.reset = opsEditing, nil // back to the fields
			return nil
		}
		m.ov = ovNone
		m.setStatus(Info, "cancelled: nothing changed")
		return nil
	}
	op, _ := m.operator()
	switch {
	case o.phase == opsPlanning || o.phase == opsApplying:
		return nil
	case m.ov == ovReplay && o.phase == opsPlanned:
		switch s := k.String(); {
		case s == "enter" || s == "y":
			if o.replay == nil || o.replay.Send == 0 {
				m.ov = ovNone
				return nil
			}
			rate, err := strconv.ParseFloat(strings.TrimSpace(o.rate), 64)
			if strings.TrimSpace(o.rate) == "" {
				rate, err = 0, nil
			}
			if err != nil || rate < 0 {
				o.err = "rate: want records per second, 0 or empty for no limit"
				return nil
			}
			reason, n := o.reason, o.replay.Send
			m.ov = ovNone
			m.setStatus(Info, fmt.Sprintf("replaying %d dead letters of %s…", n, reason))
			return func() tea.Msg {
				err := op.StartReplay(rate)
				return actionMsg{what: fmt.Sprintf("replay of %s started: %d records", reason, n), err: err}
			}
		case s == "backspace":
			if o.rate != "" {
				o.rate = o.rate[:len(o.rate)-1]
			}
		case len(s) == 1 && (s[0] >= '0' && s[0] <= '9' || s[0] == '.'):
			if len(o.rate) < 8 {
				o.rate += s
			}
		}
		return nil
	case m.ov == ovReset && o.phase == opsPlanned:
		if s := k.String(); s != "y" && s != "enter" {
			return nil
		}
		o.phase = opsApplying
		return func() tea.Msg {
			ctx, cancel := m.ctx()
			defer cancel()
			what, err := op.ApplyReset(ctx)
			return opsDoneMsg{what, err}
		}
	case m.ov == ovReset && o.phase == opsEditing:
		field := &o.to
		if o.field == 0 {
			field = &o.parts
		}
		switch s := k.String(); s {
		case "tab", "shift+tab", "up", "down":
			o.field = 1 - o.field
		case "enter":
			parts, to := strings.TrimSpace(o.parts), strings.TrimSpace(o.to)
			o.phase, o.err = opsPlanning, ""
			return func() tea.Msg {
				ctx, cancel := m.ctx()
				defer cancel()
				p, err := op.PlanReset(ctx, parts, to)
				return resetPlannedMsg{p, err}
			}
		case "backspace":
			if *field != "" {
				r := []rune(*field)
				*field = string(r[:len(r)-1])
			}
		default:
			if k.Text != "" && len(*field) < 40 {
				*field += k.Text
			}
		}
	}
	return nil
}

// opsDoneMsg is an applied reset: the overlay closes with its outcome.
type opsDoneMsg struct {
	what string
	err  error
}

func (m *Model) onOpsDone(msg opsDoneMsg) {
	if m.ov == ovReset {
		if msg.err != nil {
			// Keep the plan on screen with why it was refused.
			m.ops.phase, m.ops.err = opsPlanned, msg.err.Error()
			m.dirty = true
			return
		}
		m.ov = ovNone
	}
}

// opsOverlay is the open overlay's title and body.
func (m *Model) opsOverlay(w int) (string, []string) {
	st, o := m.st, &m.ops
	var body []string
	errLine := func() {
		if o.err != "" {
			for _, l := range wrapWords(o.err, max(w-12, 30)) {
				body = append(body, st.Err.Render(l))
			}
		}
	}
	if m.ov == ovReplay {
		title := "replay dead letters: " + printable(o.reason)
		if o.phase == opsPlanning {
			return title, []string{"reading " + m.data.DLQTopic + " for a dry run…", "", st.Dim.Render("esc cancel")}
		}
		p := o.replay
		if p == nil {
			errLine()
			return title, append(body, "", st.Dim.Render("esc close"))
		}
		body = append(body, p.Filter)
		body = append(body, st.Bold.Render(inum(p.Send)+" to send")+" (dry run: nothing sent yet)")
		if p.AlreadySent > 0 {
			body = append(body, st.Dim.Render(inum(p.AlreadySent)+" already sent by an earlier replay: not again"))
		}
		if p.OverLimit > 0 {
			body = append(body, st.Warn.Render(inum(p.OverLimit)+" replayed "+itoa(p.MaxRedrives)+" times already: left in the DLQ"))
		}
		if p.Truncated+p.BadCount > 0 {
			body = append(body, st.Warn.Render(inum(p.Truncated+p.BadCount)+" truncated or with an unreadable redrive count: left"))
		}
		for _, e := range p.Earlier {
			body = append(body, st.Dim.Render("earlier: "+e))
		}
		for _, wn := range p.Warnings {
			body = append(body, st.Warn.Render(wn))
		}
		errLine()
		body = append(body, "")
		if p.Send == 0 {
			return title, append(body, st.Dim.Render("nothing to send · enter/esc close"))
		}
		rate := o.rate
		if rate == "" {
			rate = "no limit"
		}
		body = append(body, "rate "+st.Selected.Render(" "+rate+" ")+" records/s (type digits, backspace)",
			"exactly once: progress is kept, an interrupted replay resumes",
			"", st.Key.Render("enter")+" send "+inum(p.Send)+" to "+m.data.Input+"   "+st.Key.Render("esc")+" cancel")
		return title, body
	}
	title := "reset offsets of " + m.data.Group + " on " + m.data.Input
	switch o.phase {
	case opsEditing, opsPlanning:
		field := func(i int, name, v, hint string) string {
			cur := " "
			if o.field == i && o.phase == opsEditing {
				cur = "▏"
			}
			if v == "" && i == 0 {
				v = "all"
			}
			return left(name, 11) + st.Selected.Render(" "+v+cur) + " " + st.Dim.Render(hint)
		}
		body = append(body, field(0, "partitions", o.parts, "0,3,5-7 (the lag filter's rows)"),
			field(1, "to", o.to, "earliest latest now-1h 2024-05-01T10:00Z 1234 -100"))
		errLine()
		if o.phase == opsPlanning {
			return title, append(body, "", "working out the plan…")
		}
		return title, append(body, "", st.Key.Render("tab")+" field  "+st.Key.Render("enter")+" show the plan (changes nothing)  "+st.Key.Render("esc")+" close")
	}
	p := o.reset
	body = append(body, "to "+p.To+" · lag "+inum(p.LagBefore)+" → "+inum(p.LagAfter))
	for _, wn := range p.Warnings {
		body = append(body, st.Warn.Render(wn))
	}
	body = append(body, st.ColumnHead.Render(right("part", 5)+right("current", 10)+right("new", 10)+right("lag", 8)+right("→", 8)+"  change"))
	const maxRows = 12
	for i, r := range p.Rows {
		if i == maxRows {
			body = append(body, st.Dim.Render("… "+itoa(len(p.Rows)-maxRows)+" more partitions"))
			break
		}
		cur := strconv.FormatInt(r.Current, 10)
		if r.Current < 0 {
			cur = "none"
		}
		change := "-"
		switch {
		case r.Skipped > 0:
			change = st.Warn.Render("skips " + inum(r.Skipped))
		case r.Reread > 0:
			change = "reads " + inum(r.Reread) + " again"
		}
		body = append(body, right(itoa(int(r.Partition)), 5)+right(cur, 10)+right(strconv.FormatInt(r.New, 10), 10)+right(inum(r.LagBefore), 8)+right(inum(r.LagAfter), 8)+"  "+change)
	}
	if p.Skipped > 0 {
		body = append(body, st.Warn.Render("skips "+inum(p.Skipped)+" records: the group will never read them"))
	}
	if len(p.Members) > 0 {
		switch {
		case p.Local:
			body = append(body, st.Warn.Render("stops this console's "+itoa(len(p.Members))+" workers for the reset, then restarts them"))
		case p.Fleet:
			body = append(body, st.Warn.Render("stops the fleet's workers ("+itoa(len(p.Members))+" members) through control for the reset,"),
				st.Warn.Render("works the plan out again once the group is empty, then restores the fleet as it was"))
		default:
			body = append(body, st.Err.Render("the group has "+itoa(len(p.Members))+" members elsewhere ("+strings.Join(p.Members, ", ")+"): Kafka will refuse"))
			body = append(body, st.Dim.Render("stop them first (inferops offsets reset --stop-fleet, or systemctl stop inferops-worker)"))
		}
	}
	errLine()
	if o.phase == opsApplying {
		return title, append(body, "", "applying…")
	}
	return title, append(body, "", st.Key.Render("y")+" apply   "+st.Key.Render("esc")+" back")
}

// wrapWords breaks s into lines of at most n cells at spaces.
func wrapWords(s string, n int) []string {
	var out []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > n {
			out = append(out, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		out = append(out, line)
	}
	return out
}

// replayLine is the DLQ panel's line about the running or last replay.
func (m *Model) replayLine() string {
	r := m.data.Ops.Replay
	if r == nil {
		return ""
	}
	st := m.st
	switch {
	case r.Err != "":
		return st.Err.Render("replay " + printable(r.Reason) + " stopped after " + inum(r.Sent) + ": " + r.Err)
	case r.Done:
		return st.Dim.Render("replayed " + inum(r.Sent) + " of " + printable(r.Reason))
	}
	eta := "?"
	if r.ETA >= 0 {
		eta = r.ETA.Round(time.Second).String()
	}
	return st.Warn.Render("replaying " + printable(r.Reason) + " " + inum(r.Sent) + "/" + inum(r.Total) + " · " + num(r.Rate) + "/s · ETA " + eta)
}
