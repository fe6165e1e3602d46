package tui

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

var update = flag.Bool("update", false, "rewrite the golden screens under testdata/")

func press(m *Model, keys ...string) {
	for _, k := range keys {
		var msg tea.KeyPressMsg
		switch k {
		case "tab":
			msg = tea.KeyPressMsg{Code: tea.KeyTab}
		case "shift+tab":
			msg = tea.KeyPressMsg{Code: tea.KeyTab, Mod: tea.ModShift}
		case "enter":
			msg = tea.KeyPressMsg{Code: tea.KeyEnter}
		case "esc":
			msg = tea.KeyPressMsg{Code: tea.KeyEscape}
		case "down":
			msg = tea.KeyPressMsg{Code: tea.KeyDown}
		case "space":
			msg = tea.KeyPressMsg{Code: tea.KeySpace, Text: " "}
		default:
			r := []rune(k)[0]
			msg = tea.KeyPressMsg{Code: r, Text: k}
		}
		m.Update(msg)
	}
}

// TestGoldenScreens renders fixed data at 80x24 and 120x40 and compares
// with testdata/*.golden (run with -update to rewrite them after a
// deliberate change; review the diff like code).
func TestGoldenScreens(t *testing.T) {
	cases := []struct {
		name string
		w, h int
		data Data
		keys []string
	}{
		{"overview_80x24", 80, 24, fixture(12), nil},
		{"overview_120x40", 120, 40, fixture(12), nil},
		{"overview_100x30", 100, 30, fixture(12), nil},
		{"help_80x24", 80, 24, fixture(12), []string{"?"}},
		{"help_120x40", 120, 40, fixture(12), []string{"?"}},
		{"perf_result_120x40", 120, 40, withPerfResult(fixture(12)), []string{"tab", "tab", "tab", "tab", "tab", "tab", "tab"}},
		{"perf_result_80x24", 80, 24, withPerfResult(fixture(12)), []string{"shift+tab"}},
		{"picker_80x24", 80, 24, fixture(12), []string{"v"}},
		{"perf_menu_120x40", 120, 40, fixture(12), []string{"p"}},
		{"sorted_filtered_80x24", 80, 24, fixture(12), []string{"s", "/", "w", "1", "enter"}},
		{"dlq_80x24", 80, 24, fixture(12), []string{"shift+tab", "shift+tab"}},
		{"workers_80x24", 80, 24, fixture(12), []string{"tab", "tab", "tab", "tab"}},
		{"large_topic_120x40", 120, 40, fixture(10000), nil},
		{"too_small_40x10", 40, 10, fixture(12), nil},
		{"attached_read_only_80x24", 80, 24, attachedReadOnly(fixture(12)), []string{"+"}},
		{"fleet_120x40", 120, 40, withFleet(fixture(12)), nil},
		{"fleet_models_80x24", 80, 24, withFleet(fixture(12)), []string{"tab", "tab", "tab"}},
		{"fleet_latency_100x30", 100, 30, withFleet(fixture(12)), []string{"tab", "tab"}},
		{"backlog_no_commit_120x40", 120, 40, withBacklog(fixture(12)), nil},
		{"backlog_no_commit_80x24", 80, 24, withBacklog(fixture(12)), nil},
		{"rebalance_100x30", 100, 30, withRebalance(fixture(12)), nil},
		{"stand_in_120x40", 120, 40, withAdsStandIn(fixture(12)), nil},
		{"stand_in_80x24", 80, 24, withAdsStandIn(fixture(12)), []string{"tab", "tab", "tab"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Static models refuse actions ("static view"); give them a
			// backend so the screens show what the console really says.
			m := NewStatic(tc.data, true)
			m.opt.Backend = nopBackend{tc.data}
			m.SetSize(tc.w, tc.h)
			press(m, tc.keys...)
			got := m.View().Content
			checkShape(t, got, tc.w, tc.h)
			// Goldens are stored without escapes so a diff reads like the
			// screen; colour is covered by TestNoColorHasNoColourEscapes.
			got = ansi.Strip(got)
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./tui -run TestGoldenScreens -update)", err)
			}
			if got != string(want) {
				t.Errorf("screen differs from %s (rerun with -update if intended):\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
			}
		})
	}
}

