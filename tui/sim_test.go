package tui

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// simBackend is live-looking data for the pty benchmarks: every Snapshot
// advances a simulated clock by one second and moves rates, lags and
// latencies the way a busy pipeline does, so the renderer has real churn to
// diff. (The console's own tests against the real stack live in tui/live.)
type simBackend struct {
	mu     sync.Mutex
	d      Data
	rng    *rand.Rand
	idle   bool // no traffic: only the clock moves
	frames int
}

func newSim(partitions int, idle bool) *simBackend {
	return &simBackend{d: fixture(partitions), rng: rand.New(rand.NewPCG(1, 2)), idle: idle}
}

func (s *simBackend) Snapshot() Data {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frames++
	d := s.d
	d.Now = d.Now.Add(time.Second)
	if !s.idle {
		in := 1200 + 300*math.Sin(float64(s.frames)/10) + s.rng.Float64()*80
		d.Flow.In = append(d.Flow.In[1:len(d.Flow.In):len(d.Flow.In)], Sample{d.Now, in})
		d.Flow.Out = append(d.Flow.Out[1:len(d.Flow.Out):len(d.Flow.Out)], Sample{d.Now, in - s.rng.Float64()*40})
		base := 3 + s.rng.Float64()
		d.Latency.History = append(d.Latency.History[1:len(d.Latency.History):len(d.Latency.History)], LatencySample{d.Now, Percentiles{ms(base), ms(base * 1.7), ms(base * 2.3), ms(base * 3)}})
		d.Latency.Predict = d.Latency.History[len(d.Latency.History)-1].Percentiles
		ps := make([]Partition, len(d.Kafka.Partitions))
		copy(ps, d.Kafka.Partitions)
		var total int64
		for i := range ps {
			ps[i].ProduceRate = 100 + float64(s.rng.IntN(20))
			ps[i].ConsumeRate = 100 + float64(s.rng.IntN(20))
			ps[i].Lag = int64(20 + s.rng.IntN(80))
			total += ps[i].Lag
		}
		d.Kafka.Partitions = ps
		d.Kafka.TotalLag = total
		d.Kafka.LagTrend = append(d.Kafka.LagTrend[1:len(d.Kafka.LagTrend):len(d.Kafka.LagTrend)], float64(total))
	}
	d.Kafka.At, d.Flow.At, d.Latency.At, d.Models.At, d.Workers.At, d.DLQ.At = d.Now, d.Now, d.Now, d.Now, d.Now, d.Now
	s.d = d
	return d
}

func (s *simBackend) ScaleTo(context.Context, int) error      { return nil }
func (s *simBackend) SetTarget(context.Context, string) error { return nil }
func (s *simBackend) SetPaused(context.Context, bool) error   { return nil }
func (s *simBackend) AdjustDemoRate(int) (float64, error)     { return 0, nil }
func (s *simBackend) StartPerf(context.Context, string) error { return nil }
func (s *simBackend) CancelPerf() error                       { return nil }
func (s *simBackend) ExportReport() (string, string, error) {
	return "", "", errors.New("simulated backend writes no reports")
}
