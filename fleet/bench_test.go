package fleet

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cpuTime is this process's user+system CPU so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTelemetry measures what one instance's telemetry costs: a
// snapshot of a pool of 4 (the default) and 8 members with full latency
// windows (traffic keeps flowing), built, encoded and published to the embedded broker, acked.
// cpu_us/op is the whole process's CPU per snapshot, the in-process
// broker's share included (an upper bound); wire_B/op every byte the
// agent's clients sent and received for it. The idle cost of following
// control and staying in the roster (fetch long polls, heartbeats) is
// measured over 5 s without snapshots: idle_wire_B/s. At the 1 s interval
// the budget is 1% of a core (10,000 cpu_us per second) and 2 KB/s.
//
//	go test ./fleet -run '^$' -bench Telemetry -benchtime 300x
func BenchmarkTelemetry(b *testing.B) {
	for _, members := range []int{4, 8} {
		b.Run("members="+strconv.Itoa(members), func(b *testing.B) { benchTelemetry(b, members) })
	}
}

func benchTelemetry(b *testing.B, members int) {
	e := newEnv(b)
	in := e.prepared("bench", members, false) // snapshots only when the loop below says
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // ~400 msg/s keeps the windows full
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(250 * time.Millisecond):
				e.produce("b"+string(rune('a'+i%26))+"-", 100)
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	waitFor(b, "full windows", 30*time.Second, func() bool { return in.pool.Stats().EndToEnd.Count > 2000 })
	a := in.agent
	s := a.Snapshot()
	js, _ := json.Marshal(s)

	// Idle: following control and the roster, no snapshot, for 5 s.
	out0, in0 := a.WireBytes()
	time.Sleep(5 * time.Second)
	out1, in1 := a.WireBytes()

	pub0, _, _ := a.Published()
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a.publishSnapshot()
		for {
			if p, _, failed := a.Published(); p+failed > pub0+uint64(i) {
				break
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	out2, in2 := a.WireBytes()
	// ResetTimer drops metrics reported before it: all of them here.
	b.ReportMetric(float64(len(js)), "json_B/op")
	b.ReportMetric(float64(out1-out0+in1-in0)/5, "idle_wire_B/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu_us/op")
	b.ReportMetric(float64(out2-out1+in2-in1)/float64(b.N), "wire_B/op")
}

// BenchmarkControlApply measures how soon every live instance applies a
// change of the desired state on the embedded stack: 3 instances, b.N
// changes (pause, resume, ...), the time from writing each to each
// instance's agent reporting it applied (apply_p50_ms, apply_p99_ms,
// apply_max_ms over every instance x change), and to the writer seeing
// all three acknowledge it in their telemetry (ack_p99_ms). Target: every
// instance within 2 s at p99.
//
//	go test ./fleet -run '^$' -bench ControlApply -benchtime 50x
func BenchmarkControlApply(b *testing.B) {
	e := newEnv(b)
	ins := []*instance{e.instance("apply-a", 1, false), e.instance("apply-b", 1, false), e.instance("apply-c", 1, false)}
	c := e.controller("")
	waitFor(b, "3 live instances", 30*time.Second, func() bool { return c.View().Totals.Live == 3 })
	ctx := context.Background()
	var apply, ack []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ch, err := c.SetPaused(ctx, i%2 == 0)
		if err != nil {
			b.Fatal(err)
		}
		written := ch.Desired.At
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, in := range ins {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for in.agent.Control().Offset < ch.Offset {
					time.Sleep(time.Millisecond)
				}
				mu.Lock()
				apply = append(apply, time.Since(written))
				mu.Unlock()
			}()
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if _, err := c.Wait(wctx, ch, nil); err != nil {
			b.Fatal(err)
		}
		cancel()
		ack = append(ack, time.Since(written))
		wg.Wait()
	}
	b.StopTimer()
	q := func(ds []time.Duration, p float64) float64 {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(apply, 0.5), "apply_p50_ms")
	b.ReportMetric(q(apply, 0.99), "apply_p99_ms")
	b.ReportMetric(q(apply, 1), "apply_max_ms")
	b.ReportMetric(q(ack, 0.99), "ack_p99_ms")
}
