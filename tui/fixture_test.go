package tui

import (
	"fmt"
	"math"
	"time"
)

// fixedNow is the clock of every golden screen.
var fixedNow = time.Date(2026, 11, 24, 15, 4, 5, 0, time.UTC)

// fixture is a realistic, fully deterministic view-model: 12 partitions
// with one hot partition, four local workers and one remote member, two
// model versions, a latency history, events and dead letters.
func fixture(partitions int) Data {
	now := fixedNow
	d := Data{
		Now: now, Mode: "embedded", Brokers: []string{"127.0.0.1:9092"},
		Input: "ai_input", Output: "ai_output", DLQTopic: "ai_input.dlq", Group: "tf_serving_group",
		Model: "my_model", TFServing: "127.0.0.1:8500", DemoRate: 1200,
		Header: HeaderData{GroupState: "Stable", Health: "OK", Target: "latest", Served: 2, Workers: 4, RemoteMembers: 1, Breaker: "closed"},
	}
	owners := []string{"inferops-w0", "inferops-w1", "inferops-w2", "inferops-w3", "remote-w0"}
	var total int64
	var maxLagS float64
	for i := 0; i < partitions; i++ {
		p := Partition{
			ID: int32(i), Lag: int64(10 + (i*37)%90), LagSeconds: float64((i*7)%10) / 10,
			ProduceRate: 95 + float64((i*13)%20), ConsumeRate: 94 + float64((i*11)%20),
			Owner: owners[i%len(owners)], Status: "OK",
		}
		if i == 7 {
			p.Lag, p.LagSeconds, p.ProduceRate, p.Status = 4210, 12.5, 410, "WARN"
		}
		total += p.Lag
		maxLagS = math.Max(maxLagS, p.LagSeconds)
		d.Kafka.Partitions = append(d.Kafka.Partitions, p)
	}
	d.Kafka.At, d.Kafka.TotalLag, d.Kafka.MaxLagSeconds = now, total, maxLagS
	for i := 0; i < 60; i++ {
		d.Kafka.LagTrend = append(d.Kafka.LagTrend, float64(3000+500*math.Sin(float64(i)/6)))
	}
	for i := 180; i >= 0; i-- {
		t := now.Add(-time.Duration(i) * time.Second)
		in := 1200 + 400*math.Sin(float64(i)/9) + float64((i*31)%50)
		d.Flow.In = append(d.Flow.In, Sample{t, in})
		d.Flow.Out = append(d.Flow.Out, Sample{t, in - 30 + float64((i*17)%40)})
		base := 3 + math.Sin(float64(i)/7)
		d.Latency.History = append(d.Latency.History, LatencySample{T: t, Percentiles: Percentiles{
			P50: ms(base), P95: ms(base * 1.8), P99: ms(base * 2.4), Max: ms(base*3 + float64(i%5)),
		}})
	}
	d.Flow.At = now
	d.Latency = LatencyData{At: now, Predict: Percentiles{ms(2.9), ms(5.1), ms(7.4), ms(12.2)},
		E2E: Percentiles{ms(9.5), ms(18), ms(31), ms(48)}, QPS: 88, Rows: 1190, Batch: 13.5, Errors: 0,
		SLO: 50 * time.Millisecond, History: d.Latency.History}
	d.Models = ModelsData{At: now, Versions: []ModelVersion{
		{Version: 1, State: "AVAILABLE", Labels: []string{"stable"}, Rate: 0, P99: ms(6.8), Count: 51234},
		{Version: 2, State: "AVAILABLE", Labels: []string{"canary"}, Served: true, Rate: 1190, P99: ms(7.4), Count: 188410},
	}}
	for i := 0; i < 4; i++ {
		d.Workers.Members = append(d.Workers.Members, Member{ID: fmt.Sprintf("inferops-w%d-abc", i), ClientID: fmt.Sprintf("inferops-w%d", i),
			Host: "127.0.0.1", Local: true, Partitions: []int32{int32(i), int32(i + 5), int32(i + 10)}, InRate: 290, OutRate: 288, InFlight: 12, Batch: 13.5})
	}
	d.Workers.Members = append(d.Workers.Members, Member{ID: "remote-w0-xyz", ClientID: "remote-w0", Host: "10.0.0.7", Partitions: []int32{4, 9}, InRate: 200, OutRate: 199})
	d.Workers.At = now
	rates := make([]float64, len(d.Kafka.Partitions))
	lags := make([]float64, len(d.Kafka.Partitions))
	for i, p := range d.Kafka.Partitions {
		rates[i], lags[i] = p.ProduceRate, float64(p.Lag)
	}
	d.Workers.Skew.RatePeakToAvg, d.Workers.Skew.RateCV = Skewness(rates)
	d.Workers.Skew.LagPeakToAvg, d.Workers.Skew.LagCV = Skewness(lags)
	d.Events.Items = []Event{
		{now.Add(-5 * time.Second), "dlq", Warn, "3 dead letters in the last minute: invalid JSON (2), wrong width (1)"},
		{now.Add(-42 * time.Second), "version", Info, "target latest -> version 2 (canary)"},
		{now.Add(-70 * time.Second), "scale", Info, "workers 3 -> 4"},
		{now.Add(-71 * time.Second), "rebalance", Info, "group tf_serving_group generation 7: 5 members"},
		{now.Add(-300 * time.Second), "breaker", Error, "breaker open: TF Serving unavailable (3 retries)"},
	}
	d.DLQ = DLQData{At: now, Total: 37, Read: 3, Records: []DeadLetter{
		{now.Add(-5 * time.Second), "invalid JSON", "ai_input/3/88121", `{"id":"demo-88121","features":[0.1,0.2`},
		{now.Add(-9 * time.Second), "wrong width: 7 features, model wants 16", "ai_input/7/90312", `{"id":"demo-90312","features":[1,2,3,4,5,6,7]}`},
		{now.Add(-21 * time.Second), "invalid JSON", "ai_input/1/87002", "\x00\x01binary\x1b[31m"},
	}}
	d.Perf.Scenarios = []Scenario{
		{"small", 100, 2048, 55000, 50 * time.Millisecond, 30 * time.Second},
		{"medium", 500, 5120, 45000, 100 * time.Millisecond, 30 * time.Second},
		{"high", 2000, 10240, 32000, 200 * time.Millisecond, 30 * time.Second},
	}
	return d
}

