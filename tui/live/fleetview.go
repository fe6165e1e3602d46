package live

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/tui"
)

// fleetState is what the fleet looked like at the previous refresh.
type fleetState struct {
	// traffic is each instance's last snapshot time and rows per version,
	// for per-version rates: rows since start are exact, a 10 s window's
	// count is not a rate.
	traffic map[string]instTraffic
	states  map[string]string // instance -> state, for join/lost/back events
	seen    map[string]bool   // fleet events already in the log
	// mine are the messages this console published itself: already in the
	// log when they come back from the fleet topic.
	mine map[string]bool
	// started: the first view was taken (the instances already there
	// then did not "join").
	started bool
}

type instTraffic struct {
	at, started time.Time
	rows        map[int64]uint64
	rate        map[int64]float64
}

// fleetLoop folds the fleet's merged View into the screen once a refresh.
// It reads on the refresh timer, not on every Updated: 50 instances
// publish 50 snapshots a second.
func (a *Adapter) fleetLoop(context.Context) {
	v := a.cfg.Fleet.View()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.applyFleetLocked(v)
}

func (a *Adapter) applyFleetLocked(v fleet.View) {
	now := v.Time
	fs := &a.fleet
	if fs.traffic == nil {
		fs.traffic, fs.states, fs.seen, fs.mine = map[string]instTraffic{}, map[string]string{}, map[string]bool{}, map[string]bool{}
	}
	t := v.Totals
	f := tui.FleetData{At: now, Known: true, Self: a.cfg.Instance, Live: t.Live, Lost: t.Lost, Workers: t.Workers, Members: t.Members,
		Partitions: t.Partitions, InRate: t.InRate, OutRate: t.OutRate, BreakersOpen: t.BreakersUp, DesiredWorkers: -1,
		Applied: t.Applied, Following: t.Following}
	if f.Partitions == 0 {
		f.Partitions = len(a.d.Kafka.Partitions)
	}
	if d := v.Desired; d != nil {
		f.Desired, f.Seq = d.Summary()+" · by "+d.By, d.Seq
		if d.Workers != nil {
			f.DesiredWorkers = *d.Workers
		}
	}
	claimed := map[string]bool{}
	versionRate := map[int64]float64{}
	var rows, calls float64
	var predictErrors int64
	targets := map[string]bool{}
	allPaused := t.Live > 0
	breaker := "closed"
	traffic := make(map[string]instTraffic, len(v.Instances))
	for _, iv := range v.Instances {
		in := tui.Instance{Name: iv.Instance, Host: iv.Host, Inferops: iv.Inferops, State: iv.State, Age: iv.Age,
			Control: iv.ControlState, Seq: iv.Control.Seq, ControlNote: iv.Control.Error, Workers: iv.Workers,
			InRate: iv.InRate, OutRate: iv.OutRate, E2EP99: iv.EndToEnd.Quantile(99), Target: iv.Target, Breaker: iv.Breaker, Paused: iv.Paused}
		if in.ControlNote == "" {
			in.ControlNote = iv.Control.Note
		}
		var serving []string
		for _, r := range iv.Versions {
			if r.Serving() {
				serving = append(serving, strconv.FormatInt(r.Version, 10))
			}
		}
		in.Serving = strings.Join(serving, ",")
		for _, m := range iv.Members {
			claimed[m.ClientID] = true
			in.Members = append(in.Members, tui.Member{ID: m.MemberID, ClientID: m.ClientID, Host: iv.Host, Partitions: m.Partitions,
				InRate: m.InRate, OutRate: m.OutRate, InFlight: m.InFlight, Batch: m.AvgBatch})
			in.Partitions = append(in.Partitions, m.Partitions...)
		}
		f.Instances = append(f.Instances, in)
		a.instanceEventLocked(iv, now)
		if !iv.Live() {
			continue
		}
		tr := instTrafficOf(iv.Snapshot, fs.traffic[iv.Instance])
		traffic[iv.Instance] = tr
		var instRows float64
		for ver, r := range tr.rate {
			versionRate[ver] += r
			instRows += r
		}
		rows += instRows
		if b := avgBatch(iv.Snapshot); b > 0 {
			calls += instRows / b
		}
		predictErrors += int64(iv.Errors["predict"])
		targets[iv.Target] = true
		allPaused = allPaused && iv.Paused
		breaker = worseBreaker(breaker, iv.Breaker)
	}
	// An instance that left (a tombstone) is no longer in the view.
	for name, st := range fs.states {
		if _, ok := v.Instance(name); !ok {
			msg := fmt.Sprintf("instance %s left the fleet (a clean exit)", name)
			if st == fleet.StateLost {
				msg = fmt.Sprintf("instance %s forgotten: lost for longer than the fleet topic keeps telemetry", name)
			}
			a.addEventLocked(pipeline.Event{Time: now, Source: pipeline.SourceFleet, Kind: pipeline.KindScale, Level: pipeline.Info, Message: msg})
			delete(fs.states, name)
		}
	}
	fs.traffic = traffic
	if s := a.last; s != nil {
		for _, m := range s.Members {
			if !claimed[m.ClientID] {
				f.Others = append(f.Others, tui.Member{ID: m.MemberID, ClientID: m.ClientID, Host: m.Host, Partitions: m.Partitions})
			}
		}
	}
	a.d.Fleet = f

	// The header, latency, throughput and models panels: the fleet's, so
	// a --no-worker console shows what the remote workers do.
	h := &a.d.Header
	h.Workers, h.Breaker = t.Workers, breaker
	switch d := v.Desired; {
	case d != nil && d.Target != "":
		h.Target = d.Target
	case len(targets) == 1:
		for tg := range targets {
			h.Target = tg
		}
	case len(targets) > 1:
		h.Target = "mixed"
	}
	h.Paused = allPaused
	if d := v.Desired; d != nil {
		h.Paused = d.Paused
	}
	l := &a.d.Latency
	l.At = now
	l.Predict, l.E2E = percentiles(v.Predict), percentiles(v.EndToEnd)
	l.Rows, l.QPS, l.Batch, l.Errors = rows, calls, 0, predictErrors
	if calls > 0 {
		l.Batch = rows / calls
	}
	a.lat = push(a.lat, tui.LatencySample{T: now, Percentiles: l.Predict})
	l.History = a.lat
	a.out = push(a.out, tui.Sample{T: now, V: t.OutRate})
	a.d.Flow.Out = a.out
	a.sloLocked(now, l.E2E.P99, v.EndToEnd.Count() > 0)

	traffics := map[int64]versionTraffic{} // not nil: the fleet is read
	for _, vv := range v.Versions {
		traffics[vv.Version] = versionTraffic{rate: versionRate[vv.Version], p99: vv.Predict.Quantile(99), rows: int64(vv.Rows)}
	}
	a.fleetVersions = traffics
	vs, best := a.versionTrafficLocked(slices.Clone(a.d.Models.Versions))
	if a.cfg.TFS == nil {
		a.d.Models.Err = "version states unknown: TF Serving not given (set --tfserving); traffic from the fleet's telemetry"
	}
	a.d.Models.Versions = vs
	a.setServedLocked(best, now)
	a.rolloutLocked(v)

	a.fleetEventsLocked(v.Events)
}

