package tui

import (
	"strings"

	"github.com/charmbracelet/x/ansi"
)

// Render draws the whole screen at the current size from the current Data.
func (m *Model) Render() string {
	w, h := m.w, m.h
	if w == 0 || h == 0 {
		return "inferops: starting…"
	}
	if w < MinWidth || h < MinHeight {
		return tooSmall(w, h)
	}
	hdr := m.header(w)
	// One instance (the embedded default) keeps the usual layout.
	lay := computeLayout(w, h, len(hdr), m.data.Fleet.Known && len(m.data.Fleet.Instances) > 1, m.rolloutShown())
	lines := make([]string, 0, h)
	lines = append(lines, hdr...)
	if lay.tabs {
		lines = append(lines, m.tabBar(w))
	}
	for _, b := range lay.bands {
		cols := make([][]string, len(b.slots))
		for i, s := range b.slots {
			cols[i] = m.renderPanel(m.shown(s), s.w, b.h)
		}
		for y := 0; y < b.h; y++ {
			var sb strings.Builder
			for _, c := range cols {
				sb.WriteString(c[y])
			}
			lines = append(lines, sb.String())
		}
	}
	lines = append(lines, m.footer(w))
	for len(lines) < h {
		lines = append(lines, "")
	}
	lines = lines[:h]
	if m.ov != ovNone {
		m.drawOverlay(lines, w, h)
	}
	return strings.Join(lines, "\n")
}

// shown is the panel a slot displays: the focused one if it lives here,
// else the most recently activated, else the first.
func (m *Model) shown(s slot) panelID {
	best := s.panels[0]
	for _, p := range s.panels {
		if p == m.focus {
			return p
		}
		if m.act[p] > m.act[best] {
			best = p
		}
	}
	return best
}

func tooSmall(w, h int) string {
	msg := []string{"inferops", "terminal too small", ansi.Truncate(itoa(w)+"x"+itoa(h)+", need "+itoa(MinWidth)+"x"+itoa(MinHeight), w, "")}
	out := make([]string, h)
	top := (h - len(msg)) / 2
	for i, s := range msg {
		if top+i >= 0 && top+i < h {
			s = ansi.Truncate(s, w, "")
			pad := (w - ansi.StringWidth(s)) / 2
			out[top+i] = strings.Repeat(" ", max(pad, 0)) + s
		}
	}
	return strings.Join(out, "\n")
}

func itoa(n int) string { return inum(int64(n)) }

func (m *Model) renderPanel(p panelID, w, h int) []string {
	ch := h - 2
	cw := w - 4
	var content []string
	var info string
	d := &m.data
	switch p {
	case pLag:
		content, info = m.lagPanel(cw, ch)
	case pFlow:
		content, info = m.flowPanel(cw, ch), age(d.Now, d.Flow.At)
	case pLatency:
		content, info = m.latencyPanel(cw, ch), strings.TrimPrefix(sloNote(d.Latency.SLO)+" · ", "  ")+age(d.Now, d.Latency.At)
	case pModels:
		content, info = m.modelsPanel(cw, ch), d.Model+" · "+age(d.Now, d.Models.At)
	case pWorkers:
		if d.Fleet.Known {
			content, info = m.fleetPanel(cw, ch), "fleet · "+age(d.Now, d.Fleet.At)
		} else {
			content, info = m.workersPanel(cw, ch), age(d.Now, d.Workers.At)
		}
	case pEvents:
		content, info = m.eventsPanel(cw, ch), ""
	case pDLQ:
		content, info = m.dlqPanel(cw, ch), d.DLQTopic+" · "+age(d.Now, d.DLQ.At)
	case pPerf:
		content, info = m.perfPanel(cw, ch), ""
	case pRollout:
		content, info = m.rolloutPanel(cw, ch), m.rolloutInfo()
	}
	return box(m.st, panelNames[p], info, p == m.focus, w, h, content)
}

// segment is one piece of the header; lower prio numbers survive longer
// when the terminal is narrow.
type segment struct {
	text string
	prio int
}

func joinSegments(st Styles, w int, segs []segment) string {
	sep := st.Dim.Render(" │ ")
	kept := segs[:0:0]
	for _, s := range segs {
		if s.text != "" {
			kept = append(kept, s)
		}
	}
	segs = kept
	for {
		total := 0
		worst, wi := -1, -1
		for i, s := range segs {
			total += width(s.text)
			if i > 0 {
				total += 3
			}
			if s.prio > worst {
				worst, wi = s.prio, i
			}
		}
		if total <= w || len(segs) <= 1 {
			break
		}
		segs = append(segs[:wi:wi], segs[wi+1:]...)
	}
	parts := make([]string, 0, len(segs))
	for _, s := range segs {
		if s.text != "" {
			parts = append(parts, s.text)
		}
	}
	return fit(strings.Join(parts, sep), w)
}

