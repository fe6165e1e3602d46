// The workers panel: local and remote group members and partition skew.

package tui

import (
	"math"
	"sort"
	"strconv"
	"strings"
)

func (m *Model) workersPanel(w, h int) []string {
	d, st := &m.data, m.st
	sk := d.Workers.Skew
	lines := []string{
		"rate skew " + skewStr(st, sk.RatePeakToAvg, sk.RateCV),
		"lag skew  " + skewStr(st, sk.LagPeakToAvg, sk.LagCV),
	}
	cols := []column{{"member", 0, 0, false}, {"parts", 7, 0, true}, {"in/s", 5, 0, true}, {"out/s", 5, 1, true}, {"infl", 4, 2, true}, {"batch", 5, 3, true}}
	fixed := 0
	for _, c := range cols[1:] {
		fixed += c.w + 1
	}
	cols[0].w = max(w-fixed, 10)
	keep := fitColumns(cols, w)
	// The member name takes whatever the kept columns leave.
	used := 0
	for i := 1; i < len(cols); i++ {
		if keep[i] {
			used += cols[i].w + 1
		}
	}
	cols[0].w = max(w-used, 4)
	heads := make([]string, len(cols))
	for i, c := range cols {
		heads[i] = c.head
	}
	lines = append(lines, st.ColumnHead.Render(tableRow(cols, keep, heads, nil)))
	ms := d.Workers.Members
	start := clampStart(m.scroll[pWorkers], len(ms), h-len(lines))
	for i := start; i < len(ms) && len(lines) < h; i++ {
		mb := ms[i]
		name := m.owner(mb.ClientID)
		if name == "" {
			name = mb.ID
		}
		var nameStyle func(string) string
		if !mb.Local {
			name += " @" + mb.Host
			nameStyle = sty(st.Dim)
		}
		lines = append(lines, tableRow(cols, keep,
			[]string{name, partList(mb.Partitions), num(mb.InRate), num(mb.OutRate), itoa(mb.InFlight), num(mb.Batch)},
			[]func(string) string{nameStyle, nil, nil, nil, nil, nil}))
	}
	if len(ms) == 0 {
		lines = append(lines, st.Dim.Render("no group members"))
	}
	return lines
}

// partList shows a member's partitions compactly: "0-2,7" or a count.
func partList(ps []int32) string {
	if len(ps) == 0 {
		return "-"
	}
	s := append([]int32(nil), ps...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var parts []string
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, strconv.Itoa(int(s[i]))+"-"+strconv.Itoa(int(s[j])))
		} else {
			parts = append(parts, strconv.Itoa(int(s[i])))
		}
		i = j + 1
	}
	out := strings.Join(parts, ",")
	if len(out) > 7 {
		return "#" + strconv.Itoa(len(s))
	}
	return out
}

func skewStr(st Styles, peak, cv float64) string {
	s := "peak/avg " + strconv.FormatFloat(peak, 'f', 2, 64) + " cv " + strconv.FormatFloat(cv, 'f', 2, 64)
	switch {
	case math.IsNaN(peak) || peak == 0:
		return st.Dim.Render("peak/avg - cv -")
	case peak >= 2 || cv >= 0.5:
		return st.Err.Render(s)
	case peak >= 1.5 || cv >= 0.25:
		return st.Warn.Render(s)
	}
	return s
}
