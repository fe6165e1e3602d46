// The DLQ inspector: recent dead letters grouped by reason.

package tui

import (
	"sort"
	"strings"
)

func (m *Model) dlqPanel(w, h int) []string {
	d, st := &m.data, m.st
	recs := d.DLQ.Records
	// The count is the topic's, whoever wrote to it; the groups below are
	// the newest records read from it.
	lines := []string{"in topic " + errCount(st, d.DLQ.Total) + st.Dim.Render(" · newest "+itoa(d.DLQ.Read)+" read, by reason")}
	if d.DLQ.Err != "" {
		lines = append(lines, st.Err.Render(d.DLQ.Err))
	}
	if l := m.replayLine(); l != "" {
		lines = append(lines, l)
	}
	groups := m.dlqGroups()
	// Unfocused: a fixed block per reason (its newest records). Focused:
	// ↑/↓ pick a reason group, which shows every record it has (r replays
	// it); the others show their count.
	focused := m.focus == pDLQ
	sel := min(m.scroll[pDLQ], len(groups)-1)
	per := 1 << 30
	if !focused && len(groups) > 0 {
		per = max((h-1)/len(groups)-1, 1)
	}
	var body []string
	selAt := 0
	for gi, g := range groups {
		// Reason and source come from headers anyone may write: drawn
		// through printable like the payload.
		head := st.Err.Render("× "+itoa(len(g.recs))) + " " + st.Bold.Render(printable(g.reason))
		if focused && gi == sel {
			selAt = len(body)
			head = st.Selected.Render("▸ ") + head + st.Dim.Render("  r replay")
		} else if focused {
			head = "  " + head
		}
		body = append(body, head)
		if focused && gi != sel {
			continue
		}
		for i, r := range g.recs {
			if i >= per {
				break
			}
			body = append(body, "  "+st.Dim.Render(printable(r.Source))+" "+printable(r.Preview))
		}
	}
	start := 0
	if focused && selAt >= h-len(lines) {
		start = selAt // keep the selected group's header in view
	}
	for i := start; i < len(body) && len(lines) < h; i++ {
		lines = append(lines, body[i])
	}
	switch {
	case len(recs) > 0:
	case d.DLQ.Total == 0 && d.DLQ.Err == "":
		lines = append(lines, st.Dim.Render("no dead letters"))
	default:
		lines = append(lines, st.Dim.Render("none read yet"))
	}
	return lines
}

// sortGroups orders the DLQ panel's groups by reason.
func sortGroups(gs []*dlqGroup) {
	sort.Slice(gs, func(i, j int) bool { return gs[i].reason < gs[j].reason })
}

// printable makes a payload preview safe to draw: control bytes would move
// the cursor or change colours on the operator's terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '·'
		}
		return r
	}, s)
}
