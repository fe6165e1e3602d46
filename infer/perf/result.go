package perf

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Result is what one perf run measured. Every rate is achieved, computed from
// counts and clocks; the target is reported beside it, never instead of it.
type Result struct {
	RunID        string    `json:"run_id"`
	Scenario     string    `json:"scenario"`
	Model        string    `json:"model"` // --model; "" in runs recorded before it was kept: my_model
	StartedAt    time.Time `json:"started_at"`
	Streams      int       `json:"streams"`
	PayloadBytes int       `json:"payload_bytes"`
	TargetRate   float64   `json:"target_rate"`
	DurationSec  float64   `json:"duration_s"`

	// Sent records were handed to Kafka; Acked were acknowledged by it;
	// Received have a result on the output topic (first result per record;
	// Duplicates counts redeliveries); Lost were sent but had no result by
	// the end of the drain. Errors are records that failed to produce plus
	// those the worker dead-lettered (DeadLettered); they are lost too.
	Sent         uint64 `json:"sent"`
	Acked        uint64 `json:"acked"`
	Received     uint64 `json:"received"`
	Lost         uint64 `json:"lost"`
	Errors       uint64 `json:"errors"`
	Duplicates   uint64 `json:"duplicates"`
	DeadLettered uint64 `json:"dead_lettered"`
	// Unsent were scheduled within the duration but could not be handed to
	// Kafka before it ended (back-pressure): an open-loop run that did not
	// offer its load has not shown the pipeline can take it.
	Unsent uint64 `json:"unsent"`

	// SendRate is sent records per second of sending: when it is well below
	// TargetRate the producers pushed back (or the generator could not keep
	// up; see GeneratorLagP99).
	SendRate float64 `json:"send_msgs_per_sec"`
	// KafkaMsgsPerSec is acked records per second, from the start until the
	// last ack.
	KafkaMsgsPerSec float64 `json:"kafka_msgs_per_sec"`
	// TFQPS is results of this run per second, from the start until the last
	// result.
	TFQPS float64 `json:"tf_qps"`
	// Latency is end to end: from each record's scheduled send time until its
	// result was consumed from the output topic.
	Latency LatencyMS `json:"latency_ms"`
	// GeneratorLagP99 is how late (p99, ms) records were handed to the
	// producer compared with their schedule: producer back-pressure or a
	// saturated machine. It is part of Latency, not added to it.
	GeneratorLagP99 float64 `json:"generator_lag_ms_p99"`
	// ProduceLatency is the Kafka share of Latency: from the scheduled send
	// time until the broker acked the record (acks=all). What Latency adds on
	// top is the worker, TF Serving and the result's trip back.
	ProduceLatency LatencyMS `json:"produce_latency_ms"`
	SLOms          float64   `json:"slo_ms"`
	Pass           bool      `json:"pass"`

	// HostLoad1 is this host's 1-minute load average when the run ended
	// (Linux; 0 elsewhere) and HostCPUs its CPU count: a load well above
	// the CPUs means other work competed with the run and its tail latency.
	HostLoad1 float64 `json:"host_load1,omitempty"`
	HostCPUs  int     `json:"host_cpus"`

	Input    string   `json:"input_topic"`
	Output   string   `json:"output_topic"`
	Embedded bool     `json:"embedded"`
	Warnings []string `json:"warnings,omitempty"`

	FindMax    *FindMax    `json:"find_max,omitempty"`
	Comparison *Comparison `json:"comparison,omitempty"`
}

// measure turns a finished load into a Result.
func (r *Run) measure(p *rig, sc Scenario, run string, ld *load, g *generator, sendEnd time.Duration) *Result {
	res := &Result{
		RunID: run, Scenario: sc.Name, Streams: sc.Streams, PayloadBytes: sc.PayloadBytes,
		TargetRate: sc.Rate, DurationSec: round3(sc.Duration.Seconds()),
		Sent: ld.sent.Load(), Acked: ld.acked.Load(), Received: ld.received.Load(),
		Duplicates: ld.duplicates.Load(), DeadLettered: ld.deadLettered.Load(),
		Latency: ld.lat.summary(), SLOms: round3(float64(sc.SLO) / float64(time.Millisecond)),
		Input: r.opts.Input, Output: r.opts.Output, Embedded: r.opts.Embedded, Model: r.opts.Model,
	}
	res.Errors = ld.failed.Load() + res.DeadLettered
	res.HostLoad1, res.HostCPUs = loadAverage(), runtime.NumCPU()
	if res.Sent > res.Received {
		res.Lost = res.Sent - res.Received
	}
	res.SendRate = perSecond(res.Sent, min(sendEnd, sc.Duration))
	res.KafkaMsgsPerSec = perSecond(res.Acked, time.Duration(ld.lastAckNs.Load()))
	res.TFQPS = perSecond(res.Received, time.Duration(ld.lastRecvNs.Load()))
	res.GeneratorLagP99 = msFromMicros(g.sendLag.merged().ValueAtQuantile(99))
	res.ProduceLatency = summarize(g.ackLat.merged())
	if want := uint64(sc.records()); want > res.Sent {
		res.Unsent = want - res.Sent
	}
	res.Pass = res.Received > 0 && res.Lost == 0 && res.Latency.P99 <= res.SLOms && res.Unsent <= res.Sent/100
	if e := ld.firstErr.Load(); e != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d produce errors, first: %s", ld.failed.Load(), *e))
	}
	if res.DeadLettered > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the worker dead-lettered %d records to %s (see its inferops-error header)", res.DeadLettered, r.opts.DLQ))
	}
	if p.coll.noDLQ != "" {
		res.Warnings = append(res.Warnings, p.coll.noDLQ)
	}
	if err := p.coll.firstErr(); err != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("reading results from %s: %v", r.opts.Output, err))
	}
	if n := ld.strays.Load(); n > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d results carried this run's id but no record of it was sent", n))
	}
	if res.Unsent > res.Sent/100 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d scheduled records were never sent (%.0f msg/s sent of the %.0f targeted): Kafka pushed back or the machine is saturated (generator lag p99 %.1f ms)", res.Unsent, res.SendRate, sc.Rate, res.GeneratorLagP99))
	}
	return res
}

// loadAverage is the 1-minute load average from /proc/loadavg, or 0.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func perSecond(n uint64, d time.Duration) float64 {
	if n == 0 || d <= 0 {
		return 0
	}
	return float64(int64(float64(n)/d.Seconds()*10+0.5)) / 10
}
