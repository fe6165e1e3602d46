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
	// Groups in reason order, so a new dead letter changes its own group's
	// lines and does not reshuffle the panel (every moved line is bytes
	// over SSH).
	type group struct {
		reason string
		recs   []DeadLetter
	}
	var groups []*group
	idx := map[string]*group{}
	for _, r := range recs {
		g := idx[r.Reason]
		if g == nil {
			g = &group{reason: r.Reason}
			idx[r.Reason] = g
			groups = append(groups, g)
		}
		g.recs = append(g.recs, r)
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].reason < groups[j].reason })
	// Unfocused: a fixed block per reason (its newest records). Focused:
	// every record, scrollable, for reading what the producer sends.
	per := 1 << 30
	if m.focus != pDLQ && len(groups) > 0 {
		per = max((h-1)/len(groups)-1, 1)
	}
	var body []string
	for _, g := range groups {
		// Reason and source come from headers anyone may write: drawn
		// through printable like the payload.
		body = append(body, st.Err.Render("× "+itoa(len(g.recs)))+" "+st.Bold.Render(printable(g.reason)))
		for i, r := range g.recs {
			if i >= per {
				break
			}
			body = append(body, "  "+st.Dim.Render(printable(r.Source))+" "+printable(r.Preview))
		}
	}
	start := clampStart(m.scroll[pDLQ], len(body), h-1)
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
