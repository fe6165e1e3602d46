package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

// Snapshot is the Kafka side of the pipeline for one topic and one consumer
// group at one moment. It is immutable once returned: the console, status,
// doctor and perf read it from other goroutines. Fields are only ever added.
type Snapshot struct {
	Time       time.Time `json:"time"`
	Topic      string    `json:"topic"`
	Group      string    `json:"group"`
	GroupState string    `json:"group_state"` // Stable, Empty, PreparingRebalance, CompletingRebalance, Dead
	Status     Status    `json:"status"`      // Burrow's group status: OK, WARN or ERR; NOTFOUND for a group that does not exist
	// TotalLag is the records the group has still to read, over every
	// partition with a lag figure: log end - committed offset where the
	// group committed, and where it did not, the backlog its reset policy
	// gives (ResetEarliest: log end - log start). Partitions with lag
	// basis "unknown" are left out, and a Warning says so.
	TotalLag        int64          `json:"total_lag"`
	MaxLagPartition int32          `json:"max_lag_partition"` // -1 when no partition has a lag figure
	MaxLag          int64          `json:"max_lag"`
	Partitions      []PartitionLag `json:"partitions"` // by partition number
	Members         []Member       `json:"members"`    // by client id, then member id
	Brokers         int            `json:"brokers"`
	RefreshTook     time.Duration  `json:"refresh_took_ns"`
	Requests        int            `json:"requests"` // Kafka requests this refresh sent

	// CommittedLag is TotalLag over the partitions with a commit only: the
	// figure kafka-consumer-groups.sh and librdkafka report, kept for
	// scripts that compare with them.
	CommittedLag int64 `json:"committed_lag"`
	// ResetPolicy is the auto.offset.reset the no-commit backlog assumes.
	ResetPolicy ResetPolicy `json:"reset_policy"`
	// Rebalance is set while the group is in PreparingRebalance or
	// CompletingRebalance (null otherwise): nobody consumes meanwhile.
	Rebalance *Rebalance `json:"rebalance"`
	// Warnings are what an operator must not miss, most severe first, each
	// one line naming the fix: a group that does not exist, records waiting
	// with nothing consuming them, a long rebalance, backlog on partitions
	// without a commit, figures that could not be read. Never null.
	Warnings []Warning `json:"warnings"`
}

// ResetPolicy is where a consumer without a committed offset starts
// reading, the group's auto.offset.reset. It decides the lag of a
// partition the group never committed on.
type ResetPolicy string

const (
	// ResetEarliest starts at the log start, so every record in the
	// partition waits to be read: the inference worker's policy
	// (auto.offset.reset=earliest, sarama OffsetOldest) and the default.
	ResetEarliest ResetPolicy = "earliest"
	// ResetLatest starts at the log end: such a partition's lag is 0, but
	// the records already in it will never be read by the group (a
	// Warning says how many).
	ResetLatest ResetPolicy = "latest"
)

// ParseResetPolicy reads "earliest" or "latest" (Kafka's names; sarama's
// "oldest" and "newest" too).
func ParseResetPolicy(s string) (ResetPolicy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "earliest", "oldest", "smallest":
		return ResetEarliest, nil
	case "latest", "newest", "largest":
		return ResetLatest, nil
	}
	return "", fmt.Errorf("offset reset policy %q: want earliest or latest (the consumers' auto.offset.reset)", s)
}

// LagBasis says what a partition's lag figure is measured from.
type LagBasis string

const (
	// LagCommitted: log end - the group's committed offset.
	LagCommitted LagBasis = "committed"
	// LagNoCommit: the group never committed here; the lag is what it
	// would read under its reset policy (earliest: log end - log start,
	// latest: 0).
	LagNoCommit LagBasis = "no_commit"
	// LagUnknown: no figure (lag null), because the log end was not read
	// (leader unknown), or there is no commit and the log start was not
	// read.
	LagUnknown LagBasis = "unknown"
)

// Warning is one line an operator must read, with a stable code for
// scripts.
type Warning struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Warning codes, in the order Snapshot.Warnings lists them.
const (
	WarnGroupNotFound = "group_not_found" // Dead, no members, no commits on the topic: a typo in --group?
	WarnNoConsumer    = "no_consumer"     // no members while records wait
	WarnRebalancing   = "rebalancing"     // a rebalance that lasts: nobody consumes
	WarnNoCommit      = "no_commit"       // partitions without a commit hold records (earliest)
	WarnResetLatest   = "reset_latest"    // records a latest-reset group will never read
	WarnLagUnknown    = "lag_unknown"     // partitions without a lag figure: the totals are a floor
)

