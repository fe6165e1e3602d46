// The TF Serving hosts, when --tfserving names several: a table in the
// models panel (state, versions, share of calls, errors) and per-host
// latency rows in the TF Serving panel. With one host both stay as they
// were: the version rows and the fleet-wide percentiles say it all.

package tui

import (
	"strconv"
)

// fleetShown reports whether the hosts get rows of their own.
func (m *Model) fleetShown() bool { return len(m.data.Models.Hosts) > 1 }

// hostsTable is the models panel's host rows, at most h lines.
func (m *Model) hostsTable(w, h int) []string {
	st, hosts := m.st, m.data.Models.Hosts
	if h < 2 {
		return nil
	}
	// Narrow: short states and no error column, so a whole IPv4 host:port
	// fits beside them.
	short := w < 44
	stateW, fixed := 8, 8+4+5+4+4
	if short {
		stateW, fixed = 5, 5+4+5+3
	}
	cols := []column{{"host", max(w-fixed, 8), 0, false}, {"state", stateW, 0, false}, {"ver", 4, 1, false}, {"share", 5, 0, true}, {"err", 4, 2, true}}
	if short {
		cols = cols[:4]
	}
	keep := fitColumns(cols, w)
	heads := make([]string, len(cols))
	for i, c := range cols {
		heads[i] = c.head
	}
	lines := []string{st.ColumnHead.Render(tableRow(cols, keep, heads, nil))}
	for _, hs := range hosts {
		if len(lines) >= h {
			break
		}
		state := hs.State
		if short {
			state = shortHostState(state)
		}
		lines = append(lines, tableRow(cols, keep,
			[]string{hs.Addr, state, hs.Versions, pct(hs.Share), errCount(st, hs.Errors)},
			[]func(string) string{nil, sty(st.status(hs.State)), nil, nil, nil}))
	}
	return lines
}

// hostLatency is the TF Serving panel's per-host p50/p99 rows (the chart
// below gets what is left, if anything).
func (m *Model) hostLatency(w, h int) []string {
	st, hosts := m.st, m.data.Models.Hosts
	if h < 2 {
		return nil
	}
	cols := []column{{"host", max(w-22, 8), 0, false}, {"p50", 7, 1, true}, {"p99", 7, 0, true}, {"share", 5, 2, true}}
	keep := fitColumns(cols, w)
	heads := make([]string, len(cols))
	for i, c := range cols {
		heads[i] = c.head
	}
	lines := []string{st.ColumnHead.Render(tableRow(cols, keep, heads, nil))}
	for _, hs := range hosts {
		if len(lines) >= h {
			break
		}
		lines = append(lines, tableRow(cols, keep,
			[]string{hs.Addr, dur(hs.P50), dur(hs.P99), pct(hs.Share)},
			[]func(string) string{sty(st.status(hs.State)), sty(st.P50), sty(st.P99), nil}))
	}
	return lines
}

// pct is a share as a whole percentage.
func pct(f float64) string {
	if f <= 0 {
		return "0%"
	}
	return strconv.Itoa(int(f*100+0.5)) + "%"
}

func shortHostState(s string) string {
	switch s {
	case "ejected":
		return "eject"
	case "excluded":
		return "excl"
	case "unknown":
		return "?"
	}
	return s
}
