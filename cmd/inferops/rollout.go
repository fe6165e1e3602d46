package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/internal/logging"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/rollout"
)

const rolloutHelp = `Moves the whole fleet of a group from its model version to another one
gradually, judged on live traffic, and rolls back by itself on a breach.

  inferops rollout start --to 2 [--steps 1,10,50,100] [--hold 5m] [--shadow 5]
        warm the candidate up (every instance mirrors the records it serves to
        it, never writing the answers) until its p99 is within the latency
        gate; then send each step's share of records to it, by a hash of the
        record key (one user, one version), holding each step for --hold with
        every gate passing; promote after the last. Runs in the foreground and
        drives the rollout: Ctrl-C or a crash leaves the fleet HOLDING its
        step (it never advances unwatched) until 'resume' or 'abort'.
  inferops rollout start --to 2 --shadow-only --shadow 10
        only compare: 10% of records also go to v2, nothing it answers is
        written; held until 'promote' (then a real rollout) or 'abort'
  inferops rollout status [--json] [--watch]
        the plan, the step, the gates with their live values, and baseline
        vs candidate: Predict and end-to-end p50/p95/p99, error and DLQ rates,
        rows/s, each numeric output's mean, quantiles and PSI (exact merges of
        every instance's telemetry)
  inferops rollout promote      the candidate is the target now (no more steps)
  inferops rollout abort        every record back to the baseline now
  inferops rollout resume       drive a HOLDING rollout from here (its step is
                                held again for a whole --hold)

Gates (a step advances only when all pass; any breach rolls back at once and
the gate is named in the event every console shows):
  latency  candidate Predict p99 <= --slo and <= baseline p99 x (1 + --latency-tolerance) + --latency-slack
  errors   failed Predicts and rejected rows <= the baseline's + --max-error-increase
  psi      every numeric output's population stability index vs the baseline < --max-psi
Latency and errors are judged on the last 10 s, PSI on every value of the
step. None is judged before --min-samples candidate rows are in (it waits
instead); PSI's limit allows for the noise of small samples. Light traffic
at a 1% step may wait for long: use a larger first step or --min-samples.
At 100% the baseline serves nothing: the gates compare with the baseline as
last measured. A baseline of latest is pinned to its version at the start.

The plan and step live in the group's desired state on --control-topic, so
every instance on every host follows one plan; instances of an older
inferops refuse it (control schema 2) rather than ignore the split.

Exit status of start and resume: 0 promoted, 1 rolled back or aborted,
3 the driver stopped (the fleet holds), 2 usage.

Drills: 'inferops serve --fault my_model/2:latency=150ms' (or
errors=5%,code=internal) makes a version misbehave on the embedded stack.`

type rolloutCmd struct {
	f        *cmdFlags
	kafka    *cluster.Config
	tfs      *tfserving.Config
	fleet    *fleetFlags
	input    string
	group    string
	model    string
	to       string
	opts     rollout.Options
	asJSON   bool
	watch    bool
	readOnly bool
	dryRun   bool
}

