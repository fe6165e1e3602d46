package cluster

// Admin reads that only `inferops doctor` needs (replication, broker configs,
// the size of recent records). Kept in their own file, written by the doctor
// owner, so admin.go stays the cluster owner's.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// TopicReplication is the smallest and largest replica count over the
// partitions of topic: the smallest is what a broker loss can cost.
func (a *Admin) TopicReplication(topic string) (minRF, maxRF int, err error) {
	if err := a.client.RefreshMetadata(topic); err != nil {
		return 0, 0, a.cfg.Explain(fmt.Errorf("metadata for topic %s: %w", topic, err))
	}
	ps, err := a.client.Partitions(topic)
	if err != nil {
		return 0, 0, a.cfg.Explain(fmt.Errorf("partitions of topic %s: %w", topic, err))
	}
	minRF = -1
	for _, p := range ps {
		rs, err := a.client.Replicas(topic, p)
		if err != nil && !errors.Is(err, sarama.ErrReplicaNotAvailable) {
			return 0, 0, a.cfg.Explain(fmt.Errorf("replicas of %s/%d: %w", topic, p, err))
		}
		if minRF < 0 || len(rs) < minRF {
			minRF = len(rs)
		}
		maxRF = max(maxRF, len(rs))
	}
	return max(minRF, 0), maxRF, nil
}

// BrokerConfigs returns the effective configs of one broker (defaults
// included), e.g. message.max.bytes, replica.fetch.max.bytes.
func (a *Admin) BrokerConfigs(id int32) (map[string]string, error) {
	entries, err := a.admin.DescribeConfig(sarama.ConfigResource{Type: sarama.BrokerResource, Name: strconv.Itoa(int(id))})
	if err != nil {
		return nil, a.cfg.Explain(fmt.Errorf("describe configs of broker %d: %w", id, err))
	}
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		out[e.Name] = e.Value
	}
	return out, nil
}

// recentIdle ends RecentRecords on a partition that stops delivering.
const recentIdle = time.Second

// RecentRecords reads at most limit records from the end of topic, spread
// over its partitions, and returns how many it read and the largest one's
// size in bytes (key + value + headers). It stops when ctx ends and returns
// what it has by then, so a slow cluster costs time, never a hang.
func (a *Admin) RecentRecords(ctx context.Context, topic string, limit int) (n, largest int, err error) {
	if limit <= 0 {
		return 0, 0, nil
	}
	ps, err := a.client.Partitions(topic)
	if err != nil {
		return 0, 0, a.cfg.Explain(fmt.Errorf("partitions of topic %s: %w", topic, err))
	}
	if len(ps) == 0 {
		return 0, 0, nil
	}
	per := int64(max(1, (limit+len(ps)-1)/len(ps)))
	consumer, err := sarama.NewConsumerFromClient(a.client)
	if err != nil {
		return 0, 0, a.cfg.Explain(fmt.Errorf("consumer for %s: %w", topic, err))
	}
	defer consumer.Close()

	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, p := range ps {
		newest, err := a.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return n, largest, a.cfg.Explain(fmt.Errorf("newest offset of %s/%d: %w", topic, p, err))
		}
		oldest, err := a.client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return n, largest, a.cfg.Explain(fmt.Errorf("oldest offset of %s/%d: %w", topic, p, err))
		}
		start := max(oldest, newest-per)
		if start >= newest {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, start)
		if err != nil {
			return n, largest, a.cfg.Explain(fmt.Errorf("read %s/%d from offset %d: %w", topic, p, start, err))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.AsyncClose()
			// Transactions leave control records, so the last offset we see
			// may stop short of newest-1: a quiet partition is done.
			idle := time.NewTimer(recentIdle)
			defer idle.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-idle.C:
					return
				case perr, ok := <-pc.Errors():
					if ok {
						mu.Lock()
						errs = append(errs, perr)
						mu.Unlock()
					}
					return
				case m, ok := <-pc.Messages():
					if !ok {
						return
					}
					size := len(m.Key) + len(m.Value)
					for _, h := range m.Headers {
						size += len(h.Key) + len(h.Value)
					}
					mu.Lock()
					n++
					largest = max(largest, size)
					mu.Unlock()
					if m.Offset >= newest-1 {
						return
					}
					idle.Reset(recentIdle)
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 && n == 0 {
		return 0, 0, a.cfg.Explain(errors.Join(errs...))
	}
	return n, largest, nil
}

// IsUnknownTopic reports whether err says the topic does not exist, so
// callers outside this package need not know sarama's error values.
func IsUnknownTopic(err error) bool {
	return errors.Is(err, sarama.ErrUnknownTopicOrPartition)
}
