package tui

import (
	"strings"

	"github.com/charmbracelet/x/ansi"
)

// drawOverlay paints the open overlay centred over the screen lines.
func (m *Model) drawOverlay(lines []string, w, h int) {
	st := m.st
	var title string
	var body []string
	switch m.ov {
	case ovHelp:
		title = "keys"
		var all []string
		for _, c := range m.keys.FullHelp() {
			for _, k := range c {
				hk := k.Help()
				all = append(all, st.Key.Render(left(hk.Key, 9))+" "+hk.Desc)
			}
		}
		// As many columns as fit, filled top to bottom.
		const colW = 36
		ncol := max(min((w-6)/colW, 3), 1)
		rows := (len(all) + ncol - 1) / ncol
		for r := 0; r < rows; r++ {
			var b strings.Builder
			for c := 0; c < ncol; c++ {
				if i := c*rows + r; i < len(all) {
					b.WriteString(fit(all[i], colW))
				}
			}
			body = append(body, strings.TrimRight(b.String(), " "))
		}
		body = append(body, "", st.Dim.Render("Destructive actions on an attached cluster ask first."),
			st.Dim.Render("Logs go to console.log in the state dir. Any key closes this."))
	case ovPicker:
		title = "target version for " + m.data.Model
		for i, p := range m.picks {
			body = append(body, m.pickLine(i, p.label))
		}
		hint := "↑/↓ choose · enter apply live · esc close"
		if _, ok := m.roller(); ok && m.data.Fleet.Known {
			hint = "↑/↓ choose · enter next: switch now or roll out · esc close"
		}
		body = append(body, "", st.Dim.Render(hint))
	case ovMode:
		title = "move " + m.data.Model + " to " + targetLabel(m.mode.spec)
		body = append(body, m.modeLines(w)...)
		if r := &m.data.Rollout; r.Active() {
			body = append(body, "", st.Warn.Render("rollout "+r.ID+" to "+r.Candidate+" is active: promote or abort it first"))
		}
		body = append(body, "", st.Dim.Render("↑/↓ choose · enter then y/n · esc close"))
	case ovPerfMenu:
		title = "perf scenario"
		for i, s := range m.data.Perf.Scenarios {
			body = append(body, m.pickLine(i, left(s.Name, 8)+" "+itoa(s.Streams)+" streams · "+num(float64(s.PayloadBytes))+"B · "+num(s.TargetRate)+" msg/s · SLO "+dur(s.SLO)+" · "+s.Duration.String()))
		}
		if len(m.data.Perf.Scenarios) == 0 {
			body = append(body, st.Dim.Render("no scenarios available"))
		}
		body = append(body, "", st.Dim.Render("runs on "+m.data.Input+".perf, not the production topic · enter run · esc close"))
	case ovReplay, ovReset:
		title, body = m.opsOverlay(w)
	case ovConfirm:
		title = "confirm"
		body = []string{m.confirm.prompt, "", st.Key.Render("y") + " yes   " + st.Key.Render("n") + " no"}
		if m.data.Attached {
			body = append([]string{st.Warn.Render("attached to a live cluster"), ""}, body...)
		}
	}
	bw := len(title) + 8
	for _, l := range body {
		bw = max(bw, ansi.StringWidth(l)+4)
	}
	bw = min(bw, w-2)
	bh := min(len(body)+2, h-2)
	box := box(st, title, "", true, bw, bh, body)
	x0 := (w - bw) / 2
	y0 := (h - bh) / 2
	for i, l := range box {
		y := y0 + i
		if y < 0 || y >= len(lines) {
			continue
		}
		base := fit(lines[y], w)
		lines[y] = ansi.Cut(base, 0, x0) + l + ansi.Cut(base, x0+bw, w)
	}
}

func (m *Model) pickLine(i int, s string) string {
	if i == m.pickIdx {
		return m.st.Selected.Render("▸ " + s)
	}
	return "  " + s
}
