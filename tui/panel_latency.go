// The TF Serving panel: Predict and end-to-end percentiles, QPS, batch
// size, errors, and the latency history.

package tui

import (
	"time"
)

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
	if m.fleetShown() {
		// Every host's row before the history chart: which host is slow is
		// the question when there are several.
		lines = append(lines, m.hostLatency(w, min(len(d.Models.Hosts)+1, h-len(lines)))...)
	}
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