// instTrafficOf is an instance's rows per version per second between its
// previous snapshot and this one; the previous rates while no new
// snapshot has arrived, none for a new or restarted process.
func instTrafficOf(s *fleet.Snapshot, prev instTraffic) instTraffic {
	tr := instTraffic{at: s.Time, started: s.Started, rows: map[int64]uint64{}, rate: map[int64]float64{}}
	for _, r := range s.Versions {
		tr.rows[r.Version] = r.Rows
	}
	switch {
	case prev.rows == nil || !prev.started.Equal(s.Started):
	case !s.Time.After(prev.at):
		tr.rate = prev.rate
	default:
		dt := s.Time.Sub(prev.at).Seconds()
		for ver, n := range tr.rows {
			if p := prev.rows[ver]; n >= p {
				tr.rate[ver] = float64(n-p) / dt
			}
		}
	}
	return tr
}

// avgBatch is the instance's rows per Predict, from its members when the
// instance gives none.
func avgBatch(s *fleet.Snapshot) float64 {
	if s.AvgBatch > 0 || len(s.Members) == 0 {
		return s.AvgBatch
	}
	var sum float64
	for _, m := range s.Members {
		sum += m.AvgBatch
	}
	return sum / float64(len(s.Members))
}

func percentiles(h fleet.Hist) tui.Percentiles {
	return tui.Percentiles{P50: h.Quantile(50), P95: h.Quantile(95), P99: h.Quantile(99), Max: h.Max()}
}

