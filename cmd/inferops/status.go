package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/pipeline"
)

// statusReport is what `inferops status` prints. The Kafka snapshot's
// fields sit at the top level of the JSON (topic, group, partitions, ...);
// other parts of the pipeline add their own section.
type statusReport struct {
	*cluster.Snapshot
	Model  any `json:"model,omitempty"`  // TF Serving: *modelReport, from modelSection
	Worker any `json:"worker,omitempty"` // inference workers: *worker.Stats; status has no source for it yet
	// Fleet is every worker pool of the group from the fleet topic:
	// *fleetStatusOutput, or fleetUnknown saying why it could not be read.
	Fleet any `json:"fleet,omitempty"`
}

// fleetUnknown is the fleet object when the fleet topics cannot be read.
type fleetUnknown struct {
	Error string `json:"error"`
}

const statusHelp = `Reads the consumer group's committed offsets and the topic's log-end offsets
twice, --sample apart, so the produce and consume rates are real, and prints
per partition: leader, log start, high watermark, committed offset, lag (in
messages and in seconds, from the record timestamps), rates and owning
member; then the group's members, and warnings, one line each, for what must
not be missed: a group that does not exist (with the groups that do commit on
the topic), records waiting with nothing consuming them, a rebalance and the
members it waits for, partitions without a lag figure.

A partition the group never committed on is not "-": its lag is what the
group will read there under auto.offset.reset=earliest (the worker's), the
whole log from log start to high watermark, shown "N no commit", counted in
total lag and in JSON with "lag_basis": "no_commit" ("committed" otherwise,
"unknown" when the offsets could not be read). "committed_lag" is the total
over committed partitions only, as kafka-consumer-groups.sh shows it.

"status" is the group's health: Burrow's verdict (OK, WARN, ERR) over the
samples, where a partition with records waiting and no commit is never OK
(STOP with no owner, WARN with an owner that has not committed yet), and
NOTFOUND for a group that does not exist. Burrow's stall and falling-behind
rules need a window of observations: watch the console for those.

Without --brokers it reads the embedded broker of 'inferops serve' at
127.0.0.1:9092.

status only observes: it never joins the consumer group, commits, produces
or reloads a model, so it is safe on a production cluster. --read-only
(INFEROPS_READ_ONLY) is accepted so one setting works for every command.

--report FILE also writes a triage report for an incident ticket: FILE as
Markdown (".md" is added when FILE has no extension) and its JSON twin next
to it, with the lag table, the model's versions, advice derived from the two
samples, the effective configuration and what could not be read. Secrets
are redacted.`

// statusCmd is `inferops status`.
type statusCmd struct {
	f          *cmdFlags
	kafka      *cluster.Config
	input      string // with its alias --topic: see aliasValue
	group      string
	asJSON     bool
	sample     time.Duration
	reportFile string
	model      *modelSection
	fleet      *fleetFlags
	metricsURL string
}

func statusCommand() (*cmdFlags, runFunc) {
	f := newFlags("status", "status [--brokers LIST] [--input ai_input] [--group tf_serving_group] [--json] [--sample 1s] [--report FILE]", statusHelp)
	c := &statusCmd{f: f, kafka: addKafkaFlags(f), model: addModelSectionFlags(f), fleet: addFleetFlags(f, false)}
	addServerMetricsFlag(f, &c.metricsURL, "the embedded model server's when --brokers and --tfserving are empty (read twice, 1 s apart)")
	addPipelineFlags(f, pipelineNames{Input: &c.input, Group: &c.group})
	f.String("topic", pipeline.DefaultInput, "the same as --input (the name perf and Kafka tools use)")
	f.BoolVar(&c.asJSON, "json", false, "print JSON instead of tables")
	f.DurationVar(&c.sample, "sample", time.Second, "time between the two samples the rates come from; 0 = one sample, no rates")
	f.StringVar(&c.reportFile, "report", "", "also write a Markdown triage report to this file and its JSON twin (FILE.json); secrets redacted")
	// status never writes to the pipeline, so --read-only changes nothing;
	// it exists so INFEROPS_READ_ONLY=true in a shared environment file
	// does not make status fail as an unknown flag would.
	f.Bool("read-only", false, "observe only; status always does (never joins the group, commits, produces or reloads)")
	return f, c.run
}

