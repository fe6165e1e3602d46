package worker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// BenchmarkWorkerProcess is the worker's own cost, the figure the issue
// budgets: the broker and the model server run in this (the benchmark's)
// process; the worker pool runs in a child process (this test binary again,
// as TestWorkerProcessChild), which measures its own CPU with getrusage from
// its first result to its last and prints it. So the figure is the worker
// process alone, like `inferops worker` beside a broker and a TF Serving on
// other hosts. WORKER_BENCH_RECORDS (default 200,000) records of 2 KB are
// pre-loaded once; each iteration drains them with a fresh group and
// WORKER_BENCH_WORKERS (default 4) members. Run with -benchtime=Nx; the
// median of the N drains is reported.
//
// WORKER_BENCH_MODEL picks the model: my_model (default; the seed's
// records) or ads_ctr (its five typed inputs, synthesized as perf does and
// padded to the same 2 KB). WORKER_BENCH_CHILD_BIN runs another build's
// test binary (go test -c of an older commit) as the child, so two
// workers are compared against the very same broker and model server.
func BenchmarkWorkerProcess(b *testing.B) {
	n := benchEnvInt("WORKER_BENCH_RECORDS", 200_000)
	modelName := os.Getenv("WORKER_BENCH_MODEL")
	if modelName == "" {
		modelName = pipeline.DefaultModel
	}
	st := stacktest.Start(b, stack.Config{Broker: &cluster.BrokerConfig{}, Models: &modelserver.Config{RESTAddr: "-"}})
	tfs, err := tfserving.Dial(tfserving.Config{Address: st.Addrs.GRPC, Timeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer tfs.Close()
	e := &testEnv{t: b, broker: st.Broker, kafka: st.Kafka(), tfs: tfs, width: model.Width}
	if modelName == pipeline.DefaultModel {
		e.preload(b, n, 2048)
	} else {
		md, err := tfs.Metadata(context.Background(), modelName, tfserving.Target{})
		if err != nil {
			b.Fatal(err)
		}
		sig, err := md.ServingDefault()
		if err != nil {
			b.Fatal(err)
		}
		schema, err := pipeline.NewSchema(sig.InputSpecs(), pipeline.SchemaOptions{})
		if err != nil {
			b.Fatal(err)
		}
		synth := pipeline.NewSynth(schema)
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
		fill := make([]byte, 2048)
		for i := range fill {
			fill[i] = alphabet[i*7%len(alphabet)]
		}
		e.preloadWith(b, n, func(i int, rng *rand.Rand) []byte {
			v := append([]byte(`{"id":"b-`), strconv.Itoa(i)...)
			v = append(v, `","sent_at_ns":`...)
			v = strconv.AppendInt(v, time.Now().UnixNano(), 10)
			v = synth.AppendInputs(v, rng)
			return pipeline.ClosePadded(v, 2048, fill)
		})
	}
	var rates, cpus []float64
	for i := 0; b.Loop(); i++ {
		r := e.childDrain(b, n, modelName, "proc-"+strconv.Itoa(i))
		b.Logf("drain %d: %d records, %.0f msg/s, %.2f worker cpu-us/msg", i+1, n, r.Rate, r.CPUPerMsg)
		rates, cpus = append(rates, r.Rate), append(cpus, r.CPUPerMsg)
	}
	b.ReportMetric(median(rates), "msg/s")
	b.ReportMetric(median(cpus), "worker-cpu-us/msg")
}

// childResult is what TestWorkerProcessChild prints on its last line.
type childResult struct {
	Records   int     `json:"records"`
	Rate      float64 `json:"msg_per_s"`
	CPUPerMsg float64 `json:"cpu_us_per_msg"`
	DLQ       uint64  `json:"dlq"`
}

const childEnv = "INFEROPS_WORKER_BENCH_CHILD"

// childDrain runs the worker in a child process until n results are acked.
func (e *testEnv) childDrain(tb testing.TB, n int, modelName, group string) childResult {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin := os.Args[0]
	if b := os.Getenv("WORKER_BENCH_CHILD_BIN"); b != "" {
		bin = b
	}
	cmd := exec.CommandContext(ctx, bin, "-test.run=^TestWorkerProcessChild$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		childEnv+"=1",
		"WORKER_CHILD_BROKERS="+strings.Join(e.kafka.Brokers, ","),
		"WORKER_CHILD_TFSERVING="+e.tfs.Address(),
		"WORKER_CHILD_GROUP="+group,
		"WORKER_CHILD_MODEL="+modelName,
		"WORKER_CHILD_RECORDS="+strconv.Itoa(n),
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("worker child: %v\n%s\n%s", err, out, stderr.String())
	}
	var r childResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	found := false
	for sc.Scan() {
		if line := sc.Bytes(); bytes.HasPrefix(line, []byte(`{"records"`)) {
			found = json.Unmarshal(line, &r) == nil
		}
	}
	if !found {
		tb.Fatalf("worker child printed no result:\n%s\n%s", out, stderr.String())
	}
	if r.DLQ > 0 {
		tb.Fatalf("%d benchmark records went to the DLQ", r.DLQ)
	}
	return r
}

// TestWorkerProcessChild is the child half of BenchmarkWorkerProcess; it
// does nothing in a normal test run.
func TestWorkerProcessChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("the child process of BenchmarkWorkerProcess")
	}
	n, _ := strconv.Atoi(os.Getenv("WORKER_CHILD_RECORDS"))
	kc := cluster.Config{Brokers: strings.Split(os.Getenv("WORKER_CHILD_BROKERS"), ",")}
	tfs, err := tfserving.Dial(tfserving.Config{Address: os.Getenv("WORKER_CHILD_TFSERVING"), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer tfs.Close()
	p, err := NewPool(kc, tfs, Config{Model: os.Getenv("WORKER_CHILD_MODEL"), Group: os.Getenv("WORKER_CHILD_GROUP"), Workers: benchEnvInt("WORKER_BENCH_WORKERS", pipeline.DefaultWorkers)}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// WORKER_BENCH_CPUPROFILE profiles the worker process.
	if path := os.Getenv("WORKER_BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var first, doneAt time.Time
	var cpuFirst, cpuDone time.Duration
	deadline := time.Now().Add(10 * time.Minute)
	for {
		got := p.produced.Load() + p.dlq.Load()
		if first.IsZero() && got > 0 {
			first, cpuFirst = time.Now(), cpuTime()
		}
		if got >= uint64(n) {
			doneAt, cpuDone = time.Now(), cpuTime()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("drained %d of %d in 10 minutes", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 12*time.Second)
	defer ccancel()
	_ = p.Close(cctx)
	r := childResult{Records: n, Rate: float64(n) / doneAt.Sub(first).Seconds(),
		CPUPerMsg: float64((cpuDone - cpuFirst).Microseconds()) / float64(n), DLQ: p.dlq.Load()}
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
}
