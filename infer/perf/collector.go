package perf

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

// collector reads the output topic from its end (as of when the run starts)
// on every partition and matches results to the current load by id. It is a
// plain consumer, not a group member: it must see every partition, must not
// commit offsets anyone else reads, and must never take partitions from the
// pipeline's own consumers.
type collector struct {
	consumer sarama.Consumer
	pcs      []sarama.PartitionConsumer
	cur      atomic.Pointer[load]
	wg       sync.WaitGroup
	errMu    sync.Mutex
	err      error
	noDLQ    string // why dead letters are not watched, if they are not
}

func tuneConsumer(c *sarama.Config) {
	c.Consumer.Return.Errors = true
	c.Consumer.Fetch.Min = 1
	c.Consumer.Fetch.Default = 4 << 20
	// A fetch returns as soon as there is data; this only bounds an idle poll.
	c.Consumer.MaxWaitTime = 50 * time.Millisecond
	c.ChannelBufferSize = 1024
}

// newCollector starts consuming the output topic, and the dead-letter topic
// when it exists, at their current ends. A record the worker dead-letters
// has no result; seeing it in the DLQ tells an error from a loss.
func newCollector(brokers []string, sc *sarama.Config, output, dlq string) (*collector, error) {
	consumer, err := sarama.NewConsumer(brokers, sc)
	if err != nil {
		return nil, err
	}
	c := &collector{consumer: consumer}
	parts, err := consumer.Partitions(output)
	if err != nil {
		consumer.Close()
		return nil, fmt.Errorf("output topic %q: %w", output, err)
	}
	if err := c.consume(output, parts, false); err != nil {
		c.close()
		return nil, err
	}
	if dlq == "" {
		return c, nil
	}
	if parts, err = consumer.Partitions(dlq); err != nil {
		c.noDLQ = fmt.Sprintf("dead-letter topic %q not readable (%v): dead-lettered records count as lost", dlq, err)
		return c, nil
	}
	if err := c.consume(dlq, parts, true); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *collector) consume(topic string, parts []int32, dlq bool) error {
	for _, p := range parts {
		pc, err := c.consumer.ConsumePartition(topic, p, sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("consume %s/%d: %w", topic, p, err)
		}
		c.pcs = append(c.pcs, pc)
		c.wg.Add(2)
		if dlq {
			go c.readDLQ(pc)
		} else {
			go c.readMessages(pc)
		}
		go c.readErrors(pc)
	}
	return nil
}

// readDLQ counts this load's records among the dead letters. The worker
// copies the input value, which starts with our id, so the result parser
// reads it too.
func (c *collector) readDLQ(pc sarama.PartitionConsumer) {
	defer c.wg.Done()
	for m := range pc.Messages() {
		ld := c.cur.Load()
		if ld == nil {
			continue
		}
		if _, ok := resultID(m.Value, ld.prefix); ok {
			ld.deadLettered.Add(1)
		}
	}
}

// follow switches matching to ld; results of the previous load that arrive
// later are ignored as strays of no load.
func (c *collector) follow(ld *load) { c.cur.Store(ld) }

func (c *collector) readMessages(pc sarama.PartitionConsumer) {
	defer c.wg.Done()
	for m := range pc.Messages() {
		ld := c.cur.Load()
		if ld == nil {
			continue
		}
		seq, ok := resultID(m.Value, ld.prefix)
		if !ok {
			continue // another run's or another producer's result
		}
		now := time.Since(ld.start)
		sched, out := ld.ledger.received(seq)
		switch out {
		case recvFirst:
			ld.received.Add(1)
			ld.lat.record(now - time.Duration(sched))
			maxAtomic(&ld.lastRecvNs, int64(now))
		case recvDuplicate:
			ld.duplicates.Add(1)
		case recvUnknown:
			ld.strays.Add(1)
		}
	}
}

func (c *collector) readErrors(pc sarama.PartitionConsumer) {
	defer c.wg.Done()
	for e := range pc.Errors() {
		c.errMu.Lock()
		if c.err == nil {
			c.err = e
		}
		c.errMu.Unlock()
	}
}

// firstErr is the first consume error, if any: a collector that cannot read
// results would otherwise report every record as lost without saying why.
func (c *collector) firstErr() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

func (c *collector) close() error {
	var errs []error
	for _, pc := range c.pcs {
		pc.AsyncClose()
	}
	c.wg.Wait()
	if err := c.consumer.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
