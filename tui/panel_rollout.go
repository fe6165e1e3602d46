// The rollout panel: where the rollout stands (or that it holds, its
// driver lost), the plan with the current step, the hold's progress, the
// gates with their live values, and baseline, candidate and shadow side by
// side, then each numeric output's distribution. It is in the layout only
// while the group has a rollout (rollout.go).

package tui

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// rolloutInfo is the panel's title info: the rollout and its keys.
func (m *Model) rolloutInfo() string {
	r := &m.data.Rollout
	keys := "ended · v starts another"
	switch {
	case r.State == RolloutHolding:
		keys = "C resume · A abort"
	case r.Active():
		keys = "P promote · A abort"
	}
	return r.ID + " · " + keys + " · " + age(m.data.Now, r.At)
}

func (m *Model) rolloutPanel(w, h int) []string {
	r, st := &m.data.Rollout, m.st
	var ls plines
	if r.Err != "" {
		ls.add(0, st.Err.Render(r.Err))
	}
	ls.add(0, m.rolloutHead(w)...)
	ls.add(0, "plan "+m.planLine()+st.Dim.Render(" · hold "+holdStr(r.Hold)+" · shadow "+pctf(r.Shadow)))
	if r.Active() {
		ls.add(0, m.stepLine(w))
		if r.State != RolloutHolding {
			ls.add(1, m.driverLine())
		}
		if len(r.Pending) > 0 {
			ls.add(1, st.Warn.Render("not at the step yet: "+strings.Join(r.Pending, ", ")))
		}
	}
	m.gateLines(&ls, w)
	if c := r.Comparison; c != nil {
		m.comparisonLines(&ls, c, w)
		m.outputLines(&ls, c, w)
	}
	if !r.Active() && r.Advice != "" {
		ls.add(1, st.Dim.Render("next: "+r.Advice))
	}
	return ls.fit(h)
}

// plines are a panel's lines with how much each matters: a short panel
// drops the least important first (the last of them first), so the state,
// the plan, the gates and both sides' latency survive any size.
type plines struct {
	s    []string
	prio []int
	head []bool // a table's column heads: they go with the table's last row
}

func (p *plines) add(prio int, lines ...string) {
	for _, l := range lines {
		p.s = append(p.s, l)
		p.prio = append(p.prio, prio)
		p.head = append(p.head, false)
	}
}

// addHead adds a table's column heads.
func (p *plines) addHead(prio int, line string) {
	p.add(prio, line)
	p.head[len(p.head)-1] = true
}

func (p *plines) drop(i int) {
	p.s = append(p.s[:i], p.s[i+1:]...)
	p.prio = append(p.prio[:i], p.prio[i+1:]...)
	p.head = append(p.head[:i], p.head[i+1:]...)
}

func (p *plines) fit(h int) []string {
	for len(p.s) > h {
		worst := 0
		for i, pr := range p.prio {
			if pr >= p.prio[worst] {
				worst = i
			}
		}
		if p.prio[worst] == 0 {
			return p.s[:max(h, 0)]
		}
		p.drop(worst)
		// Heads left without a row go too.
		for i := len(p.s) - 1; i >= 0; i-- {
			if p.head[i] && (i == len(p.s)-1 || p.head[i+1]) {
				p.drop(i)
			}
		}
	}
	return p.s
}

// driverLine is who drives the rollout and what it says it is doing.
func (m *Model) driverLine() string {
	r, st := &m.data.Rollout, m.st
	alive := st.OK.Render("alive")
	if !r.DriverAlive {
		alive = st.Warn.Render("not heard yet")
	}
	s := "driver " + orDash(r.Driver) + " " + alive
	if r.Message != "" {
		s += st.Dim.Render(" · " + r.Message)
	}
	return s
}

// rolloutHead is the state in one line, or two when the rollout holds: a
// lost driver is what the operator must act on.
func (m *Model) rolloutHead(w int) []string {
	r, st := &m.data.Rollout, m.st
	move := r.Baseline + " → " + r.Candidate
	wrap := func(s Paint, text string) []string {
		var out []string
		for _, l := range wrapWords(text, w) {
			out = append(out, s.Render(l))
		}
		return out
	}
	switch r.State {
	case RolloutHolding:
		heard := "never heard"
		if r.DriverAge > 0 {
			heard = "last heard " + ago(r.DriverAge)
		}
		out := []string{st.Err.Render("HOLDING at " + pctf(r.Share) + " (" + move + "): its driver is lost")}
		out = append(out, wrap(st.Err, "driver "+orDash(r.Driver)+", "+heard)...)
		return append(out, wrap(st.Err, "nothing advances: C resumes it from this console, A aborts to "+r.Baseline)...)
	case RolloutWarming, RolloutCanary:
		what := "step " + stepOf(r) + " · " + pctf(r.Share) + " of records"
		if r.State == RolloutWarming {
			what = "warming " + r.Candidate + " up, no records yet"
		}
		return []string{st.Bold.Render(strings.ToUpper(r.State)+" "+move) + " · " + what}
	case RolloutPromoted:
		return []string{st.OK.Render("PROMOTED " + r.Candidate + " (was " + r.Baseline + ")")}
	}
	word := strings.ToUpper(strings.ReplaceAll(r.State, "_", " "))
	s := st.Err
	if r.State == RolloutAborted {
		s = st.Warn
	}
	out := []string{s.Render(word+" "+move+" at "+pctf(lastStep(r))) + st.Dim.Render(" · every record to "+r.Baseline)}
	if r.Reason != "" {
		out = append(out, wrap(s, r.Reason)...)
	}
	return out
}

