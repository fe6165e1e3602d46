package perf

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/worker"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// startModelServer runs the embedded TF-Serving-compatible server on a
// random loopback port, with inject added to every Predict.
func startModelServer(t testing.TB, inject time.Duration) *tfserving.Client {
	t.Helper()
	st := stacktest.Start(t, stack.Config{Models: &modelserver.Config{RESTAddr: "-", InjectLatency: inject}})
	c, err := tfserving.Dial(tfserving.Config{Address: st.Addrs.GRPC})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// runToEnd starts a run and waits for it, failing the test if it hangs.
func runToEnd(t *testing.T, o Options) *Result {
	t.Helper()
	r, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	limit := o.Scenario.Duration + o.DrainTimeout + o.WarmupTimeout + 60*time.Second
	timeout := time.After(limit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var live Progress // the last snapshot taken while sending
wait:
	for {
		select {
		case <-r.Done():
			break wait
		case <-timeout:
			r.Cancel()
			t.Fatalf("run did not finish within %v: %+v", limit, r.Progress())
		case <-tick.C:
			if p := r.Progress(); p.Phase == PhaseRunning {
				live = p
			}
		}
	}
	// The console draws from Progress: while sending it counts up.
	if live.Sent == 0 || live.Elapsed <= 0 || live.Elapsed > live.Duration || live.TargetRate <= 0 {
		t.Errorf("no live progress seen while sending: %+v", live)
	}
	res, err := r.Result()
	if err != nil {
		t.Fatal(err)
	}
	if p := r.Progress(); p.Phase != PhaseDone {
		t.Errorf("phase after Done = %q, want %q", p.Phase, PhaseDone)
	}
	t.Logf("%s: sent %d acked %d received %d lost %d errors %d dup %d; kafka %.0f/s tf %.0f/s; latency %+v; warnings %q",
		res.RunID, res.Sent, res.Acked, res.Received, res.Lost, res.Errors, res.Duplicates, res.KafkaMsgsPerSec, res.TFQPS, res.Latency, res.Warnings)
	return res
}

func smallScenario(rate float64, d time.Duration) Scenario {
	return Scenario{Name: "test", Streams: 20, PayloadBytes: 2048, SLO: 5 * time.Second, Rate: rate, Duration: d}
}

// A healthy pipeline returns a result for every record, and a second run is
// compared with the first through the history file.
func TestHealthyPipelineLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real pipeline")
	}
	kc := startTestBroker(t).ClientConfig()
	tfs := startModelServer(t, 0)
	history := filepath.Join(t.TempDir(), HistoryFile)
	o := Options{Scenario: smallScenario(500, 2*time.Second), Kafka: kc, TFServing: tfs, HistoryPath: history, Workers: 2, Embedded: true}
	var runs []*Result
	for i := 0; i < 2; i++ {
		res := runToEnd(t, o)
		runs = append(runs, res)
		// How much of the schedule a shared (or -race) machine manages to
		// send varies; every record it did send must come back.
		if res.Sent == 0 || res.Sent+res.Unsent != 1000 {
			t.Errorf("run %d: sent %d + unsent %d, want the 1000 scheduled (500 msg/s for 2 s)", i, res.Sent, res.Unsent)
		}
		if res.Received != res.Sent || res.Lost != 0 || res.Errors != 0 || res.Acked != res.Sent || res.Duplicates != 0 {
			t.Errorf("run %d: sent %d acked %d received %d lost %d errors %d dup %d; want everything back once", i, res.Sent, res.Acked, res.Received, res.Lost, res.Errors, res.Duplicates)
		}
		l := res.Latency
		if !(l.P50 > 0 && l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
			t.Errorf("run %d: percentiles out of order: %+v", i, l)
		}
		if pl := res.ProduceLatency; pl.P50 <= 0 || pl.P50 > l.P50 || pl.Max > l.Max {
			t.Errorf("run %d: Kafka's share %+v is not part of the end-to-end %+v", i, pl, l)
		}
		if res.TFQPS <= 0 || res.KafkaMsgsPerSec <= 0 || res.SendRate <= 0 {
			t.Errorf("run %d: no achieved rates: send %.0f/s kafka %.0f/s tf %.0f/s", i, res.SendRate, res.KafkaMsgsPerSec, res.TFQPS)
		}
		if res.Pass != (res.Latency.P99 <= res.SLOms && res.Unsent <= res.Sent/100) {
			t.Errorf("run %d: pass %v disagrees with p99 %.1f ms / SLO %.0f ms and %d unsent", i, res.Pass, res.Latency.P99, res.SLOms, res.Unsent)
		}
		if res.Input != DefaultInput || res.Output != DefaultOutput {
			t.Errorf("run %d used %s -> %s, want the perf topics", i, res.Input, res.Output)
		}
	}
	if runs[0].Comparison != nil {
		t.Errorf("first run compared with a run that never happened: %+v", runs[0].Comparison)
	}
	c := runs[1].Comparison
	if c == nil || c.PreviousRunID != runs[0].RunID || !c.SameTarget {
		t.Fatalf("second run's comparison = %+v, want one against %s", c, runs[0].RunID)
	}
	hist, _, err := ReadHistory(history)
	if err != nil || len(hist) != 2 || hist[0].RunID != runs[0].RunID || hist[1].RunID != runs[1].RunID {
		t.Fatalf("history = %d runs, %v; want both runs in order", len(hist), err)
	}
}