// worseBreaker is the worse of two breaker states: the header shows the
// fleet's worst.
func worseBreaker(a, b string) string {
	rank := map[string]int{"": 0, "closed": 0, "half-open": 1, "open": 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// versionTraffic is one version's traffic over the fleet.
type versionTraffic struct {
	rate float64
	p99  time.Duration
	rows int64
}

// versionTrafficLocked puts the fleet's per-version traffic on the models
// panel's rows (adding the versions only the fleet knows) and returns the
// version that served the most. Before the fleet is read it only picks
// that version from the rows' own rates.
func (a *Adapter) versionTrafficLocked(vs []tui.ModelVersion) ([]tui.ModelVersion, int64) {
	if a.fleetVersions != nil { // the fleet's telemetry is read
		known := map[int64]bool{}
		for i := range vs {
			known[vs[i].Version] = true
			tr := a.fleetVersions[vs[i].Version]
			vs[i].Rate, vs[i].P99, vs[i].Count = tr.rate, tr.p99, tr.rows
		}
		for _, ver := range slices.Sorted(maps.Keys(a.fleetVersions)) {
			if !known[ver] {
				tr := a.fleetVersions[ver]
				vs = append(vs, tui.ModelVersion{Version: ver, State: "?", Labels: a.labels[ver], Rate: tr.rate, P99: tr.p99, Count: tr.rows})
			}
		}
		slices.SortFunc(vs, func(x, y tui.ModelVersion) int { return int(x.Version - y.Version) })
	}
	var best int64
	var bestRate float64
	for _, v := range vs {
		if v.Rate > bestRate {
			best, bestRate = v.Version, v.Rate
		}
	}
	return vs, best
}

// setServedLocked marks the version that answered the most since the
// last refresh: what new results carry, whatever the target says.
func (a *Adapter) setServedLocked(best int64, now time.Time) {
	if best > 0 {
		if a.d.Header.Served != 0 && a.d.Header.Served != best {
			a.addEventLocked(pipeline.Event{Time: now, Source: pipeline.SourceModels, Kind: pipeline.KindVersion, Level: pipeline.Info, Message: fmt.Sprintf("results now come from %s version %d (was %d)", a.cfg.Model, best, a.d.Header.Served)})
		}
		a.d.Header.Served = best
	}
	vs := a.d.Models.Versions
	for i := range vs {
		vs[i].Served = vs[i].Version == a.d.Header.Served
	}
}

// instanceEventLocked logs an instance joining, going lost, coming back or
// being doubled, once each.
func (a *Adapter) instanceEventLocked(iv fleet.InstanceView, now time.Time) {
	fs := &a.fleet
	prev, known := fs.states[iv.Instance]
	fs.states[iv.Instance] = iv.State
	if prev == iv.State || (!known && !fs.started) {
		return
	}
	ev := pipeline.Event{Time: now, Source: pipeline.SourceFleet, Kind: pipeline.KindScale, Level: pipeline.Info}
	switch {
	case !known:
		ev.Message = fmt.Sprintf("instance %s joined the fleet (%s, pid %d, inferops %s, %d workers)", iv.Instance, iv.Host, iv.PID, iv.Inferops, iv.Workers)
	case iv.State == fleet.StateLost:
		ev.Level = pipeline.Warn
		ev.Message = fmt.Sprintf("instance %s lost: no telemetry for %s (3 intervals); its partitions move when Kafka's session times out", iv.Instance, iv.Age.Round(time.Second))
	case iv.State == fleet.StateDuplicate:
		ev.Level = pipeline.Error
		ev.Message = fmt.Sprintf("two processes publish as instance %s (%s pid %d and %d other): give each its own --instance", iv.Instance, iv.Host, iv.PID, len(iv.Others))
	default:
		ev.Message = fmt.Sprintf("instance %s is %s again", iv.Instance, iv.State)
	}
	a.addEventLocked(ev)
}

// fleetEventsLocked adds the fleet events (changes and acknowledgements
// from every console and `inferops fleet`) not yet in the log.
func (a *Adapter) fleetEventsLocked(evs []pipeline.Event) {
	fs := &a.fleet
	fs.started = true
	seen := make(map[string]bool, len(evs))
	for _, e := range evs { // oldest first
		k := strconv.FormatInt(e.Time.UnixNano(), 36) + " " + e.Message
		seen[k] = true
		if fs.seen[k] {
			continue
		}
		if fs.mine[e.Message] {
			delete(fs.mine, e.Message)
			continue
		}
		a.addEventLocked(e)
	}
	fs.seen = seen
}

// mineLocked logs an event this console also publishes on the fleet
// topic, so its copy from the topic is not logged twice.
func (a *Adapter) mineLocked(e pipeline.Event) {
	if a.fleet.mine == nil {
		a.fleet.mine = map[string]bool{}
	}
	if len(a.fleet.mine) > maxEvents { // copies that never came back (no WRITE on the fleet topic)
		clear(a.fleet.mine)
	}
	a.fleet.mine[e.Message] = true
	a.addEventLocked(e)
}

// steer writes one change of the group's desired state, logs it, waits
// until every live instance that follows control applied it (or ctx
// ends) and logs the acknowledgement, which it returns.
func (a *Adapter) steer(ctx context.Context, write func(context.Context, *fleet.Controller) (fleet.Change, error)) (string, error) {
	ctl := a.cfg.Fleet
	if ctl == nil {
		return "", fmt.Errorf("the fleet is not read here: %s", a.cfg.FleetErr)
	}
	ch, err := write(ctx, ctl)
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	a.mineLocked(pipeline.Event{Time: ch.Desired.At, Source: pipeline.SourceFleet, Kind: pipeline.KindControl, Level: pipeline.Info,
		Message: fmt.Sprintf("%s: %s", ch.Desired.By, ch)})
	a.mu.Unlock()
	ack, err := ctl.Wait(ctx, ch, nil)
	lv := pipeline.Info
	if err != nil {
		lv = pipeline.Warn
	}
	msg := ack.String()
	if err != nil && ctx.Err() != nil {
		msg = err.Error() // timed out: Wait published nothing
	}
	a.mu.Lock()
	e := pipeline.Event{Time: time.Now(), Source: pipeline.SourceFleet, Kind: pipeline.KindControl, Level: lv, Message: msg}
	if ctx.Err() != nil {
		a.addEventLocked(e)
	} else {
		a.mineLocked(e)
	}
	a.mu.Unlock()
	return msg, err
}

// ScaleFleet implements tui.Fleet.
func (a *Adapter) ScaleFleet(ctx context.Context, total int) (string, error) {
	return a.steer(ctx, func(ctx context.Context, c *fleet.Controller) (fleet.Change, error) { return c.Scale(ctx, total) })
}

// ScaleInstance implements tui.Fleet.
func (a *Adapter) ScaleInstance(ctx context.Context, instance string, n int) (string, error) {
	return a.steer(ctx, func(ctx context.Context, c *fleet.Controller) (fleet.Change, error) {
		return c.ScaleInstance(ctx, instance, n)
	})
}

// TargetFleet implements tui.Fleet.
func (a *Adapter) TargetFleet(ctx context.Context, spec string) (string, error) {
	if _, err := a.servable(ctx, spec); err != nil {
		return "", err
	}
	return a.steer(ctx, func(ctx context.Context, c *fleet.Controller) (fleet.Change, error) { return c.SetTarget(ctx, spec) })
}

// PauseFleet implements tui.Fleet.
func (a *Adapter) PauseFleet(ctx context.Context, paused bool) (string, error) {
	return a.steer(ctx, func(ctx context.Context, c *fleet.Controller) (fleet.Change, error) { return c.SetPaused(ctx, paused) })
}

// servable parses a target and, when this console reaches TF Serving,
// refuses one the server cannot serve instead of sending every record to
// retries and the breaker.
func (a *Adapter) servable(ctx context.Context, spec string) (tfserving.Target, error) {
	t, err := tfserving.ParseTarget(spec)
	if err != nil {
		return t, err
	}
	if a.cfg.TFS != nil {
		if _, err := a.cfg.TFS.Metadata(ctx, a.cfg.Model, t); err != nil {
			return t, fmt.Errorf("%s is not servable: %w", t, err)
		}
	}
	return t, nil
}

// serverLoop reads TF Serving's own metrics page (--tfserving-metrics).
func (a *Adapter) serverLoop(ctx context.Context) {
	w := a.cfg.ServerMetrics
	w.Scrape(ctx)
	v, err := w.View()
	s := tui.ServerLatency{Source: w.URL()}
	switch {
	case errors.Is(err, tfserving.ErrNoServerView):
		s.Err = "first read of " + w.URL() + ": rates need a second"
	case err != nil:
		s.Err = err.Error() + " (set --tfserving-metrics to TF Serving's http://HOST:8501" + pipeline.TFServingMetricsPath + ")"
	default:
		s.Known = true
		s.P50, s.P95, s.P99, s.Mean, s.RPS, s.Errors = v.P50, v.P95, v.P99, v.Mean, v.RPS(), v.Errors
		var by []string
		for _, st := range slices.Sorted(maps.Keys(v.ByStatus)) {
			if st != "OK" {
				by = append(by, fmt.Sprintf("%s %.0f", st, v.ByStatus[st]))
			}
		}
		s.ByStatus = strings.Join(by, ", ")
		if v.Count == 0 && v.Requests == 0 {
			s.Known, s.Err = false, "no requests for "+a.cfg.Model+" in the last interval"
		}
	}
	a.mu.Lock()
	a.d.Latency.Server = s
	a.mu.Unlock()
}