// planLine is the steps with the current one marked and the ones done
// dim, so the whole plan and the position read at a glance.
func (m *Model) planLine() string {
	r, st := &m.data.Rollout, m.st
	parts := make([]string, len(r.Steps))
	for i, s := range r.Steps {
		p := pctf(s)
		switch {
		case i == r.Step:
			parts[i] = st.Selected.Render("[" + p + "]")
		case i < r.Step:
			parts[i] = st.Dim.Render(p)
		default:
			parts[i] = p
		}
	}
	if r.State == RolloutWarming {
		return st.Selected.Render("[warm-up]") + " → " + strings.Join(parts, " → ")
	}
	return strings.Join(parts, " → ")
}

// stepLine is the hold's progress: elapsed of the hold as a bar, how long
// every gate has passed, and what the driver says it is doing.
func (m *Model) stepLine(w int) string {
	r, st := &m.data.Rollout, m.st
	frac := 0.0
	if r.Hold > 0 {
		frac = math.Min(1, float64(r.StepElapsed)/float64(r.Hold))
	}
	bw := min(max(w/5, 6), 16)
	fill := int(frac * float64(bw))
	s := "held " + holdStr(r.StepElapsed) + "/" + holdStr(r.Hold) + " " +
		st.OK.Render(strings.Repeat("█", fill)) + st.Dim.Render(strings.Repeat("░", bw-fill))
	if r.PassingFor > 0 {
		s += " · gates pass " + holdStr(r.PassingFor)
	}
	return s + st.Dim.Render(" · "+plural(r.Instances, "instance")+" at it")
}

// gateLines are the gates, each with its state and live value, then its
// limit when it passes or why it waits or breached.
func (m *Model) gateLines(ls *plines, w int) {
	r, st := &m.data.Rollout, m.st
	if len(r.Gates) == 0 {
		if r.Active() {
			ls.add(0, st.Dim.Render("gates: not judged yet"))
		}
		return
	}
	vw := max(16, (w-15)/2)
	cols := []column{{"gate", 7, 0, false}, {"state", 6, 0, false}, {"value", vw, 0, false}, {"limit or why", max(w-16-vw, 8), 1, false}}
	keep := fitColumns(cols, w)
	by := ""
	if r.GatesBy != "" {
		by = " (judged by " + r.GatesBy + ")"
	}
	ls.addHead(3, st.ColumnHead.Render(fit(tableRow(cols, keep, []string{"gate", "state", "value", "limit or why" + by}, nil), w)))
	for _, g := range r.Gates {
		s := st.Dim
		switch g.State {
		case GatePass:
			s = st.OK
		case GateBreach:
			s = st.Err
		}
		why := g.Limit
		if g.State != GatePass && g.Detail != "" {
			why = g.Detail
		}
		ls.add(0, tableRow(cols, keep, []string{g.Name, strings.ToUpper(g.State), g.Value, why},
			[]func(string) string{nil, sty(s), sty(s), sty(st.Dim)}))
	}
}

// comparisonLines are baseline, candidate and shadow side by side over the
// fleet's last 10 s.
func (m *Model) comparisonLines(ls *plines, c *RolloutComparison, w int) {
	st := m.st
	cols := []column{{"", 9, 0, false}, {"ver", 4, 0, true}, {"rows/s", 6, 1, true}, {"p50", 6, 4, true}, {"p95", 6, 3, true},
		{"p99", 6, 0, true}, {"e2e p99", 7, 2, true}, {"err", 6, 0, true}, {"dlq", 6, 2, true}}
	keep := fitColumns(cols, w)
	heads := columnHeads(cols)
	heads[0] = "predict"
	ls.addHead(1, st.ColumnHead.Render(tableRow(cols, keep, heads, nil)))
	row := func(prio int, name string, s *RolloutSide) {
		ver := "-"
		if s.Version > 0 {
			ver = "v" + strconv.FormatInt(s.Version, 10)
		}
		ls.add(prio, tableRow(cols, keep, []string{name, ver, num(s.RowRate), dur(s.Predict.P50), dur(s.Predict.P95),
			dur(s.Predict.P99), dur(s.E2EP99), rate(s.ErrorRate), rate(s.DLQRate)},
			[]func(string) string{nil, nil, nil, sty(st.P50), sty(st.P95), sty(st.P99), nil, nil, nil}))
	}
	row(0, "baseline", &c.Baseline)
	row(0, "candidate", &c.Candidate)
	if c.Shadow != nil {
		row(1, "shadow", c.Shadow)
	}
}