// With no worker consuming the input, every record is reported lost and the
// run ends on its own (warm-up and drain are bounded).
// The shipped ads model runs and reports like my_model: its records are
// synthesized for its five typed inputs and every one comes back.
func TestAdsModelRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real pipeline")
	}
	kc := startTestBroker(t).ClientConfig()
	tfs := startModelServer(t, 0)
	res := runToEnd(t, Options{Scenario: smallScenario(300, 2*time.Second), Kafka: kc, TFServing: tfs, Model: model.AdsName, Workers: 2})
	if res.Sent == 0 || res.Received != res.Sent || res.Lost != 0 || res.Errors != 0 || res.DeadLettered != 0 || res.TFQPS <= 0 {
		t.Fatalf("ads_ctr: sent %d received %d lost %d errors %d dead-lettered %d tf qps %.0f", res.Sent, res.Received, res.Lost, res.Errors, res.DeadLettered, res.TFQPS)
	}
	if res.Model != model.AdsName {
		t.Errorf("result names model %q", res.Model)
	}
}

func TestAbsentWorkerReportsLost(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real pipeline")
	}
	kc := startTestBroker(t).ClientConfig()
	tfs := startModelServer(t, 0)
	o := Options{Scenario: smallScenario(200, time.Second), Kafka: kc, TFServing: tfs, NoWorker: true,
		WarmupTimeout: time.Second, DrainTimeout: time.Second}
	start := time.Now()
	res := runToEnd(t, o)
	if res.Sent < 190 || res.Received != 0 || res.Lost != res.Sent || res.Pass {
		t.Errorf("sent %d received %d lost %d pass %v; want all ~200 lost and FAIL", res.Sent, res.Received, res.Lost, res.Pass)
	}
	if len(res.Warnings) == 0 || !strings.Contains(res.Warnings[0], "warm-up") {
		t.Errorf("warnings %q, want the warm-up one naming the input topic", res.Warnings)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("an absent worker took %v to report", took)
	}
}

