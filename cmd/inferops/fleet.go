package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/rollout"
)

const fleetHelp = `Shows and steers every worker pool of a group, wherever it runs, through
Kafka: each 'inferops worker' (and each console's own pool) publishes a
snapshot to --fleet-topic about once a second and follows the group's
desired state on --control-topic.

  inferops fleet status            every instance: state (live, lost after 3
                                   silent intervals, duplicate), workers,
                                   partitions, rates, p99, target, control;
                                   latency merged over the fleet, per version
  inferops fleet scale N           N workers in total, spread over the live
                                   instances that follow control (sorted by
                                   name, the first ones get the remainder),
                                   never more than --input's partitions
  inferops fleet scale N --instance NAME
                                   NAME runs N; the others keep theirs
  inferops fleet target latest|N|label:NAME
                                   the model version every instance sends to
  inferops fleet pause | resume    stop / restart fetching everywhere (the
                                   members stay in the group: no rebalance)

A change is one record on --control-topic with a sequence number, who asked
(user@host) and when; every following instance applies it and reports the
sequence it applied. --wait waits until every live instance has (or
--timeout, naming who has not), --dry-run shows the desired state and its
spread without writing, --read-only refuses every change. An instance run
with --control=ignore keeps its own flags and shows as pinned.

Without --brokers it reads the embedded broker of 'inferops serve' at
127.0.0.1:9092.`

// fleetCmd is `inferops fleet`.
type fleetCmd struct {
	f          *cmdFlags
	kafka      *cluster.Config
	fleet      *fleetFlags
	input      string
	group      string
	model      string
	asJSON     bool
	wait       bool
	timeout    time.Duration
	readOnly   bool
	dryRun     bool
	instance   string
	metricsURL string
}

func fleetCommand() (*cmdFlags, runFunc) {
	f := newFlags("fleet", "fleet status|scale N|target latest|N|label:NAME|pause|resume [--wait] [--json] [flags]", fleetHelp)
	f.verbs = []string{"status", "scale", "target", "pause", "resume"}
	f.maxOperands = 1
	c := &fleetCmd{f: f, kafka: addKafkaFlags(f), fleet: addFleetFlags(f, false)}
	addPipelineFlags(f, pipelineNames{Input: &c.input, Group: &c.group, Model: &c.model})
	f.BoolVar(&c.asJSON, "json", false, "print JSON instead of tables")
	f.BoolVar(&c.wait, "wait", false, "after a change, wait until every live instance has applied it (or --timeout)")
	f.DurationVar(&c.timeout, "timeout", 30*time.Second, "how long --wait waits")
	f.BoolVar(&c.readOnly, "read-only", false, "refuse every change (status still works)")
	f.BoolVar(&c.dryRun, "dry-run", false, "show the desired state a change would write and how it spreads; write nothing")
	f.StringVar(&c.instance, "instance", "", "scale: give only this instance N workers (its share); the others keep theirs")
	addServerMetricsFlag(f, &c.metricsURL, "fleet status reads the embedded model server's at "+pipeline.DefaultRESTAddr+" when --brokers is empty (twice, 1 s apart)")
	// worker.instance in a config file names the local worker; it must not
	// turn `fleet scale 9` into a change of one instance's share.
	f.commandLineOnly("the instance a change is for is given on the command line, never by the worker's config", "instance")
	return f, c.run
}

