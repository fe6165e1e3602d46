package worker

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
)

// The worker's own tuning; the pipeline's names, batching and message size
// come from package pipeline (the seed's defaults).
const (
	DefaultPredictTimeout = 5 * time.Second
	DefaultConcurrency    = 2
	DefaultDrainTimeout   = 5 * time.Second
)

// Config is the pipeline a Pool runs. Flag names are in DESIGN.md.
type Config struct {
	// Instance names this process in the group (--instance): member N joins
	// as client id and group.instance.id "inferops-<Instance>-w<N>" (static
	// membership, KIP-345), so a restart under the same name takes the
	// partitions back instead of waiting out the dead members. Empty = the
	// host name. Two processes in one group must not share it.
	Instance        string
	Model           string // --model
	Input           string // --input
	Output          string // --output
	DLQ             string // --dlq
	Group           string // --group
	Workers         int    // --workers: consumer-group members in this process (0 = the default 4)
	MaxBatch        int    // --max-batch: rows per Predict
	BatchTimeout    time.Duration
	MaxMessageBytes int              // --max-message-bytes: larger inputs go to the DLQ
	Target          tfserving.Target // --target-version: zero = latest
	// How records name what the signature needs (pipeline.SchemaOptions):
	// --id-field (default "id"), --input-field INPUT=FIELD, --value-format.
	IDField     string
	InputFields map[string]string
	ValueFormat string
	// OutputFilter limits the outputs results carry (--output-filter;
	// Predict's output_filter); empty: every output of the signature.
	OutputFilter   []string
	PredictTimeout time.Duration // deadline of one Predict attempt
	// Concurrency is how many Predicts each member keeps in flight, so the
	// network round trip overlaps with the next batch being filled.
	Concurrency int
	// DrainTimeout bounds how long a rebalanced member waits for its in-flight
	// records before handing the partition back uncommitted.
	DrainTimeout time.Duration
	// RetryBase and RetryMax shape the Predict retry backoff; BreakerThreshold
	// consecutive failures open the breaker for BreakerCooldown.
	RetryBase, RetryMax time.Duration
	BreakerThreshold    int
	BreakerCooldown     time.Duration
	// Idle starts the pool with no members, whatever Workers says: the fleet
	// agent does when this instance's share of the fleet is 0, since even a
	// member that joins and leaves at once rebalances the whole group.
	Idle bool
}

// SetDefaults fills zero fields with the seed's defaults.
func (c *Config) SetDefaults() {
	def := func(s *string, v string) {
		if strings.TrimSpace(*s) == "" {
			*s = v
		}
	}
	def(&c.Model, pipeline.DefaultModel)
	def(&c.Input, pipeline.DefaultInput)
	def(&c.Output, pipeline.DefaultOutput)
	def(&c.DLQ, pipeline.DefaultDLQ)
	def(&c.Group, pipeline.DefaultGroup)
	def(&c.Instance, HostInstance())
	if c.Workers == 0 {
		c.Workers = pipeline.DefaultWorkers
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = pipeline.DefaultMaxBatch
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = pipeline.DefaultBatchTimeout
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = pipeline.DefaultMaxMessageBytes
	}
	if c.PredictTimeout == 0 {
		c.PredictTimeout = DefaultPredictTimeout
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.RetryBase == 0 {
		c.RetryBase = 50 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = 2 * time.Second
	}
	if c.BreakerThreshold == 0 {
		c.BreakerThreshold = 5
	}
	if c.BreakerCooldown == 0 {
		c.BreakerCooldown = time.Second
	}
}

// Validate names the flag to fix.
func (c Config) Validate() error {
	var errs []error
	for _, f := range []struct{ flag, v string }{
		{"--model", c.Model}, {"--input", c.Input}, {"--output", c.Output}, {"--dlq", c.DLQ}, {"--group", c.Group},
	} {
		if strings.TrimSpace(f.v) == "" {
			errs = append(errs, fmt.Errorf("%s is empty", f.flag))
		}
	}
	if err := ValidInstance(c.Instance); err != nil {
		errs = append(errs, err)
	}
	if c.Input != "" && (c.Input == c.Output || c.Input == c.DLQ) {
		errs = append(errs, fmt.Errorf("--input %q is also --output or --dlq: results would be read back as input", c.Input))
	}
	if c.Workers < 0 {
		errs = append(errs, fmt.Errorf("--workers %d: want 1 or more (pause a running pool instead)", c.Workers))
	}
	if c.MaxBatch < 1 || c.MaxBatch > 10000 {
		errs = append(errs, fmt.Errorf("--max-batch %d: want 1..10000 (TF Serving's default max_batch_size is 64)", c.MaxBatch))
	}
	if c.BatchTimeout < 0 || c.BatchTimeout > 10*time.Second {
		errs = append(errs, fmt.Errorf("--batch-timeout %v: want 0..10s (the seed uses 1ms)", c.BatchTimeout))
	}
	if c.MaxMessageBytes < 64 {
		errs = append(errs, fmt.Errorf("--max-message-bytes %d: too small (the seed uses 2000000)", c.MaxMessageBytes))
	}
	if c.PredictTimeout <= 0 {
		errs = append(errs, fmt.Errorf("predict timeout %v must be positive", c.PredictTimeout))
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		errs = append(errs, fmt.Errorf("concurrency %d: want 1..64", c.Concurrency))
	}
	if c.DrainTimeout <= 0 || c.RetryBase <= 0 || c.RetryMax < c.RetryBase || c.BreakerThreshold < 1 || c.BreakerCooldown <= 0 {
		errs = append(errs, errors.New("drain timeout, retry backoff and breaker settings must be positive (retry max >= retry base)"))
	}
	return errors.Join(errs...)
}

// maxInstance keeps "inferops-<instance>-w<N>" within Kafka's 249
// characters for a group.instance.id.
const maxInstance = 200

// HostInstance is the default --instance: the host name, which stays the
// same across the restarts static membership is for. The console's own pool
// uses HostInstance()+"-console", so it never collides with a headless
// worker on the same host.
func HostInstance() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

// ValidInstance checks an --instance value: what Kafka accepts in a
// group.instance.id ([A-Za-z0-9._-]), short enough for the member suffix.
func ValidInstance(s string) error {
	if s == "" {
		return errors.New("--instance is empty (give this worker process a stable name, e.g. the host name)")
	}
	if len(s) > maxInstance {
		return fmt.Errorf("--instance %q is %d characters: want at most %d", s, len(s), maxInstance)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("--instance %q: %q is not allowed (use letters, digits, '.', '_' and '-'; set --instance when the host name has others)", s, c)
		}
	}
	return nil
}

// MemberName is the client id and group.instance.id of member n (from 1)
// of instance: "inferops-web-3-w2".
func MemberName(instance string, n int) string {
	return "inferops-" + instance + "-w" + strconv.Itoa(n)
}