// outputLines are each numeric output's distribution per side, with the
// candidate's and the shadow's shift (PSI) against the baseline and the
// shadow's differences.
func (m *Model) outputLines(ls *plines, c *RolloutComparison, w int) {
	st := m.st
	cols := []column{{"output", 9, 0, false}, {"side", 5, 0, false}, {"n", 6, 3, true}, {"mean", 7, 1, true}, {"p50", 7, 4, true},
		{"p90", 7, 5, true}, {"p99", 7, 2, true}, {"PSI", 6, 0, true}, {"|diff| max/mean", 15, 1, true}}
	keep := fitColumns(cols, w)
	heads := columnHeads(cols)
	type side struct {
		name string
		s    *RolloutSide
		prio int // the candidate's shift matters most
	}
	sides := []side{{"base", &c.Baseline, 2}, {"cand", &c.Candidate, 1}}
	if c.Shadow != nil {
		sides = append(sides, side{"shadw", c.Shadow, 2})
	}
	var names []string
	seen := map[string]bool{}
	for _, sd := range sides {
		for _, o := range sd.s.Outputs {
			if !seen[o.Name] {
				seen[o.Name] = true
				names = append(names, o.Name)
			}
		}
	}
	if len(names) == 0 {
		return
	}
	ls.addHead(1, st.ColumnHead.Render(tableRow(cols, keep, heads, nil)))
	for _, name := range names {
		for _, sd := range sides {
			for _, o := range sd.s.Outputs {
				if o.Name != name {
					continue
				}
				diff := ""
				if o.MaxDiff >= 0 {
					diff = g4(o.MaxDiff) + "/" + g4(o.MeanDiff)
				}
				psi, ps := "", sty(st.OK)
				if o.PSI >= 0 {
					psi = strconv.FormatFloat(o.PSI, 'f', 3, 64)
					if o.PSI >= 0.1 {
						ps = sty(st.Warn)
					}
				}
				ls.add(sd.prio, tableRow(cols, keep, []string{name, sd.name, num(float64(o.N)), g4(o.Mean), g4(o.P50), g4(o.P90), g4(o.P99), psi, diff},
					[]func(string) string{nil, sty(st.Dim), nil, nil, nil, nil, nil, ps, nil}))
			}
		}
	}
}

func stepOf(r *RolloutData) string {
	if r.Step < 0 {
		return "0/" + itoa(len(r.Steps))
	}
	return itoa(r.Step+1) + "/" + itoa(len(r.Steps))
}

func lastStep(r *RolloutData) float64 {
	if r.Step >= 0 && r.Step < len(r.Steps) {
		return r.Steps[r.Step]
	}
	return 0
}

// pctf is a rollout share: 1%, 0.5%, 100%.
func pctf(p float64) string { return strconv.FormatFloat(p, 'g', 4, 64) + "%" }

// rate is a failure rate, "-" when unknown.
func rate(f float64) string {
	if f < 0 {
		return "-"
	}
	return strconv.FormatFloat(f*100, 'f', 2, 64) + "%"
}

// g4 is an output value in four significant digits.
func g4(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

// holdStr is a hold or an elapsed time: 45s, 5m0s, 1h0m0s.
func holdStr(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	return d.Truncate(time.Second).String()
}

// rolloutSeg is the header's word on an active rollout: it stays visible
// whatever panel is shown, and a held rollout is flagged at every size.
func rolloutSeg(st Styles, r *RolloutData) string {
	switch {
	case r.State == RolloutHolding:
		return st.Err.Render("ROLLOUT HOLDING " + pctf(r.Share))
	case r.Active():
		return st.Warn.Render("rollout " + targetLabel(r.Candidate) + " " + pctf(r.Share))
	}
	return ""
}

// rolloutPrio keeps a held rollout's flag in the narrowest header.
func rolloutPrio(r *RolloutData) int {
	if r.State == RolloutHolding {
		return 0
	}
	return 1
}
