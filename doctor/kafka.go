package doctor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/pipeline"
)

func kafkaCheck(id, name string) Check {
	return Check{Section: SectionKafka, ID: id, Name: name}
}

// startKafkaFix is how to get a broker when none answers.
func (o Options) startKafkaFix() string {
	if o.embeddedKafka {
		return "no --brokers given, so doctor checked the embedded default " + pipeline.DefaultKafkaAddr +
			": start it with 'make run' or 'inferops serve', or pass --brokers host:9092[,host:9092...]"
	}
	return "is Kafka running there? check --brokers, the listeners/advertised.listeners in server.properties, and firewalls (TCP " +
		portsOf(o.Kafka.Brokers) + ")"
}

func portsOf(addrs []string) string {
	seen := map[string]bool{}
	var ps []string
	for _, a := range addrs {
		if i := strings.LastIndexByte(a, ':'); i >= 0 && !seen[a[i+1:]] {
			seen[a[i+1:]] = true
			ps = append(ps, a[i+1:])
		}
	}
	return strings.Join(ps, ",")
}

// CheckKafka runs the cluster checks against o.Kafka within ctx.
func CheckKafka(ctx context.Context, o Options) []Check {
	reach := kafkaCheck("kafka.reachable", "brokers reachable")
	reach.Want = "every bootstrap broker accepts TCP"
	reach.Why = "workers, producers and the console all bootstrap from these addresses"
	ok, failed := dialAll(ctx, o.Kafka.Brokers)
	switch {
	case len(ok) == 0:
		reach.Status = Fail
		reach.Seen = unreachable(failed, o.Kafka.Brokers)
		reach.Fix = o.startKafkaFix()
		return []Check{reach}
	case len(failed) > 0:
		reach.Status = Warn
		reach.Seen = fmt.Sprintf("%d of %d answer; down: %s", len(ok), len(o.Kafka.Brokers), unreachable(failed, o.Kafka.Brokers))
		reach.Fix = "remove dead addresses from --brokers, or bring those brokers back"
	default:
		reach.Status = Pass
		reach.Seen = strings.Join(ok, ", ")
	}
	facts, err := gatherWithin(ctx, o)
	if err != nil {
		// TCP works but Kafka does not answer: TLS/SASL mismatch, a
		// non-Kafka port, or a timeout. The explained error names the flag.
		proto := kafkaCheck("kafka.protocol", "Kafka protocol")
		proto.Status, proto.Seen = Fail, err.Error()
		proto.Want = "metadata, configs and group offsets readable"
		proto.Why = "doctor reads what every worker reads; if it cannot, neither can they"
		proto.Fix = "check --kafka-tls / --sasl-mechanism / --sasl-username against the broker's listeners, and that the user may describe the topic and group"
		if errors.Is(err, context.DeadlineExceeded) {
			proto.Fix = "the brokers accept connections but answer slowly: check their load and GC pauses, or raise --timeout (now " + o.SectionTimeout.String() + ")"
		}
		return []Check{reach, proto}
	}
	return append([]Check{reach}, JudgeKafka(facts)...)
}

// gatherWithin returns when GatherKafka does or when ctx ends, whichever is
// first: sarama calls take no context, and a cluster that answers each one
// just under its timeout must not stretch doctor past its budget. The
// abandoned reads end on their own client timeouts.
func gatherWithin(ctx context.Context, o Options) (KafkaFacts, error) {
	type result struct {
		f   KafkaFacts
		err error
	}
	ch := make(chan result, 1)
	go func() {
		f, err := GatherKafka(ctx, o)
		ch <- result{f, err}
	}()
	select {
	case r := <-ch:
		return r.f, r.err
	case <-ctx.Done():
		return KafkaFacts{}, fmt.Errorf("Kafka at %s did not answer every read within the section's time limit (%w): is it overloaded? raise --timeout",
			strings.Join(o.Kafka.Brokers, ","), ctx.Err())
	}
}

