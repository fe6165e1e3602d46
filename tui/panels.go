package tui

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

func ansiWidth(s string) int { return width(s) }

func (m *Model) flowPanel(w, h int) []string {
	d, st := &m.data, m.st
	var in, out float64
	if n := len(d.Flow.In); n > 0 {
		in = d.Flow.In[n-1].V
	}
	if n := len(d.Flow.Out); n > 0 {
		out = d.Flow.Out[n-1].V
	}
	legend := st.SeriesIn.Render("━ in "+num(in)+"/s") + "  " + st.SeriesOut.Render("━ out "+num(out)+"/s") + st.Dim.Render("  msg/s, sweep")
	lines := []string{legend}
	chartH := h - 2
	if chartH >= 2 {
		lines = append(lines, sweepChart(st, w, chartH, d.Now, num,
			series{d.Flow.In, st.SeriesIn}, series{d.Flow.Out, st.SeriesOut})...)
	}
	// Per-partition produce rates as one bar per partition: a hot partition
	// shows as a spike.
	ps := d.Kafka.Partitions
	rates := make([]float64, 0, min(len(ps), w))
	for i := 0; i < len(ps) && len(rates) < w-12; i++ {
		rates = append(rates, ps[i].ProduceRate)
	}
	if h >= 2 {
		lines = append(lines, st.Dim.Render("per-part ")+st.SeriesIn.Render(sparkline(rates, len(rates))))
	}
	return lines
}

func (m *Model) latencyPanel(w, h int) []string {
	d, st := &m.data, m.st
	l := d.Latency
	lines := []string{}
	if l.Err != "" {
		lines = append(lines, st.Err.Render(l.Err))
	}
	row := func(name string, p Percentiles, slo time.Duration) string {
		return left(name, 8) + st.P50.Render(right(dur(p.P50), 7)) + st.P95.Render(right(dur(p.P95), 7)) +
			st.P99.Render(right(sloStyle(st, p.P99, slo), 7)) + st.PMax.Render(right(dur(p.Max), 7))
	}
	lines = append(lines,
		st.ColumnHead.Render(left("", 8)+right("p50", 7)+right("p95", 7)+right("p99", 7)+right("max", 7)),
		row("predict", l.Predict, 0),
		row("e2e", l.E2E, l.SLO),
		"qps "+num(l.QPS)+"  rows "+num(l.Rows)+"/s  batch "+num(l.Batch)+"  err "+errCount(st, l.Errors),
	)
	chartH := h - len(lines)
	if chartH >= 3 {
		toMs := func(f func(LatencySample) time.Duration) []Sample {
			out := make([]Sample, len(l.History))
			for i, s := range l.History {
				out[i] = Sample{s.T, float64(f(s)) / 1e6}
			}
			return out
		}
		lines = append(lines, sweepChart(st, w, chartH, d.Now, func(v float64) string {
			if v == 0 {
				return "0"
			}
			return dur(time.Duration(v * float64(time.Millisecond)))
		},
			series{toMs(func(s LatencySample) time.Duration { return s.P50 }), st.P50},
			series{toMs(func(s LatencySample) time.Duration { return s.P95 }), st.P95},
			series{toMs(func(s LatencySample) time.Duration { return s.P99 }), st.P99},
			series{toMs(func(s LatencySample) time.Duration { return s.Max }), st.PMax},
		)...)
	}
	return lines
}

func sloStyle(st Styles, d, slo time.Duration) string {
	if slo > 0 && d > slo {
		return st.Err.Render(dur(d))
	}
	return dur(d)
}

func sloNote(slo time.Duration) string {
	if slo <= 0 {
		return ""
	}
	return "  SLO " + dur(slo)
}

func errCount(st Styles, n int64) string {
	if n > 0 {
		return st.Err.Render(inum(n))
	}
	return "0"
}

// column is one column of a panel table; narrow panels drop the columns
// with the highest prio first.
type column struct {
	head  string
	w     int
	prio  int
	right bool
}

// fitColumns returns which columns fit in w cells (one space between).
func fitColumns(cols []column, w int) []bool {
	keep := make([]bool, len(cols))
	for i := range keep {
		keep[i] = true
	}
	for {
		total, worst, wi := 0, -1, -1
		for i, c := range cols {
			if !keep[i] {
				continue
			}
			total += c.w + 1
			if c.prio > worst {
				worst, wi = c.prio, i
			}
		}
		if total-1 <= w || worst <= 0 {
			return keep
		}
		keep[wi] = false
	}
}

// sty adapts a style to a cell formatter.
func sty(s Paint) func(string) string { return func(x string) string { return s.Render(x) } }

