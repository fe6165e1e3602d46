// The models panel: every version, its state and labels, which one serves,
// and its traffic and p99; below, the TF Serving hosts when there are
// several (panel_hosts.go).

package tui

import (
	"strconv"
	"strings"
)

func (m *Model) modelsPanel(w, h int) []string {
	d, st := &m.data, m.st
	lines := []string{}
	if d.Models.Err != "" {
		lines = append(lines, st.Err.Render(d.Models.Err))
	}
	// Narrow panels abbreviate the state so labels and p99 both fit.
	stateW, short := 9, func(s string) string { return s }
	if w < 36 {
		stateW, short = 5, shortState
	}
	cols := []column{{"", 1, 0, false}, {"ver", 3, 0, true}, {"state", stateW, 0, false}, {"res/s", 5, 1, true}, {"p99", 6, 2, true}, {"labels", max(w-26-stateW, 6), 3, false}}
	keep := fitColumns(cols, w)
	heads := make([]string, len(cols))
	for i, c := range cols {
		heads[i] = c.head
	}
	lines = append(lines, st.ColumnHead.Render(tableRow(cols, keep, heads, nil)))
	vs := d.Models.Versions
	// Several hosts: their table goes below the versions, which keep the
	// rows they need first.
	var hosts []string
	if m.fleetShown() {
		hosts = m.hostsTable(w, h-len(lines)-len(vs))
	}
	vh := h - len(hosts)
	start := clampStart(m.scroll[pModels], len(vs), vh-len(lines))
	for i := start; i < len(vs) && len(lines) < vh; i++ {
		v := vs[i]
		mark := " "
		if v.Served {
			mark = "▶"
		}
		state := v.State
		lines = append(lines, tableRow(cols, keep,
			[]string{mark, strconv.FormatInt(v.Version, 10), short(state), num(v.Rate), dur(v.P99), strings.Join(v.Labels, ",")},
			[]func(string) string{sty(st.OK), nil, sty(st.status(state)), nil, nil, sty(st.Dim)}))
	}
	if len(vs) == 0 && d.Models.Err == "" {
		lines = append(lines, st.Dim.Render("no versions reported yet"))
	}
	return append(lines, hosts...)
}

// shortState abbreviates TF Serving's version states to five cells.
func shortState(s string) string {
	switch s {
	case "AVAILABLE":
		return "AVAIL"
	case "UNLOADING":
		return "UNLD"
	case "LOADING":
		return "LOAD"
	}
	return s
}
