package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/worker"
	"github.com/inferops/inferops/internal/config"
	"github.com/inferops/inferops/pipeline"
)

// AgentConfig is what an Agent needs to know about its process.
type AgentConfig struct {
	Kafka  cluster.Config
	Topics Topics
	// Worker is the pool's configuration (names, group, instance); the
	// agent fills its defaults the way the pool does.
	Worker   worker.Config
	Interval time.Duration // --fleet-interval; 0 = 1 s
	// TFServing is the pool's TF Serving client: its per-host view goes
	// into the snapshots. Nil leaves it out.
	TFServing *tfserving.Client
	// Pinned is --control=ignore: publish telemetry, follow nothing.
	Pinned  bool
	Version string // inferops version, for the snapshot
	Logger  *slog.Logger
}

// Plan is what the desired state asks of this instance at start, before
// its pool exists. Configure puts it into the pool's configuration.
type Plan struct {
	Workers int    // this instance's share; -1 = its own --workers
	Target  string // empty = its own --target-version
	Paused  bool
	Seq     uint64 // the desired state it comes from; 0 = none
	Note    string // e.g. the total clamped to the partitions
}

// Configure applies the plan to the pool's configuration.
func (p Plan) Configure(cfg *worker.Config) error {
	switch {
	case p.Workers == 0:
		cfg.Idle = true
	case p.Workers > 0:
		cfg.Workers = p.Workers
	}
	if p.Target != "" {
		t, err := tfserving.ParseTarget(p.Target)
		if err != nil {
			return err
		}
		cfg.Target = t
	}
	return nil
}

// Agent is one worker pool's part in the fleet: it refuses a second live
// process under the same instance name, publishes a snapshot of the pool
// every interval, and (unless pinned) follows the group's desired state:
// its share of the total workers, the target version, paused. Prepare runs
// before the pool starts, Run once it has, Close after it drained.
type Agent struct {
	cfg   AgentConfig
	id    Identity
	log   *slog.Logger
	sc    *sarama.Config
	group string

	// Two clients: Kafka answers one request at a time per connection, so a
	// snapshot produced behind the control topic's long-polling fetch would
	// wait out its MaxWaitTime.
	client, prodClient sarama.Client
	consumer           sarama.Consumer // of client: the control tail
	producer           sarama.AsyncProducer
	prodWG             sync.WaitGroup
	control            *tail
	roster             *roster

	mu         sync.Mutex
	desired    *Desired
	desiredOff int64
	names      []string
	haveRoster bool
	rosterErr  error
	ctl        Control
	pool       *worker.Pool
	flagPaused bool // whether the pool's own pause flag is set, as far as we set it
	// controlSized: the pool runs a desired total's share, not its own
	// --workers; a desired state that sets no total takes it back there.
	controlSized bool

	changed chan struct{}
	publish chan struct{} // an applied change: publish now, not at the next tick
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	published, dropped, failed atomic.Uint64
	lastErrLog                 atomic.Int64
}

