package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/pipeline"
)

// Instance states in a View.
const (
	StateLive      = "live"
	StateLost      = "lost"      // silent for three of its intervals
	StateDuplicate = "duplicate" // two live processes publish under one name
)

// Control states of an instance against its group's desired state.
const (
	ControlNone    = "none"    // the group has no desired state
	ControlApplied = "applied" // it applied the latest desired state
	ControlPending = "pending" // not yet
	ControlFailed  = "failed"  // it applied what it could; Control.Error says what not
	ControlPinned  = "pinned"  // --control=ignore
)

// eventPrefix marks fleet events on the fleet topic: "event/<writer>/<ns>".
// Instance names cannot hold '/', so no snapshot key starts with it.
const eventPrefix = "event/"

// maxEvents is how many fleet events a reader keeps.
const maxEvents = 200

// DefaultLookback is how far back a reader starts on the fleet topic: far
// enough to see every live instance and the recent lost ones and events,
// short enough that a console on a 50-instance fleet reads a few MB.
const DefaultLookback = time.Minute

// ReaderConfig says which fleet a Reader watches.
type ReaderConfig struct {
	Kafka    cluster.Config
	Topics   Topics
	Group    string        // only this group's instances; empty = every group
	Lookback time.Duration // 0 = DefaultLookback
	Logger   *slog.Logger
}

// Reader keeps the latest snapshot of every instance, the desired state of
// every group and the recent fleet events, and merges them into Views. It
// only reads: it never creates topics or writes.
type Reader struct {
	cfg    ReaderConfig
	log    *slog.Logger
	client sarama.Client
	cons   sarama.Consumer // one for both tails: one fetch per broker
	fleet  *tail
	ctl    *tail

	mu      sync.Mutex
	insts   map[string]*entry
	desired map[string]desiredAt
	beats   map[string]*DriverBeat // by group: rollout drivers' latest heartbeats
	events  []pipeline.Event
	updated chan struct{} // closed and replaced on every change
	bad     int           // records that could not be decoded
}

type entry struct {
	snap  *Snapshot
	recv  time.Time
	procs map[procKey]time.Time // every process seen under the name, last heard
}

type procKey struct {
	host    string
	pid     int
	started int64
}

type desiredAt struct {
	d      *Desired
	offset int64
}

// ErrNoFleet is returned by OpenReader when the fleet topics do not exist:
// no worker has published yet.
var ErrNoFleet = errors.New("no fleet telemetry")

// OpenReader connects and reads the fleet and control topics up to now,
// then keeps following them until Close.
func OpenReader(ctx context.Context, cfg ReaderConfig) (*Reader, error) {
	cfg.Topics.SetDefaults()
	if cfg.Lookback <= 0 {
		cfg.Lookback = DefaultLookback
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	sc, err := saramaConfig(cfg.Kafka, cfg.Kafka.ClientID+"-fleet-reader")
	if err != nil {
		return nil, err
	}
	client, err := newClient(ctx, cfg.Kafka, sc)
	if err != nil {
		return nil, err
	}
	r := &Reader{cfg: cfg, log: cfg.Logger, client: client, insts: map[string]*entry{}, desired: map[string]desiredAt{}, beats: map[string]*DriverBeat{}, updated: make(chan struct{})}
	for _, t := range []string{cfg.Topics.Fleet, cfg.Topics.Control} {
		if _, err := client.Partitions(t); err != nil {
			_ = client.Close()
			if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
				return nil, fmt.Errorf("%w: topic %s does not exist (no worker has published to it yet; workers and consoles create it on start; see --fleet-topic and --control-topic)", ErrNoFleet, t)
			}
			return nil, cfg.Kafka.Explain(fmt.Errorf("topic %s: %w", t, err))
		}
	}
	if r.cons, err = sarama.NewConsumerFromClient(client); err != nil {
		_ = client.Close()
		return nil, err
	}
	if r.ctl, err = startTail(context.Background(), client, r.cons, cfg.Topics.Control, time.Time{}, r.onControl); err != nil {
		r.Close()
		return nil, err
	}
	if r.fleet, err = startTail(context.Background(), client, r.cons, cfg.Topics.Fleet, time.Now().Add(-cfg.Lookback), r.onFleet); err != nil {
		r.Close()
		return nil, err
	}
	if err := r.ctl.wait(ctx); err != nil {
		r.Close()
		return nil, fmt.Errorf("read %s: %w", cfg.Topics.Control, err)
	}
	if err := r.fleet.wait(ctx); err != nil {
		r.Close()
		return nil, fmt.Errorf("read %s: %w", cfg.Topics.Fleet, err)
	}
	return r, nil
}