// The latency measured tracks a delay injected into every Predict: the run
// against a server that adds 100 ms is 100 ms (within 10%) slower at the
// median than the same run against one that adds nothing. Comparing with a
// baseline takes out Kafka's own share (the producers' 5 ms linger, fetches).
func TestLatencyMatchesInjectedDelay(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real pipeline")
	}
	const inject = 200 * time.Millisecond
	kc := startTestBroker(t).ClientConfig()
	plain, slow := startModelServer(t, 0), startModelServer(t, inject)
	// A low rate and four members with two Predicts in flight each: a record
	// never waits for a free slot, so the delay is not multiplied by queueing.
	sc := smallScenario(10, 4*time.Second)
	sc.Streams = 5
	base := Options{Scenario: sc, Kafka: kc, Workers: 4}
	want := float64(inject / time.Millisecond)
	// The machine is shared: a burst of someone else's work can shift one
	// run's median. A systematic error fails every attempt; noise rarely does.
	var tries []string
	for attempt := 0; attempt < 3; attempt++ {
		var p50 [2]float64
		for i, tfs := range []*tfserving.Client{plain, slow} {
			o := base
			o.TFServing = tfs
			res := runToEnd(t, o)
			if res.Lost != 0 || res.Received == 0 {
				t.Fatalf("lost %d of %d", res.Lost, res.Sent)
			}
			p50[i] = res.Latency.P50
		}
		added := p50[1] - p50[0]
		if added >= want*0.9 && added <= want*1.1 {
			return
		}
		tries = append(tries, fmt.Sprintf("p50 %.1f ms without, %.1f ms with: added %.1f ms", p50[0], p50[1], added))
	}
	t.Errorf("injected %v never measured within 10%%: %s", inject, strings.Join(tries, "; "))
}

func TestOptionsValidate(t *testing.T) {
	good := Options{Scenario: smallScenario(10, time.Second), Kafka: cluster.Config{Brokers: []string{"127.0.0.1:9092"}}, TFServingAddress: "127.0.0.1:8500"}
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"same topics", func(o *Options) { o.Input, o.Output = "x", "x" }, "--topic"},
		{"no tf serving", func(o *Options) { o.TFServingAddress = "" }, "--tfserving"},
		{"bad compression", func(o *Options) { o.Compression = "brotli" }, "compression"},
		{"bad scenario", func(o *Options) { o.Scenario.Rate = -1 }, "--rate"},
		{"no brokers", func(o *Options) { o.Kafka.Brokers = nil }, "--brokers"},
		{"find-max steps", func(o *Options) { o.FindMax, o.FindMaxSteps = true, 1 }, "--find-max-steps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.mod(&o)
			o.SetDefaults()
			err := o.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.want)
			}
		})
	}
	o := good
	o.SetDefaults()
	if err := o.Validate(); err != nil {
		t.Fatalf("good options rejected: %v", err)
	}
	if o.Input != DefaultInput || o.Output != DefaultOutput || o.DLQ != DefaultDLQ || o.Group != DefaultGroup {
		t.Errorf("defaults %s/%s/%s/%s, want the perf topics and group", o.Input, o.Output, o.DLQ, o.Group)
	}
	o = good
	o.Input = "ai_input"
	o.SetDefaults()
	if o.Output != "ai_output" || o.DLQ != "ai_input.dlq" {
		t.Errorf("--topic ai_input defaults output %s dlq %s, want the production ones", o.Output, o.DLQ)
	}
}