// Rebalance is a group caught rebalancing. The collector sees the group
// state once per refresh, so Since is the first refresh that saw this
// rebalance, and AtLeast says the group was already rebalancing at the
// collector's first look (it may have started any time before).
type Rebalance struct {
	State   string    `json:"state"` // PreparingRebalance or CompletingRebalance
	Since   time.Time `json:"since"`
	Seconds float64   `json:"seconds"` // Time - Since
	AtLeast bool      `json:"at_least"`
	// Awaited are the members the coordinator holds that were already in
	// the group at the last Stable look: each must rejoin before anyone
	// consumes, and one that died without leaving is waited for until its
	// session times out. DescribeGroups does not say who has rejoined, so
	// a member that did is listed too; new members are not. When the
	// collector never saw the group Stable (AwaitedKnown false), every
	// member the coordinator holds is listed.
	Awaited      []Member `json:"awaited"`
	AwaitedKnown bool     `json:"awaited_known"`
	Members      int      `json:"members"` // the coordinator holds, awaited or not
}

// PartitionLag is one partition of a Snapshot. -1 means "not known":
// Committed -1 = the group never committed here, Lag -1 = no lag figure
// (shown as "-", JSON null), LagSeconds -1 = cannot estimate yet. LagBasis
// says what Lag is measured from: without a commit it is the backlog of
// the reset policy, not 0.
type PartitionLag struct {
	Partition     int32    `json:"partition"`
	Leader        int32    `json:"leader"`
	LogStart      int64    `json:"log_start"`
	HighWatermark int64    `json:"high_watermark"`
	Committed     int64    `json:"committed"`
	Lag           int64    `json:"lag"`
	LagSeconds    float64  `json:"lag_seconds"`
	ProduceRate   float64  `json:"produce_rate"` // msg/s into the partition
	ConsumeRate   float64  `json:"consume_rate"` // msg/s committed by the group
	Member        string   `json:"member"`       // client id of the owning member, "" = unassigned
	Status        Status   `json:"status"`
	LagBasis      LagBasis `json:"lag_basis"`
}

// MarshalJSON writes unknowns (-1) as null, so a script never mistakes
// "nothing committed" for offset -1 or lag -1.
func (p PartitionLag) MarshalJSON() ([]byte, error) {
	nullIfNeg := func(v int64) *int64 {
		if v < 0 {
			return nil
		}
		return &v
	}
	var lagS *float64
	if p.LagSeconds >= 0 {
		lagS = &p.LagSeconds
	}
	// Same names and order as the struct tags.
	return json.Marshal(struct {
		Partition     int32    `json:"partition"`
		Leader        int32    `json:"leader"`
		LogStart      int64    `json:"log_start"`
		HighWatermark int64    `json:"high_watermark"`
		Committed     *int64   `json:"committed"`
		Lag           *int64   `json:"lag"`
		LagSeconds    *float64 `json:"lag_seconds"`
		ProduceRate   float64  `json:"produce_rate"`
		ConsumeRate   float64  `json:"consume_rate"`
		Member        string   `json:"member"`
		Status        Status   `json:"status"`
		LagBasis      LagBasis `json:"lag_basis"`
	}{p.Partition, p.Leader, p.LogStart, p.HighWatermark, nullIfNeg(p.Committed), nullIfNeg(p.Lag), lagS,
		p.ProduceRate, p.ConsumeRate, p.Member, p.Status, p.LagBasis})
}

// Member is one consumer in the group and what it owns of the topic.
type Member struct {
	MemberID   string  `json:"member_id"`
	ClientID   string  `json:"client_id"`
	Host       string  `json:"host"`
	Partitions []int32 `json:"partitions"` // of the collector's topic, sorted
}

// CollectorOption tunes a Collector.
type CollectorOption func(*Collector)

// WithWindow sets Burrow's window: the number of observations a partition
// needs before it can be anything but OK (default 10).
func WithWindow(n int) CollectorOption { return func(c *Collector) { c.rules.window = max(n, 2) } }

// WithAllowedLag sets the lag Burrow's rules tolerate (default 0).
func WithAllowedLag(n int64) CollectorOption { return func(c *Collector) { c.rules.allowedLag = n } }

