// The workers panel over the fleet: one row per instance (state, control,
// workers, partitions, rates, end-to-end p99, versions, breaker) with its
// members below it, then the group members no instance claims. ↑/↓ move a
// cursor by instance; while the panel has the focus, +/- change only the
// instance under it (fleet.go).

package tui

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// fleetCols are the panel's columns; narrow panels drop the highest prio.
func fleetCols(w int) ([]column, []bool) {
	cols := []column{
		{"", 1, 0, false}, // ▸ the cursor, * this console's own pool
		{"instance", 8, 0, false},
		{"state", 6, 0, false},
		{"ctl", 6, 0, false},
		{"wk", 2, 0, true},
		{"parts", 7, 1, true},
		{"in/s", 5, 0, true},
		{"out/s", 5, 2, true},
		{"e2e99", 6, 1, true},
		{"ver", 3, 2, false},
		{"brk", 6, 3, false},
	}
	keep := fitColumns(cols, w)
	used := 0
	for i, c := range cols {
		if keep[i] && i != 1 {
			used += c.w + 1
		}
	}
	cols[1].w = max(w-used, 6)
	return cols, keep
}

func (m *Model) fleetPanel(w, h int) []string {
	d, st := &m.data, m.st
	f := &d.Fleet
	lines := []string{m.fleetSummary(w)}
	if f.Desired != "" && h >= 8 {
		lines = append(lines, st.Dim.Render(fit("desired "+f.Desired, w)))
	}
	cols, keep := fleetCols(w)
	heads := make([]string, len(cols))
	for i, c := range cols {
		heads[i] = c.head
	}
	lines = append(lines, st.ColumnHead.Render(tableRow(cols, keep, heads, nil)))
	if len(f.Instances) == 0 && len(f.Others) == 0 {
		return append(lines, st.Dim.Render("no instance has published yet"))
	}
	// Rows are an instance and its members; only the visible ones are
	// drawn (a 50 x 8 fleet is 450 rows). The cursor's instance is kept on
	// screen with its members.
	room := h - len(lines)
	cur := min(max(m.scroll[pWorkers], 0), max(len(f.Instances)-1, 0))
	total, curRow, curLen := 0, 0, 0
	for i, in := range f.Instances {
		if i == cur {
			curRow, curLen = total, 1+len(in.Members)
		}
		total += 1 + len(in.Members)
	}
	if len(f.Others) > 0 {
		total += 1 + len(f.Others)
	}
	start := 0
	if curRow+curLen > room {
		start = curRow
	}
	start = clampStart(start, total, room)
	row := 0
	emit := func(s string) bool {
		if row >= start && len(lines) < h {
			lines = append(lines, s)
		}
		row++
		return len(lines) < h
	}
	selected := m.focus == pWorkers
	for i := range f.Instances {
		in := &f.Instances[i]
		n := 1 + len(in.Members)
		if row+n <= start { // wholly above the window
			row += n
			continue
		}
		if !emit(m.instanceRow(cols, keep, in, selected && i == cur)) {
			return lines
		}
		prefix := "inferops-" + in.Name + "-"
		for _, mb := range in.Members {
			if !emit(m.memberRow(cols, keep, "└ "+strings.TrimPrefix(mb.ClientID, prefix), mb, in.State == "lost")) {
				return lines
			}
		}
	}
	if len(f.Others) > 0 {
		emit(st.Dim.Render(fit("  not in the fleet (no telemetry):", w)))
		for _, mb := range f.Others {
			name := mb.ClientID
			if name == "" {
				name = mb.ID
			}
			if mb.Host != "" {
				name += " @" + mb.Host
			}
			if !emit(m.memberRow(cols, keep, name, mb, true)) {
				break
			}
		}
	}
	return lines
}

