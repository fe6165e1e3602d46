package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/internal/config"
	"github.com/inferops/inferops/internal/paths"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
)

// embeddedFlags are the embedded stack's flags, which `inferops serve` and
// the console share: which parts run, where they keep their state, and
// each part's own settings.
type embeddedFlags struct {
	dataDir   string
	ephemeral bool
	faults    repeatedFlag // --fault MODEL/VERSION:KEY=VALUE,... (drills)

	broker    bool
	brokerCfg cluster.BrokerConfig
	users     commaList // --kafka-sasl-user
	usersFile string

	models      bool
	modelsCfg   modelserver.Config
	batchMicros int64     // --batching-timeout-micros, TF Serving's unit
	standIns    commaList // --stand-in NAME=FILE
}

// addEmbeddedFlags registers the embedded stack's flags: --data-dir and
// --ephemeral, the broker's (--broker, --kafka-addr, --kafka-sasl-*,
// --kafka-tls-server-*) and the model server's (--model-server,
// --grpc-addr, --rest-addr, the model, batching and TLS flags).
func addEmbeddedFlags(f *cmdFlags) *embeddedFlags {
	e := &embeddedFlags{}
	f.StringVar(&e.dataDir, "data-dir", paths.StateDir(), "root directory for embedded state: broker data in <data-dir>/kafka, models in <data-dir>/models (and the console's console.log and reports)")
	f.BoolVar(&e.ephemeral, "ephemeral", false, "keep all embedded state in memory; nothing is written to --data-dir (but the console's console.log)")

	b := &e.brokerCfg
	f.BoolVar(&e.broker, "broker", true, "run the embedded Kafka broker (--broker=false when you point the pipeline at a real cluster)")
	f.StringVar(&b.Addr, "kafka-addr", pipeline.DefaultKafkaAddr, "address the embedded broker listens on and (without --kafka-advertised-addr) advertises")
	f.StringVar(&b.AdvertisedAddr, "kafka-advertised-addr", "", "address the embedded broker tells clients to dial, when not --kafka-addr (a proxy or port forward in front of it; lets --kafka-addr be 0.0.0.0:9092)")
	f.StringVar(&b.SASL.Mechanism, "kafka-sasl-mechanism", "", "make the embedded broker require SASL: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	f.Var(&e.users, "kafka-sasl-user", "user:password the embedded broker accepts (repeat or comma-separate; prefer the env variable or --kafka-sasl-users-file)")
	f.StringVar(&e.usersFile, "kafka-sasl-users-file", "", "file of user:password lines the embedded broker accepts")
	f.StringVar(&b.TLS.CertFile, "kafka-tls-server-cert-file", "", "PEM certificate: the embedded broker listens with TLS")
	f.StringVar(&b.TLS.KeyFile, "kafka-tls-server-key-file", "", "PEM key for --kafka-tls-server-cert-file")

	m := &e.modelsCfg
	f.BoolVar(&e.models, "model-server", true, "run the embedded TF-Serving-compatible model server (--model-server=false when workers call a real TF Serving)")
	f.StringVar(&m.GRPCAddr, "grpc-addr", pipeline.DefaultGRPCAddr, "model server gRPC listen address (TF Serving's --port)")
	f.StringVar(&m.RESTAddr, "rest-addr", pipeline.DefaultRESTAddr, "model server REST + Prometheus listen address (TF Serving's --rest_api_port); - = off")
	f.StringVar(&m.ModelName, "model-name", pipeline.DefaultModel, "model name served from --model-base-path")
	f.StringVar(&m.ModelBasePath, "model-base-path", "", "directory of numeric version subdirectories (<path>/1/model.iom); empty = the shipped my_model and ads_ctr under <data-dir>/models")
	f.Var(&e.standIns, "stand-in", "NAME=FILE: also serve a stand-in model NAME with exactly the signature in FILE, what TF Serving returns from GET /v1/models/NAME/metadata (curl it from production); repeatable")
	f.StringVar(&m.ModelConfigFile, "model-config-file", "", "TF Serving text-format ModelServerConfig (model_config_list { config { ... } }); overrides --model-name/--model-base-path")
	f.DurationVar(&m.PollWait, "file-system-poll-wait", time.Second, "how often base paths are re-read for new and removed versions; negative = only at start")
	f.BoolVar(&m.EnableBatching, "enable-batching", false, "merge concurrent Predict requests into batches (TF Serving's --enable_batching)")
	f.StringVar(&m.BatchingParametersFile, "batching-parameters-file", "", "TF Serving text-format BatchingParameters (needs --enable-batching); overrides the --batching-* flags")
	f.IntVar(&m.Batching.MaxBatchSize, "batching-max-batch-size", pipeline.DefaultMaxBatch, "server-side batching: largest batch in rows (max_batch_size)")
	f.Int64Var(&e.batchMicros, "batching-timeout-micros", pipeline.DefaultBatchTimeout.Microseconds(), "server-side batching: longest wait to fill a batch (batch_timeout_micros)")
	f.IntVar(&m.Batching.MaxEnqueuedBatches, "batching-max-enqueued-batches", 10, "server-side batching: queued batches before requests get UNAVAILABLE")
	f.IntVar(&m.Batching.NumBatchThreads, "batching-num-batch-threads", 0, "server-side batching: batches run in parallel; 0 = number of CPUs")
	f.Var(&e.faults, "fault", "MODEL/VERSION:latency=50ms,errors=5%: make that version of the embedded model server slow and/or failing on purpose, for rollout drills (VERSION * = every version); repeatable")
	f.commandLineOnly("a fault is a drill, given on the command line of the serve (or embedded console) it breaks, never left behind in a config file or the environment", "fault")
	f.BoolVar(&m.AllowVersionLabelsForUnavailableModels, "allow-version-labels-for-unavailable-models", false, "let new version labels point at versions not yet AVAILABLE (TF Serving's flag of that name)")
	f.DurationVar(&m.InjectLatency, "inject-latency", 0, "fault injection: extra delay added to every Predict (e.g. 50ms)")
	f.StringVar(&m.TLS.CertFile, "grpc-tls-cert-file", "", "PEM certificate: the model server's gRPC and REST listeners use TLS")
	f.StringVar(&m.TLS.KeyFile, "grpc-tls-key-file", "", "PEM key for --grpc-tls-cert-file")
	f.StringVar(&m.TLS.ClientCAFile, "grpc-tls-client-ca-file", "", "PEM CA bundle: require client certificates signed by it (mutual TLS)")
	return e
}

// stackConfig is the stack the flags describe, for the parts switched on
// (--broker, --model-server). dataDir is --data-dir made absolute by the
// caller. Mistakes in the model server's flags are usage errors (exit 2),
// found before anything starts; the broker reports its own when it starts.
func (e *embeddedFlags) stackConfig(dataDir string, log *slog.Logger) (stack.Config, error) {
	sc := stack.Config{DataDir: dataDir, Ephemeral: e.ephemeral, Logger: log}
	if e.broker {
		b := e.brokerCfg
		var err error
		if b.SASL.Users, err = parseSASLUsers(e.users, e.usersFile); err != nil {
			return stack.Config{}, fmt.Errorf("start broker: %w", err)
		}
		sc.Broker = &b
	}
	if len(e.faults) > 0 && !e.models {
		return stack.Config{}, fmt.Errorf("%w: --fault needs the embedded model server (drop --model-server=false)", errUsage)
	}
	if e.models {
		m := e.modelsCfg
		m.Faults = nil
		for _, spec := range e.faults {
			f, err := modelserver.ParseFault(spec)
			if err != nil {
				return stack.Config{}, fmt.Errorf("%w: %v", errUsage, err)
			}
			m.Faults = append(m.Faults, f)
		}
		if e.batchMicros < 0 {
			return stack.Config{}, fmt.Errorf("%w: --batching-timeout-micros %d is negative", errUsage, e.batchMicros)
		}
		m.Batching.BatchTimeout = time.Duration(e.batchMicros) * time.Microsecond
		for _, v := range e.standIns {
			st, err := modelserver.ParseStandInFlag(v)
			if err != nil {
				return stack.Config{}, fmt.Errorf("%w: %v", errUsage, err)
			}
			if st.File, err = filepath.Abs(st.File); err != nil {
				return stack.Config{}, fmt.Errorf("%w: --stand-in %s: %v", errUsage, v, err)
			}
			m.StandIns = append(m.StandIns, st)
		}
		if m.ModelBasePath != "" {
			abs, err := filepath.Abs(m.ModelBasePath)
			if err != nil {
				return stack.Config{}, fmt.Errorf("%w: --model-base-path %q: %v", errUsage, m.ModelBasePath, err)
			}
			m.ModelBasePath = abs
		}
		// Validate reads the batching parameters file into what it checks,
		// so it runs on a copy; modelserver.Start validates again.
		check := m
		check.SetDefaults()
		if err := check.Validate(); err != nil {
			return stack.Config{}, fmt.Errorf("%w: %v", errUsage, err)
		}
		sc.Models = &m
	}
	return sc, nil
}

// parseSASLUsers reads user:password pairs from the flag and the file.
func parseSASLUsers(list []string, file string) (map[string]string, error) {
	var content []byte
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--kafka-sasl-users-file: %v", err)
		}
		content = b
	}
	users, err := parseSASLUserLines(list, "--kafka-sasl-users-file "+file, content)
	if err != nil {
		return nil, err
	}
	for _, p := range users {
		// Scrubbed from every log line and error from now on: the broker
		// or a client error may quote what it was given.
		config.RegisterSecret(p)
	}
	return users, nil
}

// parseSASLUserLines reads the --kafka-sasl-user entries, then the users
// file's lines (blank lines and # comments skipped); where names the file
// in errors, which never echo an entry: it may hold a password.
func parseSASLUserLines(list []string, where string, file []byte) (map[string]string, error) {
	type src struct{ where, entry string }
	var entries []src
	for _, e := range list {
		entries = append(entries, src{"--kafka-sasl-user", e})
	}
	for _, line := range strings.Split(string(file), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			entries = append(entries, src{where, line})
		}
	}
	if len(entries) == 0 {
		return nil, nil
	}
	users := map[string]string{}
	for _, e := range entries {
		u, p, ok := strings.Cut(e.entry, ":")
		if !ok || u == "" || p == "" {
			return nil, fmt.Errorf("%s: want user:password entries", e.where)
		}
		users[u] = p
	}
	return users, nil
}

// limitMemory sets a soft heap limit unless the operator set GOMEMLIMIT: Go
// keeps freed heap, and the broker's churn otherwise shows as a large RSS on
// a small VM (kfake.md measured 1.7 GB falling to 330 MB with a limit).
func limitMemory() {
	if _, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		return
	}
	debug.SetMemoryLimit(1 << 30)
}