// GatherKafka reads the cluster: metadata, topic and broker configs, a
// bounded sample of the newest records and two collector snapshots for the
// group's status, all within ctx.
func GatherKafka(ctx context.Context, o Options) (KafkaFacts, error) {
	o.SetDefaults()
	f := KafkaFacts{Bootstrap: o.Kafka.Brokers, Embedded: o.embeddedKafka, Topic: o.Input, Group: o.Group, Workers: o.Workers}
	admin, err := cluster.NewAdmin(ctx, o.Kafka)
	if err != nil {
		return f, err
	}
	defer admin.Close()
	brokers, err := admin.Brokers()
	if err != nil {
		return f, err
	}
	f.BrokerCount = len(brokers)
	if len(brokers) > 0 {
		// Broker configs are a refinement (replica.fetch.max.bytes in a
		// fix); a cluster that hides them still gets every other check.
		f.BrokerConfigs, _ = admin.BrokerConfigs(brokers[0].ID)
	}
	var outParts []int
	for _, name := range []string{o.Output, o.DLQ} {
		n, err := admin.TopicPartitions(name)
		if err != nil && !cluster.IsUnknownTopic(err) {
			return f, err
		}
		outParts = append(outParts, n)
	}
	f.SetOutputTopics([]string{o.Output, o.DLQ}, outParts)
	f.Partitions, err = admin.TopicPartitions(o.Input)
	if cluster.IsUnknownTopic(err) {
		return f, nil
	}
	if err != nil {
		return f, err
	}
	f.TopicExists = true
	if f.ReplicationFactor, _, err = admin.TopicReplication(o.Input); err != nil {
		return f, err
	}
	if f.TopicConfigs, err = admin.TopicConfigs(o.Input); err != nil {
		return f, err
	}

	// The record sample and the two group snapshots both wait on the
	// network; run them side by side inside the section budget.
	var wg sync.WaitGroup
	var groupErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		sctx, cancel := context.WithTimeout(ctx, sampleBudget(ctx))
		defer cancel()
		// A failed sample only loses the "largest record" evidence.
		f.SampledRecords, f.LargestRecord, _ = admin.RecentRecords(sctx, o.Input, o.SampleRecords)
	}()
	go func() {
		defer wg.Done()
		groupErr = groupStatus(ctx, o, &f)
	}()
	wg.Wait()
	if groupErr != nil {
		// The topic checks stand on their own; only the group verdict is lost.
		f.GroupErr = groupErr.Error()
	}
	return f, nil
}

// sampleBudget leaves room in the section for judging and printing.
func sampleBudget(ctx context.Context) time.Duration {
	d := 2 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl)/2)
	}
	return max(d, 10*time.Millisecond)
}

// groupStatus takes two collector snapshots a moment apart with a window
// of two, which is the least Burrow's rules can judge, and records members,
// lag and the worst partition status.
func groupStatus(ctx context.Context, o Options, f *KafkaFacts) error {
	col, err := cluster.NewCollector(o.Kafka, o.Input, o.Group, cluster.WithWindow(2))
	if err != nil {
		return err
	}
	defer col.Close()
	first, err := col.Refresh(ctx)
	if err != nil {
		return err
	}
	snap := first
	wait := sampleBudget(ctx)
	select {
	case <-ctx.Done():
	case <-time.After(wait):
		if s, err := col.Refresh(ctx); err == nil {
			snap = s
		}
	}
	f.GroupMembers = len(snap.Members)
	f.GroupLag = snap.TotalLag
	status, worstPart := WorstStatus(snap)
	if status == "" {
		return nil
	}
	f.GroupStatus = status
	switch {
	case snap.Status == cluster.StatusNotFound && len(snap.Warnings) > 0:
		f.GroupDetail = snap.Warnings[0].Message // names the groups that do commit on the topic
	case worstPart >= 0:
		f.GroupDetail = fmt.Sprintf("partition %d", worstPart)
	case snap.MaxLagPartition >= 0 && snap.MaxLag > 0:
		f.GroupDetail = fmt.Sprintf("most lag on partition %d: %d", snap.MaxLagPartition, snap.MaxLag)
	}
	if snap == first {
		f.GroupDetail = strings.TrimPrefix(f.GroupDetail+"; one sample only", "; ")
	}
	return nil
}
