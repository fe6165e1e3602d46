// Package config is the inferops configuration file and the precedence that
// layers it under the environment and the command line: flag > INFEROPS_*
// environment variable > config file > default. Every key in the file is
// the same setting as one flag from DESIGN.md's table (kafka.brokers is
// --brokers is INFEROPS_BROKERS), so the file only ever supplies values for
// flags a command registered; a command that has no --workers flag never
// reads pipeline.workers. The package also holds the shared secret
// redaction (Secret, Scrub, Redact) used by logs, errors and reports.
package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/inferops/inferops/pipeline"
)

// Kind is the form a key's value takes; it decides what the file may hold
// and how a value is written for flag.Value.Set.
type Kind int

const (
	String   Kind = iota
	Bool          // YAML true/false
	Int           // whole number
	Duration      // Go duration: 1ms, 500us, 2s
	List          // YAML list (or a comma separated string); a comma list for the flag
	HostPort      // host:port (host may be empty for listen addresses)
)

// Key is one setting: its path in the file, the flag (and aliases) it
// fills, its default as shown by `config print`, and whether it is secret.
type Key struct {
	Path    string
	Flag    string   // canonical flag name without dashes; empty for secrets (no flag)
	Aliases []string // other flags that name the same setting (status --topic)
	Kind    Kind
	Default string
	Doc     string
	// Secret keys have no flag (ps(1) would show it): the value comes from
	// the file or from EnvVar, and is always printed as "***".
	Secret bool
	EnvVar string
	// Check validates a value beyond its kind (an enum); it returns the
	// expected form, e.g. "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512".
	Check func(v string) (ok bool, want string)
	// Item is true for List keys whose items are host:port.
	ItemHostPort bool
}

// Env is the environment variable that backs the key.
func (k Key) Env() string {
	if k.EnvVar != "" {
		return k.EnvVar
	}
	return EnvName(k.Flag)
}

// Flags is every flag name that the key fills.
func (k Key) Flags() []string {
	if k.Flag == "" {
		return nil
	}
	return append([]string{k.Flag}, k.Aliases...)
}

// EnvName is the environment variable that backs a flag: --kafka-addr reads
// INFEROPS_KAFKA_ADDR.
func EnvName(flagName string) string {
	return "INFEROPS_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flagName))
}

// DefaultPath is the config file read when neither --config nor
// INFEROPS_CONFIG names one and the file exists. A variable so tests can
// point it into t.TempDir().
var DefaultPath = "/etc/inferops/inferops.yaml"

// ConfigEnv names the config file, like --config.
const ConfigEnv = "INFEROPS_CONFIG"

func oneOf(vals ...string) func(string) (bool, string) {
	want := strings.Join(vals[:len(vals)-1], ", ") + " or " + vals[len(vals)-1]
	return func(v string) (bool, string) {
		for _, x := range vals {
			if strings.EqualFold(v, x) {
				return true, want
			}
		}
		return false, want
	}
}

