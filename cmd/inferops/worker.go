package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/worker"
	"github.com/inferops/inferops/internal/logging"
	"github.com/inferops/inferops/pipeline"
)

const workerHelp = `Runs the inference worker without the console, e.g. under systemd: a consumer
group on --input, micro-batches of up to --max-batch rows sent to TF Serving's
Predict, one result per record on --output, bad records on --dlq. Delivery is
at-least-once: an offset is committed only after its result is acked.

Records follow the model's serving_default signature: a JSON object with one
field per input, named like the input (--input-field INPUT=FIELD maps others),
values in TF Serving's REST row format ({"id": 7, "user_id": 42,
"ad_ids": [1, 2, 3, 4, 5, 6, 7, 8], "query": "red dress", ...}); the id comes
from --id-field. --value-format raw feeds each record's bytes unchanged to a
model whose single input is DT_STRING (serialized tf.Example). Results carry
"predictions" as TF Serving's REST API returns them for one instance: the
value of a single output, or an object keyed by output (--output-filter).

Logs are JSON on stderr. With --metrics-addr, Prometheus metrics
(inferops_worker_*) are served on /metrics; ":9102" listens on loopback only.
SIGTERM drains: in-flight records finish (or are handed back uncommitted) and
the worker leaves the group within 10 s, so its partitions move at once.

Members join as inferops-<--instance>-w1..wN with that name as their
group.instance.id (static membership): after a crash, a restart under the
same --instance within the session timeout (10 s) takes the partitions back
instead of waiting for the dead members. Give every worker process of a
group its own --instance; the default, the host name, suits one worker per
host (the console's own pool is <host>-console).

Without --brokers / --tfserving it uses the embedded defaults that
'inferops serve' starts (127.0.0.1:9092 and 127.0.0.1:8500). Several workers
in the same --group share the partitions.`

// workerCmd is `inferops worker`.
type workerCmd struct {
	kafka       *cluster.Config
	tfs         *tfserving.Config
	cfg         worker.Config
	records     *recordFlags
	target      string
	metricsAddr string
	fleet       *fleetFlags
	log         *logging.Options
}

func workerCommand() (*cmdFlags, runFunc) {
	f := newFlags("worker", "worker [--brokers host:port,...] [--tfserving host:port] [flags]", workerHelp)
	c := &workerCmd{kafka: addKafkaFlags(f), tfs: addTFServingFlags(f, "the embedded model server at "+pipeline.DefaultGRPCAddr)}
	cfg := &c.cfg
	addPipelineFlags(f, pipelineNames{Input: &cfg.Input, Output: &cfg.Output, DLQ: &cfg.DLQ, Group: &cfg.Group, Model: &cfg.Model})
	addWorkerFlags(f, workerTuning{Workers: &cfg.Workers, MaxBatch: &cfg.MaxBatch, BatchTimeout: &cfg.BatchTimeout})
	addInstanceFlag(f, &cfg.Instance, "the host name ("+worker.HostInstance()+")")
	f.IntVar(&cfg.MaxMessageBytes, "max-message-bytes", pipeline.DefaultMaxMessageBytes, "input records larger than this go to the DLQ")
	c.records = addRecordFlags(f, true)
	f.StringVar(&c.target, "target-version", "latest", "model version to serve: latest, 2, v2, label:stable")
	f.StringVar(&c.metricsAddr, "metrics-addr", "", "serve Prometheus /metrics here (\":9102\" = loopback); empty = off")
	c.fleet = addFleetFlags(f, true)
	c.log = addLogFlags(f, logging.Options{Format: "json"})
	return f, c.run
}

func (c *workerCmd) run(ctx context.Context, _ stdio) error {
	kafka, tcfg, cfg := c.kafka, *c.tfs, c.cfg
	t, err := tfserving.ParseTarget(c.target)
	if err != nil {
		return fmt.Errorf("%w: --target-version: %v", errUsage, err)
	}
	cfg.Target = t
	ro, err := c.records.schemaOptions()
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg.IDField, cfg.InputFields, cfg.ValueFormat, cfg.OutputFilter = ro.IDField, ro.InputFields, ro.ValueFormat, c.records.outputFilter
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := c.fleet.validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	// The worker's live heap is small and bounded by its queues while it
	// allocates a little per record: collecting at 400% instead of 100% saved
	// about 8% CPU per message in BenchmarkDrain. GOGC, when set, still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	log, closeLog, err := logging.New(*c.log)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	defer func() { _ = closeLog() }()

	embedded := len(kafka.Brokers) == 0 || tcfg.Address == ""
	if len(kafka.Brokers) == 0 {
		kafka.Brokers = []string{pipeline.DefaultKafkaAddr}
	}
	tcfg.Model, tcfg.Log = cfg.Model, log // host events go to the worker's log
	tcfg.SetDefaults()
	if err := tcfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	kafka.SetDefaults()
	if err := kafka.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	tfs, err := tfserving.Dial(tcfg)
	if err != nil {
		return err
	}
	defer tfs.Close()
	var srv *http.Server
	defer func() {
		if srv != nil {
			_ = srv.Close()
		}
	}()
	fp, err := startFleetPool(ctx, *kafka, tfs, cfg, c.fleet, log, func(pool *worker.Pool) error {
		if c.metricsAddr == "" {
			return nil
		}
		addr, err := loopbackDefault(c.metricsAddr)
		if err != nil {
			return fmt.Errorf("%w: --metrics-addr: %v", errUsage, err)
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		if err := pool.RegisterMetrics(reg); err != nil {
			return err
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("--metrics-addr %s: %v (pick a free port)", addr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		log.Info("metrics listening", "addr", "http://"+ln.Addr().String()+"/metrics")
		return nil
	})
	if err != nil {
		if embedded && !errors.Is(err, errUsage) {
			return fmt.Errorf("%v\n(no --brokers/--tfserving given, so the worker used the embedded defaults %s and %s: start them with `inferops serve`, or pass --brokers and --tfserving)", err, kafka.Brokers[0], tcfg.Address)
		}
		return err
	}
	pool := fp.pool
	log.Info("worker running", "brokers", kafka.Brokers, "tfserving", tcfg.Address, "model", cfg.Model, "target", t.String())

	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			logStats(log, pool.Stats(), fp.agent.Control())
		}
	}
	log.Info("draining: finishing in-flight records and leaving the group")
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelClose()
	err = fp.close(closeCtx)
	if srv != nil {
		_ = srv.Shutdown(closeCtx)
	}
	logStats(log, pool.Stats(), fp.agent.Control())
	return err
}

func logStats(log *slog.Logger, s worker.Stats, ctl fleet.Control) {
	log.Info("stats", "workers", s.Workers, "consumed", s.Consumed, "produced", s.Produced, "dlq", s.DLQ,
		"retries", s.Retries, "duplicates", s.Duplicates, "qps", int(s.QPS), "avg_batch", s.AvgBatch,
		"predict_p99_ms", float64(s.Predict.P99.Microseconds())/1000, "e2e_p99_ms", float64(s.EndToEnd.P99.Microseconds())/1000,
		"lag", s.Lag, "breaker", s.Breaker, "target", s.Target, "control", ctl.Mode, "control_seq", ctl.Seq)
}

// loopbackDefault turns ":9102" into "127.0.0.1:9102": metrics are not
// exposed to the network unless a host is named.
func loopbackDefault(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", errors.New("want host:port or :port, e.g. :9102")
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}
