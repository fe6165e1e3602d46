package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/pipeline"
)

// offsetsCommands are `inferops offsets reset`.
var offsetsCommands = []command{
	{"reset", "move a consumer group's offsets on a topic, showing the change first", offsetsResetCommand, nil},
}

const offsetsResetHelp = `Moves the consumer group's committed offsets on the topic, the way
kafka-consumer-groups.sh --reset-offsets does, and shows first, per
partition, the current offset, the new one, the lag before and after, and
how many records the group will skip (never read) or read again.

--to is one of:
  earliest           the oldest record kept (the log start)
  latest             the end: everything waiting is skipped
  TIME               the first record at or after it (RFC 3339 2024-05-01T10:00:00Z,
                     local 2024-05-01 10:00, or now-2h); no record that late: the end.
                     A time before the oldest record kept is an error: those records
                     were deleted by retention.
  OFFSET             this offset on every partition (clamped to each partition's log)
  -N                 N records before where the group is now

A partition the group never committed on counts as at its log start (the
worker's auto.offset.reset=earliest).

Kafka accepts the change only while the group has no members. --stop-fleet
does it for the inferops workers: it scales the fleet to 0 through the
control topic (every instance that follows control, consoles included),
waits until each has applied it and the group is empty, works the plan out
again from their last commits, resets, and writes the fleet's previous
desired state back (workers, fixed shares, target, pause: exactly as they
were), also when the reset fails. Without it, stop the workers yourself
(systemctl stop inferops-worker@NAME on each host, and any other consumer
of the group). Every reset done is a fleet event. On a terminal it asks before changing anything
(--yes does not ask); --dry-run only shows the plan. The offsets are read
back after the change.

Without --brokers it talks to the embedded broker of 'inferops serve' at
127.0.0.1:9092.`

type offsetsResetCmd struct {
	f          *cmdFlags
	kafka      *cluster.Config
	fleet      *fleetFlags
	input      string
	group      string
	to         string
	partitions string
	dryRun     bool
	stopFleet  bool
	timeout    time.Duration
	yes        bool
	asJSON     bool
	readOnly   bool
}

func offsetsResetCommand() (*cmdFlags, runFunc) {
	f := newFlags("offsets", "offsets reset --group G --to earliest|latest|TIME|OFFSET|-N [--input ai_input] [--partitions LIST] [--stop-fleet] [--dry-run] [--json]", offsetsResetHelp)
	f.verbs = []string{"reset"}
	c := &offsetsResetCmd{f: f, kafka: addKafkaFlags(f), fleet: addFleetFlags(f, false)}
	addPipelineFlags(f, pipelineNames{Input: &c.input, Group: &c.group})
	f.String("topic", pipeline.DefaultInput, "the same as --input (the name Kafka's tools use)")
	f.StringVar(&c.to, "to", "", "where to move the group: earliest, latest, a time, an offset or -N")
	f.StringVar(&c.partitions, "partitions", "", "only these partitions: 3 or 0,2,5-7; empty = all")
	f.BoolVar(&c.dryRun, "dry-run", false, "show the plan; change nothing")
	f.BoolVar(&c.stopFleet, "stop-fleet", false, "scale the group's inferops workers to 0 through the control topic, wait for the group to empty, reset, and restore the fleet's desired state as it was")
	f.DurationVar(&c.timeout, "timeout", time.Minute, "--stop-fleet: how long to wait for the workers to stop, the group to empty and the fleet to come back")
	f.BoolVar(&c.yes, "yes", false, "do not ask before changing (a script never is asked)")
	f.BoolVar(&c.asJSON, "json", false, "print the plan (and whether it was applied) as JSON")
	f.BoolVar(&c.readOnly, "read-only", false, "refuse to move offsets (a --dry-run still shows the plan)")
	f.commandLineOnly("a reset's target and confirmation are decided on the command line", "to", "yes", "partitions", "stop-fleet")
	return f, c.run
}

// resetReport is `offsets reset --json`.
type resetReport struct {
	DryRun  bool `json:"dry_run"`
	Applied bool `json:"applied"`
	// StoppedFleet: --stop-fleet stopped the workers for the reset; Plan is
	// then the plan worked out once the group was empty, and Restored says
	// whether the fleet's desired state was put back.
	StoppedFleet bool               `json:"stopped_fleet"`
	Restored     bool               `json:"restored"`
	By           string             `json:"by"`
	Plan         *cluster.ResetPlan `json:"plan"`
}