// WithResetPolicy sets the reset policy the group's consumers use
// (auto.offset.reset), which decides the lag of partitions without a
// commit. Default ResetEarliest, the inference worker's. With ResetLatest
// those partitions have lag 0, and a Warning counts the records already in
// them that the group will never read.
func WithResetPolicy(p ResetPolicy) CollectorOption {
	return func(c *Collector) {
		if p == ResetLatest {
			c.rules.reset = ResetLatest
		} else {
			c.rules.reset = ResetEarliest
		}
	}
}

// WithLagSamples sets how many log-end samples per partition the lag-in-seconds
// interpolation keeps (default 60).
func WithLagSamples(n int) CollectorOption { return func(c *Collector) { c.rules.samples = n } }

// WithRefreshTimeout bounds one refresh (default: the config's DialTimeout +
// RequestTimeout, so a single slow broker call fails first, by name).
func WithRefreshTimeout(d time.Duration) CollectorOption {
	return func(c *Collector) { c.timeout = d }
}

// WithLogStartEvery sets how often log-start offsets are re-read (default
// 30 s). They move only when retention trims, so reading them every refresh
// would double the ListOffsets traffic for nothing.
func WithLogStartEvery(d time.Duration) CollectorOption {
	return func(c *Collector) { c.logStartEvery = d }
}

// WithMetadataEvery sets how often partition leaders are re-read (default
// 30 s, and at once after any leadership error).
func WithMetadataEvery(d time.Duration) CollectorOption {
	return func(c *Collector) { c.metadataEvery = d }
}

// WithExactLagTime fills the lag in seconds of partitions the interpolation
// cannot place yet (a first sample, a log end that did not move in the
// window) by reading the timestamp of the record at the committed offset:
// one Fetch per leader, and only in refreshes where some partition needs it.
// `inferops status` uses it; a console ticking every second may not want to.
func WithExactLagTime() CollectorOption { return func(c *Collector) { c.exact = true } }

// Collector turns Kafka offsets and group state into Snapshots. One refresh
// costs one ListOffsets per partition leader, one OffsetFetch and one
// DescribeGroups to the group coordinator (plus a Metadata request and a
// second ListOffsets per leader every 30 s): the request count grows with
// brokers, never with partitions.
//
// A refresh is two halves. fetch talks to Kafka and returns only what it
// read (a fetched value); derive (derive.go) turns that and the memory of
// earlier refreshes into the Snapshot: lag, lag in seconds, rates, Burrow's
// status. derive does no I/O and reads no clock, so the lag rules are
// table-tested with sequences of fetched values and no broker, and a change
// to what a figure means is made there alone.
type Collector struct {
	cfg    Config
	topic  string
	group  string
	client sarama.Client

	rules         lagRules
	timeout       time.Duration
	logStartEvery time.Duration
	metadataEvery time.Duration
	exact         bool

	sem    chan struct{} // one refresh in flight
	closed atomic.Bool

	// Guarded by sem.
	state        lagState
	lastMeta     time.Time
	needMeta     atomic.Bool // set from the per-broker goroutines
	lastLogStart time.Time
	haveCoord    bool
	others       *otherGroups // the last lookup for a group with nothing on the topic
	othersAt     time.Time
}

// NewCollector connects to the cluster. It fails, with an explained error,
// when no broker answers.
func NewCollector(cfg Config, topic, group string, opts ...CollectorOption) (*Collector, error) {
	cfg.SetDefaults()
	if topic == "" {
		return nil, errors.New("no topic to watch (set --input)")
	}
	if group == "" {
		return nil, errors.New("no consumer group to watch (set --group)")
	}
	sc, err := cfg.Sarama()
	if err != nil {
		return nil, err
	}
	// We decide when metadata is refreshed, and only for our topic: a full
	// background refresh on a big cluster is exactly the slowness lag tools
	// are hated for.
	sc.Metadata.Full = false
	sc.Metadata.RefreshFrequency = 0
	client, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		return nil, cfg.Explain(err)
	}
	// Without full metadata sarama connects lazily; connect now so a wrong
	// address fails here, with the address in the message. A topic that
	// does not exist yet is not an error until Refresh.
	metaErr := client.RefreshMetadata(topic)
	if metaErr != nil && !errors.Is(metaErr, sarama.ErrUnknownTopicOrPartition) {
		client.Close()
		return nil, cfg.Explain(metaErr)
	}
	c := &Collector{
		cfg: cfg, topic: topic, group: group, client: client,
		rules:         lagRules{window: 10, samples: 60, reset: ResetEarliest},
		timeout:       cfg.DialTimeout + cfg.RequestTimeout,
		logStartEvery: 30 * time.Second,
		metadataEvery: 30 * time.Second,
		sem:           make(chan struct{}, 1),
	}
	c.lastMeta = time.Now()
	c.needMeta.Store(metaErr != nil)
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Close releases the connections. A Refresh in flight finishes first.
func (c *Collector) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.sem <- struct{}{}
	defer func() { <-c.sem }()
	return c.client.Close()
}

