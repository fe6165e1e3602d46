package modelserver

import (
	"context"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/tfserving"
)

// BenchmarkPredictGRPC is one client calling Predict over loopback gRPC,
// one call at a time (unloaded): rows/s and the call latency percentiles.
// Compare rows/s with infer/model's BenchmarkPredict (in-process compute).
//
//	go test -run '^$' -bench 'PredictGRPC|InProcess' ./infer/modelserver
func BenchmarkPredictGRPC(b *testing.B) {
	for _, batching := range []bool{false, true} {
		s := startServer(b, Config{EnableBatching: batching, RESTAddr: "-"})
		c := dial(b, s)
		for _, rows := range []int{1, 8, 64} {
			name := "batch=" + strconv.Itoa(rows)
			if batching {
				name += "/server-batching"
			}
			b.Run(name, func(b *testing.B) {
				req := tfserving.PredictRequest{Model: model.Name, Inputs: floatBatch(model.InputName, rows, model.Width, features(rows))}
				ctx := context.Background()
				if _, err := c.Predict(ctx, req); err != nil { // connect and warm up
					b.Fatal(err)
				}
				h := hdrhistogram.New(1, int64(time.Second/time.Microsecond), 3)
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					start := time.Now()
					if _, err := c.Predict(ctx, req); err != nil {
						b.Fatal(err)
					}
					_ = h.RecordValue(time.Since(start).Microseconds())
				}
				b.StopTimer()
				b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
				b.ReportMetric(float64(h.ValueAtQuantile(50)), "p50-µs")
				b.ReportMetric(float64(h.ValueAtQuantile(99)), "p99-µs")
				// On a shared box absolute figures drift with load; the
				// in-process median measured right here drifts with them.
				b.ReportMetric(100*inProcessMedian(rows).Seconds()/(float64(h.ValueAtQuantile(50))*1e-6), "%-of-inprocess")
			})
		}
	}
}

// inProcessMedian times the same batch through the shipped network in this
// process: the floor a gRPC round trip is compared with.
func inProcessMedian(rows int) time.Duration {
	m := model.CTR(2)
	x, out := features(rows), make([]float32, rows)
	h := hdrhistogram.New(1, int64(time.Second/time.Nanosecond), 3)
	for range 2000 {
		start := time.Now()
		_ = m.Predict(out, x, rows)
		_ = h.RecordValue(time.Since(start).Nanoseconds())
	}
	return time.Duration(h.ValueAtQuantile(50))
}

// BenchmarkPredictGRPCParallel keeps several calls in flight (like a pool
// of workers) to measure the server's throughput on all cores.
func BenchmarkPredictGRPCParallel(b *testing.B) {
	for _, batching := range []bool{false, true} {
		s := startServer(b, Config{EnableBatching: batching, RESTAddr: "-"})
		c := dial(b, s)
		for _, rows := range []int{1, 64} {
			name := "batch=" + strconv.Itoa(rows)
			if batching {
				name += "/server-batching"
			}
			b.Run(name, func(b *testing.B) {
				req := tfserving.PredictRequest{Model: model.Name, Inputs: floatBatch(model.InputName, rows, model.Width, features(rows))}
				var mu sync.Mutex
				h := hdrhistogram.New(1, int64(time.Second/time.Microsecond), 3)
				b.SetParallelism(4)
				cpu0 := cpuTime()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					local := hdrhistogram.New(1, int64(time.Second/time.Microsecond), 3)
					for pb.Next() {
						start := time.Now()
						if _, err := c.Predict(context.Background(), req); err != nil {
							b.Error(err)
							return
						}
						_ = local.RecordValue(time.Since(start).Microseconds())
					}
					mu.Lock()
					h.Merge(local)
					mu.Unlock()
				})
				b.StopTimer()
				b.ReportMetric(float64(rows*b.N)/(cpuTime()-cpu0).Seconds(), "rows/cpu-s")
				b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
				b.ReportMetric(float64(h.ValueAtQuantile(50)), "p50-µs")
				b.ReportMetric(float64(h.ValueAtQuantile(99)), "p99-µs")
			})
		}
	}
}

// cpuTime is this process's user+system CPU time. Rows per CPU-second is
// what the box's throughput is made of when every core is busy, and unlike
// wall-clock rates it barely moves when other processes share the cores.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkInProcessParallel is the floor for BenchmarkPredictGRPCParallel:
// the same batches through the network on all cores, no server.
func BenchmarkInProcessParallel(b *testing.B) {
	m := model.CTR(2)
	for _, rows := range []int{1, 64} {
		b.Run("batch="+strconv.Itoa(rows), func(b *testing.B) {
			cpu0 := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				x, out := features(rows), make([]float32, rows)
				for pb.Next() {
					_ = m.Predict(out, x, rows)
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(rows*b.N)/(cpuTime()-cpu0).Seconds(), "rows/cpu-s")
			b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkInProcess is the floor the gRPC figures are compared with: the
// same batch through the network in this process, no server.
func BenchmarkInProcess(b *testing.B) {
	m := model.CTR(2)
	for _, rows := range []int{1, 8, 64} {
		b.Run("batch="+strconv.Itoa(rows), func(b *testing.B) {
			x, out := features(rows), make([]float32, rows)
			b.ReportAllocs()
			for range b.N {
				_ = m.Predict(out, x, rows)
			}
			b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