func (c *offsetsResetCmd) run(ctx context.Context, std stdio) error {
	topic, err := aliasValue(c.f, "input", "topic")
	if err != nil {
		return err
	}
	if c.to == "" {
		return fmt.Errorf("%w: --to is required: earliest, latest, a time (2024-05-01T10:00:00Z, now-1h), an offset, or -N", errUsage)
	}
	target, err := cluster.ParseResetTarget(c.to, time.Now())
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	var parts []int32
	if c.partitions != "" {
		if parts, err = cluster.ParsePartitionList(c.partitions); err != nil {
			return fmt.Errorf("%w: --partitions: %v", errUsage, err)
		}
	}
	if c.readOnly && !c.dryRun {
		return refuseReadOnly("`offsets reset`, which moves group "+c.group+"'s offsets", "--dry-run shows the plan")
	}
	kc, explain, err := operatorKafka(c.kafka)
	if err != nil {
		return err
	}
	col, err := cluster.NewCollector(kc, topic, c.group)
	if err != nil {
		return explain(err)
	}
	defer col.Close()
	plan, err := col.PlanReset(ctx, target, parts)
	if err != nil {
		return explain(err)
	}
	rep := &resetReport{DryRun: c.dryRun, By: fleet.Operator(), Plan: plan}
	fops := &fleetOps{kc: kc, topics: c.fleet.topics, group: c.group, input: topic}
	defer fops.close()
	if !c.asJSON {
		printResetPlan(std.out, plan)
	}
	switch {
	case c.dryRun:
		if !c.asJSON {
			fmt.Fprintln(std.out, "dry run: nothing changed")
			if len(plan.Members) > 0 {
				if c.stopFleet {
					fmt.Fprintf(std.out, "(with --stop-fleet: the fleet's workers would be stopped first, the plan worked out again once the group is empty, and the fleet restored after)\n")
				} else {
					fmt.Fprintf(std.out, "(as it is, the reset would be refused: the group has %d members; stop them first, or add --stop-fleet)\n", len(plan.Members))
				}
			}
		}
		return c.report(std, rep)
	case !plan.Changes():
		if !c.asJSON {
			fmt.Fprintln(std.out, "nothing to change: the group is there already")
		}
		return c.report(std, rep)
	case len(plan.Members) > 0 && !c.stopFleet:
		// Refused by Kafka anyway; say so before asking.
		return col.ResetOffsets(ctx, plan)
	}
	question := fmt.Sprintf("move group %s on %s as shown?", c.group, topic)
	if c.stopFleet {
		question = fmt.Sprintf("stop the fleet of %s, move its offsets as shown (worked out again once it is empty), and restore the fleet?", c.group)
	}
	if !c.yes && !confirm(std, os.Stdin, question) {
		return errDeclined
	}
	if c.stopFleet {
		// Also with no members: a fleet an earlier --stop-fleet left
		// stopped (killed before it restored) is put back here.
		return c.resetStoppingFleet(ctx, std, col, fops, rep, target, parts, topic, explain)
	}
	if err := col.ResetOffsets(ctx, plan); err != nil {
		return explain(err)
	}
	rep.Applied = true
	c.published(ctx, std, fops, plan)
	if !c.asJSON {
		fmt.Fprintf(std.out, "done: group %s moved on %d partitions of %s (read back)\n", c.group, len(plan.Partitions), topic)
	}
	return c.report(std, rep)
}

