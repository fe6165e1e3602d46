package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/inferops/inferops/pipeline"
)

// member is one consumer-group member: its own sarama client and group
// session, a batcher that merges records from all its partitions into
// micro-batches, and Concurrency predictors.
type member struct {
	p        *Pool
	slot     int    // 1-based position in the pool: the N of "-wN"
	clientID string // also its group.instance.id when the pool is static
	group    sarama.ConsumerGroup

	in      chan *item
	batches chan []*item
	quit    chan struct{} // closed by stop: the batcher exits

	ctx        context.Context // consuming; cancelled to leave
	cancel     context.CancelFunc
	hard       context.Context // predicting and retrying; cancelled when draining gives up
	hardCancel context.CancelFunc
	runDone    chan struct{}
	pipeWG     sync.WaitGroup

	stopDeadline atomic.Pointer[time.Time]
	noCommit     atomic.Bool // tests: behave like a crashed member
	fenced       atomic.Bool // another process joined with our instance id

	mu       sync.Mutex
	memberID string
	claims   map[int32]*claimState

	nIn, nOut, nBatches, nRows atomic.Uint64

	rateMu                   sync.Mutex
	prevIn, prevOut, prevBat uint64
	prevRows                 uint64
	inRate, outRate, avgB    float64
}

type claimState struct {
	tr    *partitionTracker
	claim sarama.ConsumerGroupClaim
}

// newMember prepares the member in slot (from 1). Its name depends only on
// the instance and the slot, so the same process restarted, or scaled back
// up, joins under the same group.instance.id.
func (p *Pool) newMember(slot int) *member {
	m := &member{
		p:        p,
		slot:     slot,
		clientID: MemberName(p.cfg.Instance, slot),
		in:       make(chan *item, 2*p.cfg.MaxBatch),
		batches:  make(chan []*item, 1),
		runDone:  make(chan struct{}),
		quit:     make(chan struct{}),
		claims:   map[int32]*claimState{},
	}
	m.ctx, m.cancel = context.WithCancel(p.ctx)
	m.hard, m.hardCancel = context.WithCancel(p.ctx)
	return m
}

// start joins the group in the background; errors become events and the
// member retries, because a worker under systemd should ride out a broker
// restart rather than exit.
func (m *member) start() {
	m.pipeWG.Add(1 + m.p.cfg.Concurrency)
	go m.batcher()
	for i := 0; i < m.p.cfg.Concurrency; i++ {
		go m.predictor()
	}
	go m.run()
}

func (m *member) run() {
	defer close(m.runDone)
	cfg := *m.p.consumerCfg
	cfg.ClientID = m.clientID
	if m.p.static {
		cfg.Consumer.Group.InstanceId = m.clientID
	}
	// The sticky strategy keeps state in Plan: members sharing one instance
	// race when each becomes group leader (found by perf's -race tests).
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	attempt := 0
	for m.ctx.Err() == nil {
		if m.group == nil {
			g, err := sarama.NewConsumerGroup(m.p.kafka.Brokers, m.p.cfg.Group, &cfg)
			if err != nil {
				m.p.countError("consume")
				m.p.event(pipeline.KindError, fmt.Sprintf("%s: join group %s: %v", m.clientID, m.p.cfg.Group, m.p.kafka.Explain(err)))
				sleepCtx(m.ctx, m.p.backoff.delay(attempt+3))
				attempt++
				continue
			}
			m.mu.Lock()
			m.group = g
			m.mu.Unlock()
			go m.readErrors(g)
		}
		err := m.group.Consume(m.ctx, []string{m.p.cfg.Input}, (*handler)(m))
		if m.ctx.Err() != nil {
			return
		}
		if m.fenced.Load() || errors.Is(err, sarama.ErrFencedInstancedId) {
			// Rejoining would fence the other process in turn, and the two
			// would take the partitions from each other forever.
			m.p.countError("consume")
			m.p.event(pipeline.KindError, fmt.Sprintf("%s: another process joined group %s with this instance id and took its partitions, so this member stopped (give every worker process of a group its own --instance)", m.clientID, m.p.cfg.Group))
			return
		}
		if err != nil {
			if errors.Is(err, sarama.ErrClosedConsumerGroup) {
				return
			}
			m.p.countError("consume")
			m.p.event(pipeline.KindError, fmt.Sprintf("%s: consume %s: %v", m.clientID, m.p.cfg.Input, m.p.kafka.Explain(err)))
			sleepCtx(m.ctx, m.p.backoff.delay(attempt+3))
			attempt++
			continue
		}
		attempt = 0
	}
}

