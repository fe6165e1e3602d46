// The perf panel: the scenarios, a run's progress, and the results table
// against the SLO and the previous run.

package tui

import (
	"math"
	"strconv"
	"strings"
	"time"
)

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
