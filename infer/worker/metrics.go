package worker

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the pool's Prometheus series. They are always updated (an
// atomic add per record) and only exposed when RegisterMetrics is called, so
// `inferops worker --metrics-addr` and the console share one code path.
type metrics struct {
	consumed, produced, dlq, retries prometheus.Counter
	errors                           *prometheus.CounterVec
	versionRows                      *prometheus.CounterVec
	predict, e2e                     prometheus.Histogram
	breaker, workers                 prometheus.Gauge
}

func newMetrics() *metrics {
	// Buckets from 250 us to ~16 s: Predict of a 64-row batch on loopback is
	// sub-millisecond, end-to-end under a backlog is seconds.
	buckets := prometheus.ExponentialBuckets(0.00025, 2, 17)
	return &metrics{
		consumed: prometheus.NewCounter(prometheus.CounterOpts{Name: "inferops_worker_consumed_total", Help: "Input records read from Kafka."}),
		produced: prometheus.NewCounter(prometheus.CounterOpts{Name: "inferops_worker_produced_total", Help: "Results acked by Kafka."}),
		dlq:      prometheus.NewCounter(prometheus.CounterOpts{Name: "inferops_worker_dlq_total", Help: "Input records dead-lettered and acked by Kafka."}),
		retries:  prometheus.NewCounter(prometheus.CounterOpts{Name: "inferops_worker_predict_retries_total", Help: "Predict calls retried after a failure."}),
		errors:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "inferops_worker_errors_total", Help: "Errors by kind: DLQ reasons, predict, produce, consume."}, []string{"kind"}),
		versionRows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "inferops_worker_rows_by_version_total",
			Help: "Rows served, by the model version that really served them."}, []string{"version"}),
		predict: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "inferops_worker_predict_seconds", Help: "TF Serving Predict latency per micro-batch.", Buckets: buckets}),
		e2e: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "inferops_worker_e2e_seconds",
			Help: "Input record timestamp to its result's timestamp (what a downstream consumer measures), per acked result.", Buckets: buckets}),
		breaker: prometheus.NewGauge(prometheus.GaugeOpts{Name: "inferops_worker_breaker_state", Help: "TF Serving circuit breaker: 0 closed, 1 half-open, 2 open."}),
		workers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "inferops_worker_workers", Help: "Consumer-group members running in this process."}),
	}
}

func breakerGauge(state string) float64 {
	switch state {
	case BreakerOpen:
		return 2
	case BreakerHalfOpen:
		return 1
	}
	return 0
}

// RegisterMetrics exposes the pool's inferops_worker_* series on reg,
// including the lag of the partitions this process owns.
func (p *Pool) RegisterMetrics(reg prometheus.Registerer) error {
	m := p.metrics
	lag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "inferops_worker_lag",
		Help: "Records in the owned partitions not yet committed (high watermark - marked offset)."},
		func() float64 { return float64(p.lag()) })
	for _, c := range []prometheus.Collector{m.consumed, m.produced, m.dlq, m.retries, m.errors, m.versionRows, m.predict, m.e2e, m.breaker, m.workers, lag} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (p *Pool) lag() int64 {
	p.mu.Lock()
	ms := append([]*member(nil), p.members...)
	p.mu.Unlock()
	var total int64
	for _, m := range ms {
		_, l := m.stats()
		total += l
	}
	return total
}
