package live

import (
	"context"
	"strings"
	"testing"

	"github.com/inferops/inferops/infer/perf"
)

func TestPerfResultTable(t *testing.T) {
	base := perf.Result{Scenario: "small", Sent: 1000, Received: 1000, SLOms: 50, Pass: true, TargetRate: 2000,
		KafkaMsgsPerSec: 1990, TFQPS: 1980, Latency: perf.LatencyMS{Avg: 10, P50: 8, P95: 20, P99: 31, P999: 40, Max: 60}}
	withPrev := base
	withPrev.Comparison = &perf.Comparison{SameTarget: true, Figures: []perf.Change{{Name: "latency_p99_ms", Previous: 35, Current: 31}}}
	lost := base
	lost.Pass, lost.Lost = false, 7
	slow := base
	slow.Pass, slow.Latency.P99 = false, 80
	cases := []struct {
		name    string
		r       perf.Result
		err     error
		pass    bool
		verdict string
	}{
		{"pass", base, nil, true, "p99 31.0ms within SLO 50ms"},
		{"lost", lost, nil, false, "7 of 1000 records lost"},
		{"slow", slow, nil, false, "p99 80.0ms over SLO 50ms"},
		{"stopped", base, context.Canceled, false, "stopped: context canceled"},
		{"empty", perf.Result{Scenario: "small"}, nil, false, "nothing was sent"},
	}
	for _, tc := range cases {
		got := perfResult(&tc.r, tc.err)
		if got.Pass != tc.pass || !strings.Contains(got.Verdict, tc.verdict) {
			t.Errorf("%s: pass %v verdict %q; want %v containing %q", tc.name, got.Pass, got.Verdict, tc.pass, tc.verdict)
		}
	}
	got := perfResult(&withPrev, nil)
	for _, m := range got.Metrics {
		if m.Name == "latency p99" && (!m.HasPrev || m.Prev != 35 || m.Value != 31 || m.HigherIsBetter) {
			t.Errorf("p99 row %+v: want 31 vs previous 35, lower is better", m)
		}
		if m.Name == "kafka msg/s" && m.HasPrev {
			t.Errorf("kafka msg/s has a previous value the comparison did not give")
		}
	}
}
