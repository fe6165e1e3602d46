package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/IBM/sarama"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// TestFleetOfWorkerProcesses is issue 14's "done": three `inferops worker`
// processes on the embedded stack under traffic, driven through the fleet's
// Go API (the console's): 3 -> 9 -> 3 workers in total, target version 1
// and back, pause and resume. Every input id reaches ai_output or the DLQ;
// the fleet's merged end-to-end p99 equals the p99 of the results' own
// latencies (result timestamp - input timestamp) to the histogram's
// precision; a SIGKILLed process is lost within three intervals, restarts
// under its name at once, and a second live process under a name is
// refused.
func TestFleetOfWorkerProcesses(t *testing.T) {
	bin := inferopsBinary(t)
	st := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{}, Models: &modelserver.Config{RESTAddr: "-"}})
	kc := st.Kafka()
	logs := t.TempDir()

	procs := map[string]*exec.Cmd{}
	start := func(name string) *exec.Cmd {
		t.Helper()
		cmd := serveProcess(t, bin) // its isolated environment
		cmd.Args = []string{bin, "worker", "--brokers", st.Addrs.Kafka, "--tfserving", st.Addrs.GRPC, "--instance", name, "--workers", "1", "--config="}
		f, err := os.Create(filepath.Join(logs, name+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = f
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = f.Close() })
		procs[name] = cmd
		return cmd
	}
	defer func() {
		if t.Failed() {
			ents, _ := os.ReadDir(logs)
			for _, e := range ents {
				b, _ := os.ReadFile(filepath.Join(logs, e.Name()))
				t.Logf("--- %s (last 3 KB)\n%s", e.Name(), tailBytes(b, 3000))
			}
		}
	}()
	for _, n := range []string{"fa", "fb", "fc"} {
		start(n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	octx, ocancel := context.WithTimeout(ctx, 60*time.Second)
	var ctl *fleet.Controller
	var err error
	for { // the first worker creates the fleet topics
		if ctl, err = fleet.Open(octx, fleet.ControllerConfig{Kafka: kc, Who: "tester@fleet-test"}); err == nil || octx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	ocancel()
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	waitView(t, ctl, "3 live instances with 1 worker each", 60*time.Second, func(v fleet.View) bool {
		return v.Totals.Live == 3 && v.Totals.Workers == 3
	})

	testFleetCLI(t, bin, st.Addrs.Kafka)
	results := readResults(t, ctx, kc)
	tr := startTraffic(t, kc, 150)

	// apply waits for a change; it returns when it was written and when
	// every instance had applied it: results in between may come from
	// either state.
	apply := func(what string, ch fleet.Change, err error) (written, acked time.Time) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		ack, err := ctl.Wait(wctx, ch, nil)
		if err != nil {
			t.Fatalf("%s: %v (%s)", what, err, ack)
		}
		t.Logf("%s", ack)
		return ch.Desired.At, time.Now()
	}
	perInstance := func(want int) func(fleet.View) bool {
		return func(v fleet.View) bool {
			for _, i := range v.Instances {
				if i.Live() && i.Workers != want {
					return false
				}
			}
			return v.Totals.Live == 3
		}
	}
	time.Sleep(2 * time.Second)
	ch, err := ctl.Scale(ctx, 9)
	_, _ = apply("scale to 9", ch, err)
	waitView(t, ctl, "3 workers on each instance", 10*time.Second, perInstance(3))
	ch, err = ctl.Scale(ctx, 3)
	_, _ = apply("scale to 3", ch, err)
	waitView(t, ctl, "1 worker on each instance", 10*time.Second, perInstance(1))

	ch, err = ctl.SetTarget(ctx, "1")
	_, v1At := apply("target 1", ch, err)
	time.Sleep(3 * time.Second)
	ch, err = ctl.SetTarget(ctx, "latest")
	latestWritten, latestAt := apply("target latest", ch, err)
	time.Sleep(2 * time.Second)

	ch, err = ctl.SetPaused(ctx, true)
	pauseWritten, pausedAt := apply("pause", ch, err)
	waitView(t, ctl, "nothing flowing while paused", 15*time.Second, func(v fleet.View) bool {
		return v.Totals.OutRate == 0 && v.Totals.InRate == 0
	})
	time.Sleep(2 * time.Second)
	ch, err = ctl.SetPaused(ctx, false)
	resumeWritten, _ := apply("resume", ch, err)
	time.Sleep(2 * time.Second)
	sent := tr.stop()

	// Every id is answered: a result, or a dead letter for the bad ones.
	waitFor(t, "every input answered", 90*time.Second, func() bool { return results.answered(sent) })
	rs := results.snapshot()
	for id, bad := range sent.bad {
		if bad && rs.dlq[id] == 0 {
			t.Errorf("malformed %s never reached the DLQ", id)
		}
		if !bad && rs.out[id] == 0 {
			t.Errorf("%s never reached %s", id, pipeline.DefaultOutput)
		}
	}
	// Versions followed the target: after a switch was acknowledged (and
	// the batches already in flight were answered) every result came from
	// it; nothing was answered while the fleet was paused.
	margin := 500 * time.Millisecond
	var v1, v2, whilePaused int
	for _, r := range rs.results {
		switch {
		case r.ts.After(v1At.Add(margin)) && r.ts.Before(latestWritten):
			if r.version != 1 {
				t.Errorf("result %s at %s from v%d, while the fleet's target was 1", r.id, r.ts.Format("15:04:05.000"), r.version)
			}
			v1++
		case r.ts.After(latestAt.Add(margin)) && r.ts.Before(pauseWritten):
			if r.version != 2 {
				t.Errorf("result %s from v%d after the target went back to latest (2)", r.id, r.version)
			}
			v2++
		case r.ts.After(pausedAt.Add(margin)) && r.ts.Before(resumeWritten):
			whilePaused++
		}
	}
	if v1 == 0 || v2 == 0 {
		t.Errorf("%d results from v1 while targeted, %d from v2 after: want both", v1, v2)
	}
	if whilePaused > 0 {
		t.Errorf("%d results while the fleet was paused", whilePaused)
	}

	// Merged p99 = p99 of the raw latencies. The windows hold the last
	// 10 s: let them empty, send a burst, and compare the fleet's merge
	// with the results of exactly that burst.
	waitView(t, ctl, "the latency windows empty after 10 s without traffic", 30*time.Second, func(v fleet.View) bool {
		return v.EndToEnd.Count() == 0
	})
	burstStart := time.Now().Truncate(time.Millisecond)
	burst := startTraffic(t, kc, 0) // as fast as one producer goes
	burst.send(t, "burst", 600)
	bsent := burst.stop()
	waitFor(t, "the burst answered", 30*time.Second, func() bool { return results.answered(bsent) })
	raw := hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 2)
	var lastResult time.Time
	for _, r := range results.snapshot().results {
		if r.ts.Before(burstStart) {
			continue
		}
		in, ok := bsent.ts[r.id]
		if !ok {
			t.Fatalf("result %s after the burst started is not from the burst", r.id)
		}
		_ = raw.RecordValue(max(1, r.ts.Sub(in).Microseconds()))
		if r.ts.After(lastResult) {
			lastResult = r.ts
		}
	}
	v := waitView(t, ctl, "every instance's snapshot after the burst's last result", 10*time.Second, func(v fleet.View) bool {
		for _, i := range v.Instances {
			if i.Live() && !i.Time.After(lastResult.Add(300*time.Millisecond)) {
				return false
			}
		}
		return true
	})
	merged := v.EndToEnd.Histogram()
	if merged == nil || merged.TotalCount() != raw.TotalCount() {
		t.Fatalf("the fleet's end-to-end window holds %d samples, the burst produced %d results", v.EndToEnd.Count(), raw.TotalCount())
	}
	for _, q := range []float64{50, 90, 99, 99.9, 100} {
		if got, want := merged.ValueAtQuantile(q), raw.ValueAtQuantile(q); got != want {
			t.Errorf("merged e2e q%v = %d us, the results' own latencies give %d us", q, got, want)
		}
	}
	t.Logf("burst: %d results, merged e2e p50 %s p99 %s = raw p50 %s p99 %s", raw.TotalCount(), v.EndToEnd.Quantile(50), v.EndToEnd.Quantile(99),
		time.Duration(raw.ValueAtQuantile(50))*time.Microsecond, time.Duration(raw.ValueAtQuantile(99))*time.Microsecond)

	// A second live process under a name is refused, naming --instance.
	dup := serveProcess(t, bin)
	dup.Args = []string{bin, "worker", "--brokers", st.Addrs.Kafka, "--tfserving", st.Addrs.GRPC, "--instance", "fa", "--config="}
	var dupErr bytes.Buffer
	dup.Stderr = &dupErr
	if err := dup.Run(); err == nil || !strings.Contains(dupErr.String(), "--instance") || dup.ProcessState.ExitCode() != 2 {
		t.Errorf("a second fa: %v, exit %d, stderr %q; want exit 2 naming --instance", err, dup.ProcessState.ExitCode(), dupErr.String())
	}

	// SIGKILL: lost within three intervals; a restart under the name is
	// not refused (its predecessor's pid is gone) and becomes live.
	if err := procs["fc"].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	_, _ = procs["fc"].Process.Wait()
	waitView(t, ctl, "fc lost", 20*time.Second, func(v fleet.View) bool {
		i, ok := v.Instance("fc")
		return ok && i.State == fleet.StateLost
	})
	lostAfter := time.Since(killed)
	// Three 1 s intervals after its last snapshot, which was at most one
	// interval before the kill; the rest is this loaded machine.
	if lostAfter > 3*time.Second+3*time.Second {
		t.Errorf("fc shown lost %v after SIGKILL: want within three intervals (3 s)", lostAfter)
	}
	t.Logf("fc lost %v after SIGKILL", lostAfter.Round(10*time.Millisecond))
	restarted := time.Now()
	start("fc")
	waitView(t, ctl, "fc live again after its restart", 60*time.Second, func(v fleet.View) bool {
		i, ok := v.Instance("fc")
		return ok && i.State == fleet.StateLive && i.Started.After(restarted.Add(-time.Second))
	})

	// The same through the command line, and status's fleet object.
	out, stderr, code := runCLI(t, bin, "fleet", "target", "latest", "--wait", "--json", "--brokers", st.Addrs.Kafka)
	var changed struct {
		Change fleet.Change `json:"change"`
		Ack    fleet.Ack    `json:"ack"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &changed) != nil || !changed.Ack.Done || len(changed.Ack.Applied) != 3 || changed.Change.Desired.By == "" {
		t.Errorf("fleet target latest --wait --json: exit %d, %s %s", code, out, stderr)
	}
	out, stderr, code = runCLI(t, bin, "status", "--json", "--sample", "0", "--brokers", st.Addrs.Kafka, "--tfserving", st.Addrs.GRPC)
	var status struct {
		Fleet *fleet.Status `json:"fleet"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &status) != nil || status.Fleet == nil || status.Fleet.Totals.Live != 3 || status.Fleet.Desired == nil {
		t.Errorf("status --json: exit %d, no fleet of 3 live instances: %.2000s %s", code, out, stderr)
	}

	// SIGTERM: every process drains, exits 0 and leaves the view at once.
	for name, p := range procs {
		if p.ProcessState != nil {
			continue
		}
		if err := p.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(); err != nil {
			t.Errorf("%s after SIGTERM: %v", name, err)
		}
	}
	waitView(t, ctl, "no instance left after the tombstones", 10*time.Second, func(v fleet.View) bool { return len(v.Instances) == 0 })
}

