package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/worker"
)

// fleetPool is a worker pool with its part in the fleet: `inferops worker`
// and the console's own pool are each one instance of it.
type fleetPool struct {
	pool  *worker.Pool
	agent *fleet.Agent
}

// startFleetPool checks the instance name against the fleet, reads the
// group's desired state, starts the pool as that state says (or on its own
// flags when there is none or --control=ignore) and starts publishing.
// configure, when not nil, sees the pool before it starts (metrics).
func startFleetPool(ctx context.Context, kc cluster.Config, tfs *tfserving.Client, cfg worker.Config, ff *fleetFlags, log *slog.Logger, configure func(*worker.Pool) error) (*fleetPool, error) {
	agent, err := fleet.NewAgent(fleet.AgentConfig{Kafka: kc, Topics: ff.topics, Worker: cfg, Interval: ff.interval, Pinned: ff.pinned(),
		Version: version, Logger: log, TFServing: tfs})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	// The instance check may wait out three intervals of another host's
	// silence, and joining the roster takes a rebalance.
	pctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	plan, err := agent.Prepare(pctx)
	cancel()
	if err != nil {
		_ = agent.Close(context.Background())
		if fleet.IsDuplicate(err) {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		return nil, fmt.Errorf("join the fleet: %w", err)
	}
	if plan.Seq > 0 {
		log.Info("following the group's desired state", "seq", plan.Seq, "workers", plan.Workers, "target", plan.Target, "paused", plan.Paused, "note", plan.Note)
	}
	if err := plan.Configure(&cfg); err != nil {
		_ = agent.Close(context.Background())
		return nil, err
	}
	pool, err := worker.NewPool(kc, tfs, cfg, log)
	if err != nil {
		_ = agent.Close(context.Background())
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if configure != nil {
		if err := configure(pool); err != nil {
			_ = agent.Close(context.Background())
			return nil, err
		}
	}
	if plan.Paused {
		pool.Pause() // before Start: no member fetches a record first
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = pool.Start(sctx)
	cancel()
	if err != nil {
		_ = agent.Close(context.Background())
		return nil, err
	}
	agent.Run(pool, plan)
	return &fleetPool{pool: pool, agent: agent}, nil
}

// close drains the pool, then writes the tombstone and leaves the roster,
// all within ctx.
func (fp *fleetPool) close(ctx context.Context) error {
	err := fp.pool.Close(ctx)
	actx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return errors.Join(err, fp.agent.Close(actx))
}
