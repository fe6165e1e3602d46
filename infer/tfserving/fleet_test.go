package tfserving_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/tfserving/tfstest"
	"github.com/inferops/inferops/pipeline"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// These tests run each TF Serving host as its own `inferops serve
// --broker=false` process (tfstest), as users start extra hosts, and judge
// the client by each server's own request counter.

func startHosts(t *testing.T, n int, args ...string) []*tfstest.Host {
	t.Helper()
	hs := make([]*tfstest.Host, n)
	var wg sync.WaitGroup
	for i := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hs[i] = tfstest.Start(t, args...)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return hs
}

func fleetAddr(hs []*tfstest.Host) string {
	addrs := make([]string, len(hs))
	for i, h := range hs {
		addrs[i] = h.GRPC
	}
	return strings.Join(addrs, ",")
}

func dialFleet(t *testing.T, addr string) *tfserving.Client {
	t.Helper()
	c, err := tfserving.Dial(tfserving.Config{Address: addr, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func requests(t *testing.T, hs []*tfstest.Host) []float64 {
	t.Helper()
	out := make([]float64, len(hs))
	for i, h := range hs {
		n, err := h.Requests(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out[i] = n
	}
	return out
}

func row(target tfserving.Target) tfserving.PredictRequest {
	return tfserving.PredictRequest{Model: model.Name, Target: target, Inputs: floatBatch("features", 4, model.Width, make([]float32, 4*model.Width))}
}

// load runs Predicts from g goroutines until stop is closed, retrying a
// failed call until it succeeds (as the worker does), and returns the calls
// that succeeded and the errors callers saw.
func load(ctx context.Context, c *tfserving.Client, g int, target tfserving.Target, stop <-chan struct{}) (done, failed *atomic.Int64, wait func()) {
	done, failed = new(atomic.Int64), new(atomic.Int64)
	var wg sync.WaitGroup
	for range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for {
					_, err := c.Predict(ctx, row(target))
					if err == nil {
						done.Add(1)
						break
					}
					failed.Add(1)
					if ctx.Err() != nil {
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	return done, failed, wg.Wait
}

func hostOf(f tfserving.Fleet, addr string) tfserving.HostSnapshot {
	for _, h := range f.Hosts {
		if h.Addr == addr {
			return h
		}
	}
	return tfserving.HostSnapshot{}
}

// TestFleetSpreadsEvenly: three hosts share Predicts within 10 points of a
// third each, by their own counters, and the client's per-host counts match
// the servers' exactly.
func TestFleetSpreadsEvenly(t *testing.T) {
	hs := startHosts(t, 3)
	c := dialFleet(t, fleetAddr(hs))
	ctx := context.Background()
	before := requests(t, hs)
	stop := make(chan struct{})
	done, failed, wait := load(ctx, c, 12, tfserving.Target{}, stop)
	deadline := time.Now().Add(30 * time.Second)
	for done.Load() < 3000 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wait()
	after := requests(t, hs)
	var total float64
	for i := range hs {
		total += after[i] - before[i]
	}
	if failed.Load() != 0 || total != float64(done.Load()) {
		t.Fatalf("%d calls succeeded, %d failed, servers counted %.0f", done.Load(), failed.Load(), total)
	}
	fl := c.Fleet()
	for i, h := range hs {
		share := (after[i] - before[i]) / total
		t.Logf("%s: %.0f of %.0f requests (%.1f%%)", h.GRPC, after[i]-before[i], total, 100*share)
		if share < 1.0/3-0.10 || share > 1.0/3+0.10 {
			t.Errorf("%s got %.1f%% of the calls, want 33.3%% +- 10", h.GRPC, 100*share)
		}
		hsnap := hostOf(fl, h.GRPC)
		if hsnap.State != tfserving.HostUp || float64(hsnap.Calls) != after[i]-before[i] || hsnap.Errors != 0 {
			t.Errorf("client's view of %s: %+v; the server counted %.0f", h.GRPC, hsnap, after[i]-before[i])
		}
	}
	if fl.InRotation != 3 || len(fl.Skew) != 0 {
		t.Errorf("fleet: %d in rotation, skew %v", fl.InRotation, fl.Skew)
	}
}

// TestFleetSurvivesKill: SIGKILL one of three hosts under load. No call is
// lost (every one succeeds, retried inside gRPC on another host or by the
// caller), the host leaves the rotation within 2 s and gets no attempt
// after that, and the two others take its share.
func TestFleetSurvivesKill(t *testing.T) {
	hs := startHosts(t, 3)
	c := dialFleet(t, fleetAddr(hs))
	ctx := context.Background()
	stop := make(chan struct{})
	done, failed, wait := load(ctx, c, 12, tfserving.Target{}, stop)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wait()
	}()
	for done.Load() < 500 {
		time.Sleep(20 * time.Millisecond)
	}
	victim := hs[1]
	killed := time.Now()
	victim.Kill()
	var out time.Duration
	for {
		if st := hostOf(c.Fleet(), victim.GRPC).State; st == tfserving.HostDown {
			out = time.Since(killed)
			break
		}
		if time.Since(killed) > 10*time.Second {
			t.Fatalf("killed host still %s after 10 s: %+v", hostOf(c.Fleet(), victim.GRPC).State, c.Fleet())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("killed host out of rotation after %v; %d calls failed to the caller meanwhile", out, failed.Load())
	if out > 2*time.Second {
		t.Errorf("the killed host left the rotation after %v, want within 2 s", out)
	}
	// From here on no attempt may reach it.
	attempts := hostOf(c.Fleet(), victim.GRPC).Calls
	live := requests(t, []*tfstest.Host{hs[0], hs[2]})
	atDone := done.Load()
	for done.Load() < atDone+1000 {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wait()
	fl := c.Fleet()
	if n := hostOf(fl, victim.GRPC).Calls; n != attempts {
		t.Errorf("%d attempts went to the dead host after it left the rotation", n-attempts)
	}
	after := requests(t, []*tfstest.Host{hs[0], hs[2]})
	if got := after[0] - live[0] + after[1] - live[1]; got < 1000 {
		t.Errorf("the live hosts served %.0f calls after the kill, want >= 1000", got)
	}
	if !slices.ContainsFunc(fl.Events, func(e pipeline.Event) bool {
		return e.Kind == pipeline.KindHost && e.Level == pipeline.Warn && strings.Contains(e.Message, victim.GRPC+" out of rotation")
	}) {
		t.Errorf("no out-of-rotation event for %s: %+v", victim.GRPC, fl.Events)
	}
	if fl.InRotation != 2 {
		t.Errorf("%d hosts in rotation, want 2", fl.InRotation)
	}
}

// TestFleetEjectsSlowHost: a host 40 ms slower than its peers gets less
// traffic from the least-request balancer, then is ejected with an event.
func TestFleetEjectsSlowHost(t *testing.T) {
	hs := append(startHosts(t, 2), tfstest.Start(t, "--inject-latency", "40ms"))
	slow := hs[2]
	c := dialFleet(t, fleetAddr(hs))
	ctx := context.Background()
	before := requests(t, hs)
	stop := make(chan struct{})
	done, failed, wait := load(ctx, c, 12, tfserving.Target{}, stop)
	deadline := time.Now().Add(30 * time.Second)
	var ejected tfserving.HostSnapshot
	for time.Now().Before(deadline) {
		if h := hostOf(c.Fleet(), slow.GRPC); h.State == tfserving.HostEjected {
			ejected = h
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wait()
	after := requests(t, hs)
	var total float64
	for i := range hs {
		total += after[i] - before[i]
	}
	share := (after[2] - before[2]) / total
	t.Logf("slow host: %.0f of %.0f calls (%.1f%%), %d calls, %d failed; %+v", after[2]-before[2], total, 100*share, done.Load(), failed.Load(), ejected)
	if ejected.State != tfserving.HostEjected || !strings.Contains(ejected.Reason, "p99") || ejected.EjectedUntil.IsZero() {
		t.Fatalf("the slow host was not ejected: %+v", hostOf(c.Fleet(), slow.GRPC))
	}
	if share > 0.20 {
		t.Errorf("the slow host got %.1f%% of the calls, want well under a third (<= 20%%)", 100*share)
	}
	fl := c.Fleet()
	if !slices.ContainsFunc(fl.Events, func(e pipeline.Event) bool {
		return e.Kind == pipeline.KindHost && strings.Contains(e.Message, slow.GRPC+" ejected")
	}) {
		t.Errorf("no ejection event: %+v", fl.Events)
	}
	if fl.InRotation != 2 {
		t.Errorf("%d in rotation while one is ejected, want 2", fl.InRotation)
	}
}

// TestFleetSkew: one host of three serves only version 1. With target v2
// it is flagged as skew by name and gets no request at all; the other two
// share the traffic. A version no host has still gets TF Serving's own
// NOT_FOUND, naming the host that said it.
func TestFleetSkew(t *testing.T) {
	base := filepath.Join(t.TempDir(), "my_model")
	if _, err := model.Materialize(model.Name, base); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(base, "2")); err != nil {
		t.Fatal(err)
	}
	hs := append(startHosts(t, 2), tfstest.Start(t, "--model-base-path", base))
	old := hs[2]
	c := dialFleet(t, fleetAddr(hs))
	ctx := context.Background()
	before := requests(t, hs)
	v2 := tfserving.Target{Version: 2}
	for range 300 {
		res, err := c.Predict(ctx, row(v2))
		if err != nil || res.Version != 2 {
			t.Fatalf("Predict v2: %v, %v", res, err)
		}
	}
	after := requests(t, hs)
	if n := after[2] - before[2]; n != 0 {
		t.Errorf("the v1-only host got %.0f v2 requests", n)
	}
	for i := range 2 {
		if n := after[i] - before[i]; n < 90 {
			t.Errorf("%s served %.0f of 300, want about half", hs[i].GRPC, n)
		}
	}
	fl := c.Fleet()
	if fl.Target != v2 || fl.InRotation != 2 || hostOf(fl, old.GRPC).State != tfserving.HostExcluded {
		t.Fatalf("fleet %+v", fl)
	}
	var kinds []string
	for _, s := range fl.Skew {
		kinds = append(kinds, s.Kind)
		if !slices.Equal(s.Hosts, []string{old.GRPC}) || !strings.Contains(s.Message, old.GRPC) {
			t.Errorf("skew %+v does not name only %s", s, old.GRPC)
		}
	}
	if !slices.Contains(kinds, tfserving.SkewTarget) || !slices.Contains(kinds, tfserving.SkewVersions) {
		t.Errorf("skew kinds %v, want target and versions: %+v", kinds, fl.Skew)
	}
	if !slices.ContainsFunc(fl.Events, func(e pipeline.Event) bool { return strings.HasPrefix(e.Message, "version skew: ") }) {
		t.Errorf("no skew event: %+v", fl.Events)
	}

	_, err := c.Predict(ctx, row(tfserving.Target{Version: 7}))
	var te *tfserving.Error
	if status.Code(err) != codes.NotFound || !errors.As(err, &te) || !slices.Contains(strings.Split(fleetAddr(hs), ","), te.Addr) {
		t.Fatalf("v7 on no host: %v (addr %q)", err, te.Addr)
	}
}

// TestFleetDNS: a dns:/// address resolves through gRPC's DNS resolver;
// "localhost" gives the server's loopback address (and maybe ::1, where
// nothing listens, which must then read as down, not break the client).
func TestFleetDNS(t *testing.T) {
	s := startServer(t, modelserver.Config{})
	_, port, _ := strings.Cut(s.GRPCAddr(), ":")
	c := dialFleet(t, "dns:///localhost:"+port)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fl := c.Probe(ctx)
	if h := hostOf(fl, s.GRPCAddr()); h.State != tfserving.HostUp || len(h.Available()) != 2 {
		t.Fatalf("dns fleet %+v", fl)
	}
	for range 20 {
		if _, err := c.Predict(ctx, row(tfserving.Target{})); err != nil {
			t.Fatal(err)
		}
	}
	if h := hostOf(c.Fleet(), s.GRPCAddr()); h.Calls != 20 {
		t.Fatalf("calls not charged to %s: %+v", s.GRPCAddr(), c.Fleet())
	}

	bad := dialFleet(t, "dns:///no-such-host.invalid:8500")
	fl = bad.Probe(ctx)
	if len(fl.Hosts) != 0 || !strings.Contains(fl.Err, "no-such-host.invalid") {
		t.Fatalf("unresolvable name: %+v", fl)
	}
	if _, err := bad.Predict(ctx, row(tfserving.Target{})); status.Code(err) != codes.Unavailable {
		t.Fatalf("Predict with no host: %v", err)
	}
}