// Close stops reading.
func (r *Reader) Close() {
	if r.fleet != nil {
		r.fleet.close()
	}
	if r.ctl != nil {
		r.ctl.close()
	}
	if r.cons != nil {
		_ = r.cons.Close()
	}
	_ = r.client.Close()
}

// Updated is closed at the next change of what View returns.
func (r *Reader) Updated() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.updated
}

func (r *Reader) changedLocked() {
	close(r.updated)
	r.updated = make(chan struct{})
}

func (r *Reader) onControl(rec record) {
	group := string(rec.Key)
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec.Value == nil {
		delete(r.desired, group)
		r.changedLocked()
		return
	}
	d, err := DecodeDesired(rec.Value)
	if err != nil || d.Group != group {
		r.bad++
		return
	}
	r.desired[group] = desiredAt{d: d, offset: rec.Offset}
	r.changedLocked()
}

func (r *Reader) onFleet(rec record) {
	key := string(rec.Key)
	recv := time.Now()
	if !rec.Live && rec.Time.Before(recv) {
		recv = rec.Time // catching up: it was heard then, not now
	}
	if strings.HasPrefix(key, rolloutPrefix) {
		if rec.Value == nil {
			return
		}
		b, err := DecodeDriverBeat(rec.Value)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil || rolloutPrefix+b.Group != key {
			r.bad++
			return
		}
		if cur := r.beats[b.Group]; cur == nil || !b.Time.Before(cur.Time) {
			r.beats[b.Group] = b
			r.changedLocked()
		}
		return
	}
	if strings.HasPrefix(key, eventPrefix) {
		if rec.Value == nil {
			return
		}
		ev, err := DecodeEvent(rec.Value)
		if err != nil {
			r.mu.Lock()
			r.bad++
			r.mu.Unlock()
			return
		}
		r.mu.Lock()
		r.events = append(r.events, ev)
		sort.SliceStable(r.events, func(i, j int) bool { return r.events[i].Time.Before(r.events[j].Time) })
		if len(r.events) > maxEvents {
			r.events = r.events[len(r.events)-maxEvents:]
		}
		r.changedLocked()
		r.mu.Unlock()
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec.Value == nil {
		if _, ok := r.insts[key]; ok {
			delete(r.insts, key)
			r.changedLocked()
		}
		return
	}
	s, err := DecodeSnapshot(rec.Value)
	if err != nil || s.Instance != key {
		r.bad++
		return
	}
	if r.cfg.Group != "" && s.Group != r.cfg.Group {
		return
	}
	e := r.insts[key]
	if e == nil {
		e = &entry{procs: map[procKey]time.Time{}}
		r.insts[key] = e
	}
	if e.snap != nil && s.Time.Before(e.snap.Time) && e.snap.Identity().SameProcess(s.Identity()) {
		return // out of order within one process (partitions moved): keep the newer
	}
	e.snap, e.recv = s, recv
	e.procs[procKey{s.Host, s.PID, s.Started.UnixMilli()}] = recv
	r.changedLocked()
}

// DecodeEvent reads a fleet event record.
func DecodeEvent(b []byte) (pipeline.Event, error) {
	var ev pipeline.Event
	if len(b) > MaxRecordBytes {
		return ev, errors.New("event too large")
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		return ev, fmt.Errorf("fleet event: %w", err)
	}
	if ev.Time.IsZero() || ev.Message == "" {
		return ev, errors.New("fleet event has no time or message")
	}
	if ev.Source == "" {
		ev.Source = pipeline.SourceFleet
	}
	return ev, nil
}

// View is the fleet at one moment: every instance with its state, the
// desired state, totals, latency merged over the live instances and the
// recent fleet events. Its snapshots are shared and must not be changed.
type View struct {
	Time          time.Time
	Group         string // the reader's group, or "" for every group
	Desired       *Desired
	DesiredOffset int64 // -1 when there is none
	Instances     []InstanceView
	Totals        Totals
	// Latency over the live instances' windows, overall and by version:
	// exact merges of their histograms.
	Predict  Hist
	EndToEnd Hist
	Versions []VersionView
	Events   []pipeline.Event // oldest first
	Bad      int              // records on the fleet topics that could not be read
	// Rollout is the group's rollout (desired, merged over the instances
	// applying it, its driver's heartbeat); nil when it has none.
	Rollout *RolloutView
}

// InstanceView is one instance as the fleet sees it.
type InstanceView struct {
	*Snapshot
	State        string        // StateLive, StateLost or StateDuplicate
	Age          time.Duration // since its latest snapshot arrived
	ControlState string        // ControlApplied, ControlPending, ...
	// Others are the other processes heard under this name within three
	// intervals (State is StateDuplicate).
	Others []Identity
}

// Live reports whether the instance counts toward the fleet's figures.
func (i InstanceView) Live() bool { return i.State != StateLost }

// Totals add up the live instances.
type Totals struct {
	Instances  int               `json:"instances"`
	Live       int               `json:"live"`
	Lost       int               `json:"lost"`
	Workers    int               `json:"workers"`
	Members    int               `json:"members"`
	Partitions int               `json:"partitions"` // of the input, as the instances see it
	InRate     float64           `json:"in_rate"`
	OutRate    float64           `json:"out_rate"`
	DLQ        uint64            `json:"dlq"`
	DLQReasons map[string]uint64 `json:"dlq_reasons,omitempty"`
	Retries    uint64            `json:"retries"`
	Lag        int64             `json:"lag"`
	Applied    int               `json:"applied"`       // following instances that applied the desired state
	Following  int               `json:"following"`     // live instances that follow control
	BreakersUp int               `json:"breakers_open"` // live instances whose breaker is not closed
}

// VersionView is one model version over the fleet.
type VersionView struct {
	Version   int64
	Rows      uint64 // served since each instance started, summed
	Instances int    // live instances it served rows on in the window
	Predict   Hist
	EndToEnd  Hist
}

// View merges what the reader holds now.
func (r *Reader) View() View { return r.viewAt(time.Now()) }

func (r *Reader) viewAt(now time.Time) View {
	r.mu.Lock()
	defer r.mu.Unlock()
	obs := make([]observed, 0, len(r.insts))
	for _, name := range slices.Sorted(maps.Keys(r.insts)) {
		e := r.insts[name]
		if now.Sub(e.recv) > pipeline.FleetRetention {
			// Lost for as long as the topic keeps anything: a host that
			// is gone for good leaves a long-running console's view.
			delete(r.insts, name)
			continue
		}
		o := observed{snap: e.snap, recv: e.recv}
		cur := procKey{e.snap.Host, e.snap.PID, e.snap.Started.UnixMilli()}
		for k, at := range e.procs {
			if now.Sub(at) > 3*e.snap.Interval() {
				delete(e.procs, k) // only recent processes can be duplicates
				continue
			}
			if k != cur {
				o.others = append(o.others, Identity{Instance: name, Host: k.host, PID: k.pid, Started: time.UnixMilli(k.started).UTC()})
			}
		}
		obs = append(obs, o)
	}
	desired := map[string]desiredAt{}
	maps.Copy(desired, r.desired)
	v := buildView(now, r.cfg.Group, desired, obs, slices.Clone(r.events))
	v.Bad = r.bad
	if r.cfg.Group != "" {
		v.Rollout = rolloutView(&v, r.beats[r.cfg.Group])
	}
	return v
}

// observed is a snapshot as a reader heard it.
type observed struct {
	snap   *Snapshot
	recv   time.Time
	others []Identity
}

// ViewOf builds the View of snapshots as if each was heard at its own
// Time: for fixtures and tests of what renders a View.
func ViewOf(now time.Time, group string, d *Desired, desiredOffset int64, snaps []*Snapshot, events []pipeline.Event) View {
	desired := map[string]desiredAt{}
	if d != nil {
		desired[d.Group] = desiredAt{d: d, offset: desiredOffset}
	}
	obs := make([]observed, 0, len(snaps))
	for _, s := range snaps {
		obs = append(obs, observed{snap: s, recv: s.Time})
	}
	sort.Slice(obs, func(i, j int) bool { return obs[i].snap.Instance < obs[j].snap.Instance })
	v := buildView(now, group, desired, obs, events)
	if group != "" {
		v.Rollout = rolloutView(&v, nil)
	}
	return v
}

func buildView(now time.Time, group string, desired map[string]desiredAt, obs []observed, events []pipeline.Event) View {
	v := View{Time: now, Group: group, DesiredOffset: -1, Events: events}
	if d, ok := desired[group]; ok && group != "" {
		v.Desired, v.DesiredOffset = d.d, d.offset
	}
	var predict, e2e []Hist
	byVersion := map[int64]*VersionView{}
	vpred, ve2e := map[int64][]Hist{}, map[int64][]Hist{}
	for _, o := range obs {
		s := o.snap
		iv := InstanceView{Snapshot: s, State: StateLive, Age: now.Sub(o.recv), Others: o.others}
		if iv.Age > 3*s.Interval() {
			iv.State = StateLost
		} else if len(o.others) > 0 {
			iv.State = StateDuplicate
		}
		d, hasD := desired[s.Group]
		switch {
		case s.Control.Mode == ModePinned:
			iv.ControlState = ControlPinned
		case !hasD:
			iv.ControlState = ControlNone
		case s.Control.Offset < d.offset:
			iv.ControlState = ControlPending
		case s.Control.Error != "":
			iv.ControlState = ControlFailed
		default:
			iv.ControlState = ControlApplied
		}
		v.Instances = append(v.Instances, iv)
		t := &v.Totals
		t.Instances++
		if !iv.Live() {
			t.Lost++
			continue
		}
		t.Live++
		t.Workers += s.Workers
		t.Members += len(s.Members)
		t.Partitions = max(t.Partitions, s.Partitions)
		t.InRate += s.InRate
		t.OutRate += s.OutRate
		t.DLQ += s.DLQTotal
		t.Retries += s.Retries
		t.Lag += s.Lag
		for k, n := range s.DLQReasons {
			if t.DLQReasons == nil {
				t.DLQReasons = map[string]uint64{}
			}
			t.DLQReasons[k] += n
		}
		if s.Breaker != "" && s.Breaker != "closed" {
			t.BreakersUp++
		}
		if s.Control.Mode == ModeFollow {
			t.Following++
			if iv.ControlState == ControlApplied || iv.ControlState == ControlFailed {
				t.Applied++
			}
		}
		predict, e2e = append(predict, s.Predict), append(e2e, s.EndToEnd)
		for _, row := range s.Versions {
			vv := byVersion[row.Version]
			if vv == nil {
				vv = &VersionView{Version: row.Version}
				byVersion[row.Version] = vv
			}
			vv.Rows += row.Rows
			if row.Serving() {
				vv.Instances++
			}
			p, e := row.Latency(s)
			vpred[row.Version] = append(vpred[row.Version], p)
			ve2e[row.Version] = append(ve2e[row.Version], e)
		}
	}
	v.Predict, v.EndToEnd = Merge(predict...), Merge(e2e...)
	for _, ver := range slices.Sorted(maps.Keys(byVersion)) {
		vv := byVersion[ver]
		vv.Predict, vv.EndToEnd = Merge(vpred[ver]...), Merge(ve2e[ver]...)
		v.Versions = append(v.Versions, *vv)
	}
	return v
}

// Instance returns the named instance of the view.
func (v View) Instance(name string) (InstanceView, bool) {
	for _, i := range v.Instances {
		if i.Instance == name {
			return i, true
		}
	}
	return InstanceView{}, false
}
