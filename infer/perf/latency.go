package perf

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds with 3 significant digits (0.1%
// error) from 1 µs to an hour: a record that took longer is clamped to an
// hour, which still fails any SLO.
const (
	histMin    = 1
	histMax    = int64(time.Hour / time.Microsecond)
	histDigits = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

// latencyRecorder is the run's end-to-end histogram plus a short sliding
// window for the live "current p99" (the whole-run p99 moves too slowly to
// show a stall as it happens).
type latencyRecorder struct {
	mu       sync.Mutex
	total    *hdrhistogram.Histogram
	cur, old *hdrhistogram.Histogram // the window: this second and the last
}

func newLatencyRecorder() *latencyRecorder {
	return &latencyRecorder{total: newHist(), cur: newHist(), old: newHist()}
}

func clampMicros(d time.Duration) int64 {
	us := d.Microseconds()
	if us < histMin {
		return histMin
	}
	if us > histMax {
		return histMax
	}
	return us
}

func (r *latencyRecorder) record(d time.Duration) {
	us := clampMicros(d)
	r.mu.Lock()
	_ = r.total.RecordValue(us)
	_ = r.cur.RecordValue(us)
	r.mu.Unlock()
}

// rotate advances the live window; the progress ticker calls it each second.
func (r *latencyRecorder) rotate() {
	r.mu.Lock()
	r.old, r.cur = r.cur, r.old
	r.cur.Reset()
	r.mu.Unlock()
}

// windowP99 is the p99 of the last one to two seconds, in ms.
func (r *latencyRecorder) windowP99() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur.TotalCount()+r.old.TotalCount() == 0 {
		return 0
	}
	h := newHist()
	h.Merge(r.cur)
	h.Merge(r.old)
	return msFromMicros(h.ValueAtQuantile(99))
}

// summary snapshots the whole run.
func (r *latencyRecorder) summary() LatencyMS {
	r.mu.Lock()
	defer r.mu.Unlock()
	return summarize(r.total)
}

// LatencyMS is a latency distribution in milliseconds.
type LatencyMS struct {
	Avg  float64 `json:"avg"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

func summarize(h *hdrhistogram.Histogram) LatencyMS {
	if h.TotalCount() == 0 {
		return LatencyMS{}
	}
	return LatencyMS{
		Avg:  round3(h.Mean() / 1000),
		P50:  msFromMicros(h.ValueAtQuantile(50)),
		P95:  msFromMicros(h.ValueAtQuantile(95)),
		P99:  msFromMicros(h.ValueAtQuantile(99)),
		P999: msFromMicros(h.ValueAtQuantile(99.9)),
		Max:  msFromMicros(h.Max()),
	}
}

func msFromMicros(us int64) float64 { return round3(float64(us) / 1000) }

// round3 keeps JSON readable: microsecond resolution is all HDR gives us.
func round3(v float64) float64 {
	if v < 0 {
		return -round3(-v)
	}
	return float64(int64(v*1000+0.5)) / 1000
}

// shardedHist spreads generator-side recording over a few locks: hundreds of
// streams timing their own send lag would otherwise queue on one mutex.
type shardedHist struct {
	shards [8]struct {
		mu sync.Mutex
		h  *hdrhistogram.Histogram
		_  [48]byte // keep shards on separate cache lines
	}
}

func newShardedHist() *shardedHist {
	s := &shardedHist{}
	for i := range s.shards {
		s.shards[i].h = newHist()
	}
	return s
}

func (s *shardedHist) record(shard int, d time.Duration) {
	sh := &s.shards[shard&7]
	sh.mu.Lock()
	_ = sh.h.RecordValue(clampMicros(d))
	sh.mu.Unlock()
}

func (s *shardedHist) merged() *hdrhistogram.Histogram {
	h := newHist()
	for i := range s.shards {
		s.shards[i].mu.Lock()
		h.Merge(s.shards[i].h)
		s.shards[i].mu.Unlock()
	}
	return h
}
