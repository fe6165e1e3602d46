package modelserver

import (
	"math"
	"strconv"
	"time"

	"github.com/inferops/inferops/infer/tfpb"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
)

// metrics uses TF Serving's metric names: the TF monitoring name with every
// character outside [A-Za-z0-9_] replaced by ':'. Each server has its own
// registry, so restarts and parallel tests never collide.
type metrics struct {
	reg *prometheus.Registry

	requestCount   *prometheus.CounterVec   // model_name, status
	requestLatency *prometheus.HistogramVec // model_name, API, entrypoint (µs)
	runtimeLatency *prometheus.HistogramVec // model_name, API, runtime (µs)
	loadAttempts   *prometheus.CounterVec   // model_path, status
	loadLatency    *prometheus.CounterVec   // model_path (total µs)

	// Batching metrics exist only with --enable-batching, as in TF, so a
	// scraper (doctor) can tell whether batching is on.
	queuingLatency *prometheus.HistogramVec // thread_pool_name (µs)
	wrappedRuns    prometheus.Counter
	inputBatch     prometheus.Histogram
	processedBatch prometheus.Histogram
	padding        *prometheus.HistogramVec // execution_batch_size

	// injectedFaults exists only with --fault: a scrape of a drill shows
	// what was injected, and a production page never has it.
	injectedFaults *prometheus.CounterVec // model_name, version, kind
}

// latencyBuckets are TF's request latency buckets: 10·1.8^k µs, 33 of them.
func latencyBuckets() []float64 {
	b := make([]float64, 33)
	for k := range b {
		b[k] = 10 * math.Pow(1.8, float64(k))
	}
	return b
}

// batchSizeBuckets cover TF's batch sizes (powers of two up to 8192).
func batchSizeBuckets() []float64 { return prometheus.ExponentialBuckets(1, 2, 14) }

func newMetrics(batching bool) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requestCount = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: ":tensorflow:serving:request_count", Help: "The total number of requests.",
	}, []string{"model_name", "status"})
	m.requestLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: ":tensorflow:serving:request_latency", Help: "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
		Buckets: latencyBuckets(),
	}, []string{"model_name", "API", "entrypoint"})
	m.runtimeLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: ":tensorflow:serving:runtime_latency", Help: "Distribution of wall time (in microseconds) for model runtime.",
		Buckets: latencyBuckets(),
	}, []string{"model_name", "API", "runtime"})
	m.loadAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: ":tensorflow:cc:saved_model:load_attempt_count", Help: "The number of times a model was loaded.",
	}, []string{"model_path", "status"})
	m.loadLatency = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: ":tensorflow:cc:saved_model:load_latency", Help: "Latency in microseconds for models that were successfully loaded.",
	}, []string{"model_path"})
	m.reg.MustRegister(m.requestCount, m.requestLatency, m.runtimeLatency, m.loadAttempts, m.loadLatency)
	if batching {
		m.queuingLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: ":tensorflow:serving:batching_session:queuing_latency", Help: "Distribution of wall time spent (in microseconds) in queuing.",
			Buckets: latencyBuckets(),
		}, []string{"thread_pool_name"})
		m.wrappedRuns = prometheus.NewCounter(prometheus.CounterOpts{
			Name: ":tensorflow:serving:batching_session:wrapped_run_count", Help: "Counts the number of wrapped runs.",
		})
		m.inputBatch = prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: ":tensorflow:serving:batching_session:input_batch_size", Help: "Tracks the batch size distribution on the inputs.",
			Buckets: batchSizeBuckets(),
		})
		m.processedBatch = prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: ":tensorflow:serving:batching_session:processed_batch_size", Help: "Tracks the batch size distribution on processing.",
			Buckets: batchSizeBuckets(),
		})
		m.padding = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: ":tensorflow:serving:batching_session:padding_size", Help: "Tracks the padding size distribution on batches.",
			Buckets: batchSizeBuckets(),
		}, []string{"execution_batch_size"})
		m.reg.MustRegister(m.queuingLatency, m.wrappedRuns, m.inputBatch, m.processedBatch, m.padding)
	}
	return m
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func (m *metrics) loaded(path string, ok bool, d time.Duration) {
	st := "success"
	if !ok {
		st = "fail"
	}
	m.loadAttempts.WithLabelValues(path, st).Inc()
	if ok {
		m.loadLatency.WithLabelValues(path).Add(micros(d))
	}
}

// codeName is TF's spelling of a status code: INVALID_ARGUMENT, not
// gRPC-go's InvalidArgument.
func codeName(c codes.Code) string { return tfpb.Code(c).String() }

// maxLabel bounds a client-chosen label value (a model name), so hostile
// names cannot bloat the metrics page.
const maxLabel = 128

// request counts one request; latency is recorded for successes only, as TF.
func (m *metrics) request(modelName, api, entrypoint string, code codes.Code, d time.Duration) {
	if len(modelName) > maxLabel {
		modelName = modelName[:maxLabel]
	}
	m.requestCount.WithLabelValues(modelName, codeName(code)).Inc()
	if code == codes.OK {
		m.requestLatency.WithLabelValues(modelName, api, entrypoint).Observe(micros(d))
	}
}

func (m *metrics) runtime(modelName, api string, d time.Duration) {
	m.runtimeLatency.WithLabelValues(modelName, api, "inferops").Observe(micros(d))
}

// countFaults adds the injected-faults counter (a server with --fault).
func (m *metrics) countFaults() {
	m.injectedFaults = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: ":tensorflow:serving:inferops_injected_faults_total", Help: "Predict calls slowed (kind=latency) or failed (kind=error) on purpose by inferops serve --fault.",
	}, []string{"model_name", "version", "kind"})
	m.reg.MustRegister(m.injectedFaults)
}

// injected counts one fault applied to a Predict of model version.
func (m *metrics) injected(model string, version int64, kind string) {
	m.injectedFaults.WithLabelValues(model, strconv.FormatInt(version, 10), kind).Inc()
}

// submitted counts one request entering the batcher (TF's wrapped run).
func (m *metrics) submitted(rows int) {
	m.wrappedRuns.Inc()
	m.inputBatch.Observe(float64(rows))
}

// ran records one executed batch of rows padded to padded.
func (m *metrics) ran(rows, padded int) {
	m.processedBatch.Observe(float64(padded))
	m.padding.WithLabelValues(strconv.Itoa(padded)).Observe(float64(padded - rows))
}
