package live

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/tui"
)

// OpsConfig turns on the console's operator actions on Kafka: replaying a
// DLQ reason group and resetting offsets. Zero Kafka brokers: they are
// refused, saying why.
type OpsConfig struct {
	Kafka cluster.Config
	By    string // user@host, kept with every replay and shown in events
	// Publish, when set, writes an event every console of the fleet shows
	// (each replay and reset is one).
	Publish func(context.Context, pipeline.Event) error
	// StopFleet, when set, stops every worker of the group's fleet that
	// follows control and returns how to put the fleet back as it was:
	// a reset of a group with members elsewhere uses it.
	StopFleet func(ctx context.Context, why string) (restore func(context.Context) error, err error)
}

// opsState is the plans the operator was last shown and the replay in
// flight. Plans are carried out as shown: Start and Apply take the last.
type opsState struct {
	mu        sync.Mutex
	replayer  *cluster.Replayer
	replay    *cluster.ReplayPlan
	running   bool
	reset     *cluster.ResetPlan
	resetTo   cluster.ResetTarget
	resetPart []int32
}

func (a *Adapter) opsWritable() error {
	if a.cfg.ReadOnly != "" {
		return fmt.Errorf("read-only (%s)", a.cfg.ReadOnly)
	}
	if len(a.cfg.Ops.Kafka.Brokers) == 0 {
		return errors.New("this console was started without the Kafka settings operator actions need")
	}
	return nil
}

var _ tui.Operator = (*Adapter)(nil)

// PlanReplay implements tui.Operator: the dry run of replaying reason's
// dead letters to the input.
func (a *Adapter) PlanReplay(ctx context.Context, reason string) (*tui.ReplayPlan, error) {
	if err := a.opsWritable(); err != nil {
		return nil, err
	}
	o := &a.ops
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.running {
		return nil, errors.New("a replay is running; wait for it to finish")
	}
	if o.replayer != nil {
		_ = o.replayer.Close()
		o.replayer, o.replay = nil, nil
	}
	spec := cluster.ReplaySpec{DLQ: a.cfg.DLQ, To: a.cfg.Input, Reasons: []string{reason}, MaxRedrives: pipeline.DefaultMaxRedrives}
	r, err := cluster.NewReplayer(ctx, a.cfg.Ops.Kafka, spec, a.cfg.Ops.By)
	if err != nil {
		return nil, err
	}
	plan, err := r.Plan(ctx, nil)
	if err != nil {
		_ = r.Close()
		return nil, err
	}
	o.replayer, o.replay = r, plan
	out := &tui.ReplayPlan{Reason: reason, Filter: plan.Filter, Group: plan.Group, Send: plan.Counts.Send, AlreadySent: plan.Counts.AlreadySent,
		OverLimit: plan.Counts.OverLimit, Truncated: plan.Counts.Truncated, BadCount: plan.Counts.BadCount, MaxRedrives: plan.Spec.MaxRedrives, Warnings: plan.Warnings}
	for _, j := range plan.Earlier {
		out.Earlier = append(out.Earlier, fmt.Sprintf("%s by %s at %s", j.Spec.String(), j.By, j.At.Format(time.RFC3339)))
	}
	return out, nil
}