func attachedReadOnly(d Data) Data {
	d.Mode, d.Attached, d.ReadOnly, d.NoWorker, d.DemoRate = "attached", true, "--read-only", true, 0
	d.Brokers = []string{"kafka1:9092", "kafka2:9092"}
	d.Header.Workers = 0
	return d
}

// checkShape asserts the frame is exactly the terminal: h lines, none wider
// than w cells (a wider line wraps and garbles the whole screen).
func checkShape(t *testing.T, s string, w, h int) {
	t.Helper()
	lines := strings.Split(s, "\n")
	if len(lines) != h {
		t.Errorf("%d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if n := ansi.StringWidth(l); n > w {
			t.Errorf("line %d is %d cells wide, terminal is %d: %q", i, n, w, ansi.Strip(l))
		}
	}
}

// TestSkewVisibleAtEverySize: version skew across TF Serving hosts names
// the host in the header whatever the terminal.
func TestSkewVisibleAtEverySize(t *testing.T) {
	for _, size := range [][2]int{{60, 16}, {80, 24}, {100, 30}, {120, 40}, {200, 60}} {
		m := NewStatic(withFleet(fixture(12)), true)
		m.SetSize(size[0], size[1])
		header := strings.Join(strings.SplitN(ansi.Strip(m.View().Content), "\n", 3)[:2], "\n")
		if !strings.Contains(header, "SKEW") || !strings.Contains(header, "10.0.0.13:8500") || !strings.Contains(header, "v2") || !strings.Contains(header, "p99 7.4ms") {
			t.Errorf("%dx%d: header lacks the skew flag naming the host:\n%s", size[0], size[1], header)
		}
	}
}

// TestKeyInvariantsAt80x24 checks what must survive the smallest supported
// screen: lag, the worker count, p99 and the served version.
func TestKeyInvariantsAt80x24(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {100, 30}, {120, 40}, {200, 60}, {60, 16}} {
		m := NewStatic(fixture(12), true)
		m.SetSize(size[0], size[1])
		s := m.View().Content
		for _, want := range []string{"lag ", "workers 4", "p99 7.4ms", "v2"} {
			if !strings.Contains(s, want) {
				t.Errorf("%dx%d: %q not visible:\n%s", size[0], size[1], want, s)
			}
		}
	}
}

// sgrColour matches SGR sequences that set a colour (30-37, 38;..., 40-47,
// 48;..., 90-97, 100-107).
var sgrColour = regexp.MustCompile(`\x1b\[[0-9;]*(?:^|;)?(3[0-9]|4[0-9]|9[0-7]|10[0-7])(;[0-9;]*)?m`)

func TestNoColorHasNoColourEscapes(t *testing.T) {
	for _, noColor := range []bool{true, false} {
		m := NewStatic(withPerfResult(fixture(12)), noColor)
		m.SetSize(120, 40)
		s := m.View().Content
		press(m, "?")
		s += m.View().Content
		has := sgrColour.MatchString(s)
		if noColor && has {
			t.Errorf("NO_COLOR output has colour escapes: %q", sgrColour.FindString(s))
		}
		if !noColor && !has {
			t.Errorf("colour output has no colour at all; the style table is broken")
		}
	}
}