func (m *Model) header(w int) []string {
	d, st := &m.data, m.st
	hd := d.Header
	mode := d.Mode
	served := "v-"
	if hd.Served > 0 {
		served = "v" + inum(hd.Served)
	}
	workers := st.Bold.Render("workers " + itoa(hd.Workers))
	switch f := d.Fleet; {
	case f.Known:
		// The fleet's workers, wherever they run: with --no-worker none
		// of them is in this process, and the console still steers them.
		workers += st.Dim.Render(" on " + plural(f.Live, "instance"))
		if f.Lost > 0 {
			workers += " " + st.Err.Render(itoa(f.Lost)+" lost")
		}
	case d.NoWorker:
		workers = st.Dim.Render("no worker")
	}
	if hd.RemoteMembers > 0 && !d.Fleet.Known {
		workers += st.Dim.Render(" +" + itoa(hd.RemoteMembers) + " remote")
	}
	if hd.Paused {
		workers += " " + st.Warn.Render("PAUSED")
	}
	breaker := hd.Breaker
	if breaker == "" {
		breaker = "-"
	}
	// "my_model latest→v2": what the worker asks for, then what served it.
	modelSeg := d.Model
	if d.Models.StandIn {
		modelSeg += " " + st.Warn.Render("stand-in")
	}
	if hd.Target != "" || hd.Served > 0 {
		modelSeg += " " + st.Dim.Render(targetLabel(hd.Target)+"→") + st.Bold.Render(served)
	}
	// Version skew stays visible at every size (line 2 has the room).
	skew := ""
	switch {
	case hd.Skew != "" && (w >= 120 || len(hd.SkewHosts) == 0):
		skew = st.Err.Render("SKEW " + hd.Skew)
	case hd.Skew != "":
		more := ""
		if len(hd.SkewHosts) > 1 {
			more = " +" + itoa(len(hd.SkewHosts)-1)
		}
		skew = st.Err.Render("SKEW " + hd.SkewHosts[0] + more)
	}
	line1 := []segment{
		{st.HeaderBrand.Render("inferops"), 0},
		{st.Dim.Render(mode) + " " + strings.Join(d.Brokers, ","), 6},
		{d.Input + " → " + d.Output, 5},
		{d.Group + groupState(st, hd) + " " + st.status(hd.Health).Render(orDash(hd.Health)), 1},
		{modelSeg, 0},
		{workers, 0},
		{"breaker " + st.status(breaker).Render(breaker), 3},
		{rolloutSeg(st, &d.Rollout), rolloutPrio(&d.Rollout)},
		{readOnlySeg(st, d.ReadOnly), 0},
		{st.Dim.Render(d.Now.Format("15:04:05")), 2},
	}
	lat := d.Latency
	p99 := st.Bold.Render("p99 " + dur(lat.Predict.P99))
	if lat.SLO > 0 && lat.E2E.P99 > lat.SLO {
		p99 = st.Err.Render("p99 " + dur(lat.Predict.P99))
	}
	lag := "lag " + st.Bold.Render(lagStr(d.Kafka.TotalLag)) + " " + st.Dim.Render("("+secs(d.Kafka.MaxLagSeconds)+")")
	var in, out float64
	if n := len(d.Flow.In); n > 0 {
		in = d.Flow.In[n-1].V
	}
	if n := len(d.Flow.Out); n > 0 {
		out = d.Flow.Out[n-1].V
	}
	line2 := []segment{
		{lag, 0},
		{"in " + st.SeriesIn.Render(num(in)+"/s") + " out " + st.SeriesOut.Render(num(out)+"/s"), 1},
		{p99, 0},
		{skew, 0},
		{"e2e p99 " + dur(lat.E2E.P99), 2},
		{"batch " + num(lat.Batch), 4},
		{"DLQ " + inum(d.DLQ.Total), 3},
		{hostsSeg(st, d.Models.Hosts), 2},
	}
	if d.DemoRate > 0 {
		line2 = append(line2, segment{st.Dim.Render("demo " + num(d.DemoRate) + "/s [ ]"), 5})
	}
	if d.Perf.Running != nil {
		line2 = append(line2, segment{st.Warn.Render("perf " + d.Perf.Running.Scenario + " " + orDash(d.Perf.Running.Phase)), 1})
	}
	lines := []string{joinSegments(st, w, line1), joinSegments(st, w, line2)}
	if hd.Notice != "" {
		lines = append(lines, fit(st.Warn.Render("▲ "+hd.Notice), w))
	}
	return lines
}