func (c *statusCmd) run(ctx context.Context, std stdio) error {
	sample := c.sample
	topic, err := aliasValue(c.f, "input", "topic")
	if err != nil {
		return err
	}
	if sample < 0 {
		return fmt.Errorf("%w: --sample %v is negative", errUsage, sample)
	}
	if c.reportFile != "" {
		if err := checkReportDir(c.reportFile); err != nil {
			return err
		}
	}
	// Work on a copy: the model section tells embedded mode (where it
	// reads the embedded model server too) from a real cluster by the
	// --brokers flag as given.
	kc := *c.kafka
	embedded := len(kc.Brokers) == 0
	if embedded {
		kc.Brokers = []string{pipeline.DefaultKafkaAddr}
	}
	kc.SetDefaults()
	if err := kc.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}

	report := &statusReport{}
	var errs []error
	first, snap, err := kafkaStatus(ctx, kc, topic, c.group, sample)
	if err != nil {
		if embedded && errors.Is(err, syscall.ECONNREFUSED) {
			err = fmt.Errorf("no embedded broker at %s: start it with `inferops serve` (or `make run`), or pass --brokers", pipeline.DefaultKafkaAddr)
		}
		errs = append(errs, err)
	}
	report.Snapshot = snap
	if err := c.model.collect(ctx, c.kafka.Brokers, report); err != nil {
		errs = append(errs, fmt.Errorf("model: %w", err))
	}
	if err := c.fleet.validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	report.Fleet = c.collectFleet(ctx, kc, embedded && c.model.tfs.Address == "")

	if c.asJSON {
		enc := json.NewEncoder(std.out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	} else {
		if snap != nil {
			printKafkaStatus(std.out, snap)
		}
		if rep, ok := report.Model.(*modelReport); ok {
			printModelStatus(std.out, rep)
		}
		switch fl := report.Fleet.(type) {
		case *fleetStatusOutput:
			fmt.Fprintln(std.out, "\nfleet (every worker pool, from "+c.fleet.topics.Fleet+"):")
			fleet.PrintStatus(std.out, fl.Status)
			if fl.TFServing != nil {
				printServerView(std, fl.TFServing)
			}
			if fl.Rollout != nil {
				fmt.Fprintf(std.out, "\nrollout: %s\n", fl.Rollout.Summary)
			}
		case fleetUnknown:
			fmt.Fprintf(std.out, "\nfleet: unknown: %s\n", fl.Error)
		}
	}
	if c.reportFile != "" {
		in := statusReportInput(report, first, kc.Brokers, sample, errs)
		in.Config = c.f.reportConfig()
		in.Secrets = []string{kc.SASL.Password}
		md, js, err := writeStatusReport(c.reportFile, in)
		if err != nil {
			errs = append(errs, err)
		} else {
			fmt.Fprintf(std.err, "inferops status: triage report written to %s (JSON twin %s)\n", md, js)
		}
	}
	return errors.Join(errs...)
}

// collectFleet reads the fleet topics up to now (never creating or writing
// them) and, when TF Serving's metrics are known, its own view.
func (c *statusCmd) collectFleet(ctx context.Context, kc cluster.Config, embedded bool) any {
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	r, err := fleet.OpenReader(rctx, fleet.ReaderConfig{Kafka: kc, Topics: c.fleet.topics, Group: c.group})
	if err != nil {
		return fleetUnknown{Error: err.Error()}
	}
	defer r.Close()
	v := r.View()
	out := &fleetStatusOutput{Status: v.Status(), Rollout: rolloutOf(v)}
	if url := serverMetricsURL(c.metricsURL, embedded, pipeline.DefaultRESTAddr); url != "" {
		out.TFServing = serverView(ctx, url, c.model.model)
	}
	return out
}