// --find-max doubles the rate while steps pass and lowers it while they
// fail, within its step budget, and reports every step it took.
func TestFindMax(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real pipeline")
	}
	kc := startTestBroker(t).ClientConfig()
	tfs := startModelServer(t, 0)
	for _, tc := range []struct {
		name    string
		slo     time.Duration
		rates   []float64
		maxRate float64
	}{
		// Every step meets a 5 s SLO at these rates, even under -race.
		{"all pass", 5 * time.Second, []float64{20, 40, 80}, 80},
		// No record crosses Kafka twice in 1 µs: every step fails, halving.
		{"all fail", time.Microsecond, []float64{20, 10, 5}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := smallScenario(20, time.Second)
			sc.Streams = 4
			sc.SLO = tc.slo
			res := runToEnd(t, Options{Scenario: sc, Kafka: kc, TFServing: tfs, Workers: 2,
				FindMax: true, FindMaxSteps: len(tc.rates), FindMaxStepDuration: time.Second})
			fm := res.FindMax
			if fm == nil {
				t.Fatal("no find_max in the result")
			}
			var rates []float64
			for _, s := range fm.Steps {
				rates = append(rates, s.Rate)
			}
			if len(rates) != len(tc.rates) {
				t.Fatalf("steps at %v, want %v", rates, tc.rates)
			}
			for i := range rates {
				// A failing step may aim at 90% of what it achieved when
				// that is below half; at these rates it never is.
				if rates[i] != tc.rates[i] {
					t.Errorf("steps at %v, want %v", rates, tc.rates)
					break
				}
			}
			if fm.MaxRate != tc.maxRate {
				t.Errorf("max rate %v, want %v", fm.MaxRate, tc.maxRate)
			}
			if res.Pass != (tc.maxRate > 0) || (tc.maxRate > 0 && res.TargetRate != tc.maxRate) {
				t.Errorf("reported step: target %v pass %v; want the best passing step", res.TargetRate, res.Pass)
			}
		})
	}
}

// A run against a pipeline that is not there fails with an error naming
// what to fix, promptly, instead of hanging.
func TestUnreachablePipeline(t *testing.T) {
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	kc := startTestBroker(t).ClientConfig()
	tfs := startModelServer(t, 0)
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"kafka down", func(o *Options) { o.Kafka = cluster.Config{Brokers: []string{closed()}} }, "--brokers"},
		{"tf serving down", func(o *Options) { o.TFServing, o.TFServingAddress = nil, closed() }, "--tfserving"},
		{"no such topic", func(o *Options) { o.Input, o.NoWorker, o.Schema = "no_such_topic", true, seedSynth(t, 32).Schema() }, "no_such_topic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Scenario: smallScenario(10, time.Second), Kafka: kc, TFServing: tfs}
			tc.mod(&o)
			r, err := Start(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-r.Done():
			case <-time.After(60 * time.Second):
				r.Cancel()
				t.Fatal("no answer within 60 s")
			}
			res, err := r.Result()
			if err == nil || res != nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Result() = %v, %v; want an error naming %s", res, err, tc.want)
			}
			t.Log(err)
		})
	}
}

// Cancel ends a run early with the figures so far, never a pass, and keeps
// it out of the history.
func TestCancel(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real pipeline")
	}
	kc := startTestBroker(t).ClientConfig()
	tfs := startModelServer(t, 0)
	history := filepath.Join(t.TempDir(), HistoryFile)
	r, err := Start(context.Background(), Options{Scenario: smallScenario(200, time.Minute), Kafka: kc, TFServing: tfs, HistoryPath: history})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for p := r.Progress(); (p.Phase != PhaseRunning || p.Sent < 100) && time.Now().Before(deadline); p = r.Progress() {
		time.Sleep(20 * time.Millisecond)
	}
	r.Cancel()
	select {
	case <-r.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("Cancel did not end the run within 30 s")
	}
	res, err := r.Result()
	if err != nil {
		t.Fatal(err)
	}
	if res.Pass || res.Sent < 100 || res.Sent > 5000 || !strings.Contains(strings.Join(res.Warnings, ";"), "cancelled") {
		t.Errorf("cancelled run: pass %v sent %d warnings %q; want FAIL, the records sent so far, a warning", res.Pass, res.Sent, res.Warnings)
	}
	if runs, _, _ := ReadHistory(history); len(runs) != 0 {
		t.Errorf("a cancelled run went into the history: %d runs", len(runs))
	}
}

