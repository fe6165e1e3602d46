package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/IBM/sarama"
)

// StaticMembership is whether a client at this config's Kafka version can
// join with a group.instance.id (KIP-345, Kafka 2.3) and also be removed by
// it (LeaveGroup v3, Kafka 2.4). The worker only uses static membership
// when it can undo it: a member it cannot remove would hold its partitions
// for a whole session timeout after every scale-down.
func StaticMembership(sc *sarama.Config) bool { return sc.Version.IsAtLeast(sarama.V2_4_0_0) }

// RemoveStaticMembers takes static members out of group by their
// group.instance.id, so the group rebalances their partitions to the others
// at once. It is how a static member leaves on purpose: sarama's Close does
// not send LeaveGroup for one (KIP-345: a restart should not rebalance), so
// without this a scale-down or a clean shutdown would leave the partitions
// idle until the session timeout. An instance the group no longer knows
// (its session expired, or it was never there) is already gone and is not
// an error.
func RemoveStaticMembers(ctx context.Context, cfg Config, group string, instanceIDs []string) error {
	if len(instanceIDs) == 0 {
		return nil
	}
	cfg.SetDefaults()
	sc, err := cfg.Sarama()
	if err != nil {
		return err
	}
	if !StaticMembership(sc) {
		return fmt.Errorf("remove members of group %s: needs Kafka 2.4 or later (--kafka-version is %s)", group, cfg.Version)
	}
	admin, err := newClusterAdmin(ctx, cfg, sc)
	if err != nil {
		return err
	}
	type result struct {
		resp *sarama.LeaveGroupResponse
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		defer admin.Close()
		resp, err := admin.RemoveMemberFromConsumerGroup(group, instanceIDs)
		ch <- result{resp, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		return fmt.Errorf("remove members %s of group %s: %w", strings.Join(instanceIDs, ", "), group, ctx.Err())
	}
	if r.err != nil {
		if errors.Is(r.err, sarama.ErrUnknownMemberId) || errors.Is(r.err, sarama.ErrGroupIDNotFound) {
			return nil
		}
		return cfg.Explain(fmt.Errorf("remove members %s of group %s: %w", strings.Join(instanceIDs, ", "), group, r.err))
	}
	var errs []error
	for _, m := range r.resp.Members {
		if m.Err == sarama.ErrNoError || m.Err == sarama.ErrUnknownMemberId {
			continue
		}
		id := m.MemberId
		if m.GroupInstanceId != nil {
			id = *m.GroupInstanceId
		}
		errs = append(errs, fmt.Errorf("remove member %s of group %s: %w", id, group, m.Err))
	}
	return errors.Join(errs...)
}