func waitView(t *testing.T, ctl *fleet.Controller, what string, timeout time.Duration, cond func(fleet.View) bool) fleet.View {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v := ctl.View()
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			var b bytes.Buffer
			fleet.PrintStatus(&b, v.Status())
			t.Fatalf("timed out after %v waiting for %s; the fleet:\n%s", timeout, what, b.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tailBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// sentRecords is what a traffic generator sent: each id's timestamp (as
// Kafka keeps it) and whether it was malformed.
type sentRecords struct {
	ts  map[string]time.Time
	bad map[string]bool
}

// traffic produces records at a steady rate until stop.
type traffic struct {
	prod sarama.SyncProducer
	mu   sync.Mutex
	sent sentRecords
	done chan struct{}
	wg   sync.WaitGroup
}

// startTraffic sends rate records/s (0: none until send) with ids t0..,
// every 40th malformed.
func startTraffic(t *testing.T, kc cluster.Config, rate int) *traffic {
	sc, err := kc.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	sc.Producer.Return.Successes = true
	prod, err := sarama.NewSyncProducer(kc.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	tr := &traffic{prod: prod, sent: sentRecords{ts: map[string]time.Time{}, bad: map[string]bool{}}, done: make(chan struct{})}
	if rate > 0 {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-tr.done:
					return
				case <-tick.C:
					tr.send(t, "t", rate/10)
				}
			}
		}()
	}
	return tr
}

