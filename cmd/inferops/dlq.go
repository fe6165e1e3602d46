package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/pipeline"
)

// dlqCommands are `inferops dlq list|show|replay`.
var dlqCommands = []command{
	{"list", "the dead letters by reason: counts, first and last time, source partitions", dlqListCommand, nil},
	{"show", "dead letters with their headers and a payload preview, newest first", dlqShowCommand, nil},
	{"replay", "send dead letters back to the input exactly once, with a redrive limit", dlqReplayCommand, nil},
}

const dlqHelpCommon = `Without --brokers it reads the embedded broker of 'inferops serve' at
127.0.0.1:9092. The reason is the inferops-error header the worker writes
("unknown" for a record without one, e.g. from another tool).`

// dlqFlags are what every dlq command reads.
type dlqFlags struct {
	kafka  *cluster.Config
	dlq    string
	asJSON bool
}

func addDLQFlags(f *cmdFlags) *dlqFlags {
	d := &dlqFlags{kafka: addKafkaFlags(f)}
	addPipelineFlags(f, pipelineNames{DLQ: &d.dlq})
	f.BoolVar(&d.asJSON, "json", false, "print JSON instead of text")
	return d
}

// reader opens the DLQ for reading.
func (d *dlqFlags) reader() (*cluster.DLQReader, func(error) error, error) {
	kc, explain, err := operatorKafka(d.kafka)
	if err != nil {
		return nil, nil, err
	}
	r, err := cluster.NewDLQReader(kc, d.dlq)
	if err != nil {
		return nil, nil, explain(err)
	}
	return r, explain, nil
}

// readOnlyFlag registers --read-only on a command that never writes, so
// one INFEROPS_READ_ONLY works for every command.
func readOnlyFlag(f *cmdFlags, what string) *bool {
	return f.Bool("read-only", false, what)
}

// --- dlq list

type dlqListCmd struct {
	*dlqFlags
	maxRedrives int
}

func dlqListCommand() (*cmdFlags, runFunc) {
	f := newFlags("dlq", "dlq list [--dlq ai_input.dlq] [--json]", `Reads the whole dead-letter topic and groups it by reason: how many records,
the first and last record time, the input partitions they came from, how many
were already replayed and failed again, and how many reached --max-redrives
(a replay leaves those where they are).

`+dlqHelpCommon)
	f.verbs = []string{"list"}
	c := &dlqListCmd{dlqFlags: addDLQFlags(f)}
	f.IntVar(&c.maxRedrives, "max-redrives", pipeline.DefaultMaxRedrives, "count records replayed this often as over the limit")
	readOnlyFlag(f, "accepted for INFEROPS_READ_ONLY; dlq list only reads")
	return f, c.run
}