// Run refreshes until ctx ends, calling fn with each result. The next timer
// starts when the previous refresh finishes, so a slow cluster is polled
// less often instead of piling up requests.
func (c *Collector) Run(ctx context.Context, interval time.Duration, fn func(*Snapshot, error)) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s, err := c.Refresh(ctx)
		if ctx.Err() != nil {
			return
		}
		fn(s, err)
		t.Reset(interval)
	}
}

// Refresh takes one snapshot. Concurrent calls wait for each other.
func (c *Collector) Refresh(ctx context.Context) (*Snapshot, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.sem }()
	return c.refresh(ctx)
}

// refresh is Refresh with the semaphore held.
func (c *Collector) refresh(ctx context.Context) (*Snapshot, error) {
	if c.closed.Load() {
		return nil, errors.New("collector is closed")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	f, brokers, err := c.fetch(ctx)
	if err != nil {
		return nil, err
	}
	var snap *Snapshot
	snap, c.state = derive(c.rules, c.state, f)
	if c.exact {
		n, err := c.exactLagTimes(snap, brokers)
		if err != nil {
			return nil, c.cfg.Explain(err)
		}
		snap.Requests += n
	}
	snap.RefreshTook = time.Since(start)
	return snap, nil
}

// fetch reads the topic's offsets and the group's commits and members, all
// in one go: one ListOffsets per leader (two when log starts are due) in
// parallel with OffsetFetch and DescribeGroups at the coordinator. It also
// returns the leaders it talked to, for the exact-lag-time Fetch.
func (c *Collector) fetch(ctx context.Context) (fetched, map[int32]*sarama.Broker, error) {
	start := time.Now()
	var reqs atomic.Int64

	if c.needMeta.Load() || time.Since(c.lastMeta) >= c.metadataEvery {
		reqs.Add(1)
		if err := c.client.RefreshMetadata(c.topic); err != nil {
			return fetched{}, nil, c.topicErr(err)
		}
		c.lastMeta = time.Now()
		c.needMeta.Store(false)
	}
	partitions, err := c.client.Partitions(c.topic)
	if err != nil {
		return fetched{}, nil, c.topicErr(err)
	}
	if len(partitions) == 0 {
		return fetched{}, nil, fmt.Errorf("topic %s has no partitions", c.topic)
	}

	leaders := make(map[int32]int32, len(partitions))
	byBroker := map[int32][]int32{}
	brokers := map[int32]*sarama.Broker{}
	for _, p := range partitions {
		b, err := c.client.Leader(c.topic, p)
		if err != nil {
			leaders[p] = -1
			c.needMeta.Store(true)
			continue
		}
		leaders[p] = b.ID()
		byBroker[b.ID()] = append(byBroker[b.ID()], p)
		brokers[b.ID()] = b
	}
	wantLogStart := c.lastLogStart.IsZero() || time.Since(c.lastLogStart) >= c.logStartEvery

	var (
		mu       sync.Mutex
		newest   = make(map[int32]int64, len(partitions))
		oldest   = make(map[int32]int64, len(partitions))
		errs     []error
		commits  map[int32]int64
		desc     *sarama.GroupDescription
		wg       sync.WaitGroup
		addError = func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }
	)
	for id, ps := range byBroker {
		b := brokers[id]
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := c.listOffsets(b, ps, sarama.OffsetNewest, &reqs)
			if err == nil && wantLogStart {
				var old map[int32]int64
				old, err = c.listOffsets(b, ps, sarama.OffsetOldest, &reqs)
				mu.Lock()
				for p, o := range old {
					oldest[p] = o
				}
				mu.Unlock()
			}
			if err != nil {
				addError(err)
				return
			}
			mu.Lock()
			for p, o := range got {
				newest[p] = o
			}
			mu.Unlock()
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		var err error
		commits, desc, err = c.groupState(partitions, &reqs)
		if err != nil {
			addError(err)
		}
	}()
	wg.Wait() // every call is bounded by the sarama dial and read timeouts
	if len(errs) > 0 {
		return fetched{}, nil, c.cfg.Explain(joinErrs(errs))
	}
	if err := ctx.Err(); err != nil {
		return fetched{}, nil, fmt.Errorf("refresh lag of %s/%s: %w (the cluster took longer than %v)", c.topic, c.group, err, c.timeout)
	}
	if wantLogStart {
		c.lastLogStart = start
	}

	f := fetched{
		Time: time.Now(), Topic: c.topic, Group: c.group,
		Brokers:        len(c.client.Brokers()),
		Partitions:     partitions,
		Leaders:        leaders,
		HighWatermarks: newest,
		LogStarts:      oldest,
		Committed:      commits,
		Requests:       int(reqs.Load()),
	}
	if desc != nil {
		f.GroupState = desc.State
		f.Members = membersOf(desc, c.topic)
	}
	if len(f.Members) == 0 && !anyCommit(commits) {
		f.Others = c.otherGroups(&reqs)
		f.Requests = int(reqs.Load())
	} else {
		c.others = nil // found again: look afresh if it goes missing later
	}
	return f, brokers, nil
}

