package tfserving

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"
)

// TF Serving's own request metrics (names as its Prometheus exporter
// writes them; see /work/shared/docs/tfserving-api.md 4.8).
const (
	metricRequestCount   = ":tensorflow:serving:request_count"
	metricRequestLatency = ":tensorflow:serving:request_latency"
)

// ServerCounters is one scrape of a model's request metrics: what TF
// Serving counted since it started.
type ServerCounters struct {
	Time time.Time
	// Buckets is the request_latency histogram (microseconds, successful
	// requests), summed over API and entrypoint: cumulative counts by upper
	// bound, +Inf last.
	Buckets []LatencyBucket
	Sum     float64 // microseconds
	Count   float64
	// ByStatus is request_count by status code name (OK, NOT_FOUND, ...).
	ByStatus map[string]float64
}

// LatencyBucket is one cumulative bucket of a Prometheus histogram.
type LatencyBucket struct {
	LE    float64 // upper bound in microseconds; +Inf for the last
	Count float64
}

// ServerCountersOf picks model's request metrics out of a scrape.
func ServerCountersOf(samples []PromSample, model string, at time.Time) ServerCounters {
	c := ServerCounters{Time: at, ByStatus: map[string]float64{}}
	byLE := map[float64]float64{}
	for _, s := range samples {
		if s.Label("model_name") != model {
			continue
		}
		switch s.Name {
		case metricRequestCount:
			c.ByStatus[s.Label("status")] += s.Value
		case metricRequestLatency + "_bucket":
			le, err := strconv.ParseFloat(s.Label("le"), 64)
			if err == nil && !math.IsNaN(le) {
				byLE[le] += s.Value
			}
		case metricRequestLatency + "_sum":
			c.Sum += s.Value
		case metricRequestLatency + "_count":
			c.Count += s.Value
		}
	}
	for le, n := range byLE {
		c.Buckets = append(c.Buckets, LatencyBucket{LE: le, Count: n})
	}
	sort.Slice(c.Buckets, func(i, j int) bool { return c.Buckets[i].LE < c.Buckets[j].LE })
	return c
}

// ServerView is TF Serving's own account of a model between two scrapes:
// server-side request latency (what the model server spent, without the
// network and the worker's queues) and requests by status.
type ServerView struct {
	From, To time.Time
	Requests float64            // all statuses, in the interval
	ByStatus map[string]float64 // in the interval
	Errors   float64            // not OK, in the interval
	// Latency of the successful requests in the interval, estimated from
	// the histogram's buckets (linear within a bucket, as Prometheus's
	// histogram_quantile does): exact to the bucket, TF's grow by 1.8x.
	Count               float64
	Mean, P50, P95, P99 time.Duration
}

// RPS is the request rate over the interval.
func (v ServerView) RPS() float64 {
	if d := v.To.Sub(v.From).Seconds(); d > 0 {
		return v.Requests / d
	}
	return 0
}

// ServerViewOf is what happened between two scrapes. A counter that went
// down means TF Serving restarted: the later scrape is then the interval.
func ServerViewOf(prev, cur ServerCounters) ServerView {
	v := ServerView{From: prev.Time, To: cur.Time, ByStatus: map[string]float64{}}
	reset := cur.Count < prev.Count
	for st, n := range cur.ByStatus {
		reset = reset || n < prev.ByStatus[st]
	}
	base := prev
	if reset {
		base = ServerCounters{ByStatus: map[string]float64{}}
	}
	for st, n := range cur.ByStatus {
		d := n - base.ByStatus[st]
		if d <= 0 {
			continue
		}
		v.ByStatus[st] = d
		v.Requests += d
		if st != "OK" {
			v.Errors += d
		}
	}
	prevAt := map[float64]float64{}
	for _, b := range base.Buckets {
		prevAt[b.LE] = b.Count
	}
	delta := make([]LatencyBucket, 0, len(cur.Buckets))
	for _, b := range cur.Buckets {
		delta = append(delta, LatencyBucket{LE: b.LE, Count: max(0, b.Count-prevAt[b.LE])})
	}
	v.Count = cur.Count - base.Count
	if v.Count > 0 {
		v.Mean = us(((cur.Sum - base.Sum) / v.Count))
	}
	v.P50, v.P95, v.P99 = quantile(delta, 0.50), quantile(delta, 0.95), quantile(delta, 0.99)
	return v
}

func us(v float64) time.Duration { return time.Duration(v * float64(time.Microsecond)) }

// quantile interpolates q in cumulative buckets; 0 when empty. A quantile
// in the +Inf bucket is the largest finite bound (all that is known).
func quantile(bs []LatencyBucket, q float64) time.Duration {
	if len(bs) == 0 {
		return 0
	}
	total := bs[len(bs)-1].Count
	if total <= 0 {
		return 0
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for _, b := range bs {
		if b.Count >= rank {
			if math.IsInf(b.LE, 1) {
				return us(lower)
			}
			in := b.Count - below
			if in <= 0 {
				return us(b.LE)
			}
			return us(lower + (b.LE-lower)*(rank-below)/in)
		}
		if !math.IsInf(b.LE, 1) {
			lower = b.LE
		}
		below = b.Count
	}
	return us(lower)
}

// MetricsWatcher scrapes TF Serving's Prometheus page every interval and
// keeps the latest ServerView (--tfserving-metrics).
type MetricsWatcher struct {
	url, model string
	interval   time.Duration
	log        *slog.Logger

	mu   sync.Mutex
	prev *ServerCounters
	view ServerView
	err  error
	ok   bool
}

// NewMetricsWatcher watches model on the page at url.
func NewMetricsWatcher(url, model string, interval time.Duration, log *slog.Logger) *MetricsWatcher {
	if interval <= 0 {
		interval = time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &MetricsWatcher{url: url, model: model, interval: interval, log: log}
}

// URL is the page watched.
func (w *MetricsWatcher) URL() string { return w.url }

// Run scrapes until ctx ends.
func (w *MetricsWatcher) Run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		w.Scrape(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Scrape reads the page once and, from the second scrape on, updates the
// view.
func (w *MetricsWatcher) Scrape(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, w.interval+2*time.Second)
	defer cancel()
	samples, err := FetchMetrics(sctx, w.url)
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if w.err == nil || w.err.Error() != err.Error() {
			w.log.Warn("read TF Serving's metrics", "url", w.url, "err", err)
		}
		w.err = err
		return
	}
	cur := ServerCountersOf(samples, w.model, now)
	w.err = nil
	if w.prev != nil {
		w.view, w.ok = ServerViewOf(*w.prev, cur), true
	}
	w.prev = &cur
}

// ErrNoServerView means only one scrape has succeeded so far: a rate needs
// two.
var ErrNoServerView = errors.New("one scrape so far: rates need two")

// View is the latest interval, or why there is none.
func (w *MetricsWatcher) View() (ServerView, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.err != nil:
		return w.view, w.err
	case !w.ok:
		return ServerView{}, ErrNoServerView
	}
	return w.view, nil
}
