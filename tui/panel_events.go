// The events panel: the timestamped log, newest first.

package tui

func (m *Model) eventsPanel(w, h int) []string {
	d, st := &m.data, m.st
	ev := d.Events.Items
	lines := []string{}
	start := clampStart(m.scroll[pEvents], len(ev), h)
	for i := start; i < len(ev) && len(lines) < h; i++ {
		e := ev[i]
		lines = append(lines, st.Dim.Render(e.T.Format("15:04:05"))+" "+st.level(e.Level).Render(left(e.Kind, 9))+" "+e.Text)
	}
	if len(ev) == 0 {
		lines = append(lines, st.Dim.Render("no events yet"))
	}
	return lines
}
