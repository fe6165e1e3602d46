package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/internal/logging"
	"github.com/inferops/inferops/pipeline"
)

// The flags several commands share, one helper per group, so each name,
// default (from package pipeline) and usage line exists once; DESIGN.md's
// flag table lists them.

// addKafkaFlags registers the Kafka client flags and returns the config
// they fill. The SASL password is read from INFEROPS_SASL_PASSWORD (or
// --sasl-password-file), never from a flag that ps(1) would show. The
// remaining defaults are applied by Config.SetDefaults.
func addKafkaFlags(f *cmdFlags) *cluster.Config {
	c := &cluster.Config{}
	f.Var((*commaList)(&c.Brokers), "brokers", "Kafka bootstrap brokers, comma separated host:port list; empty = the embedded broker at "+pipeline.DefaultKafkaAddr)
	f.StringVar(&c.Version, "kafka-version", pipeline.DefaultKafkaVersion, "Kafka protocol version the cluster runs")
	f.StringVar(&c.ClientID, "client-id", pipeline.DefaultClientID, "client id sent to Kafka (shows in broker logs and quotas)")
	f.BoolVar(&c.TLS.Enable, "kafka-tls", false, "connect to Kafka over TLS (implied by any --kafka-tls-* file)")
	f.StringVar(&c.TLS.CAFile, "kafka-tls-ca-file", "", "PEM CA bundle that signed the broker certificates")
	f.StringVar(&c.TLS.CertFile, "kafka-tls-cert-file", "", "PEM client certificate for mutual TLS")
	f.StringVar(&c.TLS.KeyFile, "kafka-tls-key-file", "", "PEM client key for mutual TLS")
	f.BoolVar(&c.TLS.InsecureSkipVerify, "kafka-tls-insecure-skip-verify", false, "do not verify the broker certificate (testing only)")
	f.StringVar(&c.SASL.Mechanism, "sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty = no SASL")
	f.StringVar(&c.SASL.Username, "sasl-username", "", "SASL user name")
	f.StringVar(&c.SASL.PasswordFile, "sasl-password-file", "", "file holding the SASL password (or set INFEROPS_SASL_PASSWORD)")
	f.secretVar(&c.SASL.Password, "kafka.sasl.password") // INFEROPS_SASL_PASSWORD, else the config file
	return c
}

// addTFServingFlags registers --tfserving and the TF Serving client's TLS
// flags and returns the config they fill. whenEmpty is what the command
// does without an address (e.g. "the embedded model server at ...").
func addTFServingFlags(f *cmdFlags, whenEmpty string) *tfserving.Config {
	c := &tfserving.Config{}
	f.StringVar(&c.Address, "tfserving", "", "TF Serving gRPC address: host:port, a fleet h1:8500,h2:8500 (balanced, each host probed), or dns:///name:8500 (every address of the name); empty = "+whenEmpty)
	f.BoolVar(&c.TLS.Enable, "tfserving-tls", false, "TLS to TF Serving (implied by any --tfserving-tls-* file)")
	f.StringVar(&c.TLS.CAFile, "tfserving-tls-ca-file", "", "PEM CA bundle that signed TF Serving's certificate")
	f.StringVar(&c.TLS.CertFile, "tfserving-tls-cert-file", "", "PEM client certificate for mutual TLS")
	f.StringVar(&c.TLS.KeyFile, "tfserving-tls-key-file", "", "PEM client key for mutual TLS")
	f.BoolVar(&c.TLS.InsecureSkipVerify, "tfserving-tls-insecure-skip-verify", false, "do not verify TF Serving's certificate (testing only)")
	return c
}

// pipelineNames points at where a command keeps the pipeline's names; a nil
// field is a flag the command does not have.
type pipelineNames struct {
	Input, Output, DLQ, Group, Model *string
}

// addPipelineFlags registers --input, --output, --dlq, --group and --model
// (those p points at), with the seed's names as defaults.
func addPipelineFlags(f *cmdFlags, p pipelineNames) {
	for _, n := range []struct {
		dst         *string
		name, value string
		usage       string
	}{
		{p.Input, "input", pipeline.DefaultInput, "input topic the workers consume"},
		{p.Output, "output", pipeline.DefaultOutput, "topic the workers write results to"},
		{p.DLQ, "dlq", pipeline.DefaultDLQ, "dead-letter topic for records that cannot be served"},
		{p.Group, "group", pipeline.DefaultGroup, "consumer group of the inference workers"},
		{p.Model, "model", pipeline.DefaultModel, "model name on TF Serving"},
	} {
		if n.dst != nil {
			f.StringVar(n.dst, n.name, n.value, n.usage)
		}
	}
}

