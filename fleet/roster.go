package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/infer/worker"
)

// The roster: which instances of a group are alive, so that each can
// compute its share of the desired total on its own (Assign) without
// reading the other instances' telemetry (N snapshots a second each, which
// would blow the 2 KB/s budget on a large fleet).
//
// Each following instance joins one more consumer group,
// "inferops.fleet.<group>", subscribed to the control topic but assigned no
// partitions. The group leader's assignor (rosterStrategy) reads every
// member's instance name from its subscription and sends the sorted list
// back to every member in its assignment, so every instance learns the
// roster on every membership change and the coordinator's heartbeats are
// the failure detector: a crashed instance leaves the roster after the
// session timeout, the same moment Kafka moves its partitions away.

// rosterProtocol is the assignor's name; every member must use it.
const rosterProtocol = "inferops-roster-v1"

// rosterSession is the roster group's session timeout: as the worker's.
const rosterSession = 10 * time.Second

type rosterMeta struct {
	Instance string `json:"instance"`
}

type rosterData struct {
	Instances []string `json:"instances"`
}

// rosterStrategy is a sarama BalanceStrategy that assigns nothing and
// distributes the member list.
type rosterStrategy struct {
	self     []byte
	mu       sync.Mutex
	computed []byte // the leader's roster, between Plan and AssignmentData
	onRoster func(names []string, generation int32)
}

func (s *rosterStrategy) Name() string { return rosterProtocol }

func (s *rosterStrategy) Plan(members map[string]sarama.ConsumerGroupMemberMetadata, _ map[string][]int32) (sarama.BalanceStrategyPlan, error) {
	names := make([]string, 0, len(members))
	plan := make(sarama.BalanceStrategyPlan, len(members))
	for id, m := range members {
		plan[id] = map[string][]int32{}
		var meta rosterMeta
		if json.Unmarshal(m.UserData, &meta) == nil && worker.ValidInstance(meta.Instance) == nil {
			names = append(names, meta.Instance)
		}
	}
	sort.Strings(names)
	b, err := json.Marshal(rosterData{Instances: slices.Compact(names)})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.computed = b
	s.mu.Unlock()
	return plan, nil
}

func (s *rosterStrategy) AssignmentData(string, map[string][]int32, int32) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.computed, nil
}

func (s *rosterStrategy) SubscriptionUserData([]string) ([]byte, error) { return s.self, nil }

func (s *rosterStrategy) OnAssignment(a *sarama.ConsumerGroupMemberAssignment, generation int32) {
	names, err := decodeRoster(a.UserData)
	if err != nil {
		return // a member of another inferops version; its next rebalance will say
	}
	s.onRoster(names, generation)
}

// decodeRoster reads the leader's roster from an assignment.
func decodeRoster(b []byte) ([]string, error) {
	if len(b) > MaxRecordBytes {
		return nil, errors.New("roster too large")
	}
	var d rosterData
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(d.Instances))
	for _, n := range d.Instances {
		if worker.ValidInstance(n) == nil {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}

// roster is this instance's membership in its roster group.
type roster struct {
	group  sarama.ConsumerGroup
	cancel context.CancelFunc
	done   chan struct{}
}

// joinRoster joins group's roster as instance (a consumer group of its
// own client) and keeps rejoining until close; onRoster receives every
// roster the leader distributes, onError what keeps it from joining.
func joinRoster(brokers []string, sc *sarama.Config, group, instance, topic string, onRoster func([]string, int32), onError func(error)) (*roster, error) {
	self, err := json.Marshal(rosterMeta{Instance: instance})
	if err != nil {
		return nil, err
	}
	cfg := *sc
	cfg.ClientID = sc.ClientID + "-roster"
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{&rosterStrategy{self: self, onRoster: onRoster}}
	cfg.Consumer.Group.Session.Timeout = rosterSession
	// A joining instance is noticed at the others' next heartbeat.
	cfg.Consumer.Group.Heartbeat.Interval = time.Second
	cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	cfg.Consumer.Group.Rebalance.Retry.Max = 4
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Member.UserData = self
	g, err := sarama.NewConsumerGroup(brokers, rosterGroup(group), &cfg)
	if err != nil {
		return nil, fmt.Errorf("join the fleet roster %s: %w", rosterGroup(group), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &roster{group: g, cancel: cancel, done: make(chan struct{})}
	go func() {
		for err := range g.Errors() {
			onError(err)
		}
	}()
	go func() {
		defer close(r.done)
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, rosterHandler{}); err != nil {
				if errors.Is(err, sarama.ErrClosedConsumerGroup) {
					return
				}
				onError(err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}
	}()
	return r, nil
}

// close leaves the roster group, so the others re-spread at once.
func (r *roster) close() {
	r.cancel()
	<-r.done
	_ = r.group.Close()
}

type rosterHandler struct{}

func (rosterHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (rosterHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (rosterHandler) ConsumeClaim(sarama.ConsumerGroupSession, sarama.ConsumerGroupClaim) error {
	return nil // never assigned a partition
}