// aliasValue is the value of a setting that two flags name (--input and
// its alias --topic): whichever came from the higher layer (flag > env >
// file > default) wins; two different values from the same layer are a
// usage error, since guessing would read the wrong topic.
func aliasValue(fs *cmdFlags, name, alias string) (string, error) {
	v, av := fs.Lookup(name).Value.String(), fs.Lookup(alias).Value.String()
	origins := fs.layers.Origins
	o, ao := origins[name], origins[alias]
	switch {
	case av == "" || ao.Source < o.Source:
		return v, nil
	case ao.Source > o.Source:
		// The report's configuration section (reportConfig) shows the
		// key by its canonical flag: make that the value actually used.
		if err := fs.Set(name, av); err != nil {
			return "", fmt.Errorf("%w: --%s %q: %v", errUsage, alias, av, err)
		}
		origins[name] = ao
		return av, nil
	case av == v:
		return v, nil
	}
	return "", fmt.Errorf("%w: --%s %q (%s) and --%s %q (%s) name different topics: give one", errUsage, name, v, o, alias, av, ao)
}

// kafkaStatus takes two snapshots sample apart and returns both; the
// second's rates are real, and the pair shows whether lag is growing. With
// sample 0 there is one snapshot and first is nil.
func kafkaStatus(ctx context.Context, cfg cluster.Config, topic, group string, sample time.Duration) (first, last *cluster.Snapshot, err error) {
	// Two samples rarely let the interpolation place a committed offset, so
	// read the record timestamps instead (one Fetch per leader).
	c, err := cluster.NewCollector(cfg, topic, group, cluster.WithExactLagTime())
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	snap, err := c.Refresh(ctx)
	if err != nil || sample == 0 {
		return nil, snap, err
	}
	select {
	case <-time.After(sample):
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	last, err = c.Refresh(ctx)
	return snap, last, err
}

func printKafkaStatus(w io.Writer, s *cluster.Snapshot) {
	fmt.Fprintf(w, "topic %s  group %s  state %s  status %s  brokers %d\n", s.Topic, s.Group, orDash(s.GroupState), s.Status, s.Brokers)
	maxLag := "-"
	if s.MaxLagPartition >= 0 {
		maxLag = fmt.Sprintf("%d (partition %d)", s.MaxLag, s.MaxLagPartition)
	}
	total := strconv.FormatInt(s.TotalLag, 10)
	if nc := s.TotalLag - s.CommittedLag; nc > 0 {
		total += fmt.Sprintf(" (%d with no commit, auto.offset.reset=%s)", nc, s.ResetPolicy)
	}
	fmt.Fprintf(w, "total lag %s  max lag %s  members %d\n", total, maxLag, len(s.Members))
	if rb := s.Rebalance; rb != nil {
		at := ""
		if rb.AtLeast {
			at = "at least "
		}
		names := make([]string, 0, len(rb.Awaited))
		for _, m := range rb.Awaited {
			names = append(names, cluster.MemberName(m))
		}
		fmt.Fprintf(w, "rebalancing: %s for %s%s, nobody consumes; awaited: %s (of %d members held)\n",
			rb.State, at, (time.Duration(rb.Seconds * float64(time.Second))).Round(100*time.Millisecond), orDash(strings.Join(names, ", ")), rb.Members)
	}
	for _, wn := range s.Warnings {
		fmt.Fprintf(w, "warning: %s\n", wn.Message)
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PARTITION\tLEADER\tLOG START\tHIGH WATERMARK\tCOMMITTED\tLAG\tLAG s\tIN/s\tOUT/s\t MEMBER\t STATUS\t")
	for _, p := range s.Partitions {
		lagS := "-"
		if p.LagSeconds >= 0 {
			lagS = strconv.FormatFloat(p.LagSeconds, 'f', 1, 64)
		}
		lag := offset(p.Lag)
		if p.LagBasis == cluster.LagNoCommit {
			lag += " no commit"
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%.1f\t%.1f\t %s\t %s\t\n",
			p.Partition, p.Leader, offset(p.LogStart), offset(p.HighWatermark), offset(p.Committed), lag, lagS,
			p.ProduceRate, p.ConsumeRate, orDash(p.Member), p.Status)
	}
	tw.Flush()

	if len(s.Members) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT ID\tHOST\tPARTITIONS\tMEMBER ID")
		for _, m := range s.Members {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.ClientID, m.Host, cluster.PartitionRanges(m.Partitions), m.MemberID)
		}
		tw.Flush()
	}
}

// offset prints -1 (unknown) as "-".
func offset(v int64) string {
	if v < 0 {
		return "-"
	}
	return strconv.FormatInt(v, 10)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