func anyCommit(commits map[int32]int64) bool {
	for _, o := range commits {
		if o >= 0 {
			return true
		}
	}
	return false
}

func (c *Collector) topicErr(err error) error {
	if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return fmt.Errorf("topic %q does not exist on %s (check --input; `kcat -L -b %s` lists the topics)", c.topic, joinAddrs(c.cfg.Brokers), c.cfg.Brokers[0])
	}
	return c.cfg.Explain(fmt.Errorf("metadata for topic %s: %w", c.topic, err))
}

// listOffsets asks one broker for the newest or oldest offset of all the
// partitions it leads, in one request.
func (c *Collector) listOffsets(b *sarama.Broker, ps []int32, at int64, reqs *atomic.Int64) (map[int32]int64, error) {
	req := sarama.NewOffsetRequest(c.client.Config().Version)
	for _, p := range ps {
		req.AddBlock(c.topic, p, at, 1)
	}
	reqs.Add(1)
	resp, err := b.GetAvailableOffsets(req)
	if err != nil {
		_ = b.Close() // reopened on next use
		c.needMeta.Store(true)
		return nil, fmt.Errorf("list offsets from broker %d (%s): %w", b.ID(), b.Addr(), err)
	}
	out := make(map[int32]int64, len(ps))
	for _, p := range ps {
		blk := resp.GetBlock(c.topic, p)
		if blk == nil || !errors.Is(blk.Err, sarama.ErrNoError) {
			// Usually a leadership move: re-read metadata next time and
			// leave this partition unknown for now.
			c.needMeta.Store(true)
			continue
		}
		off := blk.Offset
		if req.Version == 0 {
			if len(blk.Offsets) == 0 {
				continue
			}
			off = blk.Offsets[0]
		}
		out[p] = off
	}
	return out, nil
}

