package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/inferops/inferops/cluster"
)

func init() {
	register(&command{name: "status", summary: "print one snapshot of the pipeline: Kafka lag per partition, group members, health", run: runStatus})
}

// statusReport is what `inferops status` prints. The Kafka snapshot's
// fields sit at the top level of the JSON (topic, group, partitions, ...);
// other parts of the pipeline add their own section.
type statusReport struct {
	*cluster.Snapshot
	Model  any `json:"model,omitempty"`  // TF Serving: filled by a statusSection
	Worker any `json:"worker,omitempty"` // inference workers: filled by a statusSection
}

// statusSection is one extra part of the report (the model server, the
// workers). A file appends one to statusSections from init(); status.go
// never needs editing.
type statusSection struct {
	name string
	// flags registers the section's flags (e.g. --tfserving, --model).
	flags func(fs *flag.FlagSet)
	// collect fills the section's field of r (r.Model, r.Worker). It runs
	// after the Kafka snapshot, which may be nil if Kafka failed. An error
	// is printed and makes status exit 1, but the rest is still printed.
	collect func(ctx context.Context, r *statusReport) error
	// text prints the section for humans, after the Kafka part.
	text func(w io.Writer, r *statusReport)
}

var statusSections []*statusSection

const statusHelp = `Reads the consumer group's committed offsets and the topic's log-end offsets
twice, --sample apart, so the produce and consume rates are real, and prints
per partition: leader, log start, high watermark, committed offset, lag (in
messages and in seconds, interpolated), rates and owning member; then the
group's members. "status" is Burrow's verdict (OK, WARN, ERR); it needs a full
window of observations, so a one-shot status can only report OK; watch the
console for WARN/STALL/STOP.

Without --brokers it reads the embedded broker of 'inferops serve' at
127.0.0.1:9092.`

func runStatus(ctx context.Context, args []string) error {
	fs := newFlagSet("status", "status [--brokers LIST] [--input ai_input] [--group tf_serving_group] [--json] [--sample 1s]", statusHelp)
	kcfg := addKafkaFlags(fs)
	topic := fs.String("input", cluster.TopicInput, "topic the workers consume")
	group := fs.String("group", cluster.GroupInfer, "consumer group of the workers")
	asJSON := fs.Bool("json", false, "print JSON instead of tables")
	sample := fs.Duration("sample", time.Second, "time between the two samples the rates come from; 0 = one sample, no rates")
	for _, s := range statusSections {
		if s.flags != nil {
			s.flags(fs)
		}
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *sample < 0 {
		return fmt.Errorf("%w: --sample %v is negative", errUsage, *sample)
	}
	embedded := len(kcfg.Brokers) == 0
	if embedded {
		kcfg.Brokers = []string{cluster.DefaultEmbeddedAddr}
	}
	kcfg.SetDefaults()
	if err := kcfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}

	report := &statusReport{}
	var errs []error
	snap, err := kafkaStatus(ctx, *kcfg, *topic, *group, *sample)
	if err != nil {
		if embedded && errors.Is(err, syscall.ECONNREFUSED) {
			err = fmt.Errorf("no embedded broker at %s: start it with `inferops serve` (or `make run`), or pass --brokers", cluster.DefaultEmbeddedAddr)
		}
		errs = append(errs, err)
	}
	report.Snapshot = snap
	for _, s := range statusSections {
		if err := s.collect(ctx, report); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
		}
	}

	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if snap != nil || len(statusSections) > 0 {
			if err := enc.Encode(report); err != nil {
				return err
			}
		}
	} else {
		if snap != nil {
			printKafkaStatus(os.Stdout, snap)
		}
		for _, s := range statusSections {
			if s.text != nil {
				s.text(os.Stdout, report)
			}
		}
	}
	return errors.Join(errs...)
}

// kafkaStatus takes two snapshots sample apart and returns the second, whose
// rates are real.
func kafkaStatus(ctx context.Context, cfg cluster.Config, topic, group string, sample time.Duration) (*cluster.Snapshot, error) {
	// Two samples rarely let the interpolation place a committed offset, so
	// read the record timestamps instead (one Fetch per leader).
	c, err := cluster.NewCollector(cfg, topic, group, cluster.WithExactLagTime())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	snap, err := c.Refresh(ctx)
	if err != nil || sample == 0 {
		return snap, err
	}
	select {
	case <-time.After(sample):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return c.Refresh(ctx)
}

func printKafkaStatus(w io.Writer, s *cluster.Snapshot) {
	fmt.Fprintf(w, "topic %s  group %s  state %s  status %s  brokers %d\n", s.Topic, s.Group, orDash(s.GroupState), s.Status, s.Brokers)
	maxLag := "-"
	if s.MaxLagPartition >= 0 {
		maxLag = fmt.Sprintf("%d (partition %d)", s.MaxLag, s.MaxLagPartition)
	}
	fmt.Fprintf(w, "total lag %d  max lag %s  members %d\n", s.TotalLag, maxLag, len(s.Members))
	committed := 0
	for _, p := range s.Partitions {
		if p.Committed >= 0 {
			committed++
		}
	}
	if committed == 0 && len(s.Members) == 0 {
		fmt.Fprintf(w, "note: group %s has no members and no committed offsets on %s (is --group right? are the workers running?)\n", s.Group, s.Topic)
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PARTITION\tLEADER\tLOG START\tHIGH WATERMARK\tCOMMITTED\tLAG\tLAG s\tIN/s\tOUT/s\t MEMBER\t STATUS\t")
	for _, p := range s.Partitions {
		lagS := "-"
		if p.LagSeconds >= 0 {
			lagS = strconv.FormatFloat(p.LagSeconds, 'f', 1, 64)
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%.1f\t%.1f\t %s\t %s\t\n",
			p.Partition, p.Leader, offset(p.LogStart), offset(p.HighWatermark), offset(p.Committed), offset(p.Lag), lagS,
			p.ProduceRate, p.ConsumeRate, orDash(p.Member), p.Status)
	}
	tw.Flush()

	if len(s.Members) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT ID\tHOST\tPARTITIONS\tMEMBER ID")
		for _, m := range s.Members {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.ClientID, m.Host, partitionList(m.Partitions), m.MemberID)
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

// partitionList prints 0,1,2,3,7 as "0-3,7".
func partitionList(ps []int32) string {
	if len(ps) == 0 {
		return "-"
	}
	var parts []string
	for i := 0; i < len(ps); {
		j := i
		for j+1 < len(ps) && ps[j+1] == ps[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", ps[i], ps[j]))
		} else {
			parts = append(parts, strconv.Itoa(int(ps[i])))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
