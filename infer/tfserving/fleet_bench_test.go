package tfserving_test

import (
	"context"
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfpb"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/tfserving/tfstest"
)

// BenchmarkFleetPredict: batch-64 Predict throughput through one client to
// one host and to three, each host its own process on the same machine, 16
// calls in flight. On a machine whose cores the hosts share, three hosts
// show what the client's balancing costs or gains, not a cluster's scaling.
func BenchmarkFleetPredict(b *testing.B) {
	hosts := make([]*tfstest.Host, 3)
	for i := range hosts {
		hosts[i] = tfstest.Start(b)
	}
	for _, n := range []int{1, 3} {
		b.Run("hosts="+string(rune('0'+n)), func(b *testing.B) {
			addrs := make([]string, n)
			for i := range addrs {
				addrs[i] = hosts[i].GRPC
			}
			c, err := tfserving.Dial(tfserving.Config{Address: strings.Join(addrs, ",")})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			runParallel(b, c, 64, 16)
		})
	}
}

// BenchmarkBalancerPolicy: three hosts, one 5 ms slower (too little to be
// ejected, which needs 10 ms over its peers), 16 calls in flight: the
// round-robin balancer sends the slow host a third of the calls whatever it
// costs, least-request sends it fewer. The p99 and throughput here are why
// least_request is the default.
func BenchmarkBalancerPolicy(b *testing.B) {
	hosts := []*tfstest.Host{tfstest.Start(b), tfstest.Start(b), tfstest.Start(b, "--inject-latency", "5ms")}
	addrs := make([]string, len(hosts))
	for i, h := range hosts {
		addrs[i] = h.GRPC
	}
	for _, policy := range []string{tfserving.BalanceRoundRobin, tfserving.BalanceLeastRequest} {
		b.Run(policy, func(b *testing.B) {
			c, err := tfserving.Dial(tfserving.Config{Address: strings.Join(addrs, ","), Balancer: policy})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			before := hostOf(c.Fleet(), hosts[2].GRPC).Calls
			runParallel(b, c, 64, 16)
			fl := c.Fleet()
			var total int64
			for _, h := range fl.Hosts {
				total += h.Calls
			}
			if total > 0 {
				b.ReportMetric(100*float64(hostOf(fl, hosts[2].GRPC).Calls-before)/float64(total), "slow-host-%")
			}
		})
	}
}

// runParallel runs b.N Predicts of rows rows from inflight goroutines and
// reports rows/s and the p99 of the calls.
func runParallel(b *testing.B, c *tfserving.Client, rows, inflight int) {
	b.Helper()
	ctx := context.Background()
	req := tfserving.PredictRequest{Model: model.Name, Inputs: floatBatch("features", rows, model.Width, make([]float32, rows*model.Width))}
	for range 50 { // connections up, routes probed
		if _, err := c.Predict(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	var mu sync.Mutex
	var lat []time.Duration
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan struct{}, b.N)
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	for range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for range work {
				t0 := time.Now()
				if _, err := c.Predict(ctx, req); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
	b.ReportMetric(float64(b.N*rows)/el.Seconds(), "rows/s")
}

// BenchmarkBalancingOverhead: one batch-1 Predict to an in-process server,
// sequentially. bare-grpc is the generated stub on a plain gRPC connection
// (pick_first, no probes, no per-host stats); routed is the same stub and
// request through the client's router (route lookup, least-request pick,
// retry policy, per-host attribution): their difference is the balancing
// overhead per call. client is the whole Client.Predict (request encoding,
// response decoding, per-version latency) for scale.
func BenchmarkBalancingOverhead(b *testing.B) {
	s := startServer(b, modelserver.Config{})
	ctx := context.Background()
	data := make([]float32, model.Width)
	content := make([]byte, 0, 4*len(data))
	for _, v := range data {
		content = binary.LittleEndian.AppendUint32(content, math.Float32bits(v))
	}
	req := &tfpb.PredictRequest{ModelSpec: &tfpb.ModelSpec{Name: model.Name}, Inputs: map[string]*tfpb.TensorProto{"features": {
		Dtype: tfpb.DataType_DT_FLOAT, TensorShape: tensor.ShapeProto(1, int64(model.Width)), TensorContent: content}}}
	stubLoop := func(b *testing.B, stub tfpb.PredictionServiceClient) {
		if _, err := stub.Predict(ctx, req); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := cpuTime()
		for b.Loop() {
			if _, err := stub.Predict(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
		// CPU per call (client and in-process server) moves less than
		// wall time when other work shares the cores.
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	}
	b.Run("bare-grpc", func(b *testing.B) {
		conn, err := grpc.NewClient(s.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		stubLoop(b, tfpb.NewPredictionServiceClient(conn))
	})
	b.Run("routed", func(b *testing.B) {
		c, err := tfserving.Dial(tfserving.Config{Address: s.GRPCAddr()})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		stubLoop(b, c.PredictionStub())
	})
	b.Run("client", func(b *testing.B) {
		c, err := tfserving.Dial(tfserving.Config{Address: s.GRPCAddr()})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		req := tfserving.PredictRequest{Model: model.Name, Inputs: floatBatch("features", 1, model.Width, data)}
		if _, err := c.Predict(ctx, req); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := cpuTime()
		for b.Loop() {
			if _, err := c.Predict(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	})
}

// cpuTime is this process's user+system CPU so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