// groupState fetches the group's committed offsets and description from its
// coordinator: one OffsetFetch and one DescribeGroups, sent in parallel.
func (c *Collector) groupState(ps []int32, reqs *atomic.Int64) (map[int32]int64, *sarama.GroupDescription, error) {
	if !c.haveCoord {
		reqs.Add(1) // FindCoordinator
	}
	coord, err := c.client.Coordinator(c.group)
	if err != nil {
		return nil, nil, fmt.Errorf("find coordinator of group %s: %w", c.group, err)
	}
	c.haveCoord = true
	var (
		wg       sync.WaitGroup
		commits  map[int32]int64
		desc     *sarama.GroupDescription
		fetchErr error
		descErr  error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		req := sarama.NewOffsetFetchRequest(c.client.Config().Version, c.group, map[string][]int32{c.topic: ps})
		reqs.Add(1)
		resp, err := coord.FetchOffset(req)
		if err != nil {
			fetchErr = err
			return
		}
		commits = make(map[int32]int64, len(ps))
		if kerr := offsetFetchErr(resp); errors.Is(kerr, sarama.ErrGroupIDNotFound) {
			return // kfake (and KIP-848 brokers) say so for a group that never existed: nothing committed
		} else if kerr != nil {
			fetchErr = kerr
			return
		}
		for _, p := range ps {
			if blk := resp.GetBlock(c.topic, p); blk != nil && errors.Is(blk.Err, sarama.ErrNoError) {
				commits[p] = blk.Offset
			}
		}
	}()
	go func() {
		defer wg.Done()
		req := &sarama.DescribeGroupsRequest{Groups: []string{c.group}, Version: describeGroupsVersion(c.client.Config().Version)}
		reqs.Add(1)
		resp, err := coord.DescribeGroups(req)
		if err != nil {
			descErr = err
			return
		}
		for _, g := range resp.Groups {
			if g.GroupId != c.group {
				continue
			}
			switch {
			case errors.Is(g.Err, sarama.ErrNoError):
				desc = g
			case errors.Is(g.Err, sarama.ErrGroupIDNotFound):
				desc = &sarama.GroupDescription{GroupId: c.group, State: "Dead"}
			default:
				descErr = g.Err
			}
		}
	}()
	wg.Wait()
	var gerrs []error
	for _, e := range []error{fetchErr, descErr} {
		if e != nil {
			gerrs = append(gerrs, e)
		}
	}
	if err := joinErrs(gerrs); err != nil {
		if isCoordinatorErr(err) {
			c.haveCoord = false
			_ = c.client.RefreshCoordinator(c.group)
		} else {
			_ = coord.Close()
		}
		return nil, nil, fmt.Errorf("group %s at coordinator %s: %w", c.group, coord.Addr(), err)
	}
	return commits, desc, nil
}

func offsetFetchErr(resp *sarama.OffsetFetchResponse) error {
	if resp.Version >= 8 {
		for _, g := range resp.Groups {
			if !errors.Is(g.Err, sarama.ErrNoError) {
				return g.Err
			}
		}
		return nil
	}
	if !errors.Is(resp.Err, sarama.ErrNoError) {
		return resp.Err
	}
	return nil
}

func isCoordinatorErr(err error) bool {
	return errors.Is(err, sarama.ErrNotCoordinatorForConsumer) ||
		errors.Is(err, sarama.ErrConsumerCoordinatorNotAvailable) ||
		errors.Is(err, sarama.ErrOffsetsLoadInProgress)
}

// describeGroupsVersion mirrors sarama's own admin client.
func describeGroupsVersion(v sarama.KafkaVersion) int16 {
	return requestVersion(v, 0, []versionSince{
		{sarama.V2_4_0_0, 5}, {sarama.V2_3_0_0, 3}, {sarama.V2_0_0_0, 2}, {sarama.V1_1_0_0, 1},
	})
}

// versionSince is a request version a Kafka version and later accept.
type versionSince struct {
	kafka   sarama.KafkaVersion
	request int16
}

// requestVersion is the request version of the first entry (newest first)
// that v is at least, else oldest.
func requestVersion(v sarama.KafkaVersion, oldest int16, newestFirst []versionSince) int16 {
	for _, e := range newestFirst {
		if v.IsAtLeast(e.kafka) {
			return e.request
		}
	}
	return oldest
}

// membersOf lists the group's members with the partitions of topic each
// holds, decoding the consumer-protocol assignment.
func membersOf(g *sarama.GroupDescription, topic string) []Member {
	out := []Member{}
	for id, m := range g.Members {
		mem := Member{MemberID: id, ClientID: m.ClientId, Host: m.ClientHost, Partitions: []int32{}}
		if m.MemberId != "" {
			mem.MemberID = m.MemberId
		}
		if g.ProtocolType == "consumer" || g.ProtocolType == "" {
			if a, err := m.GetMemberAssignment(); err == nil && a != nil {
				mem.Partitions = append(mem.Partitions, a.Topics[topic]...)
			}
		}
		sort.Slice(mem.Partitions, func(i, j int) bool { return mem.Partitions[i] < mem.Partitions[j] })
		out = append(out, mem)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ClientID != out[j].ClientID {
			return out[i].ClientID < out[j].ClientID
		}
		return out[i].MemberID < out[j].MemberID
	})
	return out
}

func joinAddrs(bs []string) string {
	if len(bs) == 1 {
		return bs[0]
	}
	return fmt.Sprint(bs)
}