// send produces n records with ids prefix<k>, k counting on from the last.
func (tr *traffic) send(t *testing.T, prefix string, n int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	msgs := make([]*sarama.ProducerMessage, 0, n)
	base := len(tr.sent.ts)
	feats := "[" + strings.TrimSuffix(strings.Repeat("0.25,", 32), ",") + "]"
	for k := base; k < base+n; k++ {
		id := prefix + strconv.Itoa(k)
		v := `{"id":"` + id + `","features":` + feats + `}`
		bad := prefix == "t" && k%40 == 39
		if bad {
			v = `{"id":"` + id + `","features":[1,2]}` // wrong width: the DLQ
		}
		ts := time.Now().Truncate(time.Millisecond)
		tr.sent.ts[id], tr.sent.bad[id] = ts, bad
		msgs = append(msgs, &sarama.ProducerMessage{Topic: pipeline.DefaultInput, Key: sarama.StringEncoder(id), Value: sarama.StringEncoder(v), Timestamp: ts})
	}
	if err := tr.prod.SendMessages(msgs); err != nil {
		t.Errorf("produce: %v", err)
	}
}

func (tr *traffic) stop() sentRecords {
	close(tr.done)
	tr.wg.Wait()
	_ = tr.prod.Close()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.sent
}

// resultLog is everything read from ai_output and the DLQ.
type resultLog struct {
	mu      sync.Mutex
	out     map[string]int
	dlq     map[string]int
	results []result
}

