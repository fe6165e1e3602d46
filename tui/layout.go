package tui

import (
	"strings"
)

// panelID names a panel; the order is the tab order.
type panelID int

const (
	pLag panelID = iota
	pFlow
	pLatency
	pModels
	pWorkers
	pEvents
	pDLQ
	pPerf
	pRollout // only while there is a rollout (rollout.go)
	numPanels
)

var panelNames = [numPanels]string{"lag", "throughput", "tf serving", "models", "workers", "events", "dlq", "perf", "rollout"}

// Minimum usable size: below it the console says so instead of drawing a
// garbled screen.
const (
	MinWidth  = 60
	MinHeight = 16
)

// slot is one rectangle of the body; it shows one of its panels at a time
// (the most recently focused or activated one), so a small screen folds
// several panels into one place instead of squeezing them unreadably.
type slot struct {
	w      int
	panels []panelID
}

// band is a row of slots sharing a height.
type band struct {
	h     int
	slots []slot
}

// layout is the whole screen: header lines, optional tab bar, bands, footer.
type layout struct {
	name   string // "small", "medium", "large": for tests and logs
	header int
	tabs   bool
	bands  []band
}

// computeLayout is the one place that decides what goes where for a size.
// Lag, the worker count, p99 and the served version live in the header and
// the first slot, so they stay visible at 80x24. header is the header's
// lines: 2, or 3 with a notice, which the body gives up a line for. With
// a fleet of several instances, the large screen gives the workers panel
// (an instance and its members per group of rows) the tall slot beside
// the lag table, and throughput moves to the middle band. While there is a
// rollout its panel joins the top right slot, the widest after the lag
// table's, which its comparison needs.
func computeLayout(w, h, header int, fleet, rollout bool) layout {
	body := h - header - 1 // and the footer
	pct := func(n, p int) int { return n * p / 100 }
	ro := func(ps ...panelID) []panelID {
		if rollout {
			return append(ps, pRollout)
		}
		return ps
	}
	switch {
	case w >= 120 && h >= 36 && fleet:
		r1 := pct(body, 42)
		r2 := pct(body, 30)
		return layout{name: "large-fleet", header: header, bands: []band{
			{h: r1, slots: []slot{{w: w / 2, panels: []panelID{pLag}}, {w: w - w/2, panels: ro(pWorkers, pPerf)}}},
			{h: r2, slots: []slot{{w: pct(w, 35), panels: []panelID{pLatency}}, {w: pct(w, 30), panels: []panelID{pModels}}, {w: w - pct(w, 35) - pct(w, 30), panels: []panelID{pFlow}}}},
			{h: body - r1 - r2, slots: []slot{{w: w / 2, panels: []panelID{pEvents}}, {w: w - w/2, panels: []panelID{pDLQ}}}},
		}}
	case w >= 120 && h >= 36:
		r1 := pct(body, 42)
		r2 := pct(body, 30)
		return layout{name: "large", header: header, bands: []band{
			// Perf results share the tallest slot with throughput: a results
			// table needs more rows than the bottom band has.
			{h: r1, slots: []slot{{w: w / 2, panels: []panelID{pLag}}, {w: w - w/2, panels: ro(pFlow, pPerf)}}},
			{h: r2, slots: []slot{{w: pct(w, 35), panels: []panelID{pLatency}}, {w: pct(w, 30), panels: []panelID{pModels}}, {w: w - pct(w, 35) - pct(w, 30), panels: []panelID{pWorkers}}}},
			{h: body - r1 - r2, slots: []slot{{w: w / 2, panels: []panelID{pEvents}}, {w: w - w/2, panels: []panelID{pDLQ}}}},
		}}
	case w >= 100 && h >= 28:
		r1 := pct(body, 55)
		return layout{name: "medium", header: header, bands: []band{
			{h: r1, slots: []slot{{w: pct(w, 55), panels: []panelID{pLag}}, {w: w - pct(w, 55), panels: ro(pFlow, pLatency, pModels, pPerf)}}},
			{h: body - r1, slots: []slot{{w: w / 2, panels: []panelID{pWorkers, pEvents}}, {w: w - w/2, panels: []panelID{pDLQ}}}},
		}}
	}
	all := make([]panelID, 0, numPanels)
	for p := panelID(0); p < pRollout; p++ {
		all = append(all, p)
	}
	all = ro(all...)
	return layout{name: "small", header: header, tabs: true, bands: []band{{h: body - 1, slots: []slot{{w: w, panels: all}}}}}
}

// box frames content lines in a rounded border with the title (and the
// data age) in the top edge. Content is fitted to w-4 cells.
func box(st Styles, title, info string, focused bool, w, h int, content []string) []string {
	if h < 2 || w < 4 {
		return make([]string, max(h, 0))
	}
	bs, ts := st.Border, st.Title
	if focused {
		bs, ts = st.BorderFocused, st.TitleFocused
	}
	inner := w - 2
	top := "─ " + ts.Render(title)
	tw := 2 + width(title)
	// The info (source, sort, data age) is cut rather than dropped when the
	// panel is narrow.
	if avail := inner - tw - 4; info != "" && avail >= 6 {
		if width(info) > avail {
			info = fit(info, avail)
		}
		top += " " + st.Dim.Render(info)
		tw += 1 + width(info)
	}
	top += " "
	tw++
	if tw > inner {
		top, tw = fit(top, inner), inner
	}
	out := make([]string, h)
	out[0] = bs.Render("╭") + top + bs.Render(strings.Repeat("─", inner-tw)+"╮")
	side := bs.Render("│")
	for i := 1; i < h-1; i++ {
		line := ""
		if i-1 < len(content) {
			line = content[i-1]
		}
		out[i] = side + " " + fit(line, w-4) + " " + side
	}
	out[h-1] = bs.Render("╰" + strings.Repeat("─", inner) + "╯")
	return out
}
