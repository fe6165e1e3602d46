package cluster

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

// A group with no members and no commit on the topic is usually a typo
// (--group tf_serving_grp). The collector then lists the cluster's groups
// and asks each, in one OffsetFetch, whether it committed on the topic, so
// the warning can name the group the operator meant. That costs one
// ListGroups per broker plus a FindCoordinator and an OffsetFetch per group
// checked, so it runs at most once per othersEvery and checks at most
// maxGroupsChecked groups.
const (
	othersEvery      = time.Minute
	maxGroupsChecked = 50
	othersParallel   = 8
)

// otherGroups returns the last lookup, or looks again when it is older
// than othersEvery. It never fails the refresh: a lookup that could not be
// done says why in the warning instead.
func (c *Collector) otherGroups(reqs *atomic.Int64) *otherGroups {
	if c.others != nil && time.Since(c.othersAt) < othersEvery {
		return c.others
	}
	o := &otherGroups{OnTopic: []string{}, All: []string{}}
	c.others, c.othersAt = o, time.Now()
	all, err := c.listGroups(reqs)
	if err != nil {
		o.Err = c.cfg.Explain(err).Error()
		return o
	}
	o.All = all
	var candidates []string
	for _, g := range all {
		if g != c.group && len(candidates) < maxGroupsChecked {
			candidates = append(candidates, g)
		}
	}
	o.Checked = len(candidates)
	partitions, err := c.client.Partitions(c.topic)
	if err != nil {
		o.Err = c.cfg.Explain(err).Error()
		return o
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, othersParallel)
	)
	for _, g := range candidates {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if c.committedOn(g, partitions, reqs) {
				mu.Lock()
				o.OnTopic = append(o.OnTopic, g)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Strings(o.OnTopic)
	return o
}

// listGroups asks every broker for the consumer groups it coordinates.
func (c *Collector) listGroups(reqs *atomic.Int64) ([]string, error) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		seen = map[string]bool{}
		errs []error
	)
	version := c.client.Config().Version
	for _, b := range c.client.Brokers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = b.Open(c.client.Config()) // a no-op when connected
			req := &sarama.ListGroupsRequest{Version: requestVersion(version, 0, []versionSince{
				{sarama.V2_4_0_0, 3}, {sarama.V2_0_0_0, 2}, {sarama.V0_11_0_0, 1},
			})}
			reqs.Add(1)
			resp, err := b.ListGroups(req)
			if err == nil && !errors.Is(resp.Err, sarama.ErrNoError) {
				err = resp.Err
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("list groups on broker %d (%s): %w", b.ID(), b.Addr(), err))
				return
			}
			for g, protocol := range resp.Groups {
				if protocol == "consumer" || protocol == "" { // not Connect or share groups
					seen[g] = true
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) == 0 && len(errs) > 0 {
		return nil, joinErrs(errs)
	}
	out := make([]string, 0, len(seen))
	for g := range seen {
		out = append(out, g)
	}
	sort.Strings(out)
	return out, nil
}

// committedOn reports whether group has a commit on any partition of the
// collector's topic. A group that cannot be asked counts as no.
func (c *Collector) committedOn(group string, partitions []int32, reqs *atomic.Int64) bool {
	reqs.Add(1) // FindCoordinator, unless sarama has it cached
	coord, err := c.client.Coordinator(group)
	if err != nil {
		return false
	}
	req := sarama.NewOffsetFetchRequest(c.client.Config().Version, group, map[string][]int32{c.topic: partitions})
	reqs.Add(1)
	resp, err := coord.FetchOffset(req)
	if err != nil || offsetFetchErr(resp) != nil {
		return false
	}
	for _, p := range partitions {
		if blk := resp.GetBlock(c.topic, p); blk != nil && errors.Is(blk.Err, sarama.ErrNoError) && blk.Offset >= 0 {
			return true
		}
	}
	return false
}