// workerTuning points at where a command keeps the worker's size and
// batching; a nil field is a flag the command does not have.
type workerTuning struct {
	Workers, MaxBatch *int
	BatchTimeout      *time.Duration
}

// addWorkerFlags registers --workers, --max-batch and --batch-timeout
// (those w points at) with the seed's batching as defaults.
func addWorkerFlags(f *cmdFlags, w workerTuning) {
	if w.Workers != nil {
		f.IntVar(w.Workers, "workers", pipeline.DefaultWorkers, "inference workers (consumer-group members); at most the input's partitions")
	}
	if w.MaxBatch != nil {
		f.IntVar(w.MaxBatch, "max-batch", pipeline.DefaultMaxBatch, "rows per Predict call")
	}
	if w.BatchTimeout != nil {
		f.DurationVar(w.BatchTimeout, "batch-timeout", pipeline.DefaultBatchTimeout, "longest wait to fill a batch")
	}
}

// addServerMetricsFlag registers --tfserving-metrics: TF Serving's own
// Prometheus page, for server-side latency and errors by status next to
// the client's figures. whenEmpty says what an empty value means.
func addServerMetricsFlag(f *cmdFlags, dst *string, whenEmpty string) {
	f.StringVar(dst, "tfserving-metrics", "", "TF Serving's Prometheus page (http://host:8501"+pipeline.TFServingMetricsPath+", enabled by its --monitoring_config_file) for server-side request latency and errors by status; empty = "+whenEmpty)
}

// addInstanceFlag registers --instance: the stable name a worker pool's
// members join its group under (static membership), which a restart must
// keep. whenEmpty says what an empty value means for the command.
func addInstanceFlag(f *cmdFlags, dst *string, whenEmpty string) {
	f.StringVar(dst, "instance", "", "stable name of this worker process in its group: member N joins as inferops-<instance>-wN, and a restart under the same name takes its partitions back without waiting for the session timeout; empty = "+whenEmpty)
}

// fleetFlags is how a process finds the fleet: its two topics and, for a
// worker pool, how often it publishes and whether it follows control.
type fleetFlags struct {
	topics   fleet.Topics
	interval time.Duration
	control  string // follow | ignore
}

// addFleetFlags registers --fleet-topic and --control-topic, and for a
// command that runs a worker pool (pool) --fleet-interval and --control.
func addFleetFlags(f *cmdFlags, pool bool) *fleetFlags {
	ff := &fleetFlags{}
	f.StringVar(&ff.topics.Fleet, "fleet-topic", pipeline.DefaultFleetTopic, "topic every worker pool publishes its telemetry to (key = instance; created on demand)")
	f.StringVar(&ff.topics.Control, "control-topic", pipeline.DefaultControlTopic, "topic holding each group's desired state: workers, target, paused (key = group; created on demand)")
	if pool {
		f.DurationVar(&ff.interval, "fleet-interval", pipeline.DefaultFleetInterval, "how often this pool publishes its telemetry; it shows as lost after 3 silent intervals")
		f.StringVar(&ff.control, "control", "follow", "follow: apply the group's desired state (inferops fleet scale/target/pause); ignore: run on this process's own flags (shown as pinned)")
	}
	return ff
}

// validate names the flag to fix.
func (ff *fleetFlags) validate() error {
	if err := ff.topics.Validate(); err != nil {
		return err
	}
	if ff.control != "" && ff.control != "follow" && ff.control != "ignore" {
		return fmt.Errorf("--control %q: want follow or ignore", ff.control)
	}
	return nil
}

// pinned is --control=ignore.
func (ff *fleetFlags) pinned() bool { return ff.control == "ignore" }