// resetStoppingFleet is --stop-fleet: whatever happens after the stop, the
// fleet is put back as it was, and the offsets are reset only once nobody
// consumes (the last commits of the stopping workers included).
func (c *offsetsResetCmd) resetStoppingFleet(ctx context.Context, std stdio, col *cluster.Collector, fops *fleetOps, rep *resetReport,
	target cluster.ResetTarget, parts []int32, topic string, explain func(error) error) (err error) {
	say := func(s string) {
		if !c.asJSON {
			fmt.Fprintln(std.out, s)
		}
	}
	why := fmt.Sprintf("offsets reset of %s on %s to %s", c.group, topic, target)
	restore, err := fops.stop(ctx, why, c.timeout, say)
	rep.StoppedFleet = restore != nil
	if restore != nil {
		defer func() {
			rctx, cancel := context.WithTimeout(context.Background(), c.timeout+10*time.Second)
			defer cancel()
			if rerr := restore(rctx); rerr != nil {
				err = errors.Join(err, rerr)
			} else {
				rep.Restored = true
			}
			if err == nil {
				err = c.report(std, rep)
			}
		}()
	}
	if err != nil {
		return explain(err)
	}
	wctx, cancel := context.WithTimeout(ctx, c.timeout)
	plan, err := col.PlanResetWhenEmpty(wctx, target, parts)
	cancel()
	if err != nil {
		return explain(err)
	}
	rep.Plan = plan
	if !c.asJSON {
		fmt.Fprintln(std.out, "the plan, now that the group is empty:")
		printResetPlan(std.out, plan)
	}
	if err := col.ResetOffsets(ctx, plan); err != nil {
		return explain(err)
	}
	rep.Applied = true
	c.published(ctx, std, fops, plan)
	say(fmt.Sprintf("done: group %s moved on %d partitions of %s (read back)", c.group, len(plan.Partitions), topic))
	return nil
}

// published tells every console of the fleet about the reset; a fleet that
// cannot be reached is a warning, not a failed reset.
func (c *offsetsResetCmd) published(ctx context.Context, std stdio, fops *fleetOps, p *cluster.ResetPlan) {
	msg := fmt.Sprintf("%s reset the offsets of %s on %s to %s on %d partitions: lag %d -> %d", fleet.Operator(), p.Group, p.Topic, p.To, len(p.Partitions), p.LagBefore, p.LagAfter)
	if p.Skipped > 0 {
		msg += fmt.Sprintf(", %d records skipped", p.Skipped)
	}
	if p.Reread > 0 {
		msg += fmt.Sprintf(", %d to read again", p.Reread)
	}
	if err := fops.publish(ctx, pipeline.Event{Source: pipeline.SourceFleet, Kind: pipeline.KindOffsets, Level: pipeline.Warn, Message: msg}); err != nil {
		fmt.Fprintf(std.err, "inferops offsets reset: warning: the fleet event was not written: %v\n", err)
	}
}

func (c *offsetsResetCmd) report(std stdio, rep *resetReport) error {
	if !c.asJSON {
		return nil
	}
	return writeJSON(std.out, rep)
}

func printResetPlan(w io.Writer, p *cluster.ResetPlan) {
	fmt.Fprintf(w, "group %s on %s: %s, %d members; reset to %s\n", p.Group, p.Topic, orDash(p.GroupState), len(p.Members), p.To)
	for _, wn := range p.Warnings {
		fmt.Fprintf(w, "warning: %s\n", wn)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PARTITION\tLOG START\tEND\tCURRENT\tNEW\tLAG BEFORE\tLAG AFTER\t CHANGE\t")
	for _, r := range p.Partitions {
		cur := strconv.FormatInt(r.Current, 10)
		if r.Current < 0 {
			cur = "no commit"
		}
		change := "-"
		switch {
		case r.Skipped > 0:
			change = fmt.Sprintf("skips %d", r.Skipped)
		case r.Reread > 0:
			change = fmt.Sprintf("reads %d again", r.Reread)
		}
		if r.Note != "" {
			change += " (" + r.Note + ")"
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%d\t%d\t%d\t %s\t\n", r.Partition, r.LogStart, r.HighWatermark, cur, r.New, r.LagBefore, r.LagAfter, change)
	}
	tw.Flush()
	fmt.Fprintf(w, "total lag %d -> %d", p.LagBefore, p.LagAfter)
	if p.Reread > 0 {
		fmt.Fprintf(w, "; %d records read again", p.Reread)
	}
	fmt.Fprintln(w)
	if p.Skipped > 0 {
		fmt.Fprintf(w, "WARNING: this skips %d records: the group will never read them\n", p.Skipped)
	}
	for _, m := range p.Members {
		fmt.Fprintf(w, "member: %s\n", cluster.MemberName(m))
	}
}
