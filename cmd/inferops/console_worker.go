package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/worker"
	"github.com/inferops/inferops/pipeline"
)

// consoleWorker is the console's connection to TF Serving and its embedded
// inference worker.
type consoleWorker struct {
	tfs    *tfserving.Client
	pool   *worker.Pool
	fp     *fleetPool       // the pool as one instance of the fleet
	schema *pipeline.Schema // the model's record schema, for the demo traffic
}

// startWorker dials TF Serving, learns the model's signature and, unless
// the console only watches, starts the worker pool in the group.
func (c *consoleCmd) startWorker(ctx context.Context, kc cluster.Config, tcfg tfserving.Config, log *slog.Logger) (*consoleWorker, error) {
	w := &consoleWorker{}
	if tcfg.Address == "" {
		return w, nil
	}
	tcfg.Model = c.model // host events reach console.log through the adapter's event log
	tfs, err := tfserving.Dial(tcfg)
	if err != nil {
		return nil, err
	}
	w.tfs = tfs
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	md, err := tfs.Metadata(mctx, c.model, tfserving.Target{})
	if err != nil {
		_ = tfs.Close()
		return nil, fmt.Errorf("model %s at %s: %w", c.model, tcfg.Address, err)
	}
	ro, err := c.records.schemaOptions()
	if err != nil {
		_ = tfs.Close()
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if sig, err := md.ServingDefault(); err == nil {
		if w.schema, err = pipeline.NewSchema(sig.InputSpecs(), ro); err != nil {
			log.Warn("no demo traffic: the model's records cannot be synthesized", "err", err)
		}
	}
	if c.noWorker {
		return w, nil
	}
	instance := c.instance
	if instance == "" {
		instance = worker.HostInstance() + "-console"
	}
	if err := c.fleet.validate(); err != nil {
		_ = tfs.Close()
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	fp, err := startFleetPool(ctx, kc, tfs, worker.Config{
		Instance: instance, Model: c.model, Input: c.input, Output: c.output, DLQ: c.dlq, Group: c.group, Workers: c.workers,
		IDField: ro.IDField, InputFields: ro.InputFields, ValueFormat: ro.ValueFormat, OutputFilter: c.records.outputFilter,
	}, c.fleet, log.With("part", "worker"), nil)
	if err != nil {
		_ = tfs.Close()
		return nil, fmt.Errorf("start the worker: %w", err)
	}
	w.fp, w.pool = fp, fp.pool
	return w, nil
}

// drain finishes and commits the in-flight records, leaves the group and
// closes the TF Serving connection.
func (w *consoleWorker) drain(std stdio) {
	if w.fp != nil {
		fmt.Fprintln(std.err, "inferops: draining the worker…")
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := w.fp.close(ctx); err != nil {
			fmt.Fprintf(std.err, "inferops: drain: %v\n", err)
		}
	}
	if w.tfs != nil {
		_ = w.tfs.Close()
	}
}
