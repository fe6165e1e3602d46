package tui

import (
	"context"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/creack/pty"
)

// BenchmarkView renders a full frame (no cache) at 120x40. Targets: < 1 ms
// with 12 partitions, < 5 ms with 10,000 (only visible rows are drawn).
func BenchmarkView(b *testing.B) {
	for _, n := range []int{12, 10000} {
		b.Run(itoa(n)+"partitions", func(b *testing.B) {
			m := NewStatic(fixture(n), false)
			m.SetSize(120, 40)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m.dirty = true
				_ = m.View()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/frame")
		})
	}
}

// BenchmarkViewFleet renders a full frame (no cache) at 120x40 of a
// fleet of 50 instances x 8 members over 400 partitions, the workers panel
// grouped by instance. Target: < 5 ms.
func BenchmarkViewFleet(b *testing.B) {
	m := NewStatic(withWorkerFleet(fixture(400), 50, 8), false)
	m.SetSize(120, 40)
	m.focusOn(pWorkers)
	m.scroll[pWorkers] = 25 // the cursor mid-fleet: the window is not at the top
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.dirty = true
		_ = m.View()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/frame")
}

// BenchmarkRefresh10000 is the per-second cost of taking a new snapshot of
// a 10,000-partition topic (re-filter and re-sort), which runs outside View.
func BenchmarkRefresh10000(b *testing.B) {
	d := fixture(10000)
	m := NewStatic(d, false)
	for i := 0; i < b.N; i++ {
		m.setData(d)
	}
}

// runInPty runs the real bubbletea program on a pty of w x h and returns a
// counter of the bytes the terminal received and a stop function.
func runInPty(tb testing.TB, m *Model, w, h int, profile colorprofile.Profile) (*atomic.Int64, func()) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		tb.Skipf("no pty: %v", err)
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Cols: uint16(w), Rows: uint16(h)}); err != nil {
		tb.Fatal(err)
	}
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		buf := make([]byte, 64<<10)
		for {
			k, err := ptmx.Read(buf)
			n.Add(int64(k))
			if err != nil {
				close(done)
				return
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	p := tea.NewProgram(m, tea.WithInput(tty), tea.WithOutput(tty), tea.WithContext(ctx),
		tea.WithEnvironment([]string{"TERM=xterm-256color"}), tea.WithColorProfile(profile), tea.WithoutSignalHandler())
	exited := make(chan struct{})
	go func() { _, _ = p.Run(); close(exited) }()
	return &n, func() {
		cancel()
		<-exited
		tty.Close()
		ptmx.Close()
		<-done
	}
}

// BenchmarkPtyBytesPerSecond measures what the console writes to a real pty
// at 120x40 with live charts and churning numbers, at steady state. The
// simulated clock advances one second per refresh, so bytes per refresh are
// bytes per second of wall time at the real 1 s refresh. Target: <= 2 KB/s.
func BenchmarkPtyBytesPerSecond(b *testing.B) {
	for _, tc := range []struct {
		name    string
		profile colorprofile.Profile
	}{{"ansi16", colorprofile.ANSI}, {"nocolor", colorprofile.Ascii}} {
		b.Run(tc.name, func(b *testing.B) {
			sim := newSim(12, false)
			m, err := New(Options{Backend: sim, Refresh: 100 * time.Millisecond, NoColor: tc.profile == colorprofile.Ascii})
			if err != nil {
				b.Fatal(err)
			}
			n, stop := runInPty(b, m, 120, 40, tc.profile)
			defer stop()
			time.Sleep(700 * time.Millisecond) // first full paint and warm-up
			const refreshes = 30
			f0, n0 := framesOf(sim), n.Load()
			time.Sleep(refreshes * 100 * time.Millisecond)
			frames, bytes := framesOf(sim)-f0, n.Load()-n0
			if frames == 0 {
				b.Fatal("no refreshes happened")
			}
			b.ReportMetric(float64(bytes)/float64(frames), "bytes/refresh")
			b.ReportMetric(float64(bytes)/float64(frames), "bytes/s@1s-refresh")
		})
	}
}

func framesOf(s *simBackend) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.frames
}

// BenchmarkIdleCPU runs the console at its real 1 s refresh with no traffic
// (only the clock moves) and reports the process CPU used as a share of one
// core. Target: < 2%.
func BenchmarkIdleCPU(b *testing.B) {
	if os.Getenv("INFEROPS_BENCH_SHORT") != "" {
		b.Skip("INFEROPS_BENCH_SHORT set")
	}
	sim := newSim(12, true)
	m, err := New(Options{Backend: sim, Refresh: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	_, stop := runInPty(b, m, 120, 40, colorprofile.ANSI)
	defer stop()
	time.Sleep(time.Second)
	c0, t0 := cpuTime(), time.Now()
	time.Sleep(10 * time.Second)
	used, wall := cpuTime()-c0, time.Since(t0)
	b.ReportMetric(100*used.Seconds()/wall.Seconds(), "%core")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