// NewAgent checks the configuration; nothing connects until Prepare.
func NewAgent(cfg AgentConfig) (*Agent, error) {
	cfg.Worker.SetDefaults()
	if err := cfg.Worker.Validate(); err != nil {
		return nil, err
	}
	cfg.Topics.SetDefaults()
	if err := cfg.Topics.Validate(); err != nil {
		return nil, err
	}
	if cfg.Interval == 0 {
		cfg.Interval = pipeline.DefaultFleetInterval
	}
	if cfg.Interval < 100*time.Millisecond || cfg.Interval > time.Minute {
		return nil, fmt.Errorf("--fleet-interval %v: want 100ms..1m", cfg.Interval)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	inst := cfg.Worker.Instance
	sc, err := saramaConfig(cfg.Kafka, "inferops-"+inst+"-fleet")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Agent{
		cfg: cfg, id: Self(inst, cfg.Version), log: cfg.Logger.With("part", "fleet"), sc: sc, group: cfg.Worker.Group,
		desiredOff: -1, changed: make(chan struct{}, 1), publish: make(chan struct{}, 1), ctx: ctx, cancel: cancel,
		ctl: Control{Mode: modeOf(cfg.Pinned), Offset: -1, Share: -1},
	}, nil
}

func modeOf(pinned bool) string {
	if pinned {
		return ModePinned
	}
	return ModeFollow
}

// Identity is this process in the fleet.
func (a *Agent) Identity() Identity { return a.id }

// Prepare creates the fleet topics when missing, refuses to run when
// another live process already uses this instance name, reads the group's
// desired state and, when that sets a total, joins the roster to learn
// this instance's share. It returns what the pool should start with.
func (a *Agent) Prepare(ctx context.Context) (Plan, error) {
	if err := a.cfg.Topics.Ensure(ctx, a.cfg.Kafka); err != nil {
		return Plan{}, err
	}
	// The control topic changes rarely and the broker answers a fetch as
	// soon as a record arrives, so a long poll costs no latency; at the
	// tail's 250 ms it cost ~800 B/s of fetch round trips per instance.
	// (The instance check reads with the producer's client: sarama
	// waits out a partition consumer's long poll when it closes one.)
	cc := *a.sc
	cc.Consumer.MaxWaitTime = 5 * time.Second
	var err error
	if a.prodClient, err = newClient(ctx, a.cfg.Kafka, a.sc); err != nil {
		return Plan{}, err
	}
	if err := a.checkInstance(ctx); err != nil {
		return Plan{}, err
	}
	client, err := newClient(ctx, a.cfg.Kafka, &cc)
	if err != nil {
		return Plan{}, err
	}
	a.client = client
	if a.consumer, err = sarama.NewConsumerFromClient(client); err != nil {
		return Plan{}, err
	}
	a.control, err = startTail(a.ctx, client, a.consumer, a.cfg.Topics.Control, time.Time{}, a.onControl)
	if err != nil {
		return Plan{}, a.cfg.Kafka.Explain(err)
	}
	if err := a.control.wait(ctx); err != nil {
		return Plan{}, fmt.Errorf("read the desired state from %s: %w", a.cfg.Topics.Control, err)
	}
	a.producer, err = sarama.NewAsyncProducerFromClient(a.prodClient)
	if err != nil {
		return Plan{}, a.cfg.Kafka.Explain(err)
	}
	a.prodWG.Add(2)
	go a.readSuccesses()
	go a.readErrors()
	if a.cfg.Pinned {
		return Plan{Workers: -1}, nil
	}
	a.roster, err = joinRoster(a.cfg.Kafka.Brokers, a.sc, a.group, a.id.Instance, a.cfg.Topics.Control, a.onRoster, a.onRosterError)
	if err != nil {
		return Plan{}, err
	}
	a.mu.Lock()
	d := a.desired
	a.mu.Unlock()
	plan := Plan{Workers: -1}
	if d == nil {
		return plan, nil
	}
	if err := d.Applicable(); err != nil {
		a.log.Warn(err.Error())
		return plan, nil
	}
	plan.Target, plan.Paused, plan.Seq = d.Target, d.Paused, d.Seq
	if d.Workers == nil {
		return plan, nil
	}
	names, err := a.waitRoster(ctx)
	if err != nil {
		return Plan{}, err
	}
	// The partition count is the pool's to read; at start the input's
	// metadata says the same.
	parts, err := client.Partitions(a.cfg.Worker.Input)
	if err != nil {
		return Plan{}, fmt.Errorf("topic %q: %w (see --input)", a.cfg.Worker.Input, err)
	}
	as := Assign(d, names, a.cfg.Worker.Input, len(parts))
	plan.Workers, plan.Note = as.Workers[a.id.Instance], as.Note
	return plan, nil
}

// newClient connects, giving up when ctx ends.
func newClient(ctx context.Context, kc cluster.Config, sc *sarama.Config) (sarama.Client, error) {
	type res struct {
		c   sarama.Client
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := sarama.NewClient(kc.Brokers, sc)
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, kc.Explain(r.err)
		}
		return r.c, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				_ = r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// waitRoster waits until the roster includes this instance.
func (a *Agent) waitRoster(ctx context.Context) ([]string, error) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		a.mu.Lock()
		names, ok, rerr := a.names, a.haveRoster, a.rosterErr
		a.mu.Unlock()
		if ok && contains(names, a.id.Instance) {
			return names, nil
		}
		select {
		case <-ctx.Done():
			if rerr != nil {
				return nil, fmt.Errorf("join the fleet roster %s: %w", rosterGroup(a.group), a.cfg.Kafka.Explain(rerr))
			}
			return nil, fmt.Errorf("join the fleet roster %s: %w", rosterGroup(a.group), ctx.Err())
		case <-t.C:
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func (a *Agent) onControl(r record) {
	if string(r.Key) != a.group {
		return
	}
	var d *Desired
	if r.Value != nil {
		var err error
		if d, err = DecodeDesired(r.Value); err != nil {
			a.log.Warn("ignoring a control record", "offset", r.Offset, "err", err)
			return
		}
		if d.Group != a.group {
			a.log.Warn("ignoring a control record for another group under this group's key", "offset", r.Offset, "group", d.Group)
			return
		}
	}
	a.mu.Lock()
	a.desired, a.desiredOff = d, r.Offset
	a.mu.Unlock()
	a.kick()
}

func (a *Agent) onRoster(names []string, _ int32) {
	a.mu.Lock()
	a.names, a.haveRoster, a.rosterErr = names, true, nil
	a.mu.Unlock()
	a.kick()
}

func (a *Agent) onRosterError(err error) {
	a.mu.Lock()
	a.rosterErr = err
	a.mu.Unlock()
	if a.onceAMinute() {
		a.log.Warn("fleet roster", "group", rosterGroup(a.group), "err", a.cfg.Kafka.Explain(err))
	}
}

func (a *Agent) kick() {
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

func (a *Agent) onceAMinute() bool {
	now := time.Now().Unix() / 60
	l := a.lastErrLog.Load()
	return l != now && a.lastErrLog.CompareAndSwap(l, now)
}

// Run starts publishing pool's snapshots and following the desired state;
// the pool has started with the Plan Prepare returned.
func (a *Agent) Run(pool *worker.Pool, plan Plan) {
	a.mu.Lock()
	a.pool = pool
	a.flagPaused = plan.Paused
	a.controlSized = plan.Workers >= 0
	a.mu.Unlock()
	a.wg.Add(2)
	go a.publishLoop()
	go a.applyLoop()
	a.kick()
}

// Control is how this instance follows its group, as its snapshots say.
func (a *Agent) Control() Control {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ctl
}

// Published counts snapshots acked by Kafka, dropped those not sent (the
// producer was full: Kafka unreachable), failed those Kafka refused.
func (a *Agent) Published() (published, dropped, failed uint64) {
	return a.published.Load(), a.dropped.Load(), a.failed.Load()
}

// WireBytes is what the agent's Kafka clients wrote and read so far.
func (a *Agent) WireBytes() (out, in int64) { return wireBytes(a.sc) }

func (a *Agent) applyLoop() {
	defer a.wg.Done()
	retry := time.NewTicker(5 * time.Second)
	defer retry.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-a.changed:
		case <-retry.C:
			if a.Control().Error == "" {
				continue
			}
		}
		a.apply()
	}
}

// apply brings the pool to the latest desired state and records what it
// applied, for the next snapshot.
func (a *Agent) apply() {
	a.mu.Lock()
	d, off, names, haveRoster, pool := a.desired, a.desiredOff, a.names, a.haveRoster, a.pool
	a.mu.Unlock()
	if a.cfg.Pinned || pool == nil {
		return
	}
	if d == nil {
		a.setControl(Control{Mode: ModeFollow, Offset: off, Share: -1})
		return
	}
	if err := d.Applicable(); err != nil {
		a.mu.Lock()
		a.ctl.Error = config.Scrub(err.Error())
		a.mu.Unlock()
		return
	}
	var errs, notes []string
	split, err := d.Rollout.Split()
	switch {
	case err != nil:
		errs = append(errs, err.Error())
	case split != nil:
		// The split sets the target to its baseline first.
		if err := pool.SetSplit(split); err != nil {
			errs = append(errs, fmt.Sprintf("rollout %s refused: %v", split.ID, err))
		}
	case pool.CurrentSplit() != nil:
		_ = pool.SetSplit(nil)
	}
	if d.Target != "" && split == nil {
		if t, err := tfserving.ParseTarget(d.Target); err == nil && pool.Target() != t {
			pool.SetTarget(t)
			if pool.Target() != t {
				errs = append(errs, fmt.Sprintf("target %s refused (its signature differs from the running worker's: see this instance's events; restart it to serve %s)", t, t))
			}
		}
	}
	share := -1
	if d.Workers != nil {
		if !haveRoster || !contains(names, a.id.Instance) {
			return // not in the roster yet: the next roster applies it
		}
		as := Assign(d, names, a.cfg.Worker.Input, pool.Partitions())
		share = as.Workers[a.id.Instance]
		if as.Note != "" {
			notes = append(notes, as.Note)
		}
		if pool.Workers() != share {
			if err := pool.ScaleTo(share); err != nil {
				errs = append(errs, err.Error())
			}
		}
		a.mu.Lock()
		a.controlSized = true
		a.mu.Unlock()
	} else if a.sizedByControl() {
		// "No total" means each instance on its own --workers: the state
		// an operator action (offsets reset --stop-fleet) restores after
		// stopping the fleet.
		var err error
		if own := a.cfg.Worker.Workers; pool.Workers() != own {
			if err = pool.ScaleTo(own); err != nil {
				errs = append(errs, err.Error())
			}
		}
		if err == nil {
			a.mu.Lock()
			a.controlSized = false
			a.mu.Unlock()
		}
	}
	a.mu.Lock()
	flagPaused := a.flagPaused
	a.mu.Unlock()
	switch {
	case d.Paused && !flagPaused:
		pool.Pause()
		flagPaused = true
	case !d.Paused && flagPaused && pool.Workers() > 0:
		// With no members, Resume would restore the pool's last count:
		// the flag is cleared once the share brings members back.
		pool.Resume()
		flagPaused = false
	}
	a.mu.Lock()
	a.flagPaused = flagPaused
	a.mu.Unlock()
	a.setControl(Control{Mode: ModeFollow, Seq: d.Seq, Offset: off, Share: share,
		Note: strings.Join(notes, "; "), Error: config.Scrub(strings.Join(errs, "; "))})
}

func (a *Agent) sizedByControl() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.controlSized
}

func (a *Agent) setControl(c Control) {
	a.mu.Lock()
	changed := c != a.ctl
	a.ctl = c
	a.mu.Unlock()
	if changed {
		a.log.Info("fleet control applied", "seq", c.Seq, "offset", c.Offset, "share", c.Share, "note", c.Note, "error", c.Error)
		// Whoever waits for the acknowledgement hears it now rather than
		// up to an interval later.
		select {
		case a.publish <- struct{}{}:
		default:
		}
	}
}

func (a *Agent) publishLoop() {
	defer a.wg.Done()
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
	a.publishSnapshot()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
			a.publishSnapshot()
		case <-a.publish:
			a.publishSnapshot()
			t.Reset(a.cfg.Interval)
		}
	}
}