func tableRow(cols []column, keep []bool, cells []string, styles []func(string) string) string {
	var b strings.Builder
	first := true
	for i, c := range cols {
		if !keep[i] {
			continue
		}
		if !first {
			b.WriteByte(' ')
		}
		first = false
		s := left(cells[i], c.w)
		if c.right {
			s = right(cells[i], c.w)
		}
		if styles != nil && styles[i] != nil {
			s = styles[i](s)
		}
		b.WriteString(s)
	}
	return b.String()
}

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
	start := clampStart(m.scroll[pModels], len(vs), h-len(lines))
	for i := start; i < len(vs) && len(lines) < h; i++ {
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
	return lines
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

func clampStart(s, n, rows int) int {
	if s > n-rows {
		s = n - rows
	}
	if s < 0 {
		s = 0
	}
	return s
}

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

func (m *Model) dlqPanel(w, h int) []string {
	d, st := &m.data, m.st
	recs := d.DLQ.Records
	lines := []string{"total " + errCount(st, d.DLQ.Total) + st.Dim.Render(" · by reason, newest first")}
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
		body = append(body, st.Err.Render("× "+itoa(len(g.recs)))+" "+st.Bold.Render(g.reason))
		for i, r := range g.recs {
			if i >= per {
				break
			}
			body = append(body, "  "+st.Dim.Render(r.Source)+" "+printable(r.Preview))
		}
	}
	start := clampStart(m.scroll[pDLQ], len(body), h-1)
	for i := start; i < len(body) && len(lines) < h; i++ {
		lines = append(lines, body[i])
	}
	if len(recs) == 0 {
		lines = append(lines, st.Dim.Render("no dead letters"))
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

func (m *Model) perfPanel(w, h int) []string {
	d, st := &m.data, m.st
	pf := d.Perf
	lines := []string{}
	if pf.Err != "" {
		lines = append(lines, st.Err.Render(pf.Err))
	}
	if r := pf.Running; r != nil {
		frac := 0.0
		if r.Duration > 0 {
			frac = math.Min(1, float64(r.Elapsed)/float64(r.Duration))
		}
		bw := max(w-30, 10)
		fill := int(frac * float64(bw))
		lines = append(lines,
			st.Warn.Render(r.Scenario+" "+orDash(r.Phase))+"  "+r.Elapsed.Truncate(time.Second).String()+"/"+r.Duration.String(),
			st.OK.Render(strings.Repeat("█", fill))+st.Dim.Render(strings.Repeat("░", bw-fill))+" "+strconv.Itoa(int(frac*100))+"%",
			"sent "+inum(r.Sent)+" · received "+inum(r.Received)+" · p99 "+dur(r.P99),
			st.Dim.Render("p cancels"))
	}
	if res := pf.Result; res != nil {
		verdict := st.OK.Render("PASS")
		if !res.Pass {
			verdict = st.Err.Render("FAIL")
		}
		lines = append(lines, st.Bold.Render(res.Scenario)+" "+verdict+" "+st.Dim.Render(res.Verdict+" · "+res.At.Format("15:04:05")))
		lines = append(lines, st.ColumnHead.Render(left("metric", 18)+right("this run", 11)+right("last run", 11)+"  change"))
		for _, mt := range res.Metrics {
			prev, change := "-", ""
			if mt.HasPrev {
				prev = exact(mt.Prev) + unitSuffix(mt.Unit)
				change = delta(st, mt)
			}
			lines = append(lines, left(mt.Name, 18)+right(exact(mt.Value)+unitSuffix(mt.Unit), 11)+right(prev, 11)+"  "+change)
		}
	}
	if pf.Running == nil && pf.Result == nil {
		lines = append(lines, st.Dim.Render("p: pick a scenario and run it"))
		for _, s := range pf.Scenarios {
			lines = append(lines, left(s.Name, 8)+" "+itoa(s.Streams)+" streams, "+num(float64(s.PayloadBytes))+"B, "+num(s.TargetRate)+" msg/s, SLO "+dur(s.SLO))
		}
	}
	if len(lines) > h {
		lines = lines[:h]
	}
	return lines
}

// exact shows a perf figure in full (41,230 or 12.1): a results table is
// read digit by digit, unlike a live column.
func exact(v float64) string {
	if v != math.Trunc(v) && math.Abs(v) < 1000 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func unitSuffix(u string) string {
	if u == "ms" {
		return "ms"
	}
	return ""
}

// delta shows the change against the previous run, green when better.
func delta(st Styles, mt PerfMetric) string {
	if mt.Prev == 0 {
		return ""
	}
	pct := (mt.Value - mt.Prev) / math.Abs(mt.Prev) * 100
	if math.Abs(pct) < 0.05 {
		pct = 0 // no "-0.0%"
	}
	s := strconv.FormatFloat(pct, 'f', 1, 64) + "%"
	if pct > 0 {
		s = "+" + s
	}
	better := (pct > 0) == mt.HigherIsBetter
	switch {
	case math.Abs(pct) < 2:
		return st.Dim.Render(s)
	case better:
		return st.OK.Render(s + " better")
	}
	return st.Err.Render(s + " worse")
}