// StartReplay implements tui.Operator: the last plan, sent in the
// background until it is done or the console quits (which interrupts it
// with its progress kept).
func (a *Adapter) StartReplay(rate float64) error {
	if err := a.opsWritable(); err != nil {
		return err
	}
	o := &a.ops
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.running {
		return errors.New("a replay is running already")
	}
	if o.replay == nil {
		return errors.New("no replay planned: press r on a reason group first")
	}
	r, plan := o.replayer, o.replay
	o.running, o.replayer, o.replay = true, nil, nil
	reason := strings.Join(plan.Spec.Reasons, ",")
	a.setReplay(&tui.ReplayRun{Reason: reason, Total: plan.Counts.Send, ETA: -1})
	a.opsEvent(pipeline.KindReplay, pipeline.Info, "replay of %s started by %s: %d dead letters to %s", plan.Filter, a.cfg.Ops.By, plan.Counts.Send, plan.Spec.To)
	ctx := a.runCtx
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer r.Close()
		res, err := r.Run(ctx, plan, rate, func(p cluster.ReplayProgress) {
			a.setReplay(&tui.ReplayRun{Reason: reason, Sent: p.Sent, Total: p.Total, Rate: p.Rate(), ETA: p.ETA()})
		})
		o.mu.Lock()
		o.running = false
		o.mu.Unlock()
		run := &tui.ReplayRun{Reason: reason, Total: plan.Counts.Send, Done: true, ETA: -1}
		switch {
		case err != nil:
			run.Err = err.Error()
			a.opsEvent(pipeline.KindReplay, pipeline.Error, "replay of %s by %s failed: %v", plan.Filter, a.cfg.Ops.By, err)
		case res.Interrupted:
			run.Sent = res.Counts.Send
			a.opsEvent(pipeline.KindReplay, pipeline.Warn, "replay of %s by %s interrupted after %d records (each sent once; run it again to resume)", plan.Filter, a.cfg.Ops.By, res.Counts.Send)
		default:
			run.Sent = res.Counts.Send
			a.opsEvent(pipeline.KindReplay, pipeline.Info, "replay of %s by %s: %d sent to %s in %s%s", plan.Filter, a.cfg.Ops.By, res.Counts.Send, plan.Spec.To, res.Elapsed.Round(100*time.Millisecond), leftWords(res.Counts))
		}
		a.setReplay(run)
	}()
	return nil
}

// opsEvent logs an operator action here and, with a fleet, as a fleet
// event every console shows.
func (a *Adapter) opsEvent(kind string, lv pipeline.Level, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	a.event(kind, lv, "%s", msg)
	if a.cfg.Ops.Publish == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.cfg.Ops.Publish(ctx, pipeline.Event{Source: pipeline.SourceFleet, Kind: kind, Level: lv, Message: msg}); err != nil {
		a.event(pipeline.KindError, pipeline.Warn, "the fleet event was not written (other consoles do not see it): %v", err)
	}
}

func (a *Adapter) setReplay(r *tui.ReplayRun) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.d.Ops.Replay = r
}

func leftWords(c cluster.ReplayCounts) string {
	var out []string
	if c.AlreadySent > 0 {
		out = append(out, fmt.Sprintf("%d already sent before", c.AlreadySent))
	}
	if c.OverLimit > 0 {
		out = append(out, fmt.Sprintf("%d at the redrive limit", c.OverLimit))
	}
	if n := c.Truncated + c.BadCount; n > 0 {
		out = append(out, fmt.Sprintf("%d truncated or with an unreadable count", n))
	}
	if len(out) == 0 {
		return ""
	}
	return "; left in the DLQ: " + strings.Join(out, ", ")
}

// PlanReset implements tui.Operator.
func (a *Adapter) PlanReset(ctx context.Context, parts, to string) (*tui.ResetPlan, error) {
	if err := a.opsWritable(); err != nil {
		return nil, err
	}
	target, err := cluster.ParseResetTarget(to, time.Now())
	if err != nil {
		return nil, err
	}
	var ps []int32
	if parts != "" {
		if ps, err = cluster.ParsePartitionList(parts); err != nil {
			return nil, err
		}
	}
	plan, err := a.cfg.Collector.PlanReset(ctx, target, ps)
	if err != nil {
		return nil, err
	}
	o := &a.ops
	o.mu.Lock()
	o.reset, o.resetTo, o.resetPart = plan, target, ps
	o.mu.Unlock()
	return a.resetView(plan), nil
}

// resetView is plan as the console shows it.
func (a *Adapter) resetView(plan *cluster.ResetPlan) *tui.ResetPlan {
	out := &tui.ResetPlan{Group: plan.Group, Topic: plan.Topic, To: plan.To, LagBefore: plan.LagBefore, LagAfter: plan.LagAfter,
		Skipped: plan.Skipped, Reread: plan.Reread, Warnings: plan.Warnings, Local: len(plan.Members) > 0 && a.allLocal(plan.Members)}
	out.Fleet = len(plan.Members) > 0 && !out.Local && a.cfg.Ops.StopFleet != nil
	for _, r := range plan.Partitions {
		out.Rows = append(out.Rows, tui.ResetRow{Partition: r.Partition, Current: r.Current, New: r.New, LagBefore: r.LagBefore, LagAfter: r.LagAfter, Skipped: r.Skipped, Reread: r.Reread, Note: r.Note})
	}
	for _, m := range plan.Members {
		out.Members = append(out.Members, cluster.MemberName(m))
	}
	sort.Strings(out.Members)
	return out
}