// pauseFetch and resumeFetch are no-ops before the member has joined; Setup
// applies the pool's paused state to every new session.
func (m *member) pauseFetch() {
	m.mu.Lock()
	g := m.group
	m.mu.Unlock()
	if g != nil {
		g.PauseAll()
	}
}

func (m *member) resumeFetch() {
	m.mu.Lock()
	g := m.group
	m.mu.Unlock()
	if g != nil {
		g.ResumeAll()
	}
}

func (m *member) readErrors(g sarama.ConsumerGroup) {
	for err := range g.Errors() {
		if errors.Is(err, sarama.ErrFencedInstancedId) {
			m.fenced.Store(true)
		}
		m.p.countError("consume")
		m.p.log.Warn("consumer error", "member", m.clientID, "err", err)
	}
}

// stop leaves the group: fetching stops, claims drain their in-flight
// records (finished ones are committed, the rest handed back), then the
// member leaves and its pipeline goroutines exit.
func (m *member) stop(ctx context.Context, graceful bool) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(m.p.cfg.DrainTimeout)
	}
	m.stopDeadline.Store(&dl)
	if !graceful {
		m.noCommit.Store(true)
		m.hardCancel()
	}
	m.cancel()
	select {
	case <-m.runDone:
	case <-ctx.Done():
	}
	// Consume has returned (sessions released and committed) unless the
	// deadline passed; either way nothing more may be predicted.
	m.hardCancel()
	m.mu.Lock()
	g := m.group
	m.mu.Unlock()
	if g != nil {
		// A dynamic member sends LeaveGroup here, so the others rebalance at
		// once; a static one does not (KIP-345), and the pool removes it by
		// its instance id after a graceful stop (Pool.leave). A "crashed"
		// member (graceful=false) committed nothing since the crash, so its
		// in-flight records are re-delivered to whoever owns them next.
		// Close waits for a Consume that is stuck (a dead broker), so it is
		// bounded by ctx like everything else here.
		closed := make(chan struct{})
		go func() { _ = g.Close(); close(closed) }()
		select {
		case <-closed:
		case <-ctx.Done():
		}
	}
	close(m.quit)
	done := make(chan struct{})
	go func() { m.pipeWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		m.p.event(pipeline.KindError, m.clientID+": did not stop before the deadline; its unfinished records stay uncommitted")
	}
}

// handler is the sarama ConsumerGroupHandler view of a member.
type handler member

func (h *handler) Setup(sess sarama.ConsumerGroupSession) error {
	m := (*member)(h)
	m.mu.Lock()
	m.memberID = sess.MemberID()
	m.mu.Unlock()
	parts := sess.Claims()[m.p.cfg.Input]
	m.p.event(pipeline.KindRebalance, fmt.Sprintf("%s assigned %s partitions %v (generation %d)", m.clientID, m.p.cfg.Input, parts, sess.GenerationID()))
	if m.p.fetchPaused() {
		m.pauseFetch()
	}
	return nil
}

func (h *handler) Cleanup(sess sarama.ConsumerGroupSession) error { return nil }

// ConsumeClaim reads one partition: each record is parsed and either sent to
// the batcher or dead-lettered. When the session ends it waits (bounded) for
// the partition's in-flight records so their offsets can still be committed.
func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	m := (*member)(h)
	p := m.p
	topic, part := claim.Topic(), claim.Partition()
	tr := newPartitionTracker(topic, part, func(next int64) {
		if !m.noCommit.Load() {
			sess.MarkOffset(topic, part, next, "")
		}
	})
	tr.onMark = p.onMark
	cs := &claimState{tr: tr, claim: claim}
	m.mu.Lock()
	m.claims[part] = cs
	m.mu.Unlock()
	defer func() {
		tr.revoke()
		m.mu.Lock()
		if m.claims[part] == cs {
			delete(m.claims, part)
		}
		m.mu.Unlock()
	}()

	done := sess.Context().Done()
	msgs := claim.Messages()
loop:
	for {
		select {
		case msg, ok := <-msgs:
			if !ok {
				break loop
			}
			if m.p.stopped.Load() && !m.p.waitResumed(done) {
				break loop // the record is re-read by whoever owns the partition next
			}
			if !m.handle(sess, tr, msg) {
				break loop
			}
		case <-done:
			break loop
		}
	}
	m.drain(tr)
	return nil
}