// addLogFlags registers --log-level, --log-format and --log-file with the
// command's defaults (JSON to stderr for headless commands). After parse,
// pass the result to logging.New.
func addLogFlags(f *cmdFlags, def logging.Options) *logging.Options {
	o := def
	o.SetDefaults()
	f.StringVar(&o.Level, "log-level", o.Level, "log level: debug, info, warn or error")
	f.StringVar(&o.Format, "log-format", o.Format, "log format: json (one object per line, for journald) or text")
	f.StringVar(&o.File, "log-file", o.File, "append the log to this file instead of stderr")
	return &o
}

// recordFlags are how records name what the model's signature needs
// (pipeline.SchemaOptions) and which outputs results carry.
type recordFlags struct {
	idField, valueFormat string
	inputFields          commaList // INPUT=FIELD
	outputFilter         commaList
}

// addRecordFlags registers --id-field and --input-field, and for commands
// that run a worker over any records also --value-format and
// --output-filter.
func addRecordFlags(f *cmdFlags, worker bool) *recordFlags {
	r := &recordFlags{}
	f.StringVar(&r.idField, "id-field", pipeline.FieldID, "record field copied into each result as its id (a string or a number; records without it get topic-partition-offset)")
	f.Var(&r.inputFields, "input-field", "INPUT=FIELD: read signature input INPUT from record field FIELD (default: the field named like the input); repeatable")
	if worker {
		f.StringVar(&r.valueFormat, "value-format", pipeline.ValueFormatJSON, "json: a record is a JSON object with a field per input; raw: its bytes are the value of the model's single DT_STRING input (serialized tf.Example)")
		f.Var(&r.outputFilter, "output-filter", "outputs results carry, comma separated (Predict's output_filter); empty = every output")
	}
	return r
}

// schemaOptions reads the flags into the pipeline's terms.
func (r *recordFlags) schemaOptions() (pipeline.SchemaOptions, error) {
	o := pipeline.SchemaOptions{IDField: r.idField, ValueFormat: r.valueFormat}
	for _, kv := range r.inputFields {
		in, field, ok := strings.Cut(kv, "=")
		if !ok || in == "" || field == "" {
			return o, fmt.Errorf("--input-field %q: want INPUT=FIELD, e.g. --input-field user_id=uid", kv)
		}
		if o.InputFields == nil {
			o.InputFields = map[string]string{}
		}
		if prev, dup := o.InputFields[in]; dup && prev != field {
			return o, fmt.Errorf("--input-field maps %s twice (to %s and %s)", in, prev, field)
		}
		o.InputFields[in] = field
	}
	return o, nil
}

// clientKafka is the Kafka config a client command uses: the flags, or the
// embedded broker's default address when --brokers is empty (embedded
// says which), checked.
func clientKafka(flags *cluster.Config) (kc cluster.Config, embedded bool, err error) {
	kc = *flags
	embedded = len(kc.Brokers) == 0
	if embedded {
		kc.Brokers = []string{pipeline.DefaultKafkaAddr}
	}
	kc.SetDefaults()
	if err := kc.Validate(); err != nil {
		return kc, embedded, fmt.Errorf("%w: %v", errUsage, err)
	}
	return kc, embedded, nil
}

// openFleet opens the group's fleet controller for `inferops fleet` and
// `inferops rollout` over the --brokers flags, saying how to start a broker
// when the embedded default has none. The controller is read-only with
// --read-only, or when readsOnly names why the command only reads.
func openFleet(ctx context.Context, flags *cluster.Config, readOnly bool, readsOnly string, cfg fleet.ControllerConfig) (*fleet.Controller, bool, error) {
	kc, embedded, err := clientKafka(flags)
	if err != nil {
		return nil, embedded, err
	}
	switch {
	case readOnly:
		cfg.ReadOnly = "--read-only"
	case readsOnly != "":
		cfg.ReadOnly = readsOnly
	}
	ctl, err := openController(ctx, kc, embedded, cfg)
	return ctl, embedded, err
}

func openController(ctx context.Context, kc cluster.Config, embedded bool, cfg fleet.ControllerConfig) (*fleet.Controller, error) {
	cfg.Kafka = kc
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ctl, err := fleet.Open(octx, cfg)
	if err != nil && embedded && errors.Is(err, syscall.ECONNREFUSED) {
		err = fmt.Errorf("no embedded broker at %s: start it with `inferops serve`, or pass --brokers", pipeline.DefaultKafkaAddr)
	}
	return ctl, err
}
