package tfserving

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// LatencySnapshot summarises the Predict round trips served by one version.
type LatencySnapshot struct {
	Count              int64
	P50, P95, P99, Max time.Duration
}

// latencies keeps one HDR histogram per served model version. Values are
// microseconds from 1 µs to 60 s at 3 significant digits (~0.1% error).
type latencies struct {
	mu sync.Mutex
	h  map[int64]*hdrhistogram.Histogram
}

func (l *latencies) record(version int64, d time.Duration) {
	us := d.Microseconds()
	if us < 1 {
		us = 1
	}
	l.mu.Lock()
	if l.h == nil {
		l.h = map[int64]*hdrhistogram.Histogram{}
	}
	h := l.h[version]
	if h == nil {
		h = hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
		l.h[version] = h
	}
	_ = h.RecordValue(us) // only fails above 60 s, which the timeout prevents
	l.mu.Unlock()
}

func (l *latencies) snapshot(reset bool) map[int64]LatencySnapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[int64]LatencySnapshot, len(l.h))
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	for v, h := range l.h {
		out[v] = LatencySnapshot{
			Count: h.TotalCount(),
			P50:   us(h.ValueAtQuantile(50)),
			P95:   us(h.ValueAtQuantile(95)),
			P99:   us(h.ValueAtQuantile(99)),
			Max:   us(h.Max()),
		}
		if reset {
			h.Reset()
		}
	}
	return out
}