// allLocal reports whether every member is this console's own worker.
func (a *Adapter) allLocal(ms []cluster.Member) bool {
	if a.cfg.Pool == nil {
		return false
	}
	a.mu.Lock()
	local := a.localMembersLocked()
	a.mu.Unlock()
	for _, m := range ms {
		if _, ok := local[m.MemberID]; !ok {
			return false
		}
	}
	return true
}

// ApplyReset implements tui.Operator: the last plan. When the only members
// are this console's workers, it stops them (Kafka moves offsets only of a
// group without members), works the plan out again from the offsets they
// committed last, applies it and restarts them; members elsewhere make
// Kafka refuse, and the error says what to do.
func (a *Adapter) ApplyReset(ctx context.Context) (string, error) {
	if err := a.opsWritable(); err != nil {
		return "", err
	}
	o := &a.ops
	o.mu.Lock()
	plan, target, parts := o.reset, o.resetTo, o.resetPart
	o.mu.Unlock()
	if plan == nil {
		return "", errors.New("no reset planned: press o first")
	}
	switch {
	case len(plan.Members) > 0 && a.allLocal(plan.Members):
		n := a.cfg.Pool.Workers()
		if err := a.cfg.Pool.ScaleTo(0); err != nil {
			return "", fmt.Errorf("stop this console's workers for the reset: %w", err)
		}
		a.event(pipeline.KindOffsets, pipeline.Info, "stopped this console's %d workers to reset the offsets of %s", n, plan.Group)
		defer func() {
			if err := a.cfg.Pool.ScaleTo(n); err != nil {
				a.event(pipeline.KindError, pipeline.Error, "restart %d workers after the reset: %v (press + to add them)", n, err)
				return
			}
			a.event(pipeline.KindOffsets, pipeline.Info, "restarted this console's %d workers", n)
		}()
	case len(plan.Members) > 0 && a.cfg.Ops.StopFleet != nil:
		why := fmt.Sprintf("offsets reset of %s on %s to %s", plan.Group, plan.Topic, target)
		restore, err := a.cfg.Ops.StopFleet(ctx, why)
		if restore != nil {
			defer func() {
				// Even when the reset failed or the action timed out.
				rctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
				defer cancel()
				if err := restore(rctx); err != nil {
					a.event(pipeline.KindError, pipeline.Error, "%v", err)
					return
				}
				a.event(pipeline.KindOffsets, pipeline.Info, "the fleet of %s is back as it was", plan.Group)
			}()
		}
		if err != nil {
			return "", err
		}
	default:
		return a.applyPlan(ctx, plan) // with members elsewhere Kafka refuses, and the error says what to do
	}
	plan, err := a.cfg.Collector.PlanResetWhenEmpty(ctx, target, parts)
	if err != nil {
		return "", err
	}
	o.mu.Lock()
	o.reset = plan
	o.mu.Unlock()
	return a.applyPlan(ctx, plan)
}

// applyPlan commits plan and says so here and to the fleet.
func (a *Adapter) applyPlan(ctx context.Context, plan *cluster.ResetPlan) (string, error) {
	if err := a.cfg.Collector.ResetOffsets(ctx, plan); err != nil {
		return "", err
	}
	what := fmt.Sprintf("offsets of %s on %s reset to %s on %d partitions by %s: lag %d -> %d", plan.Group, plan.Topic, plan.To, len(plan.Partitions), a.cfg.Ops.By, plan.LagBefore, plan.LagAfter)
	if plan.Skipped > 0 {
		what += fmt.Sprintf(", %d records skipped", plan.Skipped)
	}
	if plan.Reread > 0 {
		what += fmt.Sprintf(", %d to read again", plan.Reread)
	}
	a.opsEvent(pipeline.KindOffsets, pipeline.Warn, "%s", what)
	return what, nil
}