// fleetSummary is the panel's first line: instances, workers, and how far
// the desired state is applied.
func (m *Model) fleetSummary(w int) string {
	st, f := m.st, &m.data.Fleet
	s := plural(f.Live, "instance")
	if f.Lost > 0 {
		s += " " + st.Err.Render(itoa(f.Lost)+" lost")
	}
	s += " · " + plural(f.Workers, "worker") + " · "
	ctl := func(long bool) string {
		var c string
		switch {
		case f.Desired == "":
			return st.Dim.Render("no desired state")
		case long:
			c = fmt.Sprintf("seq %d applied %d/%d", f.Seq, f.Applied, f.Following)
		default:
			c = fmt.Sprintf("seq %d: %d/%d", f.Seq, f.Applied, f.Following)
		}
		if f.Applied < f.Following {
			return st.Warn.Render(c)
		}
		return c
	}
	brk := ""
	if f.BreakersOpen > 0 {
		brk = " · " + st.Err.Render(plural(f.BreakersOpen, "breaker")+" open")
	}
	if long := s + ctl(true) + brk; width(long) <= w {
		return long
	}
	return fit(s+ctl(false)+brk, w)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return itoa(n) + " " + word + "s"
}

// instanceRow is one instance; the cursor's row is drawn reversed and
// unstyled (an inner style's reset would end the reverse early).
func (m *Model) instanceRow(cols []column, keep []bool, in *Instance, cursor bool) string {
	st := m.st
	mark := ""
	switch {
	case cursor:
		mark = "▸"
	case in.Name == m.data.Fleet.Self && in.Name != "":
		mark = "*"
	}
	state, stateSt := in.State, st.OK
	switch {
	case in.State == "lost":
		stateSt = st.Err
	case in.State == "duplicate":
		state, stateSt = "dup", st.Err
	case in.Paused:
		state, stateSt = "paused", st.Warn
	}
	ctl, ctlSt := "-", st.Dim
	switch in.Control {
	case "applied":
		ctl, ctlSt = "ok "+strconv.FormatUint(in.Seq, 10), st.Header
	case "pending":
		ctl, ctlSt = "wait "+strconv.FormatUint(in.Seq, 10), st.Warn
	case "failed":
		ctl, ctlSt = "fail "+strconv.FormatUint(in.Seq, 10), st.Err
	case "pinned":
		ctl = "pinned"
	}
	if in.State == "lost" {
		ctl, ctlSt = ago(in.Age), st.Err
	}
	ver := in.Serving
	if ver == "" {
		ver = targetLabel(in.Target)
	}
	brk := in.Breaker
	if brk == "" {
		brk = "-"
	}
	cells := []string{mark, in.Name, state, ctl, itoa(in.Workers), partList(in.Partitions), num(in.InRate), num(in.OutRate),
		dur(in.E2EP99), ver, brk}
	if cursor {
		return st.Selected.Render(tableRow(cols, keep, cells, nil))
	}
	dim := in.State == "lost"
	nameSt := sty(st.Bold)
	if dim {
		nameSt = sty(st.Dim)
	} else if in.Breaker != "" && in.Breaker != "closed" {
		nameSt = sty(st.Err)
	}
	plain := func(s string) string { return s }
	if dim {
		plain = sty(st.Dim)
	}
	p99 := plain
	if slo := m.data.Latency.SLO; slo > 0 && in.E2EP99 > slo {
		p99 = sty(st.Err)
	}
	return tableRow(cols, keep, cells, []func(string) string{sty(st.Key), nameSt, sty(stateSt), sty(ctlSt), plain, plain, plain, plain, p99, plain, sty(st.status(brk))})
}

// memberRow is one consumer-group member below its instance.
func (m *Model) memberRow(cols []column, keep []bool, name string, mb Member, dim bool) string {
	cells := []string{"", "  " + name, "", "", "", partList(mb.Partitions), num(mb.InRate), num(mb.OutRate), "", "", ""}
	if dim {
		return m.st.Dim.Render(tableRow(cols, keep, cells, nil))
	}
	return tableRow(cols, keep, cells, nil)
}

// ago is how long a lost instance has been silent: "8s ago", "3m ago".
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return itoa(int(d.Seconds())) + "s ago"
	case d < time.Hour:
		return itoa(int(d.Minutes())) + "m ago"
	}
	return itoa(int(d.Hours())) + "h ago"
}
