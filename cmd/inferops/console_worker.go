package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/worker"
	"github.com/inferops/inferops/tui/live"
)

// consoleWorker is the console's connection to TF Serving and its embedded
// inference worker.
type consoleWorker struct {
	tfs          *tfserving.Client
	pool         *worker.Pool
	featureWidth int // the model's input width, for the demo traffic
}

// startConsoleWorker dials TF Serving, learns the model's input width and,
// unless the console only watches, starts the worker pool in the group.
func startConsoleWorker(ctx context.Context, cfg consoleConfig, log *slog.Logger) (*consoleWorker, error) {
	w := &consoleWorker{}
	if cfg.TFServing == "" {
		return w, nil
	}
	tfs, err := tfserving.Dial(tfserving.Config{Address: cfg.TFServing})
	if err != nil {
		return nil, err
	}
	w.tfs = tfs
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	md, err := tfs.Metadata(mctx, cfg.Model, tfserving.Target{})
	if err != nil {
		_ = tfs.Close()
		return nil, fmt.Errorf("model %s at %s: %w", cfg.Model, cfg.TFServing, err)
	}
	if _, width, _, err := md.DefaultInput(); err == nil {
		w.featureWidth = width
	}
	if cfg.NoWorker {
		return w, nil
	}
	pool, err := worker.NewPool(*cfg.Kafka, tfs, worker.Config{
		Model: cfg.Model, Input: cfg.Input, Output: cfg.Output, DLQ: cfg.DLQ, Group: cfg.Group, Workers: cfg.Workers,
	}, log.With("part", "worker"))
	if err != nil {
		_ = tfs.Close()
		return nil, err
	}
	if err := pool.Start(ctx); err != nil {
		_ = tfs.Close()
		return nil, fmt.Errorf("start the worker: %w", err)
	}
	w.pool = pool
	return w, nil
}

// attach hands the worker's parts to the console adapter.
func (w *consoleWorker) attach(c *live.Config) {
	c.TFS, c.Pool = w.tfs, w.pool
}

// stop drains the pool (in-flight records are finished and committed) and
// closes the TF Serving connection.
func (w *consoleWorker) stop(ctx context.Context) error {
	var err error
	if w.pool != nil {
		err = w.pool.Close(ctx)
	}
	if w.tfs != nil {
		_ = w.tfs.Close()
	}
	return err
}