// drain waits for the claim's in-flight records, up to DrainTimeout or the
// member's stop deadline.
func (m *member) drain(tr *partitionTracker) {
	deadline := time.Now().Add(m.p.cfg.DrainTimeout)
	if dl := m.stopDeadline.Load(); dl != nil && dl.Before(deadline) {
		deadline = dl.Add(-500 * time.Millisecond) // leave time to commit and leave
	}
	for tr.inFlight() > 0 && time.Now().Before(deadline) && m.hard.Err() == nil {
		time.Sleep(2 * time.Millisecond)
	}
	if n := tr.inFlight(); n > 0 {
		m.p.event(pipeline.KindRebalance, fmt.Sprintf("%s: handing back %s/%d with %d records in flight (uncommitted; they will be re-delivered)", m.clientID, tr.topic, tr.partition, n))
	}
}

// handle parses one record. It returns false when the session ended while
// waiting for room in the batcher.
func (m *member) handle(sess sarama.ConsumerGroupSession, tr *partitionTracker, msg *sarama.ConsumerMessage) bool {
	p := m.p
	p.consumed.Add(1)
	p.metrics.consumed.Inc()
	m.nIn.Add(1)
	it := p.getItem()
	it.m, it.tr = m, tr
	it.topic, it.partition, it.offset = msg.Topic, msg.Partition, msg.Offset
	it.key, it.value, it.ts = msg.Key, msg.Value, msg.Timestamp
	it.redrives = redrivesOf(msg.Headers)
	it.seq = tr.add(msg.Offset)
	tr.begin()
	if !p.parse(it) {
		return true
	}
	select {
	case m.in <- it:
		return true
	case <-sess.Context().Done():
		// Not started: hand it back uncommitted.
		tr.end()
		p.putItem(it)
		return false
	}
}

// batcher forms micro-batches across all of the member's partitions: up to
// MaxBatch rows, waiting at most BatchTimeout after the first row.
func (m *member) batcher() {
	defer m.pipeWG.Done()
	defer close(m.batches)
	max := m.p.cfg.MaxBatch
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	// On quit, records still queued are handed back uncommitted.
	handBack := func(batch []*item) {
		for _, it := range batch {
			it.tr.end()
			m.p.putItem(it)
		}
	}
	for {
		var first *item
		select {
		case first = <-m.in:
		case <-m.quit:
			return
		}
		batch := make([]*item, 0, max)
		batch = append(batch, first)
		// Take what is already queued without touching the timer.
	fill:
		for len(batch) < max {
			select {
			case it := <-m.in:
				batch = append(batch, it)
			default:
				break fill
			}
		}
		if len(batch) < max && m.p.cfg.BatchTimeout > 0 {
			timer.Reset(m.p.cfg.BatchTimeout)
		wait:
			for len(batch) < max {
				select {
				case it := <-m.in:
					batch = append(batch, it)
				case <-timer.C:
					break wait
				case <-m.quit:
					timer.Stop()
					handBack(batch)
					return
				}
			}
			timer.Stop()
		}
		select {
		case m.batches <- batch:
		case <-m.quit:
			handBack(batch)
			return
		}
	}
}

func (m *member) predictor() {
	defer m.pipeWG.Done()
	for batch := range m.batches {
		m.p.process(m, batch)
	}
}

// sample computes rates for the last interval.
func (m *member) sample(secs float64) {
	in, out, bat, rows := m.nIn.Load(), m.nOut.Load(), m.nBatches.Load(), m.nRows.Load()
	m.rateMu.Lock()
	m.inRate = float64(in-m.prevIn) / secs
	m.outRate = float64(out-m.prevOut) / secs
	if bat > m.prevBat {
		m.avgB = float64(rows-m.prevRows) / float64(bat-m.prevBat)
	}
	m.prevIn, m.prevOut, m.prevBat, m.prevRows = in, out, bat, rows
	m.rateMu.Unlock()
}

func (m *member) stats() (MemberStats, int64) {
	st := MemberStats{ClientID: m.clientID}
	var lag int64
	m.mu.Lock()
	st.ID = m.memberID
	st.Partitions = sortedPartitions(m.claims)
	for _, cs := range m.claims {
		st.InFlight += cs.tr.inFlight()
		hw := cs.claim.HighWaterMarkOffset()
		at := cs.tr.markedOffset()
		if at < 0 {
			at = cs.claim.InitialOffset()
		}
		if at >= 0 && hw > at {
			lag += hw - at
		}
	}
	m.mu.Unlock()
	m.rateMu.Lock()
	st.InRate, st.OutRate, st.AvgBatch = m.inRate, m.outRate, m.avgB
	m.rateMu.Unlock()
	return st, lag
}

// redrivesOf is the record's HeaderRedrives value, nil when it has none
// (every record the producers write; only `inferops dlq replay` sets it).
func redrivesOf(hs []*sarama.RecordHeader) []byte {
	for _, h := range hs {
		if h != nil && string(h.Key) == pipeline.HeaderRedrives {
			return h.Value
		}
	}
	return nil
}