type result struct {
	id      string
	ts      time.Time
	version int64
}

func readResults(t *testing.T, ctx context.Context, kc cluster.Config) *resultLog {
	sc, err := kc.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	cons, err := sarama.NewConsumer(kc.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cons.Close() })
	rl := &resultLog{out: map[string]int{}, dlq: map[string]int{}}
	for _, topic := range []string{pipeline.DefaultOutput, pipeline.DefaultDLQ} {
		parts, err := cons.Partitions(topic)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case m, ok := <-pc.Messages():
						if !ok {
							return
						}
						id := string(m.Key)
						rl.mu.Lock()
						if topic == pipeline.DefaultDLQ {
							rl.dlq[id]++
						} else {
							rl.out[id]++
							var ver int64
							for _, h := range m.Headers {
								if string(h.Key) == pipeline.HeaderModelVersion {
									ver, _ = strconv.ParseInt(string(h.Value), 10, 64)
								}
							}
							rl.results = append(rl.results, result{id: id, ts: m.Timestamp, version: ver})
						}
						rl.mu.Unlock()
					}
				}
			}()
		}
	}
	return rl
}

func (rl *resultLog) answered(s sentRecords) bool {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	for id := range s.ts {
		if rl.out[id] == 0 && rl.dlq[id] == 0 {
			return false
		}
	}
	return true
}

type resultSnapshot struct {
	out, dlq map[string]int
	results  []result
}

func (rl *resultLog) snapshot() resultSnapshot {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	s := resultSnapshot{out: map[string]int{}, dlq: map[string]int{}, results: append([]result(nil), rl.results...)}
	for k, v := range rl.out {
		s.out[k] = v
	}
	for k, v := range rl.dlq {
		s.dlq[k] = v
	}
	return s
}

// runCLI runs the binary in an isolated environment.
func runCLI(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := serveProcess(t, bin)
	cmd.Args = append([]string{bin}, append(args, "--config=")...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// testFleetCLI: `inferops fleet` against three live instances with no
// desired state yet: the table and its JSON, a dry run that clamps and
// spreads but writes nothing, and the refusals.
func testFleetCLI(t *testing.T, bin, brokers string) {
	out, stderr, code := runCLI(t, bin, "fleet", "status", "--brokers", brokers)
	for _, want := range []string{"desired: none", "instances 3 live, 0 lost", "fa ", "fb ", "fc ", "INSTANCE"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("fleet status: exit %d, lacks %q:\n%s%s", code, want, out, stderr)
		}
	}
	out, _, code = runCLI(t, bin, "fleet", "status", "--json", "--brokers", brokers)
	var st fleet.Status
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st.Instances) != 3 || st.Instances[0].Instance != "fa" || st.Instances[0].Members[0].ClientID != "inferops-fa-w1" {
		t.Errorf("fleet status --json: exit %d:\n%s", code, out)
	}
	out, _, code = runCLI(t, bin, "fleet", "scale", "20", "--dry-run", "--brokers", brokers)
	for _, want := range []string{"dry run: would write scale to 12 workers (seq 1)", "ai_input has 12 partitions", "spread over the live instances: fa 4, fb 4, fc 4"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("fleet scale 20 --dry-run: exit %d, lacks %q:\n%s", code, want, out)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"fleet", "pause", "--read-only"}, "read-only (--read-only)"},
		{[]string{"fleet", "scale"}, "needs a value"},
		{[]string{"fleet", "scale", "x"}, "want a whole number"},
		{[]string{"fleet", "target", "v0"}, "versions are positive"},
		{[]string{"fleet", "reboot"}, "want 'inferops fleet status|scale N"},
		{[]string{"fleet", "pause", "now"}, "takes no value"},
	} {
		_, stderr, code := runCLI(t, bin, append(tc.args, "--brokers", brokers)...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("inferops %s: exit %d, stderr %q; want a refusal with %q", strings.Join(tc.args, " "), code, stderr, tc.want)
		}
	}
	out, _, _ = runCLI(t, bin, "fleet", "status", "--json", "--brokers", brokers)
	if json.Unmarshal([]byte(out), &st) != nil || st.Desired != nil {
		t.Errorf("a dry run or a refusal wrote a desired state: %+v", st.Desired)
	}
}