func (c *fleetCmd) run(ctx context.Context, std stdio) error {
	if err := c.fleet.validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	verb, ops := c.f.verb, c.f.operands
	switch {
	case (verb == "scale" || verb == "target") && len(ops) != 1:
		return fmt.Errorf("%w: inferops fleet %s needs a value: %s", errUsage, verb, map[string]string{"scale": "the total workers, e.g. 'fleet scale 9'", "target": "latest, a version (2) or label:NAME"}[verb])
	case verb != "scale" && verb != "target" && len(ops) > 0:
		return fmt.Errorf("%w: inferops fleet %s takes no value (got %q)", errUsage, verb, ops[0])
	case c.instance != "" && verb != "scale":
		return fmt.Errorf("%w: --instance is for 'fleet scale N --instance NAME'", errUsage)
	case c.timeout <= 0:
		return fmt.Errorf("%w: --timeout %v: want a positive duration", errUsage, c.timeout)
	}
	readsOnly := ""
	if verb == "status" {
		readsOnly = "fleet status only reads"
	}
	ctl, embedded, err := openFleet(ctx, c.kafka, c.readOnly, readsOnly, fleet.ControllerConfig{Topics: c.fleet.topics, Group: c.group, Input: c.input, DryRun: c.dryRun})
	if err != nil {
		return err
	}
	defer ctl.Close()
	if verb == "status" {
		return c.status(ctx, std, ctl, embedded)
	}
	var ch fleet.Change
	switch verb {
	case "scale":
		n, perr := strconv.Atoi(ops[0])
		if perr != nil || n < 0 {
			return fmt.Errorf("%w: fleet scale %q: want a whole number of workers, 0 or more", errUsage, ops[0])
		}
		if c.instance != "" {
			ch, err = ctl.ScaleInstance(ctx, c.instance, n)
		} else {
			ch, err = ctl.Scale(ctx, n)
		}
	case "target":
		ch, err = ctl.SetTarget(ctx, ops[0])
	case "pause", "resume":
		ch, err = ctl.SetPaused(ctx, verb == "pause")
	}
	if err != nil {
		if errors.Is(err, fleet.ErrReadOnly) {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return err
	}
	out := fleetChangeOutput{Change: ch, DryRun: c.dryRun}
	if !c.asJSON {
		printChange(std, ch, c.dryRun)
	}
	if c.wait && !c.dryRun {
		wctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		last := ""
		ack, werr := ctl.Wait(wctx, ch, func(a fleet.Ack) {
			// Progress only once it is slow enough to wonder about.
			if key := strings.Join(a.Pending, ","); !c.asJSON && !a.Done && a.Took > 2*time.Second && key != last {
				fmt.Fprintln(std.err, a.String())
				last = key
			}
		})
		out.Ack = &ack
		if !c.asJSON && werr == nil {
			fmt.Fprintln(std.out, ack.String())
		}
		err = werr
	}
	if c.asJSON {
		enc := json.NewEncoder(std.out)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(out); jerr != nil {
			return jerr
		}
	}
	return err
}

// fleetChangeOutput is what a change prints with --json.
type fleetChangeOutput struct {
	Change fleet.Change `json:"change"`
	DryRun bool         `json:"dry_run,omitempty"`
	Ack    *fleet.Ack   `json:"ack,omitempty"`
}

func printChange(std stdio, ch fleet.Change, dryRun bool) {
	d := ch.Desired
	if dryRun {
		fmt.Fprintf(std.out, "dry run: would write %s (seq %d) as %s\n", d.Change, d.Seq, d.By)
	} else {
		fmt.Fprintf(std.out, "%s: %s\n", d.By, ch)
	}
	fmt.Fprintf(std.out, "desired state of %s: %s\n", d.Group, d.Summary())
	if dryRun && ch.Note != "" {
		fmt.Fprintf(std.out, "note: %s\n", ch.Note)
	}
	if as := ch.Assignment; as.Workers != nil {
		var parts []string
		for _, inst := range slices.Sorted(maps.Keys(as.Workers)) {
			parts = append(parts, fmt.Sprintf("%s %d", inst, as.Workers[inst]))
		}
		if len(parts) > 0 {
			fmt.Fprintf(std.out, "spread over the live instances: %s\n", strings.Join(parts, ", "))
		}
		if as.Note != "" && as.Note != ch.Note {
			fmt.Fprintf(std.out, "note: %s\n", as.Note)
		}
	}
}

// status prints the fleet, with TF Serving's own view when its metrics are
// readable.
func (c *fleetCmd) status(ctx context.Context, std stdio, ctl *fleet.Controller, embedded bool) error {
	v := ctl.View()
	st := v.Status()
	out := fleetStatusOutput{Status: st, Rollout: rolloutOf(v)}
	if url := serverMetricsURL(c.metricsURL, embedded, pipeline.DefaultRESTAddr); url != "" {
		out.TFServing = serverView(ctx, url, c.model)
	}
	if c.asJSON {
		enc := json.NewEncoder(std.out)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fleet.PrintStatus(std.out, st)
	if s := out.TFServing; s != nil {
		printServerView(std, s)
	}
	if ro := out.Rollout; ro != nil {
		fmt.Fprintf(std.out, "\nrollout: %s (inferops rollout status for the gates and the comparison)\n", ro.Summary)
	}
	return nil
}

// fleetStatusOutput is `fleet status --json`.
type fleetStatusOutput struct {
	fleet.Status
	TFServing *serverStatus `json:"tfserving_server,omitempty"`
	// Rollout is the group's rollout, when it has (or had) one.
	Rollout *rollout.Status `json:"rollout,omitempty"`
}

// rolloutOf is v's rollout status, nil when the group never had one.
func rolloutOf(v fleet.View) *rollout.Status {
	if v.Rollout == nil || v.Rollout.Rollout == nil {
		return nil
	}
	s := rollout.StatusOf(v)
	return &s
}

// serverStatus is TF Serving's own view of the model over one interval, or
// why it is unknown.
type serverStatus struct {
	URL      string             `json:"url"`
	Error    string             `json:"error,omitempty"`
	Seconds  float64            `json:"seconds,omitempty"`
	RPS      float64            `json:"requests_per_second"`
	ByStatus map[string]float64 `json:"requests_by_status,omitempty"`
	Errors   float64            `json:"errors"`
	Count    float64            `json:"latency_count"`
	P50ms    float64            `json:"p50_ms"`
	P95ms    float64            `json:"p95_ms"`
	P99ms    float64            `json:"p99_ms"`
	MeanMs   float64            `json:"mean_ms"`
}

// serverMetricsURL is the page to read: the flag, else the embedded model
// server's when the command runs on the embedded default, else none.
func serverMetricsURL(flagValue string, embedded bool, restAddr string) string {
	switch {
	case flagValue != "":
		return flagValue
	case embedded && restAddr != "":
		return "http://" + restAddr + pipeline.TFServingMetricsPath
	}
	return ""
}

// serverView scrapes url twice, a second apart.
func serverView(ctx context.Context, url, model string) *serverStatus {
	w := tfserving.NewMetricsWatcher(url, model, time.Second, nil)
	w.Scrape(ctx)
	out := &serverStatus{URL: url}
	if _, err := w.View(); err != nil && !errors.Is(err, tfserving.ErrNoServerView) {
		out.Error = err.Error() + " (set --tfserving-metrics to TF Serving's http://host:8501" + pipeline.TFServingMetricsPath + ")"
		return out
	}
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		out.Error = ctx.Err().Error()
		return out
	}
	w.Scrape(ctx)
	v, err := w.View()
	if err != nil {
		out.Error = err.Error()
		return out
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	out.Seconds, out.RPS, out.ByStatus, out.Errors = v.To.Sub(v.From).Seconds(), v.RPS(), v.ByStatus, v.Errors
	out.Count, out.P50ms, out.P95ms, out.P99ms, out.MeanMs = v.Count, ms(v.P50), ms(v.P95), ms(v.P99), ms(v.Mean)
	return out
}

func printServerView(std stdio, s *serverStatus) {
	if s.Error != "" {
		fmt.Fprintf(std.out, "\nTF Serving's own view (%s): unknown: %s\n", s.URL, s.Error)
		return
	}
	var by []string
	for _, st := range slices.Sorted(maps.Keys(s.ByStatus)) {
		by = append(by, fmt.Sprintf("%s %.0f", st, s.ByStatus[st]))
	}
	if len(by) == 0 {
		by = []string{"none"}
	}
	fmt.Fprintf(std.out, "\nTF Serving's own view over %.1f s (%s): %.1f requests/s, errors %.0f (%s); server-side latency p50 %.2f p99 %.2f ms\n",
		s.Seconds, s.URL, s.RPS, s.Errors, strings.Join(by, ", "), s.P50ms, s.P99ms)
}
