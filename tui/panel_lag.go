package tui

import (
	"sort"
	"strconv"
	"strings"
)

// Lag table columns; sort cycles through them in this order.
const (
	colPartition = iota
	colLag
	colLagSeconds
	colProduce
	colConsume
	colOwner
	colStatus
	numCols
)

var colNames = [numCols]string{"part", "lag", "lag s", "prod/s", "cons/s", "owner", "status"}

// resort rebuilds the filtered, sorted row order. It runs when data, the
// sort or the filter change, never in View, so a 10,000-partition topic
// costs one sort per refresh and View only touches the visible rows.
func (m *Model) resort() {
	ps := m.data.Kafka.Partitions
	m.order = m.order[:0]
	f := strings.ToLower(m.filter)
	for i := range ps {
		if f == "" || matchPartition(&ps[i], f) {
			m.order = append(m.order, i)
		}
	}
	less := func(a, b *Partition) bool {
		switch m.sortCol {
		case colLag:
			return a.Lag < b.Lag
		case colLagSeconds:
			return a.LagSeconds < b.LagSeconds
		case colProduce:
			return a.ProduceRate < b.ProduceRate
		case colConsume:
			return a.ConsumeRate < b.ConsumeRate
		case colOwner:
			return a.Owner < b.Owner
		case colStatus:
			return statusRank(a.Status) < statusRank(b.Status)
		}
		return a.ID < b.ID
	}
	asc := m.sortAsc
	sort.SliceStable(m.order, func(i, j int) bool {
		a, b := &ps[m.order[i]], &ps[m.order[j]]
		if less(a, b) {
			return asc
		}
		if less(b, a) {
			return !asc
		}
		return a.ID < b.ID
	})
	if m.scroll[pLag] >= len(m.order) {
		m.scroll[pLag] = max(len(m.order)-1, 0)
	}
}

func matchPartition(p *Partition, f string) bool {
	if strconv.Itoa(int(p.ID)) == f || strings.HasPrefix(strconv.Itoa(int(p.ID)), f) {
		return true
	}
	return strings.Contains(strings.ToLower(p.Owner), f) || strings.ToLower(p.Status) == f
}

func statusRank(s string) int {
	switch s {
	case "OK":
		return 0
	case "WARN":
		return 1
	case "REWIND":
		return 2
	case "STALL":
		return 3
	case "STOP":
		return 4
	case "ERR":
		return 5
	}
	return -1
}

func (m *Model) lagPanel(w, h int) ([]string, string) {
	d, st := &m.data, m.st
	info := d.Input + " · " + itoa(len(d.Kafka.Partitions)) + " partitions"
	arrow := "↓"
	if m.sortAsc {
		arrow = "↑"
	}
	info += " · sort " + colNames[m.sortCol] + arrow
	if m.filter != "" {
		info += " · /" + m.filter + " " + itoa(len(m.order))
	}
	info += " · " + age(d.Now, d.Kafka.At)
	out := make([]string, 0, h)
	if d.Kafka.Err != "" {
		out = append(out, st.Err.Render(d.Kafka.Err))
	}
	// Fixed widths; owner takes what is left. Lag is wider when some
	// partition's lag is no-commit backlog, marked "nc" (the totals line
	// says what that means).
	widths := [numCols]int{5, 7, 6, 7, 7, 0, 6}
	noCommit := d.Kafka.NoCommitLag > 0
	for i := 0; i < len(d.Kafka.Partitions) && !noCommit; i++ {
		noCommit = d.Kafka.Partitions[i].NoCommit
	}
	if noCommit {
		widths[colLag] = 10
	}
	fixed := 0
	for _, x := range widths {
		fixed += x + 1
	}
	widths[colOwner] = w - fixed
	if widths[colOwner] < 6 {
		widths[colOwner] = 0
	}
	var hb strings.Builder
	for c := 0; c < numCols; c++ {
		if widths[c] == 0 {
			continue
		}
		name := colNames[c]
		if c == m.sortCol {
			name += arrow
		}
		cell := st.ColumnHead.Render(alignCol(c, name, widths[c]))
		if c == m.sortCol {
			cell = st.Sorted.Render(alignCol(c, name, widths[c]))
		}
		hb.WriteString(cell + " ")
	}
	out = append(out, hb.String())
	rows := h - len(out) - 1 // the totals line
	if rows < 1 {
		rows = 1
	}
	start := m.scroll[pLag]
	// Keep the selected row in view: scroll moves a window, not a cursor.
	if start > len(m.order)-rows {
		start = max(len(m.order)-rows, 0)
	}
	for i := start; i < len(m.order) && i < start+rows; i++ {
		p := &d.Kafka.Partitions[m.order[i]]
		var b strings.Builder
		for c := 0; c < numCols; c++ {
			if widths[c] == 0 {
				continue
			}
			var s string
			switch c {
			case colPartition:
				s = strconv.Itoa(int(p.ID))
			case colLag:
				s = lagStr(p.Lag)
				if p.NoCommit {
					s += " nc"
				}
			case colLagSeconds:
				s = secs(p.LagSeconds)
			case colProduce:
				s = num(p.ProduceRate)
			case colConsume:
				s = num(p.ConsumeRate)
			case colOwner:
				s = m.owner(p.Owner)
				if s == "" {
					s = "-"
				}
			case colStatus:
				s = orDash(p.Status)
			}
			s = alignCol(c, s, widths[c])
			if c == colStatus {
				s = st.status(p.Status).Render(s)
			}
			b.WriteString(s + " ")
		}
		out = append(out, b.String())
	}
	for len(out) < h-1 {
		out = append(out, "")
	}
	var prod, cons float64
	for i := range d.Kafka.Partitions {
		prod += d.Kafka.Partitions[i].ProduceRate
		cons += d.Kafka.Partitions[i].ConsumeRate
	}
	tot := st.Bold.Render("total") + " lag " + st.Bold.Render(lagStr(d.Kafka.TotalLag))
	if noCommit {
		tot += " " + st.Warn.Render("("+inum(d.Kafka.NoCommitLag)+" nc: no commit)")
	}
	tot += " max " + secs(d.Kafka.MaxLagSeconds) + " · " + num(prod) + "/" + num(cons) + " msg/s "
	if len(d.Kafka.Partitions) > rows {
		tot += st.Dim.Render(itoa(start+1)+"-"+itoa(min(start+rows, len(m.order)))+"/"+itoa(len(m.order))) + " "
	}
	if sw := w - ansiWidth(tot) - 6; sw >= 8 {
		tot += st.Dim.Render("trend ") + st.Warn.Render(sparkline(d.Kafka.LagTrend, min(sw, 30)))
	}
	out = append(out[:h-1], tot)
	return out, info
}

func alignCol(c int, s string, w int) string {
	if c == colOwner || c == colStatus {
		return left(s, w)
	}
	return right(s, w)
}