// Snapshot is what the agent publishes now.
func (a *Agent) Snapshot() *Snapshot {
	a.mu.Lock()
	pool, ctl := a.pool, a.ctl
	a.mu.Unlock()
	if pool == nil {
		return nil
	}
	var hosts []tfserving.HostSnapshot
	if a.cfg.TFServing != nil {
		hosts = a.cfg.TFServing.Fleet().Hosts
	}
	return NewSnapshot(a.id, a.cfg.Interval, pool.Config(), pool.Partitions(), pool.Stats(), hosts, ctl)
}

func (a *Agent) publishSnapshot() {
	s := a.Snapshot()
	if s == nil {
		return
	}
	b, err := json.Marshal(s)
	if err != nil {
		a.log.Error("encode the fleet snapshot", "err", err)
		return
	}
	// The snapshot's fields hold no secret by construction; this catches
	// one that reached a name or message anyway.
	b = config.ScrubJSON(b)
	msg := &sarama.ProducerMessage{Topic: a.cfg.Topics.Fleet, Key: sarama.StringEncoder(a.id.Instance), Value: sarama.ByteEncoder(b), Timestamp: s.Time}
	select {
	case a.producer.Input() <- msg:
	default:
		a.dropped.Add(1) // Kafka is not keeping up; the next snapshot replaces this one
	}
}

