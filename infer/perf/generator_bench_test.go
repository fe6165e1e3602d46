package perf

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// startTestBroker runs the embedded broker with perf's topics only.
func startTestBroker(tb testing.TB) *cluster.Broker {
	tb.Helper()
	return stacktest.Start(tb, stack.Config{Broker: &cluster.BrokerConfig{Topics: PerfTopics(), RetentionInterval: 2 * time.Second}}).Broker
}

// BenchmarkGenerator measures the open-loop generator alone into the embedded
// broker: records acked per second for the small scenario's 2 KB records
// (100 streams, acks=all, zstd, the seed's batching), with the target rate
// set far above what can be reached so the figure is the generator's (plus
// the broker's) ceiling. It must be at least twice what the pipeline absorbs
// (TF QPS of `inferops perf --scenario small`) for a run to measure the
// pipeline rather than the generator.
//
//	go test -run '^$' -bench Generator -benchtime 3x ./infer/perf/
func BenchmarkGenerator(b *testing.B) {
	for _, bc := range []struct {
		name        string
		compression string
		producers   int
	}{
		{"2KB/zstd/1producer", "zstd", 1},
		{"2KB/none/1producer", "none", 1},
		{"2KB/zstd/2producers", "zstd", 2},
		{"2KB/zstd/4producers", "zstd", 4},
	} {
		b.Run(bc.name, func(b *testing.B) {
			kcfg := startTestBroker(b).ClientConfig()
			sc, _ := Lookup(Small)
			sc.Rate = 1e6
			sc.Duration = 3 * time.Second
			codec, _ := compressionCodec(bc.compression)
			pc, err := kcfg.Sarama()
			if err != nil {
				b.Fatal(err)
			}
			tuneProducer(pc, sc.PayloadBytes, codec)
			var acked, sent uint64
			var elapsed time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ld := newLoad("bench", time.Now())
				g, err := newGenerator(sc, "bench", generatorConfig{Topic: DefaultInput, Synth: seedSynth(b, 32), Producers: bc.producers, Sarama: pc, Brokers: kcfg.Brokers}, ld)
				if err != nil {
					b.Fatal(err)
				}
				ld.start = time.Now()
				g.run(context.Background())
				elapsed += time.Since(ld.start)
				acked += ld.acked.Load()
				sent += ld.sent.Load()
				if f := ld.failed.Load(); f > 0 {
					b.Fatalf("%d produce errors: %s", f, *ld.firstErr.Load())
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(acked)/elapsed.Seconds(), "acked_msgs/s")
			b.ReportMetric(float64(acked)*float64(sc.PayloadBytes)/elapsed.Seconds()/1e6, "MB/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkHeadroom shows, side by side on the same machine and moment, the
// generator alone into the embedded broker and the whole pipeline (perf
// worker + embedded model server) absorbing the small scenario at a rate it
// cannot take. headroom_x = generator msg/s / pipeline results/s; a run
// measures the pipeline, not the generator, when it is at least 2.
//
//	go test -run '^$' -bench Headroom -benchtime 1x ./infer/perf/
func BenchmarkHeadroom(b *testing.B) {
	if testing.Short() {
		b.Skip("runs the real pipeline")
	}
	kcfg := startTestBroker(b).ClientConfig()
	tfs := startModelServer(b, 0)
	sc, _ := Lookup(Small)
	sc.Duration = 4 * time.Second
	var genRate, pipeRate float64
	for i := 0; i < b.N; i++ {
		// The generator alone: a topic nobody consumes.
		pc, err := kcfg.Sarama()
		if err != nil {
			b.Fatal(err)
		}
		tuneProducer(pc, sc.PayloadBytes, sarama.CompressionZSTD)
		gsc := sc
		gsc.Rate = 1e6
		ld := newLoad("headroom", time.Now())
		g, err := newGenerator(gsc, "headroom", generatorConfig{Topic: DefaultDLQ, Synth: seedSynth(b, 32), Producers: ProducersFor(gsc.Rate), Sarama: pc, Brokers: kcfg.Brokers}, ld)
		if err != nil {
			b.Fatal(err)
		}
		ld.start = time.Now()
		g.run(context.Background())
		genRate += float64(ld.acked.Load()) / time.Since(ld.start).Seconds()

		// The pipeline at the seed's 55,000 msg/s, far above what one
		// machine running everything absorbs.
		r, err := Start(context.Background(), Options{Scenario: sc, Kafka: kcfg, TFServing: tfs, DrainTimeout: 2 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		res, err := r.Result()
		if err != nil {
			b.Fatal(err)
		}
		pipeRate += res.TFQPS
	}
	b.ReportMetric(genRate/float64(b.N), "generator_msgs/s")
	b.ReportMetric(pipeRate/float64(b.N), "pipeline_results/s")
	b.ReportMetric(genRate/pipeRate, "headroom_x")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkLoopback measures the floor perf itself adds: records go from the
// generator straight to the output topic, where the collector matches them
// (they start with the id, like results do), with no worker in between. The
// latency reported here is Kafka's two hops (produce with the seed's 5 ms
// linger, then fetch) plus the harness; a pipeline run's latency above it
// is the worker's and TF Serving's.
//
//	go test -run '^$' -bench Loopback -benchtime 1x ./infer/perf/
func BenchmarkLoopback(b *testing.B) {
	kcfg := startTestBroker(b).ClientConfig()
	for _, rate := range []float64{1000, 5000} {
		b.Run(fmt.Sprintf("2KB/%.0fmsgs", rate), func(b *testing.B) {
			sc, _ := Lookup(Small)
			sc.Rate, sc.Duration = rate, 3*time.Second
			pc, err := kcfg.Sarama()
			if err != nil {
				b.Fatal(err)
			}
			tuneProducer(pc, sc.PayloadBytes, sarama.CompressionZSTD)
			cc, err := kcfg.Sarama()
			if err != nil {
				b.Fatal(err)
			}
			tuneConsumer(cc)
			coll, err := newCollector(kcfg.Brokers, cc, DefaultOutput, "")
			if err != nil {
				b.Fatal(err)
			}
			defer coll.close()
			var p50, p99, prodP99 float64
			for i := 0; i < b.N; i++ {
				run := fmt.Sprintf("loop%d", i)
				ld := newLoad(run, time.Now())
				g, err := newGenerator(sc, run, generatorConfig{Topic: DefaultOutput, Synth: seedSynth(b, 32), Producers: ProducersFor(sc.Rate), Sarama: pc, Brokers: kcfg.Brokers}, ld)
				if err != nil {
					b.Fatal(err)
				}
				ld.start = time.Now()
				coll.follow(ld)
				g.run(context.Background())
				for deadline := time.Now().Add(10 * time.Second); ld.received.Load() < ld.acked.Load() && time.Now().Before(deadline); {
					time.Sleep(10 * time.Millisecond)
				}
				s := ld.lat.summary()
				p50 += s.P50
				p99 += s.P99
				prod := summarize(g.ackLat.merged())
				prodP99 += prod.P99
				b.Logf("end to end %+v; of which produce (scheduled -> acked) %+v; generator lag p99 %.1f ms",
					s, prod, msFromMicros(g.sendLag.merged().ValueAtQuantile(99)))
			}
			b.ReportMetric(p50/float64(b.N), "p50_ms")
			b.ReportMetric(p99/float64(b.N), "p99_ms")
			b.ReportMetric(prodP99/float64(b.N), "produce_p99_ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