func (c *dlqListCmd) run(ctx context.Context, std stdio) error {
	r, explain, err := c.reader()
	if err != nil {
		return err
	}
	defer r.Close()
	st, err := r.Stats(ctx, c.maxRedrives)
	if err != nil {
		return explain(err)
	}
	if c.asJSON {
		return writeJSON(std.out, st)
	}
	fmt.Fprintf(std.out, "%s: %d dead letters", st.Topic, st.Total)
	var ps []string
	for _, p := range st.Partitions {
		ps = append(ps, fmt.Sprintf("%d: %d-%d", p.Partition, p.LogStart, p.HighWatermark))
	}
	fmt.Fprintf(std.out, " (partition: log start-end %s)\n", strings.Join(ps, ", "))
	if len(st.Reasons) == 0 {
		return nil
	}
	fmt.Fprintln(std.out)
	tw := tabwriter.NewWriter(std.out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "REASON\tCOUNT\tFIRST\tLAST\tSOURCE PARTITIONS\tREPLAYED\tAT LIMIT (%d)\tTRUNCATED\n", c.maxRedrives)
	for _, s := range st.Reasons {
		src := cluster.PartitionRanges(s.SourcePartitions)
		if s.NoSource > 0 {
			src += fmt.Sprintf(" (+%d without a source)", s.NoSource)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\n", s.Reason, s.Count, s.First.UTC().Format(time.RFC3339), s.Last.UTC().Format(time.RFC3339), src, s.Redriven, s.OverLimit, s.Truncated)
	}
	tw.Flush()
	fmt.Fprintf(std.out, "\n`inferops dlq show --reason R` shows the records; `inferops dlq replay --reason R --dry-run` what a replay would send.\n")
	return nil
}

// --- dlq show

type dlqShowCmd struct {
	*dlqFlags
	reasons commaList
	limit   int
}

func dlqShowCommand() (*cmdFlags, runFunc) {
	f := newFlags("dlq", "dlq show [--reason R[,R]] [--limit 20] [--json]", `Prints the newest dead letters (of --reason, or of every reason) with their
time, place in the DLQ, source record, redrive count, every header, the key
and the first bytes of the value, quoted so no byte reaches the terminal raw.

`+dlqHelpCommon)
	f.verbs = []string{"show"}
	c := &dlqShowCmd{dlqFlags: addDLQFlags(f)}
	f.Var(&c.reasons, "reason", "only these reasons (comma separated or repeated); \"unknown\" for records without one")
	f.IntVar(&c.limit, "limit", 20, fmt.Sprintf("records to show, newest first (at most %d)", cluster.MaxDLQTail))
	readOnlyFlag(f, "accepted for INFEROPS_READ_ONLY; dlq show only reads")
	return f, c.run
}

// shownRecord is one record of `dlq show --json`.
type shownRecord struct {
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Time      time.Time         `json:"time"`
	Reason    string            `json:"reason"`
	Detail    string            `json:"detail"`
	Source    string            `json:"source"`
	Redrives  int               `json:"redrives"` // -1: the header does not parse
	Truncated bool              `json:"truncated"`
	Headers   map[string]string `json:"headers"`
	Key       string            `json:"key"`
	Value     string            `json:"value_preview"`
}

func (c *dlqShowCmd) run(ctx context.Context, std stdio) error {
	if c.limit <= 0 {
		return fmt.Errorf("%w: --limit %d: want 1 or more", errUsage, c.limit)
	}
	r, explain, err := c.reader()
	if err != nil {
		return err
	}
	defer r.Close()
	var match func(cluster.DLQRecord) bool
	if len(c.reasons) > 0 {
		match = func(rec cluster.DLQRecord) bool { return slices.Contains(c.reasons, rec.Letter.Reason) }
	}
	recs, err := r.Records(ctx, match, c.limit, 0)
	if err != nil {
		return explain(err)
	}
	out := make([]shownRecord, 0, len(recs))
	for _, rec := range recs {
		s := shownRecord{Partition: rec.Partition, Offset: rec.Offset, Time: rec.Letter.Time.UTC(), Reason: rec.Letter.Reason, Detail: rec.Letter.Detail,
			Source: sourceOf(rec.Letter), Redrives: rec.Redrives, Truncated: rec.Truncated, Headers: map[string]string{}, Key: string(rec.Key), Value: string(rec.Value)}
		for _, h := range rec.Headers {
			s.Headers[string(h.Key)] = string(h.Value)
		}
		out = append(out, s)
	}
	if c.asJSON {
		return writeJSON(std.out, out)
	}
	if len(out) == 0 {
		fmt.Fprintf(std.out, "no dead letters%s in %s\n", reasonWords(c.reasons), c.dlq)
		return nil
	}
	for _, s := range out {
		fmt.Fprintf(std.out, "%s/%d/%d  %s  %s  from %s  redrives %s\n", c.dlq, s.Partition, s.Offset, s.Time.Format(time.RFC3339Nano), s.Reason, s.Source, redrivesText(s.Redrives))
		if s.Detail != "" {
			fmt.Fprintf(std.out, "  detail: %s\n", s.Detail)
		}
		keys := make([]string, 0, len(s.Headers))
		for k := range s.Headers {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(std.out, "  header %q: %q\n", k, s.Headers[k])
		}
		fmt.Fprintf(std.out, "  key %q\n  value %q\n\n", s.Key, s.Value)
	}
	return nil
}

func sourceOf(d pipeline.DeadLetter) string {
	if d.Partition < 0 {
		return "an unknown source"
	}
	return fmt.Sprintf("%s/%d/%d", d.Topic, d.Partition, d.Offset)
}

func redrivesText(n int) string {
	if n < 0 {
		return "unreadable"
	}
	return strconv.Itoa(n)
}

func reasonWords(rs []string) string {
	if len(rs) == 0 {
		return ""
	}
	return " of reason " + strings.Join(rs, ", ")
}

// --- dlq replay

type dlqReplayCmd struct {
	*dlqFlags
	fleet           *fleetFlags
	group           string
	input, to       string
	reasons         commaList
	since, until    string
	sourcePartition string
	rate            float64
	maxRedrives     int
	dryRun, yes     bool
	readOnly        bool
}

const dlqReplayHelp = `Sends dead letters back to the input topic (or --to) with their original
key and bytes, each exactly once, with an inferops-redrives header counting
how often the record came back. A record already replayed --max-redrives
times is left in the DLQ and counted, so a record that fails every time
cannot loop. Truncated copies of oversized records are never sent.

Exactly once: each batch of records goes out in one Kafka transaction with
the replay's progress (the offsets of its consumer group on the DLQ,
inferops-dlq-replay-<id>), so after an interruption (Ctrl-C, a crash,
SIGKILL) the same command resumes where it stopped and sends nothing twice.
The workers read committed records only: what a killed replay left
uncommitted is never served, and is aborted when the next replay starts (or
after 10 s). Two replays of one DLQ cannot run at once: the newer stops the
older. A later replay with another filter also leaves out what an earlier
one sent to the same topic.

Each record goes back to the partition it came from when it goes back to its
own topic, else by key. --dry-run prints every record it would send and
sends nothing; on a terminal the command asks before sending (--yes does
not ask) and shows progress: sent, rate, ETA. --json prints the summary.
Every replay that sends is a fleet event (who, what, how many) on
--fleet-topic, which every console of the --group shows.

Times (--since, --until) are the dead letter's record time: RFC 3339
(2024-05-01T10:00:00Z), local 2024-05-01 10:00, or now-2h.

`

func dlqReplayCommand() (*cmdFlags, runFunc) {
	f := newFlags("dlq", "dlq replay [--reason R] [--since T] [--until T] [--source-partition P] [--to TOPIC] [--rate N] [--max-redrives 3] [--dry-run] [--json]", dlqReplayHelp+dlqHelpCommon)
	f.verbs = []string{"replay"}
	c := &dlqReplayCmd{dlqFlags: addDLQFlags(f), fleet: addFleetFlags(f, false)}
	addPipelineFlags(f, pipelineNames{Input: &c.input, Group: &c.group})
	f.StringVar(&c.to, "to", "", "topic to send the records to; empty = --input")
	f.Var(&c.reasons, "reason", "only these reasons (comma separated or repeated); empty = every reason")
	f.StringVar(&c.since, "since", "", "only dead letters from this time on")
	f.StringVar(&c.until, "until", "", "only dead letters before this time")
	f.StringVar(&c.sourcePartition, "source-partition", "", "only records from these input partitions: 3 or 0,2,5-7")
	f.Float64Var(&c.rate, "rate", 0, "records per second at most; 0 = as fast as Kafka takes them")
	f.IntVar(&c.maxRedrives, "max-redrives", pipeline.DefaultMaxRedrives, "leave records already replayed this often in the DLQ")
	f.BoolVar(&c.dryRun, "dry-run", false, "print what would be sent; send nothing")
	f.BoolVar(&c.yes, "yes", false, "do not ask before sending (a script never is asked)")
	f.BoolVar(&c.readOnly, "read-only", false, "refuse to replay (a --dry-run still shows what would be sent)")
	f.commandLineOnly("a replay's target and confirmation are decided on the command line", "to", "yes")
	return f, c.run
}

// spec turns the flags into the replay's filter.
func (c *dlqReplayCmd) spec(now time.Time) (cluster.ReplaySpec, error) {
	s := cluster.ReplaySpec{DLQ: c.dlq, To: c.to, Reasons: c.reasons, MaxRedrives: c.maxRedrives}
	if s.To == "" {
		s.To = c.input
	}
	if c.maxRedrives < 1 {
		return s, fmt.Errorf("%w: --max-redrives %d: want 1 or more (0 would send nothing)", errUsage, c.maxRedrives)
	}
	if c.rate < 0 {
		return s, fmt.Errorf("%w: --rate %v: want 0 (no limit) or more", errUsage, c.rate)
	}
	var err error
	if c.since != "" {
		if s.Since, err = cluster.ParseTime(c.since, now); err != nil {
			return s, fmt.Errorf("%w: --since: %v", errUsage, err)
		}
	}
	if c.until != "" {
		if s.Until, err = cluster.ParseTime(c.until, now); err != nil {
			return s, fmt.Errorf("%w: --until: %v", errUsage, err)
		}
	}
	if c.sourcePartition != "" {
		if s.SourcePartitions, err = cluster.ParsePartitionList(c.sourcePartition); err != nil {
			return s, fmt.Errorf("%w: --source-partition: %v", errUsage, err)
		}
	}
	if err := s.Validate(); err != nil {
		return s, fmt.Errorf("%w: %v", errUsage, err)
	}
	return s, nil
}

// replayLine is one record of a dry run.
type replayLine struct {
	DLQPartition int32     `json:"dlq_partition"`
	DLQOffset    int64     `json:"dlq_offset"`
	Time         time.Time `json:"time"`
	Reason       string    `json:"reason"`
	Topic        string    `json:"topic"`
	Partition    int32     `json:"partition"`
	Key          string    `json:"key"`
	Redrives     int       `json:"redrives"`
	Bytes        int       `json:"bytes"`
}

// replaySummary is `dlq replay --json`.
type replaySummary struct {
	DryRun      bool                 `json:"dry_run"`
	By          string               `json:"by"`
	Plan        *cluster.ReplayPlan  `json:"plan"`
	Records     []replayLine         `json:"records,omitempty"` // a dry run's
	Counts      cluster.ReplayCounts `json:"counts"`
	Seconds     float64              `json:"seconds"`
	Rate        float64              `json:"rate"`
	Interrupted bool                 `json:"interrupted"`
}

func (c *dlqReplayCmd) run(ctx context.Context, std stdio) error {
	spec, err := c.spec(time.Now())
	if err != nil {
		return err
	}
	if c.readOnly && !c.dryRun {
		return refuseReadOnly("`dlq replay`, which writes to "+spec.To+" and commits the replay's progress", "--dry-run shows what it would send")
	}
	kc, explain, err := operatorKafka(c.kafka)
	if err != nil {
		return err
	}
	by := fleet.Operator()
	r, err := cluster.NewReplayer(ctx, kc, spec, by)
	if err != nil {
		return explain(err)
	}
	defer r.Close()
	sum := &replaySummary{DryRun: c.dryRun, By: by, Records: []replayLine{}}
	var each func(cluster.ReplayItem)
	if c.dryRun {
		each = func(it cluster.ReplayItem) {
			l := replayLine{DLQPartition: it.Record.Partition, DLQOffset: it.Record.Offset, Time: it.Record.Letter.Time.UTC(), Reason: it.Record.Letter.Reason,
				Topic: it.Topic, Partition: it.Partition, Key: string(it.Record.Key), Redrives: it.Redrives, Bytes: len(it.Record.Value)}
			if c.asJSON {
				sum.Records = append(sum.Records, l)
				return
			}
			fmt.Fprintf(std.out, "would send %s/%d/%d -> %s/%d  %s  %s  key %q  redrives %d  %d bytes\n",
				spec.DLQ, l.DLQPartition, l.DLQOffset, l.Topic, l.Partition, l.Time.Format(time.RFC3339), l.Reason, l.Key, l.Redrives, l.Bytes)
		}
	}
	plan, err := r.Plan(ctx, each)
	if err != nil {
		return explain(err)
	}
	sum.Plan, sum.Counts = plan, plan.Counts
	if !c.asJSON {
		printReplayPlan(std.out, plan)
	}
	if c.dryRun {
		if c.asJSON {
			return writeJSON(std.out, sum)
		}
		fmt.Fprintf(std.out, "dry run: nothing sent (%d would be)\n", plan.Counts.Send)
		return nil
	}
	if plan.Counts.Send == 0 {
		if c.asJSON {
			return writeJSON(std.out, sum)
		}
		fmt.Fprintln(std.out, "nothing to send")
		return nil
	}
	if !c.yes && !confirm(std, os.Stdin, fmt.Sprintf("send %d records to %s?", plan.Counts.Send, spec.To)) {
		return errDeclined
	}
	var progress func(cluster.ReplayProgress)
	tty := isTerminal(std.err) && !c.asJSON
	if tty {
		progress = func(p cluster.ReplayProgress) { fmt.Fprintf(std.err, "\r%s", progressLine(p)) }
	}
	res, err := r.Run(ctx, plan, c.rate, progress)
	if tty {
		fmt.Fprintln(std.err)
	}
	if err != nil {
		return explain(err)
	}
	sum.Counts, sum.Seconds, sum.Interrupted = res.Counts, res.Elapsed.Seconds(), res.Interrupted
	if res.Elapsed > 0 {
		sum.Rate = float64(res.Counts.Send) / res.Elapsed.Seconds()
	}
	if c.asJSON {
		if err := writeJSON(std.out, sum); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(std.out, "sent %d records to %s in %.1fs (%.0f/s)%s\n", res.Counts.Send, spec.To, sum.Seconds, sum.Rate, skippedWords(res.Counts, spec.MaxRedrives))
	}
	c.published(ctx, std, kc, spec, by, res)
	if res.Interrupted {
		return fmt.Errorf("interrupted after %d records, each sent once; the progress is kept: run the same command again to send the rest", res.Counts.Send)
	}
	return nil
}

// published tells every console of the group's fleet who replayed what
// and how many; a fleet that cannot be reached is a warning, not a failed
// replay.
func (c *dlqReplayCmd) published(ctx context.Context, std stdio, kc cluster.Config, spec cluster.ReplaySpec, by string, res *cluster.ReplayResult) {
	msg := fmt.Sprintf("%s replayed %s: %d sent in %.1fs%s", by, spec.String(), res.Counts.Send, res.Elapsed.Seconds(), skippedWords(res.Counts, spec.MaxRedrives))
	lvl := pipeline.Info
	if res.Interrupted {
		msg += " (interrupted: the rest is sent when it is run again)"
		lvl = pipeline.Warn
	}
	fops := &fleetOps{kc: kc, topics: c.fleet.topics, group: c.group, input: c.input}
	defer fops.close()
	// An interrupted run still says what it did before it ends.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := fops.publish(pctx, pipeline.Event{Source: pipeline.SourceFleet, Kind: pipeline.KindReplay, Level: lvl, Message: msg}); err != nil {
		fmt.Fprintf(std.err, "inferops dlq replay: warning: the fleet event was not written: %v\n", err)
	}
}

