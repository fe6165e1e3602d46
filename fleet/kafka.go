package fleet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/rcrowley/go-metrics"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/pipeline"
)

// Topics are the fleet's two topics (--fleet-topic, --control-topic).
type Topics struct {
	Fleet   string
	Control string
}

// SetDefaults fills empty names with pipeline's.
func (t *Topics) SetDefaults() {
	if t.Fleet == "" {
		t.Fleet = pipeline.DefaultFleetTopic
	}
	if t.Control == "" {
		t.Control = pipeline.DefaultControlTopic
	}
}

// Validate names the flag to fix.
func (t Topics) Validate() error {
	if t.Fleet == t.Control {
		return fmt.Errorf("--fleet-topic and --control-topic are both %q: telemetry would overwrite the desired state", t.Fleet)
	}
	return nil
}

// Ensure creates the topics when they are missing (a real cluster's
// operator may have created them already, with their own settings).
func (t Topics) Ensure(ctx context.Context, kc cluster.Config) error {
	if _, err := cluster.EnsureTopics(ctx, kc, pipeline.FleetTopics(t.Fleet, t.Control)); err != nil {
		return fmt.Errorf("%w (create %s and %s as README's fleet section says, or grant this principal CREATE on them)", err, t.Fleet, t.Control)
	}
	return nil
}

// rosterGroup is the consumer group whose members are the live instances
// of group: one member per instance, no partitions (roster.go).
func rosterGroup(group string) string { return "inferops.fleet." + group }

// saramaConfig is the fleet's client: small records, quick fetches, zstd
// (snapshots are JSON), acks from the leader only (a lost snapshot is
// replaced by the next one a second later). Its metrics registry counts the
// bytes on the wire for the telemetry budget.
func saramaConfig(kc cluster.Config, clientID string) (*sarama.Config, error) {
	kc.SetDefaults()
	kc.ClientID = clientID
	sc, err := kc.Sarama()
	if err != nil {
		return nil, err
	}
	sc.MetricRegistry = metrics.NewRegistry()
	sc.Producer.RequiredAcks = sarama.WaitForLocal
	sc.Producer.Compression = sarama.CompressionZSTD
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Retry.Max = 3
	sc.Producer.Flush.Frequency = 0
	sc.Producer.MaxMessageBytes = MaxRecordBytes
	sc.Consumer.Return.Errors = true
	sc.Consumer.MaxWaitTime = 250 * time.Millisecond
	sc.Consumer.Fetch.Default = 256 << 10
	sc.ChannelBufferSize = 64
	sc.Metadata.Retry.Max = 3
	sc.Metadata.Retry.Backoff = 250 * time.Millisecond
	return sc, nil
}

// wireBytes is what a client wrote and read on the network so far.
func wireBytes(sc *sarama.Config) (out, in int64) {
	if m, ok := sc.MetricRegistry.Get("outgoing-byte-rate").(metrics.Meter); ok {
		out = m.Count()
	}
	if m, ok := sc.MetricRegistry.Get("incoming-byte-rate").(metrics.Meter); ok {
		in = m.Count()
	}
	return out, in
}

// record is one record a tail delivers.
type record struct {
	Key, Value []byte
	Partition  int32
	Offset     int64
	Time       time.Time
	// Live is false while the tail catches up with what was there when it
	// started, true for records that arrived since.
	Live bool
}

// tail reads every partition of a topic from a start (the oldest offset,
// or the first record at or after a time) and follows it, handing each
// record to fn from one goroutine at a time. caughtUp closes once every
// partition has been read up to its end as it was at the start.
type tail struct {
	caughtUp chan struct{}
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// startTail starts reading topic with cons (a consumer of client); since
// is zero for the oldest offset. fn runs under the tail's own lock, so it
// needs none of its own for what only it touches.
//
// Tails of one client share one consumer: Kafka answers one request at a
// time per connection, so two consumers' fetches on one connection queue
// behind each other's long polls, while one consumer fetches every
// partition of a broker in one request.
func startTail(ctx context.Context, client sarama.Client, cons sarama.Consumer, topic string, since time.Time, fn func(record)) (*tail, error) {
	parts, err := client.Partitions(topic)
	if err != nil {
		if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			return nil, fmt.Errorf("topic %s does not exist: %w", topic, err)
		}
		return nil, fmt.Errorf("topic %s: %w", topic, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	t := &tail{caughtUp: make(chan struct{}), cancel: cancel}
	var mu sync.Mutex
	var pending sync.WaitGroup
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.close()
			return nil, fmt.Errorf("%s/%d: end offset: %w", topic, p, err)
		}
		start := sarama.OffsetOldest
		if !since.IsZero() {
			o, err := client.GetOffset(topic, p, since.UnixMilli())
			if err != nil {
				t.close()
				return nil, fmt.Errorf("%s/%d: offset at %s: %w", topic, p, since.Format(time.RFC3339), err)
			}
			start = o
			if o < 0 {
				start = end // nothing that recent: only what comes next
			}
		}
		pc, err := cons.ConsumePartition(topic, p, start)
		if errors.Is(err, sarama.ErrOffsetOutOfRange) {
			pc, err = cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		}
		if err != nil {
			t.close()
			return nil, fmt.Errorf("read %s/%d: %w", topic, p, err)
		}
		pending.Add(1)
		t.wg.Add(2)
		go func() {
			defer t.wg.Done()
			for range pc.Errors() {
				// Broker hiccups: sarama retries on its own.
			}
		}()
		go func() {
			defer t.wg.Done()
			defer func() { _ = pc.Close() }()
			// A compacted partition can end in a gap (its last tombstone
			// cleaned away), so silence also counts as having caught up.
			done := end == 0 || (start >= 0 && start >= end)
			if done {
				pending.Done()
			}
			idle := time.NewTimer(time.Second)
			defer idle.Stop()
			for {
				select {
				case <-ctx.Done():
					if !done {
						pending.Done()
					}
					return
				case <-idle.C:
					if !done {
						done = true
						pending.Done()
					}
				case m, ok := <-pc.Messages():
					if !ok {
						if !done {
							pending.Done()
						}
						return
					}
					mu.Lock()
					fn(record{Key: m.Key, Value: m.Value, Partition: m.Partition, Offset: m.Offset, Time: m.Timestamp, Live: done})
					mu.Unlock()
					if !done && m.Offset >= end-1 {
						done = true
						pending.Done()
					}
					if !done {
						idle.Reset(time.Second)
					}
				}
			}
		}()
	}
	go func() { pending.Wait(); close(t.caughtUp) }()
	return t, nil
}

// wait blocks until the tail caught up or ctx ends.
func (t *tail) wait(ctx context.Context) error {
	select {
	case <-t.caughtUp:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops the tail's partition consumers; the consumer is the caller's.
func (t *tail) close() {
	t.cancel()
	t.wg.Wait()
}

// whoAmI is "user@host" for the desired state's By.
func whoAmI(user, host string) string {
	user, host = strings.TrimSpace(user), strings.TrimSpace(host)
	if user == "" {
		user = "unknown"
	}
	if host == "" {
		host = "unknown"
	}
	return user + "@" + host
}
