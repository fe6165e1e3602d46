package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/worker"
	"github.com/inferops/inferops/internal/config"
	"github.com/inferops/inferops/pipeline"
)

// ControllerConfig says which group a Controller steers.
type ControllerConfig struct {
	Kafka  cluster.Config
	Topics Topics
	Group  string // the pipeline's consumer group (--group)
	Input  string // its input topic (--input): the partition count caps the total
	// ReadOnly, when set, is why writes are refused (e.g. "--read-only").
	ReadOnly string
	// DryRun makes every change compute what it would write (the desired
	// state and its spread over the live instances) and write nothing.
	DryRun bool
	// Who is recorded as the desired state's By; empty = user@host.
	Who      string
	Lookback time.Duration
	Logger   *slog.Logger
}

// Controller is the fleet as a console or `inferops fleet` sees and
// steers it: the merged View of every instance of one group, and changes
// to the group's desired state with their acknowledgements. It is safe
// for concurrent use.
type Controller struct {
	cfg    ControllerConfig
	reader *Reader
	sc     *sarama.Config
	client sarama.Client
	prod   sarama.SyncProducer
	seq    atomic.Uint64 // events written by this controller, for unique keys
}

// Open reads the fleet up to now (creating its topics when missing, unless
// read-only) and keeps following it until Close.
func Open(ctx context.Context, cfg ControllerConfig) (*Controller, error) {
	cfg.Topics.SetDefaults()
	if err := cfg.Topics.Validate(); err != nil {
		return nil, err
	}
	if cfg.Group == "" {
		cfg.Group = pipeline.DefaultGroup
	}
	if cfg.Input == "" {
		cfg.Input = pipeline.DefaultInput
	}
	if cfg.Who == "" {
		cfg.Who = Operator()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Controller{cfg: cfg}
	if cfg.ReadOnly == "" && !cfg.DryRun {
		if err := cfg.Topics.Ensure(ctx, cfg.Kafka); err != nil {
			return nil, err
		}
	}
	r, err := OpenReader(ctx, ReaderConfig{Kafka: cfg.Kafka, Topics: cfg.Topics, Group: cfg.Group, Lookback: cfg.Lookback, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	c.reader = r
	if cfg.ReadOnly != "" {
		return c, nil
	}
	// A dry run still needs the input's partition count: a client, no
	// producer.
	if c.sc, err = saramaConfig(cfg.Kafka, cfg.Kafka.ClientID+"-fleet-control"); err != nil {
		r.Close()
		return nil, err
	}
	c.sc.Producer.RequiredAcks = sarama.WaitForAll // a desired state must not be lost
	if c.client, err = newClient(ctx, cfg.Kafka, c.sc); err != nil {
		r.Close()
		return nil, err
	}
	if cfg.DryRun {
		return c, nil
	}
	if c.prod, err = sarama.NewSyncProducerFromClient(c.client); err != nil {
		r.Close()
		_ = c.client.Close()
		return nil, cfg.Kafka.Explain(err)
	}
	return c, nil
}

// Operator is "user@host" of this process, for the desired state's By.
func Operator() string {
	name := os.Getenv("SUDO_USER") // who typed sudo, not root
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	host, _ := os.Hostname()
	return whoAmI(name, host)
}

// Close stops reading and writing.
func (c *Controller) Close() error {
	if c.prod != nil {
		_ = c.prod.Close()
	}
	if c.client != nil {
		_ = c.client.Close()
	}
	c.reader.Close()
	return nil
}

// View is the fleet now.
func (c *Controller) View() View { return c.reader.View() }

// Updated is closed at the next change of the View (a snapshot, a desired
// state, an event): wait on it, then call View and Updated again.
func (c *Controller) Updated() <-chan struct{} { return c.reader.Updated() }

// Change is a desired state a controller wrote.
type Change struct {
	Desired Desired `json:"desired"`
	Offset  int64   `json:"offset"`         // on the control topic, instances report it when applied; -1 for a dry run
	Note    string  `json:"note,omitempty"` // e.g. the total clamped to the partition count
	// Assignment is how the total spreads over the instances live and
	// following control when it was written (each computes its own share
	// from the roster, which this mirrors).
	Assignment Assignment `json:"assignment"`
}

// String says what changed: "scale to 9 (seq 8)".
func (ch Change) String() string {
	s := fmt.Sprintf("%s (seq %d)", ch.Desired.Change, ch.Desired.Seq)
	if ch.Note != "" {
		s += ": " + ch.Note
	}
	return s
}

// ErrReadOnly is returned by every write of a read-only controller.
var ErrReadOnly = errors.New("read-only")

func (c *Controller) writable() error {
	if c.cfg.ReadOnly != "" {
		return fmt.Errorf("%w (%s): the fleet's desired state is not changed", ErrReadOnly, c.cfg.ReadOnly)
	}
	return nil
}

// Scale sets the fleet's total workers, spread over the live instances
// that follow control (fixed per-instance shares stay). A total over the
// input's partition count is clamped, and Change.Note says so.
func (c *Controller) Scale(ctx context.Context, n int) (Change, error) {
	if n < 0 || n > maxWorkers {
		return Change{}, fmt.Errorf("cannot scale to %d workers: want 0..%d", n, maxWorkers)
	}
	return c.update(ctx, func(d *Desired, parts int) (string, string, error) {
		note := ""
		if parts > 0 && n > parts {
			note = fmt.Sprintf("%d workers asked, but %s has %d partitions: scaling to %d (add partitions for more)", n, c.cfg.Input, parts, parts)
			n = parts
		}
		d.Workers = &n
		return fmt.Sprintf("scale to %d workers", n), note, nil
	})
}

// ScaleInstance gives one instance a fixed share of n workers and moves
// the total by the difference, so the other instances keep theirs.
func (c *Controller) ScaleInstance(ctx context.Context, instance string, n int) (Change, error) {
	if err := worker.ValidInstance(instance); err != nil {
		return Change{}, err
	}
	if n < 0 || n > maxWorkers {
		return Change{}, fmt.Errorf("cannot scale %s to %d workers: want 0..%d", instance, n, maxWorkers)
	}
	v := c.View()
	iv, ok := v.Instance(instance)
	if !ok || !iv.Live() {
		return Change{}, fmt.Errorf("instance %s is not live in group %s (see inferops fleet status)", instance, c.cfg.Group)
	}
	if iv.Control.Mode == ModePinned {
		return Change{}, fmt.Errorf("instance %s runs with --control=ignore: scale it there, or restart it following control", instance)
	}
	return c.update(ctx, func(d *Desired, parts int) (string, string, error) {
		total := 0
		if d.Workers != nil {
			total = *d.Workers
		} else {
			for _, i := range v.Instances {
				if i.Live() && i.Control.Mode == ModeFollow {
					total += i.Workers
				}
			}
		}
		total += n - iv.Workers
		note := ""
		if parts > 0 && total > parts {
			note = fmt.Sprintf("the fleet would run %d workers, but %s has %d partitions: %d in total", total, c.cfg.Input, parts, parts)
			total = parts
		}
		total = max(total, n)
		d.Workers = &total
		if d.Shares == nil {
			d.Shares = map[string]int{}
		}
		d.Shares[instance] = n
		return fmt.Sprintf("scale %s to %d workers (fleet %d)", instance, n, total), note, nil
	})
}

// SetTarget sends every instance's batches to a version: "latest", "2" or
// "label:stable".
func (c *Controller) SetTarget(ctx context.Context, spec string) (Change, error) {
	t, err := tfserving.ParseTarget(spec)
	if err != nil {
		return Change{}, err
	}
	return c.update(ctx, func(d *Desired, _ int) (string, string, error) {
		d.Target = t.String()
		return "target " + t.String(), "", nil
	})
}

// SetPaused pauses (or resumes) fetching on every instance; members stay
// in the group, so nothing rebalances.
func (c *Controller) SetPaused(ctx context.Context, paused bool) (Change, error) {
	return c.update(ctx, func(d *Desired, _ int) (string, string, error) {
		d.Paused = paused
		if paused {
			return "pause", "", nil
		}
		return "resume", "", nil
	})
}

// update writes the group's desired state as change makes it from the
// latest one.
func (c *Controller) update(ctx context.Context, change func(d *Desired, partitions int) (desc, note string, err error)) (Change, error) {
	if err := c.writable(); err != nil {
		return Change{}, err
	}
	parts := 0
	if ps, err := c.client.Partitions(c.cfg.Input); err == nil {
		parts = len(ps)
	}
	view := c.View()
	cur := view.Desired
	d := &Desired{Group: c.cfg.Group}
	if cur != nil {
		if cur.V > ControlSchema {
			// Rewriting it would drop the fields this version cannot read.
			return Change{}, fmt.Errorf("the desired state of %s was written by a newer inferops (schema %d, by %s): change it with that version", c.cfg.Group, cur.V, cur.By)
		}
		d = cur.clone()
	}
	desc, note, err := change(d, parts)
	if err != nil {
		return Change{}, err
	}
	d.V = ControlSchema
	d.Compat = 0
	if d.Rollout.Active() {
		d.Compat = RolloutSchema // an older instance cannot split: it must refuse, not ignore
	}
	d.Seq++
	d.By, d.At, d.Change = c.cfg.Who, time.Now().UTC(), desc
	if err := d.Validate(); err != nil {
		return Change{}, err
	}
	var names []string
	for _, i := range view.Instances {
		if i.Live() && i.Control.Mode == ModeFollow {
			names = append(names, i.Instance)
		}
	}
	as := Assign(d, names, c.cfg.Input, parts)
	if c.cfg.DryRun {
		return Change{Desired: *d, Offset: -1, Note: note, Assignment: as}, nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return Change{}, err
	}
	b = config.ScrubJSON(b)
	type res struct {
		off int64
		err error
	}
	ch := make(chan res, 1)
	go func() {
		_, off, err := c.prod.SendMessage(&sarama.ProducerMessage{Topic: c.cfg.Topics.Control, Key: sarama.StringEncoder(c.cfg.Group), Value: sarama.ByteEncoder(b)})
		ch <- res{off, err}
	}()
	var r res
	select {
	case r = <-ch:
	case <-ctx.Done():
		return Change{}, fmt.Errorf("write the desired state to %s: %w (it may still arrive)", c.cfg.Topics.Control, ctx.Err())
	}
	if r.err != nil {
		return Change{}, c.cfg.Kafka.Explain(fmt.Errorf("write the desired state to %s: %w (a console needs WRITE on it; see README's fleet section)", c.cfg.Topics.Control, r.err))
	}
	out := Change{Desired: *d, Offset: r.off, Note: note, Assignment: as}
	msg := fmt.Sprintf("%s: %s", d.By, out)
	if err := c.Publish(ctx, pipeline.Event{Time: d.At, Source: pipeline.SourceFleet, Kind: pipeline.KindControl, Level: pipeline.Info, Message: msg}); err != nil {
		c.cfg.Logger.Warn("publish the fleet event", "err", err)
	}
	return out, nil
}

// Publish writes a fleet event that every console shows (an operator's
// change, its acknowledgement, a DLQ replay, a rollout step). The fleet
// topic's retention ages it out.
func (c *Controller) Publish(ctx context.Context, ev pipeline.Event) error {
	if err := c.writable(); err != nil {
		return err
	}
	if c.cfg.DryRun {
		return nil
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if ev.Source == "" {
		ev.Source = pipeline.SourceFleet
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	b = config.ScrubJSON(b)
	host, _ := os.Hostname()
	key := eventPrefix + host + "-" + strconv.Itoa(os.Getpid()) + "/" + strconv.FormatInt(ev.Time.UnixNano(), 10) + "-" + strconv.FormatUint(c.seq.Add(1), 10)
	return c.send(ctx, &sarama.ProducerMessage{Topic: c.cfg.Topics.Fleet, Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(b), Timestamp: ev.Time})
}

// send writes one record, giving up (the record may still arrive) when
// ctx ends first.
func (c *Controller) send(ctx context.Context, m *sarama.ProducerMessage) error {
	done := make(chan error, 1)
	go func() {
		_, _, err := c.prod.SendMessage(m)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ack is how far a change has been applied over the live instances that
// follow control.
type Ack struct {
	Change  Change        `json:"-"`
	Applied []string      `json:"applied"`          // instances that applied it (or a later state)
	Pending []string      `json:"pending"`          // "name (at seq N)"
	Failed  []string      `json:"failed,omitempty"` // "name: what could not be applied"
	Pinned  []string      `json:"pinned,omitempty"` // live instances with --control=ignore, not waited for
	Took    time.Duration `json:"-"`
	Seconds float64       `json:"seconds"` // Took
	Done    bool          `json:"done"`    // nothing pending
	Message string        `json:"message"` // String()
}

// String is the acknowledgement as events show it: "3/3 instances applied
// target 2 in 1.4 s".
func (a Ack) String() string {
	n := len(a.Applied) + len(a.Pending) + len(a.Failed)
	if n == 0 {
		return fmt.Sprintf("no live instance of the group follows control: %s is stored for the next to start", a.Change.Desired.Change)
	}
	s := fmt.Sprintf("%d/%d instances applied %s in %.1f s", len(a.Applied), n, a.Change.Desired.Change, a.Took.Seconds())
	if len(a.Pending) > 0 {
		s += "; waiting for " + strings.Join(a.Pending, ", ")
	}
	if len(a.Failed) > 0 {
		s += "; failed: " + strings.Join(a.Failed, "; ")
	}
	if len(a.Pinned) > 0 {
		s += "; pinned (--control=ignore): " + strings.Join(a.Pinned, ", ")
	}
	return s
}

// AckOf is how far ch is applied in v.
func AckOf(v View, ch Change) Ack {
	a := Ack{Change: ch, Took: v.Time.Sub(ch.Desired.At), Applied: []string{}, Pending: []string{}}
	for _, i := range v.Instances {
		if !i.Live() || i.Group != ch.Desired.Group {
			continue
		}
		switch {
		case i.Control.Mode == ModePinned:
			a.Pinned = append(a.Pinned, i.Instance)
		case i.Control.Offset < ch.Offset:
			a.Pending = append(a.Pending, fmt.Sprintf("%s (at seq %d)", i.Instance, i.Control.Seq))
		case i.Control.Error != "":
			a.Failed = append(a.Failed, i.Instance+": "+i.Control.Error)
		default:
			a.Applied = append(a.Applied, i.Instance)
		}
	}
	a.Done = len(a.Pending) == 0
	a.Seconds = a.Took.Seconds()
	a.Message = a.String()
	return a
}

// Wait watches ch being applied until every live following instance has
// (or ctx ends), calling progress at each change when not nil, and
// publishes the acknowledgement as a fleet event. It returns an error
// naming who has not applied it on timeout, and who failed to.
func (c *Controller) Wait(ctx context.Context, ch Change, progress func(Ack)) (Ack, error) {
	var a Ack
	for {
		upd := c.Updated()
		a = AckOf(c.View(), ch)
		if progress != nil {
			progress(a)
		}
		if a.Done {
			break
		}
		select {
		case <-upd:
		case <-time.After(250 * time.Millisecond): // instances go lost without a record
		case <-ctx.Done():
			return a, fmt.Errorf("%s not applied after %.0f s: %d/%d instances; not yet: %s", ch.Desired.Change, a.Took.Seconds(),
				len(a.Applied), len(a.Applied)+len(a.Pending)+len(a.Failed), strings.Join(a.Pending, ", "))
		}
	}
	lvl := pipeline.Info
	if len(a.Failed) > 0 {
		lvl = pipeline.Warn
	}
	pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Publish(pctx, pipeline.Event{Source: pipeline.SourceFleet, Kind: pipeline.KindControl, Level: lvl, Message: a.String()}); err != nil && !errors.Is(err, ErrReadOnly) {
		c.cfg.Logger.Warn("publish the fleet acknowledgement", "err", err)
	}
	if len(a.Failed) > 0 {
		return a, fmt.Errorf("%s: %s", ch.Desired.Change, strings.Join(a.Failed, "; "))
	}
	return a, nil
}