func (a *Agent) readSuccesses() {
	defer a.prodWG.Done()
	for m := range a.producer.Successes() {
		if m.Value != nil {
			a.published.Add(1)
		}
	}
}

func (a *Agent) readErrors() {
	defer a.prodWG.Done()
	for e := range a.producer.Errors() {
		a.failed.Add(1)
		if a.onceAMinute() {
			a.log.Warn("publish the fleet snapshot", "topic", a.cfg.Topics.Fleet, "err", a.cfg.Kafka.Explain(e.Err))
		}
	}
}

// Close stops following and publishing, writes the tombstone that takes
// this instance out of every fleet view at once, and leaves the roster (the
// others re-spread the total). Call it after the pool has drained.
func (a *Agent) Close(ctx context.Context) error {
	a.cancel()
	a.wg.Wait()
	var err error
	if a.producer != nil {
		// The last snapshot before the tombstone would otherwise say the
		// instance still runs members.
		select {
		case a.producer.Input() <- &sarama.ProducerMessage{Topic: a.cfg.Topics.Fleet, Key: sarama.StringEncoder(a.id.Instance)}:
		case <-ctx.Done():
		}
		a.producer.AsyncClose()
		done := make(chan struct{})
		go func() { a.prodWG.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("fleet: the tombstone of %s was not acked before the deadline; the fleet shows it as lost after 3 intervals", a.id.Instance)
		}
	}
	if a.roster != nil {
		a.roster.close()
	}
	if a.prodClient != nil {
		_ = a.prodClient.Close()
	}
	// The control tail's fetch is a long poll (up to 5 s) that sarama
	// waits out before closing: let it finish on its own rather than hold
	// up the exit; nothing is written any more.
	go func() {
		if a.control != nil {
			a.control.close()
		}
		if a.consumer != nil {
			_ = a.consumer.Close()
		}
		if a.client != nil {
			_ = a.client.Close()
		}
	}()
	return err
}

