package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
)

// Doctor checks the embedded stack (pipeline.Default*) when no address is
// given, i.e. what `make run` / `inferops serve` starts.
const (
	// DefaultSectionTimeout bounds each section: doctor runs in incidents,
	// when a hung connect is the last thing the operator needs.
	DefaultSectionTimeout = 5 * time.Second
	DefaultProbeRequests  = 50
	DefaultSampleRecords  = 200
)

// Options select what doctor checks.
type Options struct {
	ProcRoot string // host checks read <ProcRoot>/proc and /etc; "" = "/"
	NoHost   bool   // skip the host section (e.g. checking a remote cluster)

	Kafka   cluster.Config // Brokers empty = the embedded default
	Input   string
	Output  string // results topic the workers produce to
	DLQ     string // dead-letter topic for bad input
	Group   string
	Workers int // the configured --workers, compared with partitions

	TF            tfserving.Config // Address "" = the embedded default
	TFServingREST string           // REST host:port for /monitoring/prometheus/metrics; "" = embedded default when TF.Address is too
	Model         string

	SectionTimeout time.Duration
	ProbeRequests  int           // Predict calls in the latency probe
	PredictSLO     time.Duration // p99 the probe must meet; 0 = DefaultPredictSLO
	SampleRecords  int           // records read from the input topic to find the largest

	// embeddedKafka / embeddedTF record that the address was defaulted, so
	// a failure says how to start the embedded stack.
	embeddedKafka, embeddedTF bool
}

// SetDefaults fills every unset option with the embedded stack's defaults.
func (o *Options) SetDefaults() {
	if o.ProcRoot == "" {
		o.ProcRoot = "/"
	}
	if len(o.Kafka.Brokers) == 0 {
		o.Kafka.Brokers = []string{pipeline.DefaultKafkaAddr}
		o.embeddedKafka = true
	}
	o.Kafka.SetDefaults()
	// Each request must fit inside the section budget.
	if o.SectionTimeout <= 0 {
		o.SectionTimeout = DefaultSectionTimeout
	}
	if o.Kafka.DialTimeout > o.SectionTimeout/2 {
		o.Kafka.DialTimeout = o.SectionTimeout / 2
	}
	if o.Kafka.RequestTimeout > o.SectionTimeout/2 {
		o.Kafka.RequestTimeout = o.SectionTimeout / 2
	}
	if o.Input == "" {
		o.Input = pipeline.DefaultInput
	}
	if o.Output == "" {
		o.Output = pipeline.DefaultOutput
	}
	if o.DLQ == "" {
		o.DLQ = pipeline.DefaultDLQ
	}
	if o.Group == "" {
		o.Group = pipeline.DefaultGroup
	}
	if o.Workers <= 0 {
		o.Workers = pipeline.DefaultWorkers
	}
	if o.TF.Address == "" {
		o.TF.Address = pipeline.DefaultGRPCAddr
		o.embeddedTF = true
		if o.TFServingREST == "" {
			o.TFServingREST = pipeline.DefaultRESTAddr
		}
	}
	o.TF.SetDefaults()
	// One call must fit inside the section budget.
	if o.TF.Timeout > o.SectionTimeout/2 {
		o.TF.Timeout = o.SectionTimeout / 2
	}
	if o.Model == "" {
		o.Model = pipeline.DefaultModel
	}
	if o.PredictSLO <= 0 {
		o.PredictSLO = DefaultPredictSLO
	}
	if o.ProbeRequests <= 0 {
		o.ProbeRequests = DefaultProbeRequests
	}
	if o.SampleRecords <= 0 {
		o.SampleRecords = DefaultSampleRecords
	}
}

// Validate names the flag of the first option that cannot work.
func (o Options) Validate() error {
	if err := o.Kafka.Validate(); err != nil {
		return err
	}
	if err := o.TF.Validate(); err != nil {
		return err
	}
	if o.TFServingREST != "" {
		if _, _, err := net.SplitHostPort(o.TFServingREST); err != nil {
			return fmt.Errorf("--tfserving-rest %q: want host:port, e.g. 10.0.0.5:8501", o.TFServingREST)
		}
	}
	if o.ProbeRequests > 10000 {
		return fmt.Errorf("probe requests %d: at most 10000 (doctor must stay quick)", o.ProbeRequests)
	}
	if o.SectionTimeout > 5*time.Minute {
		return errors.New("section timeout above 5m: doctor must stay quick")
	}
	return nil
}

// Run runs every section (host, Kafka, TF Serving; the remote ones in
// parallel, each within SectionTimeout) and returns the report. It never
// returns an error for an unhealthy system: that is what the report says.
func Run(ctx context.Context, o Options) (Report, error) {
	o.SetDefaults()
	if err := o.Validate(); err != nil {
		return Report{}, err
	}
	var host []Check
	if !o.NoHost {
		host = CheckHost(o.ProcRoot)
	}
	var kafka, tf []Check
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sctx, cancel := context.WithTimeout(ctx, o.SectionTimeout)
		defer cancel()
		kafka = CheckKafka(sctx, o)
	}()
	go func() {
		defer wg.Done()
		sctx, cancel := context.WithTimeout(ctx, o.SectionTimeout)
		defer cancel()
		tf = CheckTFServing(sctx, o)
	}()
	wg.Wait()
	return NewReport(host, kafka, tf), nil
}
