// The throughput panel: in/out msg/s over time and per-partition rates.

package tui

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