func printReplayPlan(w io.Writer, p *cluster.ReplayPlan) {
	fmt.Fprintf(w, "replay %s, progress in group %s\n", p.Filter, p.Group)
	var rs []string
	for _, r := range p.Partitions {
		s := fmt.Sprintf("%d: %d-%d", r.Partition, r.From, r.To)
		if r.Resumed {
			s += " (resumed)"
		}
		rs = append(rs, s)
	}
	fmt.Fprintf(w, "  reads DLQ partition: offsets %s\n", strings.Join(rs, ", "))
	var by []string
	for reason, n := range p.Counts.ByReason {
		by = append(by, fmt.Sprintf("%s %d", reason, n))
	}
	sort.Strings(by)
	fmt.Fprintf(w, "  to send: %d", p.Counts.Send)
	if len(by) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(by, ", "))
	}
	fmt.Fprintf(w, "%s\n", skippedWords(p.Counts, p.Spec.MaxRedrives))
	for _, j := range p.Earlier {
		fmt.Fprintf(w, "  an earlier replay, %s, by %s at %s: its records are not sent again\n", j.Spec.String(), j.By, j.At.Format(time.RFC3339))
	}
	for _, wn := range p.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", wn)
	}
}

// skippedWords lists what a replay leaves, "" when nothing.
func skippedWords(c cluster.ReplayCounts, maxRedrives int) string {
	var out []string
	if c.AlreadySent > 0 {
		out = append(out, fmt.Sprintf("%d already sent by an earlier replay", c.AlreadySent))
	}
	if c.OverLimit > 0 {
		out = append(out, fmt.Sprintf("%d replayed %d times already (--max-redrives)", c.OverLimit, maxRedrives))
	}
	if c.BadCount > 0 {
		out = append(out, fmt.Sprintf("%d with an unreadable %s header", c.BadCount, pipeline.HeaderRedrives))
	}
	if c.Truncated > 0 {
		out = append(out, fmt.Sprintf("%d truncated copies of oversized records", c.Truncated))
	}
	if len(out) == 0 {
		return ""
	}
	return "; left in the DLQ: " + strings.Join(out, ", ")
}

// progressLine is the one line a terminal shows while a replay runs.
func progressLine(p cluster.ReplayProgress) string {
	pct := 100.0
	if p.Total > 0 {
		pct = 100 * float64(p.Sent) / float64(p.Total)
	}
	eta := "unknown"
	if d := p.ETA(); d >= 0 {
		eta = d.Round(time.Second).String()
	}
	return fmt.Sprintf("replay: %d/%d sent (%.0f%%), %.0f/s, ETA %s   ", p.Sent, p.Total, pct, p.Rate(), eta)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