func rolloutCommand() (*cmdFlags, runFunc) {
	f := newFlags("rollout", "rollout start --to VERSION|status|promote|abort|resume [flags]", rolloutHelp)
	f.verbs = []string{"start", "status", "promote", "abort", "resume"}
	c := &rolloutCmd{f: f, kafka: addKafkaFlags(f), fleet: addFleetFlags(f, false), opts: rollout.DefaultOptions()}
	c.tfs = addTFServingFlags(f, "the embedded model server at "+pipeline.DefaultGRPCAddr+" when --brokers is empty, else no check that the candidate is loaded")
	addPipelineFlags(f, pipelineNames{Input: &c.input, Group: &c.group, Model: &c.model})
	o := &c.opts
	f.StringVar(&c.to, "to", "", "start: the candidate: a version (2), latest or label:NAME")
	f.StringVar(&o.Steps, "steps", o.Steps, "start: percent of records to the candidate at each step, ascending, ending at 100")
	f.DurationVar(&o.Hold, "hold", o.Hold, "start: how long each step is watched, every gate passing, before it advances")
	f.Float64Var(&o.Shadow, "shadow", 0, "start: percent of the baseline's records also sent to the candidate, compared and never written")
	f.BoolVar(&o.ShadowOnly, "shadow-only", false, "start: serve nothing from the candidate; only shadow --shadow percent until promote or abort")
	f.DurationVar(&o.SLO, "slo", o.SLO, "latency gate: the candidate's Predict p99 limit")
	f.Float64Var(&o.LatencyTolerance, "latency-tolerance", o.LatencyTolerance, "latency gate: how far over the baseline's p99 the candidate's may be (fraction)")
	f.DurationVar(&o.LatencySlack, "latency-slack", o.LatencySlack, "latency gate: added to the tolerance, so a fast model is not judged on noise")
	f.Float64Var(&o.MaxErrorIncrease, "max-error-increase", o.MaxErrorIncrease, "errors gate: failed Predicts and rejected rows over the baseline's (fraction: 0.01 = one point)")
	f.Float64Var(&o.MaxPSI, "max-psi", o.MaxPSI, "psi gate: the largest output shift allowed (0.1 none, 0.25 significant)")
	f.IntVar(&o.MinSamples, "min-samples", o.MinSamples, "candidate rows in the window before latency and PSI are judged")
	f.IntVar(&o.Warmup, "warmup", o.Warmup, "records mirrored to the candidate, and answered within the latency gate, before it gets traffic (0 skips)")
	f.BoolVar(&c.asJSON, "json", false, "print JSON instead of text")
	f.BoolVar(&c.watch, "watch", false, "status: print the status every 2 s until the rollout ends")
	f.BoolVar(&c.readOnly, "read-only", false, "refuse every change (status still works)")
	f.BoolVar(&c.dryRun, "dry-run", false, "start: show the rollout that would be written; write nothing")
	f.commandLineOnly("a rollout is an operator's act, never a config file's", "to", "steps", "hold", "shadow", "shadow-only", "slo", "latency-tolerance",
		"latency-slack", "max-error-increase", "max-psi", "min-samples", "warmup", "watch", "dry-run")
	return f, c.run
}

