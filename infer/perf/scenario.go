// Package perf runs the seed's performance scenarios against a real pipeline
// (Kafka -> inference workers -> TF Serving -> Kafka) and measures it
// honestly: an open-loop load generator, end-to-end latency per record from
// an HDR histogram, achieved (never targeted) throughput, lost records, and a
// history file that compares each run with the previous one.
//
// Latency is measured from each record's *scheduled* send time, not from the
// moment the generator managed to hand it to Kafka. A closed-loop or
// "send when ready" generator slows down exactly when the pipeline does and
// then never measures the records it failed to send (coordinated omission);
// with scheduled times a stall shows as the queueing delay it really causes.
//
// A run: create the perf topics if missing (ai_input.perf -> ai_output.perf,
// never the production ones unless Options.Input says so) and start a perf
// worker pool in its own group; warm up (a probe on every input partition
// must come back, so group joins and any backlog are not timed); ramp (send
// at the target rate, unmeasured, so a cold pipeline's first second is not a
// short run's p99); send for the duration, stopping at its end in wall time
// (what could not be handed to Kafka by then is "unsent" and fails the run);
// drain until every record has a result or a dead letter, or the drain
// timeout passes (the rest is "lost"); append to the history.
package perf

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Scenario is one load shape: how many concurrent producer streams share the
// target rate, how big each record is and the latency SLO it must meet.
type Scenario struct {
	Name         string
	Streams      int
	PayloadBytes int
	SLO          time.Duration
	// Rate is the target send rate in records per second. The seed's
	// defaults are the Kafka throughput it measured for each scenario.
	Rate float64
	// Duration is how long the generator sends; draining comes on top.
	Duration time.Duration
}

// Scenario names. Custom is what a scenario built from --streams,
// --payload-bytes or --slo is called.
const (
	Small  = "small"
	Medium = "medium"
	High   = "high"
	Custom = "custom"
)

// DefaultDuration is how long a scenario sends unless --duration says
// otherwise: long enough for p99.9 to rest on a few thousand records.
const DefaultDuration = 30 * time.Second

// MinPayloadBytes is the smallest record we can build: the id, run id, send
// time and 32 features already take about 400 bytes.
const MinPayloadBytes = 512

// Scenarios returns the seed's three scenarios. "2 KB" is read as 2048 bytes.
func Scenarios() []Scenario {
	return []Scenario{
		{Name: Small, Streams: 100, PayloadBytes: 2 << 10, SLO: 50 * time.Millisecond, Rate: 55000, Duration: DefaultDuration},
		{Name: Medium, Streams: 500, PayloadBytes: 5 << 10, SLO: 100 * time.Millisecond, Rate: 45000, Duration: DefaultDuration},
		{Name: High, Streams: 2000, PayloadBytes: 10 << 10, SLO: 200 * time.Millisecond, Rate: 32000, Duration: DefaultDuration},
	}
}

// ScenarioNames lists the names Lookup accepts, in the seed's order.
func ScenarioNames() []string {
	var ns []string
	for _, s := range Scenarios() {
		ns = append(ns, s.Name)
	}
	return ns
}

// Lookup returns the named seed scenario.
func Lookup(name string) (Scenario, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	for _, s := range Scenarios() {
		if s.Name == n {
			return s, nil
		}
	}
	return Scenario{}, fmt.Errorf("--scenario %q: want one of %s, all, or custom with --streams, --payload-bytes, --rate and --slo", name, strings.Join(ScenarioNames(), ", "))
}

// SetDefaults fills what a custom scenario left out.
func (s *Scenario) SetDefaults() {
	if s.Name == "" {
		s.Name = Custom
	}
	if s.Duration == 0 {
		s.Duration = DefaultDuration
	}
}

// Validate names the flag behind each bad field.
func (s Scenario) Validate() error {
	var errs []error
	if s.Streams < 1 || s.Streams > 100000 {
		errs = append(errs, fmt.Errorf("--streams %d: want 1..100000", s.Streams))
	}
	if s.PayloadBytes < MinPayloadBytes || s.PayloadBytes > 1<<20 {
		errs = append(errs, fmt.Errorf("--payload-bytes %d: want %d..%d (a record holds the id, the send time and the features)", s.PayloadBytes, MinPayloadBytes, 1<<20))
	}
	if s.Rate <= 0 || s.Rate > 5e6 {
		errs = append(errs, fmt.Errorf("--rate %g: want a positive number of records per second (up to 5,000,000)", s.Rate))
	}
	if s.SLO <= 0 {
		errs = append(errs, fmt.Errorf("--slo %v: want a positive duration, e.g. 50ms", s.SLO))
	}
	if s.Duration < 100*time.Millisecond || s.Duration > 24*time.Hour {
		errs = append(errs, fmt.Errorf("--duration %v: want 100ms..24h", s.Duration))
	}
	return errors.Join(errs...)
}

// records is how many records the scenario sends at its rate.
func (s Scenario) records() int64 {
	return int64(s.Rate * s.Duration.Seconds())
}