// TestResizeNeverPanics walks sizes from tiny to huge, including 40x10.
func TestResizeNeverPanics(t *testing.T) {
	m := NewStatic(withPerfResult(fixture(12)), false)
	for _, sz := range [][2]int{{40, 10}, {0, 0}, {1, 1}, {59, 15}, {60, 16}, {80, 24}, {99, 29}, {120, 40}, {300, 90}, {40, 10}} {
		m.Update(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		for _, k := range []string{"?", "esc", "tab", "down", "s"} {
			press(m, k)
			s := m.View().Content
			if sz[0] >= MinWidth && sz[1] >= MinHeight {
				checkShape(t, s, sz[0], sz[1])
			}
		}
	}
	m.Update(tea.WindowSizeMsg{Width: 40, Height: 10})
	if s := m.View().Content; !strings.Contains(s, "too small") {
		t.Errorf("40x10 should say the terminal is too small:\n%s", s)
	}
}

func TestSortAndFilter(t *testing.T) {
	cases := []struct {
		keys  []string
		first int32
		rows  int
	}{
		{nil, 0, 12},                // default: partition order, rows stay put between refreshes
		{[]string{"s"}, 7, 12},      // lag descending: the hot partition first
		{[]string{"s", "S"}, 0, 12}, // lag ascending (ties by partition)
		{[]string{"s", "s", "s", "s", "s", "s", "s"}, 0, 12}, // wraps to partition ascending
		{[]string{"/", "1", "enter"}, 1, 4},                  // 1, 10, 11 and inferops-w1 owns 6
		{[]string{"/", "w", "a", "r", "n", "enter"}, 7, 1},
		{[]string{"/", "x", "esc"}, 0, 12},
	}
	for _, tc := range cases {
		m := NewStatic(fixture(12), true)
		press(m, tc.keys...)
		if len(m.order) != tc.rows {
			t.Errorf("%v: %d rows, want %d", tc.keys, len(m.order), tc.rows)
			continue
		}
		if got := m.data.Kafka.Partitions[m.order[0]].ID; got != tc.first {
			t.Errorf("%v: first row partition %d, want %d", tc.keys, got, tc.first)
		}
	}
}

func TestSkewness(t *testing.T) {
	cases := []struct {
		in       []float64
		peak, cv float64
	}{
		{nil, 0, 0},
		{[]float64{5, 5, 5, 5}, 1, 0},
		{[]float64{0, 0, 0, 4}, 4, 1.7320508},
		{[]float64{1, 3}, 1.5, 0.5},
	}
	for _, tc := range cases {
		p, c := Skewness(tc.in)
		if abs(p-tc.peak) > 1e-6 || abs(c-tc.cv) > 1e-6 {
			t.Errorf("Skewness(%v) = %v, %v; want %v, %v", tc.in, p, c, tc.peak, tc.cv)
		}
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func TestOwnerTrimAndTargetLabel(t *testing.T) {
	owners := []struct {
		names []string
		in    string
		want  string
	}{
		{[]string{"inferops-worker-1", "inferops-worker-2"}, "inferops-worker-2", "worker-2"},
		{[]string{"inferops-worker-1", "remote-w0"}, "inferops-worker-1", "inferops-worker-1"},
		{[]string{"solo"}, "solo", "solo"},
		{nil, "x-y", "x-y"},
	}
	for _, tc := range owners {
		if got := ownerTrim(tc.names)(tc.in); got != tc.want {
			t.Errorf("ownerTrim(%v)(%q) = %q, want %q", tc.names, tc.in, got, tc.want)
		}
	}
	for in, want := range map[string]string{"": "-", "latest": "latest", "2": "v2", "label:stable": "stable"} {
		if got := targetLabel(in); got != want {
			t.Errorf("targetLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCancelPerfAsks: p during a run asks before throwing the run away,
// embedded or not.
func TestCancelPerfAsks(t *testing.T) {
	d := fixture(12)
	d.Perf.Running = &PerfProgress{Scenario: "small", Phase: "running", Duration: 30 * time.Second}
	m := NewStatic(d, true)
	m.opt.Backend = nopBackend{d}
	m.SetSize(120, 40)
	_, cmd := m.Update(tea.KeyPressMsg{Code: 'p', Text: "p"})
	if cmd != nil || m.ov != ovConfirm || !strings.Contains(m.View().Content, "cancel the running perf test (small)?") {
		t.Fatalf("p during a run did not ask first:\n%s", m.View().Content)
	}
	_, cmd = m.Update(tea.KeyPressMsg{Code: 'n', Text: "n"})
	if cmd != nil || m.ov != ovNone {
		t.Fatal("n did not close the question without cancelling")
	}
	m.Update(tea.KeyPressMsg{Code: 'p', Text: "p"})
	if _, cmd = m.Update(tea.KeyPressMsg{Code: 'y', Text: "y"}); cmd == nil {
		t.Fatal("y did not cancel the run")
	}
}
