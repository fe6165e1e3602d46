package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
	"github.com/inferops/inferops/rollout"
)

// TestRolloutDriverKilledHolds: `inferops rollout start` is a process of
// its own driving a worker process; SIGKILLed at its first step, the fleet
// holds that step (past the hold it would have advanced after) and every
// reader says so; `inferops rollout resume` from another process takes it
// over and promotes it. --read-only refuses.
func TestRolloutDriverKilledHolds(t *testing.T) {
	bin := inferopsBinary(t)
	st := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{}, Models: &modelserver.Config{RESTAddr: "-"}})
	kc := st.Kafka()
	logs := t.TempDir()
	w := serveProcess(t, bin)
	w.Args = []string{bin, "worker", "--brokers", st.Addrs.Kafka, "--tfserving", st.Addrs.GRPC, "--instance", "ro-1", "--workers", "2", "--target-version", "1", "--config="}
	wlog, err := os.Create(filepath.Join(logs, "worker.log"))
	if err != nil {
		t.Fatal(err)
	}
	w.Stderr = wlog
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Process.Kill(); _ = w.Wait(); _ = wlog.Close() })
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(wlog.Name())
			t.Logf("--- worker log (last 3 KB)\n%s", tailBytes(b, 3000))
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var ctl *fleet.Controller
	waitFor(t, "the fleet topics", 60*time.Second, func() bool {
		octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
		defer ocancel()
		ctl, err = fleet.Open(octx, fleet.ControllerConfig{Kafka: kc, ReadOnly: "test"})
		return err == nil
	})
	defer ctl.Close()
	waitView(t, ctl, "the worker live", 60*time.Second, func(v fleet.View) bool { return v.Totals.Live == 1 })
	results := readResults(t, ctx, kc)
	tr := startTraffic(t, kc, 300)
	defer tr.stop()

	// Refused before anything is written.
	if _, stderr, code := runCLI(t, bin, "rollout", "start", "--to", "2", "--read-only", "--brokers", st.Addrs.Kafka, "--tfserving", st.Addrs.GRPC); code != exitUsage || !strings.Contains(stderr, "read-only") {
		t.Fatalf("rollout start --read-only: exit %d, %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, bin, "rollout", "start", "--to", "2", "--steps", "50,10", "--brokers", st.Addrs.Kafka); code != exitUsage || !strings.Contains(stderr, "--steps") {
		t.Fatalf("rollout start --steps 50,10: exit %d, %s", code, stderr)
	}

	// Every record of this traffic has the same features, so each
	// version's output is one value and any two versions "shift" beyond
	// any PSI: the gate is out of this test's way (rollout's tests judge it).
	plan := []string{"--steps", "10,100", "--hold", "4s", "--warmup", "0", "--min-samples", "20", "--latency-slack", "40ms", "--max-psi", "100"}
	drv := serveProcess(t, bin)
	drv.Args = append([]string{bin, "rollout", "start", "--to", "2", "--brokers", st.Addrs.Kafka, "--tfserving", st.Addrs.GRPC, "--config="}, plan...)
	var dout bytes.Buffer
	drv.Stdout, drv.Stderr = &dout, &dout
	if err := drv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = drv.Process.Kill(); _ = drv.Wait() })
	v := waitView(t, ctl, "the first step driven", 60*time.Second, func(v fleet.View) bool {
		s := rollout.StatusOf(v)
		return s.State == rollout.StateCanary && s.Rollout.Step == 0 && s.DriverAlive && len(s.Instances) == 1
	})
	_ = drv.Process.Signal(syscall.SIGKILL)
	_ = drv.Wait()
	killed := time.Now()
	id := v.Rollout.ID
	t.Logf("driver killed at step 1 of %s; it said:\n%s", id, dout.String())

	v = waitView(t, ctl, "the rollout holding", 10*time.Second, func(v fleet.View) bool {
		return rollout.StatusOf(v).State == rollout.StateHolding
	})
	// Past the hold it would have advanced after: still the first step.
	time.Sleep(6 * time.Second)
	out, _, code := runCLI(t, bin, "rollout", "status", "--json", "--brokers", st.Addrs.Kafka)
	var s rollout.Status
	if err := json.Unmarshal([]byte(out), &s); err != nil || code != 0 {
		t.Fatalf("rollout status --json: exit %d, %v: %s", code, err, out)
	}
	if s.State != rollout.StateHolding || s.Rollout.Step != 0 || s.Rollout.Share != 10 || s.DriverAlive || !strings.Contains(s.Advice, "rollout resume") {
		t.Fatalf("after the driver died: state %s step %d share %v alive %v advice %q", s.State, s.Rollout.Step, s.Rollout.Share, s.DriverAlive, s.Advice)
	}
	text, _, _ := runCLI(t, bin, "rollout", "status", "--brokers", st.Addrs.Kafka)
	if !strings.Contains(text, "HOLDING at 10%") || !strings.Contains(text, "driver") {
		t.Fatalf("rollout status:\n%s", text)
	}
	// The share held: results from the last 5 s are ~10% v2.
	var n, v2 int
	for _, r := range results.snapshot().results {
		if r.ts.After(killed.Add(time.Second)) {
			n++
			if r.version == 2 {
				v2++
			}
		}
	}
	share := float64(v2) / float64(max(n, 1)) * 100
	t.Logf("holding: %.1f%% of %d results from v2", share, n)
	if n < 500 || share < 6 || share > 14 {
		t.Fatalf("while holding, %.1f%% of %d results came from v2; the step is 10%%", share, n)
	}

	// Resumed from another process: it holds the step again, then promotes.
	rout, rerr, code := runCLI(t, bin, "rollout", "resume", "--brokers", st.Addrs.Kafka, "--tfserving", st.Addrs.GRPC)
	if code != 0 || !strings.Contains(rout, "promoted") {
		t.Fatalf("rollout resume: exit %d\n%s\n%s", code, rout, rerr)
	}
	v = waitView(t, ctl, "promoted", 10*time.Second, func(v fleet.View) bool {
		return v.Desired != nil && v.Desired.Target == "2" && rollout.StatusOf(v).State == rollout.StatePromoted
	})
	if _, stderr, code := runCLI(t, bin, "rollout", "abort", "--brokers", st.Addrs.Kafka); code == 0 || !strings.Contains(stderr, "no rollout in progress") {
		t.Fatalf("abort after promotion: exit %d, %s", code, stderr)
	}
}