// groupState is the group's state next to its name when it is not the
// usual Stable: "Empty", "Dead", "PreparingRebalance ≥42s".
func groupState(st Styles, hd HeaderData) string {
	if hd.GroupState == "" || hd.GroupState == "Stable" {
		return ""
	}
	s := hd.GroupState
	if hd.Rebalance > 0 || hd.RebalanceAtLeast {
		d := secs(hd.Rebalance.Seconds())
		if hd.RebalanceAtLeast {
			d = "≥" + d
		}
		return " " + st.Warn.Render(s+" "+d)
	}
	if s == "Empty" { // normal between runs; the notice says when records wait
		return " " + st.Dim.Render(s)
	}
	return " " + st.Warn.Render(s)
}

// hostsSeg is "tfs 2/3 up" when there are several TF Serving hosts.
func hostsSeg(st Styles, hosts []TFHost) string {
	if len(hosts) < 2 {
		return ""
	}
	up := 0
	for _, h := range hosts {
		if h.State == "up" {
			up++
		}
	}
	s := "tfs " + itoa(up) + "/" + itoa(len(hosts)) + " up"
	if up < len(hosts) {
		return st.Warn.Render(s)
	}
	return s
}

// readOnlySeg keeps the reason actions are disabled on screen at every size.
func readOnlySeg(st Styles, reason string) string {
	if reason == "" {
		return ""
	}
	return st.Warn.Render("READ-ONLY")
}

// targetLabel shows a version target the way the picker names it:
// latest, v2, or the label.
func targetLabel(t string) string {
	switch {
	case t == "":
		return "-"
	case strings.HasPrefix(t, "label:"):
		return strings.TrimPrefix(t, "label:")
	case strings.Trim(t, "0123456789") == "":
		return "v" + t
	}
	return t
}

// ownerTrim returns a function that drops the first dash-separated word
// every owner shares ("inferops-worker-3" -> "worker-3"): narrow owner
// columns then show the part that differs.
func ownerTrim(names []string) func(string) string {
	prefix := ""
	for i, n := range names {
		if n == "" {
			continue
		}
		j := strings.IndexByte(n, '-')
		if j <= 0 || j == len(n)-1 {
			return func(s string) string { return s }
		}
		if i == 0 || prefix == "" {
			prefix = n[:j+1]
		} else if !strings.HasPrefix(n, prefix) {
			return func(s string) string { return s }
		}
	}
	return func(s string) string { return strings.TrimPrefix(s, prefix) }
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func lagStr(l int64) string {
	if l < 0 {
		return "-"
	}
	return inum(l)
}

func (m *Model) tabBar(w int) string {
	var b strings.Builder
	for p := panelID(0); p < numPanels; p++ {
		if p == pRollout && !m.rolloutShown() {
			continue
		}
		name := panelNames[p]
		if p == m.focus {
			b.WriteString(m.st.Selected.Render(" " + name + " "))
		} else {
			b.WriteString(m.st.Dim.Render(" " + name + " "))
		}
	}
	return fit(b.String(), w)
}

func (m *Model) footer(w int) string {
	st := m.st
	if m.filtering {
		return fit(st.Key.Render("/")+m.filter+"█  "+st.Dim.Render("partition, owner or status · enter keep · esc clear"), w)
	}
	if m.status != "" {
		s := st.level(m.statusLv)
		if m.statusLv == Info {
			s = st.Info
		}
		return fit(s.Render(m.status)+st.Dim.Render("  · ? help"), w)
	}
	var b strings.Builder
	for i, k := range m.keys.ShortHelp() {
		hk := k.Help()
		switch hk.Key {
		case "-":
			continue
		case "+":
			hk.Key = "+/-"
		}
		if i > 0 {
			b.WriteString("  ")
		}
		b.WriteString(st.Key.Render(hk.Key) + " " + st.Dim.Render(shortDesc(hk.Desc)))
	}
	return fit(b.String(), w)
}

// shortDesc keeps the footer inside 80 columns.
func shortDesc(s string) string {
	switch s {
	case "add a fleet worker":
		return "scale"
	case "pick model version":
		return "version"
	case "perf test":
		return "perf"
	case "pause/resume":
		return "pause"
	case "next panel":
		return "panel"
	case "filter partitions":
		return "filter"
	case "quit (drains the worker)":
		return "quit"
	}
	return s
}