// Keys is the schema, in the order `config print` shows it. Names follow
// DESIGN.md; add a key here when a flag gains a config-file spelling.
var Keys = []Key{
	{Path: "kafka.brokers", Flag: "brokers", Kind: List, ItemHostPort: true, Doc: "Kafka bootstrap brokers; empty = the embedded broker"},
	{Path: "kafka.version", Flag: "kafka-version", Kind: String, Default: pipeline.DefaultKafkaVersion, Doc: "Kafka protocol version"},
	{Path: "kafka.client_id", Flag: "client-id", Kind: String, Default: pipeline.DefaultClientID, Doc: "client id sent to Kafka"},
	{Path: "kafka.tls.enable", Flag: "kafka-tls", Kind: Bool, Default: "false", Doc: "TLS to Kafka (implied by any TLS file)"},
	{Path: "kafka.tls.ca_file", Flag: "kafka-tls-ca-file", Kind: String, Doc: "PEM CA bundle"},
	{Path: "kafka.tls.cert_file", Flag: "kafka-tls-cert-file", Kind: String, Doc: "PEM client certificate"},
	{Path: "kafka.tls.key_file", Flag: "kafka-tls-key-file", Kind: String, Doc: "PEM client key"},
	{Path: "kafka.tls.insecure_skip_verify", Flag: "kafka-tls-insecure-skip-verify", Kind: Bool, Default: "false", Doc: "skip broker certificate verification"},
	{Path: "kafka.sasl.mechanism", Flag: "sasl-mechanism", Kind: String, Check: oneOf("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"), Doc: "SASL mechanism; empty = no SASL"},
	{Path: "kafka.sasl.username", Flag: "sasl-username", Kind: String, Doc: "SASL user"},
	{Path: "kafka.sasl.password", Kind: String, Secret: true, EnvVar: "INFEROPS_SASL_PASSWORD", Doc: "SASL password (prefer password_file or the environment)"},
	{Path: "kafka.sasl.password_file", Flag: "sasl-password-file", Kind: String, Doc: "file holding the SASL password"},
	{Path: "tfserving.address", Flag: "tfserving", Kind: String, Doc: "TF Serving gRPC host:port, a fleet h1:8500,h2:8500, or dns:///name:8500; empty = the embedded model server"},
	{Path: "tfserving.metrics_url", Flag: "tfserving-metrics", Kind: String, Doc: "TF Serving's Prometheus page (http://host:8501/monitoring/prometheus/metrics); empty = the embedded model server's, or none"},
	{Path: "tfserving.model", Flag: "model", Kind: String, Default: pipeline.DefaultModel, Doc: "model name"},
	{Path: "tfserving.tls.enable", Flag: "tfserving-tls", Kind: Bool, Default: "false", Doc: "TLS to TF Serving"},
	{Path: "tfserving.tls.ca_file", Flag: "tfserving-tls-ca-file", Kind: String, Doc: "PEM CA bundle"},
	{Path: "tfserving.tls.cert_file", Flag: "tfserving-tls-cert-file", Kind: String, Doc: "PEM client certificate"},
	{Path: "tfserving.tls.key_file", Flag: "tfserving-tls-key-file", Kind: String, Doc: "PEM client key"},
	{Path: "tfserving.tls.insecure_skip_verify", Flag: "tfserving-tls-insecure-skip-verify", Kind: Bool, Default: "false", Doc: "skip server certificate verification"},
	{Path: "pipeline.input", Flag: "input", Aliases: []string{"topic"}, Kind: String, Default: pipeline.DefaultInput, Doc: "input topic"},
	{Path: "pipeline.output", Flag: "output", Kind: String, Default: pipeline.DefaultOutput, Doc: "output topic"},
	{Path: "pipeline.dlq", Flag: "dlq", Kind: String, Default: pipeline.DefaultDLQ, Doc: "dead-letter topic"},
	{Path: "pipeline.group", Flag: "group", Kind: String, Default: pipeline.DefaultGroup, Doc: "consumer group"},
	{Path: "pipeline.workers", Flag: "workers", Kind: Int, Default: strconv.Itoa(pipeline.DefaultWorkers), Doc: "inference workers"},
	{Path: "pipeline.max_batch", Flag: "max-batch", Kind: Int, Default: strconv.Itoa(pipeline.DefaultMaxBatch), Doc: "records per Predict call"},
	{Path: "pipeline.batch_timeout", Flag: "batch-timeout", Kind: Duration, Default: pipeline.DefaultBatchTimeout.String(), Doc: "longest wait to fill a batch"},
	{Path: "pipeline.id_field", Flag: "id-field", Kind: String, Default: pipeline.FieldID, Doc: "record field copied into results as their id"},
	{Path: "pipeline.input_fields", Flag: "input-field", Kind: List, Doc: "INPUT=FIELD pairs: read a signature input from another record field"},
	{Path: "pipeline.value_format", Flag: "value-format", Kind: String, Default: pipeline.ValueFormatJSON, Check: oneOf(pipeline.ValueFormatJSON, pipeline.ValueFormatRaw), Doc: "json (a field per input) or raw (the record is the single DT_STRING input)"},
	{Path: "pipeline.output_filter", Flag: "output-filter", Kind: List, Doc: "outputs results carry; empty = every output"},
	{Path: "fleet.topic", Flag: "fleet-topic", Kind: String, Default: pipeline.DefaultFleetTopic, Doc: "topic every worker pool publishes its telemetry to (key = instance)"},
	{Path: "fleet.control_topic", Flag: "control-topic", Kind: String, Default: pipeline.DefaultControlTopic, Doc: "topic holding each group's desired state (key = group)"},
	{Path: "fleet.interval", Flag: "fleet-interval", Kind: Duration, Default: pipeline.DefaultFleetInterval.String(), Doc: "how often a worker pool publishes its telemetry"},
	{Path: "fleet.control", Flag: "control", Kind: String, Default: "follow", Check: oneOf("follow", "ignore"), Doc: "follow the group's desired state, or ignore it (pinned to this process's flags)"},
	{Path: "worker.instance", Flag: "instance", Kind: String, Doc: "stable name of this worker process in its group (members are inferops-<instance>-w<N>); empty = the host name, the console's <host>-console"},
	{Path: "embedded.data_dir", Flag: "data-dir", Kind: String, Doc: "embedded state directory"},
	{Path: "embedded.ephemeral", Flag: "ephemeral", Kind: Bool, Default: "false", Doc: "keep embedded state in memory"},
	{Path: "embedded.kafka_addr", Flag: "kafka-addr", Kind: HostPort, Default: pipeline.DefaultKafkaAddr, Doc: "embedded broker address"},
	{Path: "embedded.kafka_advertised_addr", Flag: "kafka-advertised-addr", Kind: HostPort, Doc: "address the embedded broker advertises; empty = embedded.kafka_addr"},
	{Path: "embedded.grpc_addr", Flag: "grpc-addr", Kind: HostPort, Default: pipeline.DefaultGRPCAddr, Doc: "embedded model server gRPC address"},
	{Path: "embedded.rest_addr", Flag: "rest-addr", Kind: HostPort, Default: pipeline.DefaultRESTAddr, Doc: "embedded model server REST address"},
	{Path: "embedded.stand_ins", Flag: "stand-in", Kind: List, Doc: "NAME=FILE pairs: stand-in models made from a TF Serving metadata JSON"},
	{Path: "metrics.addr", Flag: "metrics-addr", Kind: HostPort, Doc: "Prometheus /metrics listen address; empty = off"},
	{Path: "log.level", Flag: "log-level", Kind: String, Default: "info", Check: oneOf("debug", "info", "warn", "error"), Doc: "log level"},
	{Path: "log.format", Flag: "log-format", Kind: String, Check: oneOf("json", "text"), Doc: "log format; empty = the command's choice"},
	{Path: "log.file", Flag: "log-file", Kind: String, Doc: "log file; empty = the command's choice"},
}

