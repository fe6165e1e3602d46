package worker

import (
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/inferops/inferops/pipeline"
)

// LatencySummary is a latency distribution over the sliding window.
type LatencySummary struct {
	P50, P95, P99, Max time.Duration
	Count              uint64
	// Hist is the window itself (microseconds, 1 us to 1 min, 2
	// significant digits): a copy the caller owns, which the fleet
	// telemetry exports so percentiles across processes are exact merges.
	// Nil when the summary was not read from a window.
	Hist *hdrhistogram.Histogram `json:"-"`
}

// MemberStats is one consumer-group member of the pool.
type MemberStats struct {
	ID         string // the group member id assigned by the coordinator
	ClientID   string // "inferops-<instance>-w<N>", also the group.instance.id
	Partitions []int32
	InRate     float64 // records/s read
	OutRate    float64 // records/s answered (result or DLQ acked)
	AvgBatch   float64 // rows per Predict over the last interval
	InFlight   int     // records read and not yet acked
}

// VersionStats is what one model version served: rows since start, and
// the Predict and end-to-end latency of its rows over the window.
type VersionStats struct {
	Count    uint64
	Predict  LatencySummary
	EndToEnd LatencySummary
}

// Stats is an immutable snapshot of the pool for the console, `status` and
// the Prometheus exporter. Counters are totals since the pool started.
type Stats struct {
	Time       time.Time
	Instance   string // --instance: members are "inferops-<Instance>-w<N>"
	Members    []MemberStats
	Consumed   uint64
	Produced   uint64
	DLQ        uint64
	Retries    uint64
	Duplicates uint64
	Errors     map[string]uint64 // by kind: DLQ reasons, predict, produce, consume
	Predict    LatencySummary
	EndToEnd   LatencySummary
	AvgBatch   float64
	QPS        float64 // results per second over the last interval
	Breaker    string
	Target     string
	Paused     bool
	Workers    int
	Lag        int64 // records read-able but not yet committed, over owned partitions
	Versions   map[int64]VersionStats
	Rollout    *RolloutStats // the rollout the pool applies, nil when none
}

// Signature is the model signature a running pool serves (Pool.Signature).
type Signature struct {
	Inputs  []SignatureInput // sorted by name
	Outputs []string         // the outputs results carry, sorted
	IDField string
	Raw     bool // --value-format raw: the record is the one string input
	StandIn bool // the model server marks the model as a stand-in
}

// SignatureInput is one input and the record field it is read from.
type SignatureInput struct {
	pipeline.TensorSpec
	Field string
}

// ring is a bounded FIFO of the latest values.
type ring[T any] struct {
	mu   sync.Mutex
	buf  []T
	next int
	full bool
}

func newRing[T any](n int) *ring[T] { return &ring[T]{buf: make([]T, n)} }

func (r *ring[T]) add(v T) {
	r.mu.Lock()
	r.buf[r.next] = v
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
	r.mu.Unlock()
}

// list returns the values oldest first.
func (r *ring[T]) list() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]T(nil), r.buf[:r.next]...)
	}
	out := make([]T, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}

// Latency windows: Windows slices of WindowSlice each, so the summary covers
// the last 10 s and forgets a spike after that.
const (
	windowSlices = 10
	windowSlice  = time.Second
	latencyMax   = int64(time.Minute / time.Microsecond)
)

// window is a sliding-window latency histogram in microseconds.
type window struct {
	mu sync.Mutex
	h  *hdrhistogram.WindowedHistogram
}

func newWindow() *window {
	return &window{h: hdrhistogram.NewWindowed(windowSlices, 1, latencyMax, 2)}
}

func (w *window) record(d time.Duration) {
	us := int64(d / time.Microsecond)
	if us < 1 {
		us = 1
	}
	if us > latencyMax {
		us = latencyMax
	}
	w.mu.Lock()
	_ = w.h.Current.RecordValue(us)
	w.mu.Unlock()
}

// recordN records n observations of the same latency with one lock.
func (w *window) recordN(d time.Duration, n int) {
	us := int64(d / time.Microsecond)
	if us < 1 {
		us = 1
	}
	if us > latencyMax {
		us = latencyMax
	}
	w.mu.Lock()
	_ = w.h.Current.RecordValues(us, int64(n))
	w.mu.Unlock()
}

func (w *window) rotate() {
	w.mu.Lock()
	w.h.Rotate()
	w.mu.Unlock()
}

func (w *window) summary() LatencySummary {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.h.Merge()
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	return LatencySummary{
		P50:   us(m.ValueAtQuantile(50)),
		P95:   us(m.ValueAtQuantile(95)),
		P99:   us(m.ValueAtQuantile(99)),
		Max:   us(m.Max()),
		Count: uint64(m.TotalCount()),
		Hist:  m,
	}
}