func (c *rolloutCmd) run(ctx context.Context, std stdio) error {
	if err := c.fleet.validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	verb := c.f.verb
	switch {
	case verb == "":
		return fmt.Errorf("%w: inferops rollout needs a verb: start, status, promote, abort or resume (see --help)", errUsage)
	case verb == "start" && c.to == "":
		return fmt.Errorf("%w: rollout start needs --to VERSION (a version, latest or label:NAME)", errUsage)
	case verb != "start" && c.to != "":
		return fmt.Errorf("%w: --to is for rollout start", errUsage)
	case c.watch && verb != "status":
		return fmt.Errorf("%w: --watch is for rollout status", errUsage)
	}
	if verb == "start" {
		if _, err := c.opts.Plan(); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	readsOnly := ""
	if verb == "status" {
		readsOnly = "rollout status only reads"
	}
	ctl, embedded, err := openFleet(ctx, c.kafka, c.readOnly, readsOnly, fleet.ControllerConfig{Topics: c.fleet.topics, Group: c.group, Input: c.input, DryRun: c.dryRun})
	if err != nil {
		return err
	}
	defer ctl.Close()
	if verb == "status" {
		return c.status(ctx, std, ctl)
	}
	if c.readOnly {
		return fmt.Errorf("%w: %v (--read-only): the rollout is not changed", errUsage, fleet.ErrReadOnly)
	}
	switch verb {
	case "promote", "abort":
		if c.dryRun {
			return fmt.Errorf("%w: --dry-run is for rollout start", errUsage)
		}
		var ch fleet.Change
		if verb == "promote" {
			ch, err = rollout.Promote(ctx, ctl)
		} else {
			ch, err = rollout.Abort(ctx, ctl, "")
		}
		if err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		ack, werr := ctl.Wait(wctx, ch, nil)
		if c.asJSON {
			return printJSON(std, fleetChangeOutput{Change: ch, Ack: &ack})
		}
		fmt.Fprintf(std.out, "%s: %s\n%s\n", ch.Desired.By, ch, ack)
		return werr
	}
	log, closeLog, err := logging.New(logging.Options{Format: "text", Level: "warn", Writer: std.err})
	if err != nil {
		return err
	}
	defer closeLog()
	var tfs *tfserving.Client
	tcfg := *c.tfs
	if tcfg.Address == "" && embedded {
		tcfg.Address = pipeline.DefaultGRPCAddr
	}
	if tcfg.Address != "" {
		tcfg.Model = c.model
		if tfs, err = tfserving.Dial(tcfg); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		defer tfs.Close()
	}
	// Progress: a line when the phase, the step or a gate's state changes,
	// else every 10 s (the summary's clock changes every second).
	var lastKey string
	var lastAt time.Time
	d := rollout.NewDriver(rollout.DriverConfig{Controller: ctl, TFServing: tfs, Model: c.model, Logger: log, Progress: func(s rollout.Status) {
		if c.asJSON || s.Rollout == nil {
			return
		}
		key := fmt.Sprintf("%s %d %v", s.State, s.Rollout.Step, len(s.Pending))
		for _, g := range s.Gates {
			key += " " + g.Name + "=" + g.State
		}
		if key == lastKey && time.Since(lastAt) < 10*time.Second {
			return
		}
		lastKey, lastAt = key, time.Now()
		fmt.Fprintf(std.out, "%s %s\n", time.Now().Format("15:04:05"), s.Summary)
	}})
	if c.dryRun {
		return c.dryRunStart(std, ctl)
	}
	var res rollout.Result
	if verb == "start" {
		if !c.asJSON {
			plan, _ := c.opts.Plan()
			fmt.Fprintf(std.out, "rollout of %s to %s: steps %v%%, hold %s each, warm-up %d records, shadow %.4g%%; driven by %s (Ctrl-C holds the step)\n",
				c.model, c.to, plan.Steps, plan.Hold(), plan.Warmup, c.opts.Shadow, d.Who())
		}
		res, err = d.Start(ctx, c.to, c.opts)
	} else {
		res, err = d.Resume(ctx)
	}
	if err != nil && res.State != rollout.StateHolding {
		return err
	}
	if c.asJSON {
		if jerr := printJSON(std, res); jerr != nil {
			return jerr
		}
	} else {
		fmt.Fprintf(std.out, "rollout %s %s: %s\n", res.ID, strings.ReplaceAll(res.State, "_", " "), res.Reason)
	}
	switch res.State {
	case fleet.RolloutPromoted:
		return nil
	case rollout.StateHolding:
		return &exitError{code: exitNotRun, err: fmt.Errorf("stopped driving rollout %s: the fleet holds its step; inferops rollout resume, or abort", res.ID)}
	default:
		return &exitError{code: exitFailed, err: fmt.Errorf("rollout %s %s (see above, or inferops rollout status)", res.ID, strings.ReplaceAll(res.State, "_", " "))}
	}
}

// dryRunStart shows what start would write.
func (c *rolloutCmd) dryRunStart(std stdio, ctl *fleet.Controller) error {
	plan, _ := c.opts.Plan()
	v := ctl.View()
	if rv := v.Rollout; rv != nil && rv.Rollout.Active() {
		return fmt.Errorf("%w in group %s: %s (see inferops rollout status)", rollout.ErrInProgress, v.Group, rv.ID)
	}
	base := "the fleet's target"
	if v.Desired != nil && v.Desired.Target != "" {
		base = v.Desired.Target
	}
	out := map[string]any{"dry_run": true, "group": v.Group, "from": base, "to": c.to, "plan": plan, "shadow": c.opts.Shadow, "live_instances": v.Totals.Live}
	if c.asJSON {
		return printJSON(std, out)
	}
	fmt.Fprintf(std.out, "dry run: would roll %s of group %s from %s to %s over %d live instances: steps %v%%, hold %s each, warm-up %d records, shadow %.4g%%\n",
		c.model, v.Group, base, c.to, v.Totals.Live, plan.Steps, plan.Hold(), plan.Warmup, c.opts.Shadow)
	fmt.Fprintf(std.out, "gates: Predict p99 <= %.0f ms and <= baseline x %.2f + %.0f ms; errors <= baseline + %.2f%%; PSI < %.2f; judged after %d rows\n",
		plan.SLOMs, 1+plan.LatencyTolerance, plan.LatencySlackMs, plan.MaxErrorIncrease*100, plan.MaxPSI, plan.MinSamples)
	return nil
}

func (c *rolloutCmd) status(ctx context.Context, std stdio, ctl *fleet.Controller) error {
	for {
		s := rollout.StatusOf(ctl.View())
		if c.asJSON {
			if err := printJSON(std, s); err != nil {
				return err
			}
		} else {
			if c.watch {
				fmt.Fprintf(std.out, "--- %s\n", time.Now().Format("15:04:05"))
			}
			s.Print(std.out)
		}
		if !c.watch || (s.Rollout != nil && !s.Rollout.Active()) || s.Rollout == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
}

func printJSON(std stdio, v any) error {
	enc := json.NewEncoder(std.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