// errDuplicate marks the refusal of a second live process under one name.
var errDuplicate = errors.New("--instance in use")

// IsDuplicate reports whether err is Prepare refusing a second live process
// under the same --instance.
func IsDuplicate(err error) bool { return errors.Is(err, errDuplicate) }

// checkInstance refuses to start when another live process publishes under
// this instance name. The latest snapshot under the name decides: none, a
// tombstone, or one from a process this host can see has died mean free.
// One from another host is alive if it publishes again within three of its
// intervals; a crashed one stays silent, so a restart elsewhere waits that
// long and no more.
func (a *Agent) checkInstance(ctx context.Context) error {
	topic, inst := a.cfg.Topics.Fleet, a.id.Instance
	parts, err := a.prodClient.Partitions(topic)
	if err != nil {
		return fmt.Errorf("topic %s: %w", topic, err)
	}
	p, err := sarama.NewHashPartitioner(topic).Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(inst)}, int32(len(parts)))
	if err != nil {
		return err
	}
	since := time.Now().Add(-3*a.cfg.Interval - 2*time.Second)
	start, err := a.prodClient.GetOffset(topic, p, since.UnixMilli())
	if err != nil {
		return fmt.Errorf("%s/%d: %w", topic, p, err)
	}
	end, err := a.prodClient.GetOffset(topic, p, sarama.OffsetNewest)
	if err != nil {
		return fmt.Errorf("%s/%d: %w", topic, p, err)
	}
	if start < 0 || start >= end {
		return nil // nothing published recently under any name here
	}
	cons, err := sarama.NewConsumerFromClient(a.prodClient)
	if err != nil {
		return err
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition(topic, p, start)
	if err != nil {
		return fmt.Errorf("read %s/%d: %w", topic, p, err)
	}
	defer pc.Close()
	var last *Snapshot
	read := func(m *sarama.ConsumerMessage) {
		if string(m.Key) != inst {
			return
		}
		if m.Value == nil {
			last = nil
			return
		}
		if s, err := DecodeSnapshot(m.Value); err == nil {
			last = s
		}
	}
	idle := time.NewTimer(2 * time.Second)
	defer idle.Stop()
catchUp:
	for {
		select {
		case m := <-pc.Messages():
			read(m)
			if m.Offset >= end-1 {
				break catchUp
			}
			idle.Reset(2 * time.Second)
		case <-idle.C:
			break catchUp
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if last == nil || last.Identity().SameProcess(a.id) {
		return nil
	}
	other := last.Identity()
	if alive, known := localLiveness(a.id, other); known {
		if alive {
			return a.duplicate(last)
		}
		a.log.Info("instance name free: its previous process has exited", "instance", inst, "pid", other.PID, "host", other.Host)
		return nil
	}
	wait := min(3*last.Interval(), 30*time.Second)
	a.log.Info("instance name last used on another host: waiting for it to publish again", "instance", inst, "host", other.Host, "pid", other.PID, "wait", wait)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		select {
		case m := <-pc.Messages():
			if string(m.Key) != inst {
				continue
			}
			if m.Value == nil {
				return nil // it exited cleanly
			}
			if s, err := DecodeSnapshot(m.Value); err == nil && s.Identity().SameProcess(other) {
				return a.duplicate(s)
			}
		case <-deadline.C:
			a.log.Info("instance name free: its previous process is silent", "instance", inst, "host", other.Host, "pid", other.PID)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (a *Agent) duplicate(s *Snapshot) error {
	return fmt.Errorf("%w: %q is already running as pid %d on %s (inferops %s, started %s, last snapshot %s ago): give this process its own --instance, e.g. --instance %s-2, or stop the other one",
		errDuplicate, s.Instance, s.PID, s.Host, s.Inferops, s.Started.Local().Format(time.RFC3339), time.Since(s.Time).Round(100*time.Millisecond), s.Instance)
}
