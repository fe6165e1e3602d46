package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
)

// benchRecord is a perf-style 2 KB record: the seed's id and features plus
// random base64 padding (so zstd cannot make it small).
func benchRecord(dst []byte, n, width, size int, rng *rand.Rand) []byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	dst = append(dst[:0], `{"id":"b-`...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	dst = append(dst, `","sent_at_ns":`...)
	dst = strconv.AppendInt(dst, time.Now().UnixNano(), 10)
	dst = append(dst, `,"features":[`...)
	for i := 0; i < width; i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendFloat(dst, rng.Float64(), 'f', 6, 64)
	}
	dst = append(dst, `],"pad":"`...)
	for len(dst) < size-2 {
		dst = append(dst, alphabet[rng.IntN(len(alphabet))])
	}
	return append(dst, `"}`...)
}

// preload writes n seed-shaped records of size bytes to ai_input as fast
// as sarama allows.
func (e *testEnv) preload(tb testing.TB, n, size int) {
	e.preloadWith(tb, n, func(i int, rng *rand.Rand) []byte { return benchRecord(nil, i, e.width, size, rng) })
}

// preloadWith writes n records made by build.
func (e *testEnv) preloadWith(tb testing.TB, n int, build func(i int, rng *rand.Rand) []byte) {
	sc, err := e.kafka.Sarama()
	if err != nil {
		tb.Fatal(err)
	}
	sc.Producer.Return.Successes = false
	sc.Producer.Return.Errors = true
	sc.Producer.RequiredAcks = sarama.WaitForLocal
	sc.Producer.Flush.Bytes = 256 << 10
	sc.Producer.Flush.Frequency = 5 * time.Millisecond
	sc.Producer.Compression = sarama.CompressionNone
	p, err := sarama.NewAsyncProducer(e.kafka.Brokers, sc)
	if err != nil {
		tb.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		for pe := range p.Errors() {
			select {
			case errc <- pe.Err:
			default:
			}
		}
		close(errc)
	}()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n; i++ {
		v := build(i, rng)
		p.Input() <- &sarama.ProducerMessage{Topic: pipeline.DefaultInput, Key: sarama.StringEncoder("b-" + strconv.Itoa(i)), Value: sarama.ByteEncoder(v)}
	}
	p.AsyncClose()
	if err := <-errc; err != nil {
		tb.Fatalf("preload: %v", err)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkDrain is the benchmark: the embedded broker, the model
// server and the worker pool in this process drain pre-loaded 2 KB records
// (WORKER_BENCH_RECORDS, default 200,000) from ai_input to ai_output. It
// reports msg/s and CPU microseconds per message (the whole process:
// broker, model server and worker, from getrusage). Run with -benchtime=1x;
// each iteration drains the same records with a fresh consumer group.
func BenchmarkDrain(b *testing.B) {
	n := benchEnvInt("WORKER_BENCH_RECORDS", 200_000)
	e := newTestEnv(b)
	e.preload(b, n, 2048)
	var rates, cpus []float64
	for i := 0; b.Loop(); i++ {
		rate, cpu := e.drain(b, n, "bench-"+strconv.Itoa(i))
		b.Logf("drain %d: %d records, %.0f msg/s, %.1f cpu-us/msg", i+1, n, rate, cpu)
		rates, cpus = append(rates, rate), append(cpus, cpu)
	}
	// The machine is shared: the median of -benchtime=Nx drains is the figure.
	b.ReportMetric(median(rates), "msg/s")
	b.ReportMetric(median(cpus), "cpu-us/msg")
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// BenchmarkDrainRollout is BenchmarkDrain with a rollout's split applied
// (50% of records to v2 by key, a 5% shadow, per-side windows and output
// distributions) against the same drain without one, alternating on one
// preloaded topic so both see the same machine: what a rollout costs the
// worker per record.
func BenchmarkDrainRollout(b *testing.B) {
	n := benchEnvInt("WORKER_BENCH_RECORDS", 100_000)
	e := newTestEnv(b)
	e.preload(b, n, 2048)
	split := &Split{ID: "bench", Baseline: tfserving.Target{Version: 1}, Candidate: tfserving.Target{Version: 2}, Share: 0.5, Shadow: 0.05}
	var rates, cpus [2][]float64
	for i := 0; b.Loop(); i++ {
		for k, sp := range []*Split{nil, split} {
			rate, cpu := e.drainWith(b, n, "bench-r"+strconv.Itoa(i)+"-"+strconv.Itoa(k), sp)
			rates[k], cpus[k] = append(rates[k], rate), append(cpus[k], cpu)
		}
		b.Logf("drain %d: no rollout %.0f msg/s %.1f cpu-us/msg; split 50%% + shadow 5%% %.0f msg/s %.1f cpu-us/msg", i+1, rates[0][i], cpus[0][i], rates[1][i], cpus[1][i])
	}
	b.ReportMetric(median(rates[0]), "msg/s")
	b.ReportMetric(median(cpus[0]), "cpu-us/msg")
	b.ReportMetric(median(rates[1]), "split-msg/s")
	b.ReportMetric(median(cpus[1]), "split-cpu-us/msg")
}

// drain runs a pool on a fresh group until n results are acked.
func (e *testEnv) drain(tb testing.TB, n int, group string) (msgPerSec, cpuUsPerMsg float64) {
	return e.drainWith(tb, n, group, nil)
}

// drainWith is drain with a rollout's split applied from the start.
func (e *testEnv) drainWith(tb testing.TB, n int, group string, split *Split) (msgPerSec, cpuUsPerMsg float64) {
	target := tfserving.Target{}
	if split != nil {
		target = split.Baseline
	}
	p, err := NewPool(e.kafka, e.tfs, Config{Group: group, Target: target, Workers: benchEnvInt("WORKER_BENCH_WORKERS", pipeline.DefaultWorkers)}, testLogger(tb))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// WORKER_BENCH_CPUPROFILE profiles the drain alone, without the preload.
	if path := os.Getenv("WORKER_BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			tb.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			tb.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if err := p.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	if split != nil {
		if err := p.SetSplit(split); err != nil {
			tb.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Minute)
	var first time.Time
	var cpuFirst time.Duration
	var doneAt time.Time
	var cpuDone time.Duration
	for {
		// Counters, not Stats(): merging the latency windows every few
		// milliseconds would be measured as the worker's CPU.
		got := p.produced.Load() + p.dlq.Load()
		if first.IsZero() && got > 0 {
			// Measure from the first result: group join and the initial
			// rebalance are not throughput.
			first, cpuFirst = time.Now(), cpuTime()
		}
		if got >= uint64(n) {
			doneAt, cpuDone = time.Now(), cpuTime()
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("drained %d of %d in 10 minutes", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 12*time.Second)
	defer ccancel()
	_ = p.Close(cctx)
	secs := doneAt.Sub(first).Seconds()
	s := p.Stats()
	if s.DLQ > 0 {
		tb.Fatalf("%d benchmark records went to the DLQ: %v", s.DLQ, s.Errors)
	}
	return float64(n) / secs, float64((cpuDone - cpuFirst).Microseconds()) / float64(n)
}

// BenchmarkSeedConsumer drains the same pre-loaded 2 KB records with the
// seed's consumer_inference.py (Debian's python3-confluent-kafka and
// python3-requests, one REST :predict per record, against our model server)
// and with the worker, side by side on one broker. The seed's consumer is
// slow, so it stops after WORKER_BENCH_SEED_RECORDS (default 3,000); the
// worker drains WORKER_BENCH_RECORDS (default here 50,000) so its rate is
// a steady state, not a ramp.
func BenchmarkSeedConsumer(b *testing.B) {
	if _, err := exec.LookPath("/usr/bin/python3"); err != nil {
		b.Skip("no /usr/bin/python3")
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import confluent_kafka, requests").Run(); err != nil {
		b.Skip("python3-confluent-kafka or python3-requests is not installed (apt-get install python3-confluent-kafka python3-requests)")
	}
	n := benchEnvInt("WORKER_BENCH_SEED_RECORDS", 3000)
	nw := max(n, benchEnvInt("WORKER_BENCH_RECORDS", 50_000))
	e := newTestEnv(b)
	e.preload(b, nw, 2048)
	var seed, work []float64
	script, _ := filepath.Abs("testdata/consumer_inference.py")
	for i := 0; b.Loop(); i++ {
		url := "http://" + e.model.restAddr + "/v1/models/" + pipeline.DefaultModel + ":predict"
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		cmd := exec.CommandContext(ctx, "/usr/bin/python3", script, e.kafka.Brokers[0], url, pipeline.DefaultInput, "seed-"+strconv.Itoa(i), strconv.Itoa(n))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		cancel()
		if err != nil {
			b.Fatalf("consumer_inference.py: %v\n%s", err, stderr.String())
		}
		var r struct {
			Records int     `json:"records"`
			Errors  int     `json:"errors"`
			Rate    float64 `json:"msg_per_s"`
		}
		if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
			b.Fatalf("consumer_inference.py printed %q: %v", out, err)
		}
		if r.Records != n || r.Errors != 0 {
			b.Fatalf("seed consumer: %d records, %d errors", r.Records, r.Errors)
		}
		workerRate, _ := e.drain(b, nw, "worker-"+strconv.Itoa(i))
		b.Logf("run %d: seed consumer %.0f msg/s (%d records), worker %.0f msg/s (%d records)", i+1, r.Rate, n, workerRate, nw)
		seed, work = append(seed, r.Rate), append(work, workerRate)
	}
	b.ReportMetric(median(seed), "seed-msg/s")
	b.ReportMetric(median(work), "worker-msg/s")
	b.ReportMetric(median(work)/median(seed), "speedup")
}