// Records the worker refuses (here: 16 features for a 32-wide model) are
// counted as dead-lettered errors, not silently lost, and the drain ends as
// soon as each is accounted for.
func TestDeadLetteredRecordsAreErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real pipeline")
	}
	kc := startTestBroker(t).ClientConfig()
	tfs := startModelServer(t, 0)
	res := runToEnd(t, Options{Scenario: smallScenario(50, time.Second), Kafka: kc, TFServing: tfs, Schema: seedSynth(t, 16).Schema(),
		WarmupTimeout: 30 * time.Second, DrainTimeout: 30 * time.Second})
	if res.Sent == 0 || res.DeadLettered != res.Sent || res.Errors != res.Sent || res.Lost != res.Sent || res.Received != 0 || res.Pass {
		t.Errorf("sent %d dead-lettered %d errors %d lost %d received %d pass %v; want every record dead-lettered and FAIL",
			res.Sent, res.DeadLettered, res.Errors, res.Lost, res.Received, res.Pass)
	}
	if w := strings.Join(res.Warnings, ";"); !strings.Contains(w, "dead-lettered") || !strings.Contains(w, "warm-up: the worker dead-lettered") {
		t.Errorf("warnings %q do not mention the dead letters", res.Warnings)
	}
}

// Records the broker refuses are counted as errors (and lost), the rest of
// the run is measured as usual, and the first error is quoted.
func TestProduceErrorsAreCounted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real pipeline")
	}
	br := startTestBroker(t)
	tfs := startModelServer(t, 0)
	// Half the perf input's partitions refuse every produce, non-retriably
	// (half, so that some of the 20 stream keys surely hash there).
	br.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: DefaultInput, Partitions: []int32{0, 1, 2, 3, 4, 5}, Err: kerr.InvalidRecord, Count: -1})
	res := runToEnd(t, Options{Scenario: smallScenario(200, 2*time.Second), Kafka: br.ClientConfig(), TFServing: tfs, Workers: 2,
		WarmupTimeout: 5 * time.Second})
	failed := res.Sent - res.Acked
	if res.Errors == 0 || res.Errors != failed || res.Received != res.Acked || res.Lost != failed || res.Pass {
		t.Errorf("sent %d acked %d errors %d received %d lost %d pass %v; want the refused records as errors and lost, the rest back, FAIL",
			res.Sent, res.Acked, res.Errors, res.Received, res.Lost, res.Pass)
	}
	if w := strings.Join(res.Warnings, ";"); !strings.Contains(w, "produce errors, first: produce to "+DefaultInput) {
		t.Errorf("warnings %q do not quote the produce error", res.Warnings)
	}
}

// A worker that stops mid-run leaves the records after it without results:
// they are reported lost once the drain timeout passes, and the run ends.
func TestStoppedWorkerReportsLost(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real pipeline")
	}
	kc := startTestBroker(t).ClientConfig()
	tfs := startModelServer(t, 0)
	// The worker under test is someone else's (as with --topic): perf only
	// produces and collects.
	pool, err := worker.NewPool(kc, tfs, worker.Config{Input: DefaultInput, Output: DefaultOutput, DLQ: DefaultDLQ, Group: "external_worker", Workers: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pool.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	r, err := Start(context.Background(), Options{Scenario: smallScenario(100, 5*time.Second), Kafka: kc, TFServing: tfs, NoWorker: true, DrainTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for p := r.Progress(); (p.Phase != PhaseRunning || p.Received < 50) && time.Now().Before(deadline); p = r.Progress() {
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	err = pool.Close(ctx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Done():
	case <-time.After(60 * time.Second):
		r.Cancel()
		t.Fatalf("run did not end after its worker stopped: %+v", r.Progress())
	}
	res, err := r.Result()
	if err != nil {
		t.Fatal(err)
	}
	if res.Received < 50 || res.Lost == 0 || res.Lost != res.Sent-res.Received || res.Pass {
		t.Errorf("sent %d received %d lost %d pass %v; want the records after the stop lost and FAIL", res.Sent, res.Received, res.Lost, res.Pass)
	}
}
