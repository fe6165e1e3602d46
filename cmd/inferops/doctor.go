package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/doctor"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
)

// errDoctorFailed makes doctor exit 1 after it printed a report with a FAIL;
// the report itself already said everything, so main adds only a short line.
var errDoctorFailed = fmt.Errorf("at least one check FAILED (see the report above)")

const doctorHelp = `Checks this host (kernel settings, open-files limit, clock sync, NIC speed,
distribution), the Kafka cluster (brokers, the input topic's partitions
against the --workers you run, the output and DLQ topics, replication,
min.insync.replicas, message size limits, retention, compression, the group's
status) and TF Serving (reachable, model AVAILABLE, versions and labels,
batching, Predict p99 from a short probe). Each check reports PASS, WARN or
FAIL with the value seen, the value wanted, why it matters and the exact fix.

With no --brokers/--tfserving it checks the embedded defaults that 'make run'
or 'inferops serve' start (127.0.0.1:9092, :8500, :8501). Each section gives up
after --timeout, so doctor never hangs.

--print NAME writes a recommended configuration file to stdout instead:
  sysctl              /etc/sysctl.d/99-inferops.conf
  kafka-broker        server.properties keys
  kafka-producer      producer.properties
  tfserving-batching  TF Serving --batching_parameters_file

Exit status: 0 when no check FAILED (WARN is advice), 1 when any check FAILED,
2 for a bad command line.`

// doctorCmd is `inferops doctor`.
type doctorCmd struct {
	kafka     *cluster.Config
	tfs       *tfserving.Config
	o         doctor.Options
	host      bool
	jsonOut   bool
	printName string
}

func doctorCommand() (*cmdFlags, runFunc) {
	f := newFlags("doctor", "doctor [--brokers ...] [--tfserving ...] [--json] [--print NAME]", doctorHelp)
	c := &doctorCmd{kafka: addKafkaFlags(f), tfs: addTFServingFlags(f, "the embedded model server at "+pipeline.DefaultGRPCAddr)}
	o := &c.o
	f.StringVar(&o.TFServingREST, "tfserving-rest", "", "TF Serving REST host:port, read for Prometheus batching metrics; empty = "+pipeline.DefaultRESTAddr+" with the embedded default, otherwise not read")
	addPipelineFlags(f, pipelineNames{Input: &o.Input, Output: &o.Output, DLQ: &o.DLQ, Group: &o.Group, Model: &o.Model})
	addWorkerFlags(f, workerTuning{Workers: &o.Workers})
	f.StringVar(&o.ProcRoot, "proc-root", "/", "root of the host to check: reads <root>/proc/sys, <root>/etc/os-release (a mounted image, or a test fixture)")
	f.DurationVar(&o.PredictSLO, "predict-slo", doctor.DefaultPredictSLO, "p99 the single-row Predict probe must meet (the seed's scenarios: 50ms, 100ms, 200ms); 4x it is a FAIL")
	f.DurationVar(&o.SectionTimeout, "timeout", doctor.DefaultSectionTimeout, "time limit for each of the Kafka and TF Serving sections")
	f.BoolVar(&c.host, "host", true, "run the host checks (--host=false when checking a remote cluster from another machine)")
	f.BoolVar(&c.jsonOut, "json", false, "print the report as JSON")
	f.StringVar(&c.printName, "print", "", "print a recommended config file instead of checking: "+strings.Join(doctor.PrintableNames(), ", "))
	return f, c.run
}

func (c *doctorCmd) run(ctx context.Context, std stdio) error {
	o := c.o
	if c.printName != "" {
		text, err := doctor.Recommended(c.printName)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		_, err = io.WriteString(std.out, text)
		return err
	}
	if o.Workers <= 0 {
		return fmt.Errorf("%w: --workers %d: must be at least 1", errUsage, o.Workers)
	}
	if o.PredictSLO <= 0 {
		return fmt.Errorf("%w: --predict-slo %s: must be positive (e.g. 50ms)", errUsage, o.PredictSLO)
	}
	if o.SectionTimeout <= 0 || o.SectionTimeout > 5*time.Minute {
		return fmt.Errorf("%w: --timeout %s: want between 1ms and 5m (e.g. 5s)", errUsage, o.SectionTimeout)
	}
	if fi, err := os.Stat(o.ProcRoot); err != nil || !fi.IsDir() {
		return fmt.Errorf("%w: --proc-root %q: not a directory (want / or the mount point of a host's root filesystem)", errUsage, o.ProcRoot)
	}
	o.Kafka, o.TF = *c.kafka, *c.tfs
	o.NoHost = !c.host
	report, err := doctor.Run(ctx, o)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if c.jsonOut {
		err = report.WriteJSON(std.out)
	} else {
		err = report.WriteText(std.out, colourOK(std.out))
	}
	if err != nil {
		return err
	}
	if !report.OK {
		return errDoctorFailed
	}
	return nil
}

// colourOK: ANSI colour only on a terminal, and never with NO_COLOR set
// (https://no-color.org), so pipes and CI logs stay clean.
func colourOK(w io.Writer) bool {
	if _, ok := os.LookupEnv("NO_COLOR"); ok {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
