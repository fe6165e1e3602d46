package report

import (
	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/rollout"

	"fmt"
	"strings"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/internal/config"
)

// Markdown renders the report for an incident ticket: a summary first, then
// advice, then the tables an SRE reads to confirm it.
func (r Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# inferops triage report, %s\n\n", r.GeneratedAt.Format("2006-01-02 15:04:05 UTC"))
	var meta []string
	if r.Inferops != "" {
		meta = append(meta, "inferops "+r.Inferops)
	}
	if r.Host != "" {
		meta = append(meta, "host "+code(r.Host))
	}
	if r.Source != "" {
		meta = append(meta, "from "+code(r.Source))
	}
	if len(meta) > 0 {
		fmt.Fprintf(&b, "%s. Secrets are shown as `%s`; DLQ payloads are left out.\n\n", strings.Join(meta, ", "), config.Redacted)
	}

	b.WriteString("## Summary\n\n")
	for _, s := range r.Summary {
		fmt.Fprintf(&b, "- %s\n", inline(s))
	}
	b.WriteString("\n")

	if len(r.Advice) > 0 {
		b.WriteString("## Advice\n\n")
		for i, a := range r.Advice {
			fmt.Fprintf(&b, "%d. **[%s] %s**: %s\n", i+1, a.Severity, inline(a.Title), inline(a.Evidence))
			if a.Fix != "" {
				fmt.Fprintf(&b, "   Fix: %s\n", inline(a.Fix))
			}
		}
		b.WriteString("\n")
	}

	if k := r.Kafka; k != nil {
		fmt.Fprintf(&b, "## Kafka lag: %s / %s\n\n", code(k.Topic), code(k.Group))
		fmt.Fprintf(&b, "Group %s, Burrow status **%s**, %d broker(s), total lag %s, snapshot at %s.\n\n",
			k.GroupState, k.Status, k.Brokers, count(k.TotalLag), k.Time.Format(time.TimeOnly))
		if k.TotalLag != k.CommittedLag {
			fmt.Fprintf(&b, "Total lag counts %s records on partitions without a committed offset (auto.offset.reset=%s); %s where the group committed.\n\n",
				count(k.TotalLag-k.CommittedLag), k.ResetPolicy, count(k.CommittedLag))
		}
		if rb := k.Rebalance; rb != nil {
			at := ""
			if rb.AtLeast {
				at = "at least "
			}
			var names []string
			for _, m := range rb.Awaited {
				names = append(names, cluster.MemberName(m))
			}
			fmt.Fprintf(&b, "**Rebalancing** (%s) for %s%s; nobody consumes until it ends. Awaited: %s.\n\n", rb.State, at, seconds(rb.Seconds), inline(dash(strings.Join(names, ", "))))
		}
		for _, w := range k.Warnings {
			fmt.Fprintf(&b, "- **%s**: %s\n", w.Code, inline(w.Message))
		}
		if len(k.Warnings) > 0 {
			b.WriteString("\n")
		}
		t := table{head: []string{"partition", "leader", "log end", "committed", "lag", "lag (s)", "in/s", "out/s", "member", "status"},
			right: map[int]bool{0: true, 1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 7: true}}
		for _, p := range k.Partitions {
			lag := unknown(p.Lag, count(p.Lag))
			if p.LagBasis == cluster.LagNoCommit {
				lag += " no commit"
			}
			t.add(fmt.Sprint(p.Partition), fmt.Sprint(p.Leader), count(p.HighWatermark), unknown(p.Committed, count(p.Committed)),
				lag, unknownF(p.LagSeconds), num(p.ProduceRate), num(p.ConsumeRate), dash(p.Member), p.Status.String())
		}
		b.WriteString(t.String())
		if len(k.Members) > 0 {
			b.WriteString("\nMembers:\n\n")
			mt := table{head: []string{"client id", "host", "partitions"}}
			for _, m := range k.Members {
				mt.add(m.ClientID, m.Host, ints(m.Partitions))
			}
			b.WriteString(mt.String())
		}
		b.WriteString("\n")
	}

	if m := r.Model; m != nil {
		fmt.Fprintf(&b, "## Model %s", code(m.Name))
		if m.Address != "" {
			fmt.Fprintf(&b, " at %s", code(m.Address))
		}
		if m.StandIn {
			b.WriteString(" (a stand-in: the signature of a real model, outputs made up from the inputs)")
		}
		b.WriteString("\n\n")
		if len(m.Versions) == 0 {
			b.WriteString("No versions reported.\n\n")
		} else {
			t := table{head: []string{"version", "state", "requests", "p50 ms", "p99 ms", "max ms", "error"}, right: map[int]bool{0: true, 2: true, 3: true, 4: true, 5: true}}
			for _, v := range m.Versions {
				if v.Requests == 0 { // served nothing here: no latency to show
					t.add(fmt.Sprint(v.Version), v.State, "-", "-", "-", "-", dash(v.Error))
					continue
				}
				t.add(fmt.Sprint(v.Version), v.State, count(v.Requests), num(v.P50ms), num(v.P99ms), num(v.MaxMs), dash(v.Error))
			}
			b.WriteString(t.String() + "\n")
		}
		if len(m.Hosts) > 1 {
			b.WriteString("### TF Serving hosts\n\n")
			for _, s := range m.Skew {
				fmt.Fprintf(&b, "**Version skew:** %s\n\n", s)
			}
			t := table{head: []string{"host", "state", "versions", "calls", "share %", "p50 ms", "p99 ms", "errors", "why"},
				right: map[int]bool{3: true, 4: true, 5: true, 6: true, 7: true}}
			for _, h := range m.Hosts {
				lat := func(v float64) string { // no successful call lately: no latency
					if v <= 0 {
						return "-"
					}
					return num(v)
				}
				t.add(code(h.Address), h.State, dash(ints(h.Available)), count(h.Calls), num(h.SharePct), lat(h.P50ms), lat(h.P99ms), count(h.Errors), dash(h.Reason))
			}
			b.WriteString(t.String() + "\n")
		}
	}

	if w := r.Workers; w != nil {
		b.WriteString("## Workers\n\n")
		fmt.Fprintf(&b, "%d worker(s)", w.Workers)
		if w.Target != "" {
			fmt.Fprintf(&b, ", target %s", code(w.Target))
		}
		if w.Breaker != "" {
			fmt.Fprintf(&b, ", breaker %s", w.Breaker)
		}
		if w.Paused {
			b.WriteString(", **paused**")
		}
		fmt.Fprintf(&b, ". %s rec/s, average batch %s, lag held %s.\n", num(w.QPS), num(w.AvgBatch), count(w.Lag))
		fmt.Fprintf(&b, "Totals since start: consumed %s, produced %s, DLQ %s, retries %s, duplicates %s.\n\n",
			count(int64(w.Consumed)), count(int64(w.Produced)), count(int64(w.DLQ)), count(int64(w.Retries)), count(int64(w.Duplicates)))
		lt := table{head: []string{"latency", "count", "p50 ms", "p95 ms", "p99 ms", "max ms"}, right: map[int]bool{1: true, 2: true, 3: true, 4: true, 5: true}}
		lt.add("Predict", count(int64(w.Predict.Count)), num(w.Predict.P50ms), num(w.Predict.P95ms), num(w.Predict.P99ms), num(w.Predict.MaxMs))
		lt.add("end to end", count(int64(w.EndToEnd.Count)), num(w.EndToEnd.P50ms), num(w.EndToEnd.P95ms), num(w.EndToEnd.P99ms), num(w.EndToEnd.MaxMs))
		b.WriteString(lt.String())
		if len(w.Errors) > 0 {
			b.WriteString("\nErrors by kind: ")
			var parts []string
			for _, k := range sortedKeys(w.Errors) {
				parts = append(parts, fmt.Sprintf("%s %s", code(k), count(int64(w.Errors[k]))))
			}
			b.WriteString(strings.Join(parts, ", ") + ".\n")
		}
		if len(w.Members) > 0 {
			b.WriteString("\n")
			mt := table{head: []string{"client id", "partitions", "in/s", "out/s", "avg batch", "in flight"}, right: map[int]bool{2: true, 3: true, 4: true, 5: true}}
			for _, m := range w.Members {
				mt.add(m.ClientID, ints(m.Partitions), num(m.InRate), num(m.OutRate), num(m.AvgBatch), fmt.Sprint(m.InFlight))
			}
			b.WriteString(mt.String())
		}
		b.WriteString("\n")
	}

	if f := r.Fleet; f != nil {
		writeFleet(&b, f)
	}
	if ro := r.Rollout; ro != nil {
		writeRollout(&b, ro)
	}

	if len(r.Events) > 0 {
		b.WriteString("## Recent events\n\n")
		t := table{head: []string{"time", "kind", "message"}}
		for _, e := range r.Events {
			t.add(e.Time.Format("15:04:05"), e.Kind, e.Message)
		}
		b.WriteString(t.String() + "\n")
	}
	if len(r.DLQ) > 0 {
		b.WriteString("## Recent dead letters\n\n")
		t := table{head: []string{"time", "reason", "topic", "partition", "offset"}, right: map[int]bool{3: true, 4: true}}
		for _, d := range r.DLQ {
			t.add(d.Time.Format("15:04:05"), d.Reason, d.Topic, fmt.Sprint(d.Partition), fmt.Sprint(d.Offset))
		}
		b.WriteString(t.String() + "\n")
	}
	if len(r.Config) > 0 {
		b.WriteString("## Configuration\n\n")
		t := table{head: []string{"key", "value", "source"}}
		for _, s := range r.Config {
			t.add(s.Key, dash(s.Value), s.Source)
		}
		b.WriteString(t.String() + "\n")
	}
	if len(r.Errors) > 0 {
		b.WriteString("## Errors\n\n")
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "- %s\n", inline(e))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// table is a GitHub-flavoured Markdown table.
type table struct {
	head  []string
	right map[int]bool
	rows  [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t table) String() string {
	var b strings.Builder
	b.WriteString("|")
	for _, h := range t.head {
		b.WriteString(" " + h + " |")
	}
	b.WriteString("\n|")
	for i := range t.head {
		if t.right[i] {
			b.WriteString("---:|")
		} else {
			b.WriteString("---|")
		}
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		b.WriteString("|")
		for _, c := range r {
			b.WriteString(" " + cell(c) + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// cell keeps a value on one table row: pipes escaped, newlines folded.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}

// inline keeps free text on one line of a list.
func inline(s string) string { return strings.Join(strings.Fields(s), " ") }

func code(s string) string {
	if strings.Contains(s, "`") {
		return "``" + s + "``"
	}
	return "`" + s + "`"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func unknown(v int64, s string) string {
	if v < 0 {
		return "-"
	}
	return s
}

func unknownF(v float64) string {
	if v < 0 {
		return "-"
	}
	return num(v)
}

func ints[T int32 | int64](p []T) string {
	s := make([]string, len(p))
	for i, v := range p {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ",")
}

// writeRollout is the rollout section: the plan, where it stands, the
// gates as judged and the comparison.
func writeRollout(b *strings.Builder, s *rollout.Status) {
	r := s.Rollout
	fmt.Fprintf(b, "## Rollout %s: %s -> %s (%s)\n\n%s\n\n", code(r.ID), code(r.Baseline), code(r.Candidate), strings.ToUpper(s.State), inline(s.Summary))
	steps := make([]string, len(r.Plan.Steps))
	for i, p := range r.Plan.Steps {
		steps[i] = fmt.Sprintf("%g%%", p)
		if i == r.Step {
			steps[i] = "**" + steps[i] + "**"
		}
	}
	fmt.Fprintf(b, "Plan: %s, hold %s each, shadow %g%%; started %s by %s; driver alive: %v.\n\n", strings.Join(steps, " -> "), r.Plan.Hold(), r.Shadow,
		r.Started.UTC().Format("2006-01-02 15:04:05 UTC"), inline(r.Driver), s.DriverAlive)
	if len(s.Gates) > 0 {
		t := table{head: []string{"gate", "state", "value", "limit", "detail"}}
		for _, g := range s.Gates {
			t.add(g.Name, strings.ToUpper(g.State), g.Value, g.Limit, g.Detail)
		}
		fmt.Fprintf(b, "Gates (judged by %s):\n\n%s\n", s.GatesBy, t.String())
	}
	if c := s.Comparison; c != nil {
		t := table{head: []string{"side", "target", "version", "rows/s", "predict p50/p95/p99 ms", "e2e p99 ms", "error rate", "DLQ rate"}}
		rate := func(p *float64) string {
			if p == nil {
				return "-"
			}
			return fmt.Sprintf("%.2f%%", *p*100)
		}
		for _, sd := range []struct {
			name string
			s    *rollout.SideSummary
		}{{"baseline", &c.Baseline}, {"candidate", &c.Candidate}, {"shadow", c.Shadow}} {
			if sd.s == nil {
				continue
			}
			t.add(sd.name, sd.s.Target, fmt.Sprint(sd.s.Version), num(sd.s.RowRate), fmt.Sprintf("%.2f/%.2f/%.2f", sd.s.Predict.P50ms, sd.s.Predict.P95ms, sd.s.Predict.P99ms),
				num(sd.s.EndToEnd.P99ms), rate(sd.s.ErrorRate), rate(sd.s.DLQRate))
		}
		fmt.Fprintf(b, "Comparison (last 10 s; outputs over the step):\n\n%s\n", t.String())
	}
	if s.Advice != "" {
		fmt.Fprintf(b, "Next: %s\n\n", inline(s.Advice))
	}
}

// writeFleet is the fleet section: every worker pool of the group.
func writeFleet(b *strings.Builder, f *fleet.Status) {
	t := f.Totals
	fmt.Fprintf(b, "## Fleet: group %s\n\n", code(f.Group))
	fmt.Fprintf(b, "Desired state: %s", f.Asks)
	if d := f.Desired; d != nil {
		fmt.Fprintf(b, " (seq %d, %s by %s at %s)", d.Seq, inline(d.Change), inline(d.By), d.At.UTC().Format("15:04:05 UTC"))
	}
	fmt.Fprintf(b, ".\n%d live instance(s), %d lost; %d workers, %d members", t.Live, t.Lost, t.Workers, t.Members)
	if t.Partitions > 0 {
		fmt.Fprintf(b, " for %d partitions", t.Partitions)
	}
	fmt.Fprintf(b, "; in %s rec/s, out %s rec/s; DLQ %s; lag held %s.", num(t.InRate), num(t.OutRate), count(int64(t.DLQ)), count(t.Lag))
	if f.Desired != nil && t.Following > 0 {
		fmt.Fprintf(b, " Control: %d of %d following instances applied the desired state.", t.Applied, t.Following)
	}
	b.WriteString("\n\nLatency over the last 10 s, merged over the live instances (exact merges of their histograms):\n\n")
	lt := table{head: []string{"latency", "count", "p50 ms", "p95 ms", "p99 ms", "max ms"}, right: map[int]bool{1: true, 2: true, 3: true, 4: true, 5: true}}
	add := func(name string, l fleet.Latency) {
		lt.add(name, count(l.Count), num(l.P50ms), num(l.P95ms), num(l.P99ms), num(l.MaxMs))
	}
	add("Predict", f.Predict)
	add("end to end", f.EndToEnd)
	for _, v := range f.Versions {
		add(fmt.Sprintf("v%d Predict", v.Version), v.Predict)
		add(fmt.Sprintf("v%d end to end", v.Version), v.EndToEnd)
	}
	b.WriteString(lt.String() + "\n")
	it := table{head: []string{"instance", "state", "control", "seq", "workers", "in/s", "out/s", "p99 ms", "e2e p99 ms", "target", "serving", "breaker", "host"},
		right: map[int]bool{3: true, 4: true, 5: true, 6: true, 7: true, 8: true}}
	for _, i := range f.Instances {
		serving := make([]int64, len(i.Serving))
		copy(serving, i.Serving)
		workers := fmt.Sprint(i.Workers)
		if i.Paused {
			workers += " paused"
		}
		it.add(i.Instance, i.State, i.ControlState, fmt.Sprint(i.Control.Seq), workers, num(i.InRate), num(i.OutRate),
			num(i.Predict.P99ms), num(i.EndToEnd.P99ms), dash(i.Target), dash(ints(serving)), dash(i.Breaker), i.Host)
	}
	b.WriteString(it.String())
	var notes []string
	for _, i := range f.Instances {
		if i.Control.Error != "" {
			notes = append(notes, fmt.Sprintf("- %s: %s\n", code(i.Instance), inline(i.Control.Error)))
		}
		for _, o := range i.Others {
			notes = append(notes, fmt.Sprintf("- %s: also published by pid %d on %s: two processes share the name\n", code(i.Instance), o.PID, inline(o.Host)))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, ""))
	}
	if len(f.Events) > 0 {
		b.WriteString("\nFleet events:\n\n")
		et := table{head: []string{"time", "message"}}
		for _, e := range f.Events {
			et.add(e.Time.UTC().Format("15:04:05"), inline(e.Message))
		}
		b.WriteString(et.String())
	}
	b.WriteString("\n")
}