// Fetch limits for exact lag times: enough for one producer batch per
// partition (the seed batches at 64 KB) without pulling megabytes per
// partition on a big topic. Partitions past the total stay unknown.
const (
	exactPartitionBytes = 256 << 10
	exactTotalBytes     = 8 << 20
)

// exactLagTimes sets LagSeconds from record timestamps for partitions with
// lag whose interpolated figure is unknown, one Fetch per leader, and
// returns how many requests it sent.
func (c *Collector) exactLagTimes(snap *Snapshot, brokers map[int32]*sarama.Broker) (int, error) {
	now := snap.Time
	byLeader := map[int32][]int{} // leader -> indexes into snap.Partitions
	for i, p := range snap.Partitions {
		if p.Lag > 0 && p.LagSeconds < 0 && brokers[p.Leader] != nil && readFrom(p) >= 0 {
			byLeader[p.Leader] = append(byLeader[p.Leader], i)
		}
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for leader, idx := range byLeader {
		b := brokers[leader]
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := &sarama.FetchRequest{Version: fetchVersion(c.client.Config().Version), MaxWaitTime: 0, MinBytes: 1, MaxBytes: exactTotalBytes, Isolation: sarama.ReadUncommitted}
			for _, i := range idx {
				req.AddBlock(c.topic, snap.Partitions[i].Partition, readFrom(snap.Partitions[i]), exactPartitionBytes, -1)
			}
			resp, err := b.Fetch(req)
			if err != nil {
				_ = b.Close()
				mu.Lock()
				errs = append(errs, fmt.Errorf("fetch record timestamps from broker %d (%s): %w", b.ID(), b.Addr(), err))
				mu.Unlock()
				return
			}
			for _, i := range idx {
				pl := &snap.Partitions[i] // each goroutine owns distinct indexes
				if ts, ok := recordTime(resp.GetBlock(c.topic, pl.Partition), readFrom(*pl)); ok {
					pl.LagSeconds = max(now.Sub(ts).Seconds(), 0)
				}
			}
		}()
	}
	wg.Wait()
	return len(byLeader), joinErrs(errs)
}

// readFrom is the offset of the first record the group has still to read:
// its commit, or without one the log start (only partitions with
// ResetEarliest have a no-commit lag above 0).
func readFrom(p PartitionLag) int64 {
	if p.LagBasis == LagNoCommit {
		return p.LogStart
	}
	return p.Committed
}

// recordTime is the timestamp of the first record at or after offset in a
// fetch response block.
func recordTime(blk *sarama.FetchResponseBlock, offset int64) (time.Time, bool) {
	if blk == nil || !errors.Is(blk.Err, sarama.ErrNoError) {
		return time.Time{}, false
	}
	for _, rs := range blk.RecordsSet {
		if rs == nil || rs.RecordBatch == nil {
			continue
		}
		rb := rs.RecordBatch
		if rb.Control {
			continue
		}
		for _, r := range rb.Records {
			if rb.FirstOffset+r.OffsetDelta < offset {
				continue
			}
			return batchRecordTime(rb, r), true
		}
	}
	return time.Time{}, false
}

// batchRecordTime is rec's timestamp: the broker's append time when the
// topic uses LogAppendTime (the batch then carries it as MaxTimestamp),
// else the producer's, stored as a delta from the batch's first.
func batchRecordTime(rb *sarama.RecordBatch, rec *sarama.Record) time.Time {
	if rb.LogAppendTime {
		return rb.MaxTimestamp
	}
	return rb.FirstTimestamp.Add(rec.TimestampDelta)
}

// fetchVersion mirrors sarama's consumer; kfake and every broker we support
// accept v4 or later.
func fetchVersion(v sarama.KafkaVersion) int16 {
	return requestVersion(v, 5, []versionSince{
		{sarama.V2_7_0_0, 12}, {sarama.V2_3_0_0, 11}, {sarama.V2_1_0_0, 10},
		{sarama.V2_0_0_0, 8}, {sarama.V1_1_0_0, 7}, {sarama.V1_0_0_0, 6},
	})
}

// joinErrs is errors.Join on one line: these end up in a terminal status
// line and in `inferops status` output.
func joinErrs(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return multiErr(errs)
}

type multiErr []error

func (m multiErr) Error() string {
	parts := make([]string, len(m))
	for i, e := range m {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

func (m multiErr) Unwrap() []error { return m }