// Lookup returns the key at path.
func Lookup(path string) (Key, bool) {
	for _, k := range Keys {
		if k.Path == path {
			return k, true
		}
	}
	return Key{}, false
}

// KeyForFlag returns the key a flag name belongs to.
func KeyForFlag(name string) (Key, bool) {
	for _, k := range Keys {
		for _, f := range k.Flags() {
			if f == name {
				return k, true
			}
		}
	}
	return Key{}, false
}

// Check reports whether v (in flag form) is a valid value for k, with the
// expected form when it is not: `"four" is not a whole number`.
func (k Key) CheckValue(v string) error {
	switch k.Kind {
	case Bool:
		if _, err := strconv.ParseBool(v); err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
	case Int:
		if _, err := strconv.Atoi(strings.TrimSpace(v)); err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
	case Duration:
		if _, err := time.ParseDuration(strings.TrimSpace(v)); err != nil {
			return fmt.Errorf("%q is not a duration (want e.g. 1ms, 500us, 2s)", v)
		}
	case HostPort:
		if v != "" {
			if err := checkHostPort(v, true); err != nil {
				return fmt.Errorf("%q is not host:port (%v; e.g. 127.0.0.1:9092)", v, err)
			}
		}
	case List:
		if k.ItemHostPort {
			for i, item := range splitList(v) {
				if err := checkHostPort(item, false); err != nil {
					return fmt.Errorf("item %d %q is not host:port (%v; e.g. kafka-1:9092)", i, item, err)
				}
			}
		}
	}
	if k.Check != nil && v != "" {
		if ok, want := k.Check(v); !ok {
			return fmt.Errorf("%q is not one of %s", v, want)
		}
	}
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func checkHostPort(v string, emptyHostOK bool) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("missing port")
	}
	if host == "" && !emptyHostOK {
		return fmt.Errorf("missing host")
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}