func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

// withBacklog is the first reproduction on screen: the workers
// were killed, the group is Empty, and 8 of the 12 partitions never got a
// commit, so their whole logs wait.
func withBacklog(d Data) Data {
	d.Header.GroupState, d.Header.Health, d.Header.Workers, d.Header.RemoteMembers = "Empty", "ERR", 0, 0
	ps := make([]Partition, len(d.Kafka.Partitions))
	copy(ps, d.Kafka.Partitions)
	var total, nc int64
	for i := range ps {
		p := &ps[i]
		p.Owner, p.ConsumeRate = "", 0
		if i >= 4 {
			p.Lag, p.NoCommit, p.LagSeconds, p.Status = int64(7400+i*13), true, 95, "STOP"
			nc += p.Lag
		}
		total += p.Lag
	}
	d.Kafka.Partitions, d.Kafka.TotalLag, d.Kafka.NoCommitLag, d.Kafka.MaxLagSeconds = ps, total, nc, 95
	d.Workers.Members = nil
	// As the collector words it (cluster.WarnNoConsumer).
	d.Header.Notice = "group tf_serving_group is Empty: nothing consumes the 60,152 records waiting on ai_input (8 partitions without a committed offset) (start the workers: inferops worker, or systemctl start inferops-worker)"
	return d
}

// withRebalance is the third: a group stuck in PreparingRebalance since
// before the console started, waiting for a member that was killed.
func withRebalance(d Data) Data {
	d.Header.GroupState, d.Header.Health = "PreparingRebalance", "ERR"
	d.Header.Rebalance, d.Header.RebalanceAtLeast = 23*time.Second, true
	d.Header.Notice = "group tf_serving_group has been rebalancing for at least 23s (PreparingRebalance), the 2 members it holds must each rejoin: inferops-w0 on /10.0.0.5, inferops-w1 on /10.0.0.6; nobody consumes until it ends"
	return d
}

// withAdsStandIn is the fixture on a stand-in of an ads model: five typed
// inputs, one read from a renamed field, and two outputs.
func withAdsStandIn(d Data) Data {
	d.Model = "ads_ranker"
	d.Models.StandIn = true
	d.Models.Inputs = []ModelTensor{{"ad_ids", "DT_INT64", "[-1,8]", ""}, {"context", "DT_FLOAT", "[-1,16]", ""}, {"hour", "DT_INT32", "[-1]", ""},
		{"query", "DT_STRING", "[-1]", "q"}, {"user_id", "DT_INT64", "[-1]", ""}}
	d.Models.Outputs = []ModelTensor{{"ctr", "DT_FLOAT", "[-1,1]", ""}, {"cvr", "DT_FLOAT", "[-1,1]", ""}}
	return d
}

// withPerfResult is the fixture after a finished perf run.
func withPerfResult(d Data) Data {
	d.Perf.Result = &PerfResult{Scenario: "small", At: fixedNow.Add(-10 * time.Second), Pass: true,
		Verdict: "p99 31ms within SLO 50ms, 0 lost", Metrics: []PerfMetric{
			{"kafka msg/s", "", 41230, 39800, true, true},
			{"inference msg/s", "", 40110, 38900, true, true},
			{"latency avg", "ms", 12.1, 12.4, true, false},
			{"latency p50", "ms", 9.8, 9.9, true, false},
			{"latency p95", "ms", 22.0, 27.3, true, false},
			{"latency p99", "ms", 31.0, 35.2, true, false},
			{"latency p99.9", "ms", 44.0, 41.0, true, false},
			{"latency max", "ms", 61.0, 80.0, true, false},
			{"sent", "", 1236900, 1194000, true, true},
			{"lost", "", 0, 0, true, false},
		}}
	return d
}

// withFleet is the fixture on three TF Serving hosts, one of which serves
// only version 1 while the worker targets 2: flagged as skew in the header
// and left out of the rotation.
func withFleet(d Data) Data {
	d.TFServing = "10.0.0.11:8500,10.0.0.12:8500,10.0.0.13:8500"
	d.Header.Target = "version 2"
	d.Header.Skew, d.Header.SkewHosts = "v2 missing on 10.0.0.13:8500", []string{"10.0.0.13:8500"}
	d.Models.Hosts = []TFHost{
		{Addr: "10.0.0.11:8500", State: "up", Versions: "1,2", Share: 0.51, P50: ms(2.8), P99: ms(7.1)},
		{Addr: "10.0.0.12:8500", State: "up", Versions: "1,2", Share: 0.49, P50: ms(3.0), P99: ms(7.7), Errors: 2},
		{Addr: "10.0.0.13:8500", State: "excluded", Reason: "my_model v2 is not AVAILABLE here (AVAILABLE: 1)", Versions: "1"},
	}
	return d
}
