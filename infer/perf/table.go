package perf

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
)

// FormatTable renders results the way the seed's results table reads
// (scenario, Kafka msg/s, TF QPS, average latency) plus the percentiles, the
// SLO and the verdict; then, for each scenario found in previous, one line
// saying how this run compares with the last one.
func FormatTable(results []Result, previous map[string]Result) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	// The tabwriter right-aligns every column (numbers read best that way);
	// padding the names to one width keeps the first column left-aligned.
	nameWidth := len("SCENARIO")
	for _, r := range results {
		nameWidth = max(nameWidth, len(r.Scenario))
	}
	pad := func(s string) string { return s + strings.Repeat(" ", nameWidth-len(s)) }
	fmt.Fprintln(tw, pad("SCENARIO")+"\tSTREAMS\tPAYLOAD B\tTARGET msg/s\tKAFKA msg/s\tTF QPS\tAVG ms\tP50\tP95\tP99\tP99.9\tMAX\tSLO ms\tLOST\tERRORS\tRESULT\t")
	for _, r := range results {
		verdict := "PASS"
		if !r.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t\n",
			pad(r.Scenario), r.Streams, r.PayloadBytes, thousands(r.TargetRate), thousands(r.KafkaMsgsPerSec), thousands(r.TFQPS),
			ms(r.Latency.Avg), ms(r.Latency.P50), ms(r.Latency.P95), ms(r.Latency.P99), ms(r.Latency.P999), ms(r.Latency.Max),
			ms(r.SLOms), r.Lost, r.Errors, verdict)
	}
	tw.Flush()
	for _, r := range results {
		if r.Received > 0 {
			// Where the time went: Kafka's share (scheduled -> acked) and the
			// rest (worker, TF Serving, the result's way back).
			fmt.Fprintf(&b, "%s: Kafka produce (scheduled -> acked) p50 %s ms, p99 %s ms; sent %s msg/s of %s targeted, generator lag p99 %s ms",
				r.Scenario, ms(r.ProduceLatency.P50), ms(r.ProduceLatency.P99), thousands(r.SendRate), thousands(r.TargetRate), ms(r.GeneratorLagP99))
			if r.HostLoad1 > 0 {
				fmt.Fprintf(&b, "; host load %.1f on %d CPUs", r.HostLoad1, r.HostCPUs)
			}
			b.WriteString("\n")
		}
	}
	for _, r := range results {
		if r.FindMax != nil {
			fmt.Fprintf(&b, "%s: highest rate meeting the %s ms SLO: %s msg/s (%d steps:", r.Scenario, ms(r.SLOms), thousands(r.FindMax.MaxRate), len(r.FindMax.Steps))
			for _, s := range r.FindMax.Steps {
				v := "fail"
				if s.Pass {
					v = "pass"
				}
				if s.Repeat {
					v += " again"
				}
				fmt.Fprintf(&b, " %s %s p99 %s;", thousands(s.Rate), v, ms(s.P99))
			}
			b.WriteString(")\n")
		}
	}
	for _, r := range results {
		prev, ok := previous[r.Scenario]
		if !ok {
			continue
		}
		c := Compare(prev, r)
		fmt.Fprintf(&b, "%s vs previous run %s", r.Scenario, prev.RunID)
		if !prev.StartedAt.IsZero() {
			fmt.Fprintf(&b, " (%s)", prev.StartedAt.UTC().Format("2006-01-02 15:04 UTC"))
		}
		if !c.SameTarget {
			b.WriteString(" [different target rate/size]")
		}
		b.WriteString(":")
		for i, f := range c.Figures {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " %s %s", shortFigure(f.Name), f.Verdict)
			if f.Verdict != Same && f.ChangePct != 0 {
				fmt.Fprintf(&b, " (%+.1f%%)", f.ChangePct)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func shortFigure(name string) string {
	switch name {
	case "kafka_msgs_per_sec":
		return "Kafka msg/s"
	case "tf_qps":
		return "TF QPS"
	case "max_rate":
		return "max rate"
	}
	n := strings.TrimSuffix(strings.TrimPrefix(name, "latency_"), "_ms")
	if n == "p999" {
		n = "p99.9"
	}
	return n
}

// thousands formats a rate as an integer with separators: 55,000.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// ms prints milliseconds with the precision that matters at that size.
func ms(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
