// The models panel: every version, its state and labels, which one serves,
// and its traffic and p99; below, the signature's inputs and outputs, then
// the TF Serving hosts when there are several (panel_hosts.go).

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
	// The signature takes what room the versions and hosts leave.
	lines = append(lines, m.signatureLines(w, vh-len(lines))...)
	return append(lines, hosts...)
}

// signatureLines show what records must carry and what results return,
// below the versions: a line per tensor when the panel has room, else the
// names only, a line per side.
func (m *Model) signatureLines(w, room int) []string {
	d, st := &m.data, m.st
	if len(d.Models.Inputs)+len(d.Models.Outputs) == 0 || room < 2 {
		return nil
	}
	var sig []string
	if d.Models.StandIn {
		sig = append(sig, st.Warn.Render(fit("stand-in: made-up outputs", w)))
	}
	full := func(prefix string, ts []ModelTensor) {
		for _, t := range ts {
			line := prefix + t.Name + " " + t.DType + " " + t.Shape
			if t.Field != "" {
				line += " ← " + t.Field
			}
			sig = append(sig, st.Dim.Render(fit(line, w)))
		}
	}
	names := func(prefix string, ts []ModelTensor) {
		parts := make([]string, len(ts))
		for i, t := range ts {
			parts[i] = t.Name
			if t.Field != "" {
				parts[i] += "←" + t.Field
			}
		}
		sig = append(sig, st.Dim.Render(fit(prefix+strings.Join(parts, ", "), w)))
	}
	if len(sig)+len(d.Models.Inputs)+len(d.Models.Outputs) < room {
		full("in  ", d.Models.Inputs)
		full("out ", d.Models.Outputs)
	} else {
		names("in  ", d.Models.Inputs)
		names("out ", d.Models.Outputs)
	}
	lines := append([]string{""}, sig...)
	return lines[:min(len(lines), room)]
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
