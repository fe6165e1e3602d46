package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/pipeline"
)

func init() {
	serveParts = append(serveParts, modelServerPart())
}

// modelServerPart is the embedded TF-Serving-compatible model server:
// gRPC on --grpc-addr, REST and Prometheus on --rest-addr, my_model v1/v2
// from <data-dir>/models unless --model-base-path/--model-config-file.
func modelServerPart() *servePart {
	var (
		enabled bool
		cfg     modelserver.Config
		micros  int64
	)
	return &servePart{
		name: "models",
		flags: func(fs *flag.FlagSet) {
			// Fresh state per run: tests call realMain more than once.
			cfg, micros = modelserver.Config{}, 0
			b := &cfg.Batching
			fs.BoolVar(&enabled, "model-server", true, "run the embedded TF-Serving-compatible model server (--model-server=false when workers call a real TF Serving)")
			fs.StringVar(&cfg.GRPCAddr, "grpc-addr", pipeline.DefaultGRPCAddr, "model server gRPC listen address (TF Serving's --port)")
			fs.StringVar(&cfg.RESTAddr, "rest-addr", pipeline.DefaultRESTAddr, "model server REST + Prometheus listen address (TF Serving's --rest_api_port); - = off")
			fs.StringVar(&cfg.ModelName, "model-name", pipeline.DefaultModel, "model name served from --model-base-path")
			fs.StringVar(&cfg.ModelBasePath, "model-base-path", "", "directory of numeric version subdirectories (<path>/1/model.iom); empty = the shipped my_model under <data-dir>/models")
			fs.StringVar(&cfg.ModelConfigFile, "model-config-file", "", "TF Serving text-format ModelServerConfig (model_config_list { config { ... } }); overrides --model-name/--model-base-path")
			fs.DurationVar(&cfg.PollWait, "file-system-poll-wait", time.Second, "how often base paths are re-read for new and removed versions; negative = only at start")
			fs.BoolVar(&cfg.EnableBatching, "enable-batching", false, "merge concurrent Predict requests into batches (TF Serving's --enable_batching)")
			fs.StringVar(&cfg.BatchingParametersFile, "batching-parameters-file", "", "TF Serving text-format BatchingParameters (needs --enable-batching); overrides the --batching-* flags")
			fs.IntVar(&b.MaxBatchSize, "batching-max-batch-size", 64, "server-side batching: largest batch in rows (max_batch_size)")
			fs.Int64Var(&micros, "batching-timeout-micros", 1000, "server-side batching: longest wait to fill a batch (batch_timeout_micros)")
			fs.IntVar(&b.MaxEnqueuedBatches, "batching-max-enqueued-batches", 10, "server-side batching: queued batches before requests get UNAVAILABLE")
			fs.IntVar(&b.NumBatchThreads, "batching-num-batch-threads", 0, "server-side batching: batches run in parallel; 0 = number of CPUs")
			fs.BoolVar(&cfg.AllowVersionLabelsForUnavailableModels, "allow-version-labels-for-unavailable-models", false, "let new version labels point at versions not yet AVAILABLE (TF Serving's flag of that name)")
			fs.DurationVar(&cfg.InjectLatency, "inject-latency", 0, "fault injection: extra delay added to every Predict (e.g. 50ms)")
			fs.StringVar(&cfg.TLS.CertFile, "grpc-tls-cert-file", "", "PEM certificate: the model server's gRPC and REST listeners use TLS")
			fs.StringVar(&cfg.TLS.KeyFile, "grpc-tls-key-file", "", "PEM key for --grpc-tls-cert-file")
			fs.StringVar(&cfg.TLS.ClientCAFile, "grpc-tls-client-ca-file", "", "PEM CA bundle: require client certificates signed by it (mutual TLS)")
		},
		start: func(ctx context.Context, env serveEnv) ([]string, func() error, error) {
			if !enabled {
				return nil, nil, nil
			}
			if micros < 0 {
				return nil, nil, fmt.Errorf("%w: --batching-timeout-micros %d is negative", errUsage, micros)
			}
			cfg.Batching.BatchTimeout = time.Duration(micros) * time.Microsecond
			if !env.Ephemeral {
				// The model server adds models/ itself.
				cfg.DataDir = env.DataDir
			}
			cfg.Logger = env.Log.With("part", "models")
			if cfg.ModelBasePath != "" {
				abs, err := filepath.Abs(cfg.ModelBasePath)
				if err != nil {
					return nil, nil, fmt.Errorf("%w: --model-base-path %q: %v", errUsage, cfg.ModelBasePath, err)
				}
				cfg.ModelBasePath = abs
			}
			// Flag mistakes exit 2 like every usage error; Start validates
			// again (idempotently) for library callers.
			check := cfg
			check.SetDefaults()
			if err := check.Validate(); err != nil {
				return nil, nil, fmt.Errorf("%w: %v", errUsage, err)
			}
			s, err := modelserver.Start(ctx, cfg)
			if err != nil {
				return nil, nil, err
			}
			addrs := []string{"grpc=" + s.GRPCAddr()}
			if s.RESTAddr() != "" {
				addrs = append(addrs, "rest="+s.RESTAddr())
			}
			return addrs, s.Close, nil
		},
	}
}
