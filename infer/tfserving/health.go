package tfserving

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/inferops/inferops/pipeline"
)

// DefaultProbeInterval is how often each host is asked GetModelStatus.
const DefaultProbeInterval = time.Second

// ProbeLabels are the version labels every host is asked to resolve, on top
// of the labels callers target: TF Serving has no call that lists labels,
// so the conventional ones are resolved one by one (and compared across
// hosts for skew).
var ProbeLabels = []string{"stable", "canary"}

// Outlier ejection: a host whose Predict p99 over outlierWindows stats windows in a row is over
// outlierRatio times the median of its peers' and outlierFloor above it is
// ejected for ejectBase, doubling on each ejection in a row up to ejectMax.
// The floor keeps sub-millisecond jitter on an idle loopback from reading
// as 3x; the minimum of calls keeps a p99 from a handful of samples out.
const (
	statsWindow     = 2 * time.Second
	outlierMinCalls = 20
	// outlierWindows is how many stats windows in a row a host must be an
	// outlier before it is ejected: one slow second is a GC pause or a
	// descheduled process (seen on a loaded 2-core box: a healthy host at
	// 4x its peers' p99 for one window), a slow host stays slow.
	outlierWindows = 3
	outlierRatio   = 3
	outlierFloor   = 10 * time.Millisecond
	ejectBase      = 15 * time.Second
	ejectMax       = 5 * time.Minute
	maxHostEvents  = 64
	dnsRefresh     = 30 * time.Second
)

// fleet is every host behind one Client: the host list (static or DNS),
// a direct connection and a probe loop per host, the routes Predicts go
// through, and the host events.
type fleet struct {
	cfg      Config
	dialOpts []grpc.DialOption
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}
	src      hostSource
	// authority names the fleet for TLS and :authority: the host itself
	// when there is one, the DNS name for a dns:/// address (so a
	// certificate for the name verifies on every address it resolves to),
	// the first host of a list.
	authority string
	dnsName   bool
	resolved  chan struct{} // closed once the first host list (or DNS error) is in
	resOnce   sync.Once
	kick      chan struct{}

	mu          sync.Mutex
	hosts       map[string]*host
	order       []string // sorted addresses
	events      []pipeline.Event
	eventsTotal int
	skewSeen    []string
	lastRotate  time.Time
	dnsErr      string

	byAddr  atomic.Pointer[map[string]*host] // for the stats handler, lock-free
	routes  sync.Map                         // routeKey -> *route
	current atomic.Pointer[routeKey]         // the latest model call's key
	pubMu   sync.Mutex                       // serialises resolver updates
}

func newFleet(cfg Config, dialOpts []grpc.DialOption) (*fleet, error) {
	addrs, err := ParseAddress(cfg.Address)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &fleet{cfg: cfg, dialOpts: dialOpts, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		resolved: make(chan struct{}), kick: make(chan struct{}, 1), hosts: map[string]*host{}, lastRotate: time.Now()}
	if addrs.DNS != "" {
		f.dnsName = true
		f.authority = dnsEndpoint(addrs.DNS)
		src, err := startDNS(addrs.DNS, f.setHosts, f.dnsFailed)
		if err != nil {
			cancel()
			return nil, err
		}
		f.src = src
	} else {
		f.src = staticSource{}
		f.authority = addrs.Hosts[0]
		f.setHosts(addrs.Hosts)
	}
	go f.run()
	return f, nil
}

func (f *fleet) close() {
	f.cancel()
	<-f.done
	f.src.close()
	f.pubMu.Lock() // no resolver update after this
	f.routes.Range(func(_, v any) bool {
		_ = v.(*route).cc.Close()
		return true
	})
	f.pubMu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range f.hosts {
		_ = h.conn.Close()
	}
}

// setHosts takes a new host list: new hosts get a connection and are probed
// at once, hosts no longer listed are dropped.
func (f *fleet) setHosts(addrs []string) {
	if len(addrs) == 0 {
		f.dnsFailed(fmt.Errorf("the name resolves to no address"))
		return
	}
	addrs = slices.Clone(addrs)
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	var gone []*host
	f.mu.Lock()
	f.dnsErr = ""
	initial := len(f.hosts) == 0
	next := make(map[string]*host, len(addrs))
	for _, a := range addrs {
		if h := f.hosts[a]; h != nil {
			next[a] = h
			continue
		}
		conn, err := grpc.NewClient("passthrough:///"+a, append(slices.Clone(f.dialOpts), grpc.WithAuthority(f.serverName(a)))...)
		if err != nil {
			f.eventLocked(pipeline.Error, fmt.Sprintf("TF Serving host %s: %v", a, err))
			continue
		}
		next[a] = newHost(a, conn)
		if !initial {
			f.eventLocked(pipeline.Info, fmt.Sprintf("TF Serving host %s joined %s", a, f.cfg.Address))
		}
	}
	for a, h := range f.hosts {
		if next[a] == nil {
			gone = append(gone, h)
			f.eventLocked(pipeline.Warn, fmt.Sprintf("TF Serving host %s left %s: no longer resolved", a, f.cfg.Address))
		}
	}
	f.hosts = next
	f.order = make([]string, 0, len(next))
	for a := range next {
		f.order = append(f.order, a)
	}
	sort.Strings(f.order)
	m := maps(next)
	f.byAddr.Store(&m)
	f.mu.Unlock()
	f.resOnce.Do(func() { close(f.resolved) })
	f.publish()
	f.kickProbe()
	for _, h := range gone {
		_ = h.conn.Close()
	}
}

// serverName is the name a host's TLS certificate must carry.
func (f *fleet) serverName(addr string) string {
	if f.dnsName {
		return f.authority
	}
	return addr
}

func maps(m map[string]*host) map[string]*host {
	out := make(map[string]*host, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (f *fleet) dnsFailed(err error) {
	f.mu.Lock()
	msg := fmt.Sprintf("resolve %s: %v (check the name and the DNS servers in /etc/resolv.conf)", f.cfg.Address, err)
	if f.dnsErr != msg {
		f.eventLocked(pipeline.Error, msg)
	}
	f.dnsErr = msg
	f.mu.Unlock()
	f.resOnce.Do(func() { close(f.resolved) })
}

func (f *fleet) kickProbe() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// probeTimeout bounds one host's probe: long enough for a loaded host to
// answer a status call, short enough that a hung one leaves the rotation
// within a few seconds.
func (f *fleet) probeTimeout() time.Duration {
	return min(max(2*f.cfg.ProbeInterval, time.Second), f.cfg.Timeout)
}

func (f *fleet) run() {
	defer close(f.done)
	t := time.NewTicker(f.cfg.ProbeInterval)
	defer t.Stop()
	lastDNS := time.Now()
	for {
		f.probeRound(f.ctx, f.probeSet())
		now := time.Now()
		if now.Sub(f.lastRotate) >= statsWindow {
			f.rotate(now)
		}
		if now.Sub(lastDNS) >= dnsRefresh {
			f.src.resolveNow()
			lastDNS = now
		}
		select {
		case <-f.ctx.Done():
			return
		case <-t.C:
		case <-f.kick:
			// A burst of failures is one extra round, not one each.
			select {
			case <-f.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// probeSet is what to ask every host: Config.Model and each routed model,
// with the conventional labels and every targeted one.
func (f *fleet) probeSet() map[string][]string {
	models := map[string][]string{f.cfg.Model: f.labelsFor(f.cfg.Model)}
	f.routes.Range(func(k, _ any) bool {
		if rk := k.(routeKey); !rk.any {
			models[rk.model] = f.labelsFor(rk.model)
		}
		return true
	})
	return models
}

func (f *fleet) labelsFor(model string) []string {
	labels := slices.Clone(ProbeLabels)
	f.routes.Range(func(k, _ any) bool {
		if rk := k.(routeKey); rk.model == model && rk.target.Label != "" && !slices.Contains(labels, rk.target.Label) {
			labels = append(labels, rk.target.Label)
		}
		return true
	})
	return labels
}

// probeRound probes every host at once and applies what they said.
func (f *fleet) probeRound(ctx context.Context, models map[string][]string) {
	select {
	case <-f.resolved:
	case <-ctx.Done():
		return
	}
	f.mu.Lock()
	hosts := make([]*host, 0, len(f.order))
	for _, a := range f.order {
		hosts = append(hosts, f.hosts[a])
	}
	f.mu.Unlock()
	results := make([]probeResult, len(hosts))
	timeout := f.probeTimeout()
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = h.probe(ctx, timeout, models)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // closing: the answers say nothing about the hosts
	}
	f.mu.Lock()
	for i, h := range hosts {
		r := results[i]
		h.probed = true
		h.err = r.err
		for m, mf := range r.facts {
			h.facts[m] = mf
		}
	}
	f.evaluateLocked(time.Now())
	f.mu.Unlock()
	f.publish()
}

func (f *fleet) currentKey() routeKey {
	if p := f.current.Load(); p != nil {
		return *p
	}
	return routeKey{model: f.cfg.Model}
}

// stateLocked is a host's state for key k.
func (f *fleet) stateLocked(h *host, k routeKey, now time.Time) (string, string) {
	switch {
	case !h.probed:
		return HostUnknown, "not probed yet"
	case h.err != "":
		return HostDown, h.err
	}
	if ok, why := h.serves(k); !ok {
		return HostExcluded, why
	}
	if now.Before(h.ejectedUntil) {
		return HostEjected, h.ejectWhy
	}
	return HostUp, ""
}

// evaluateLocked raises an event for every host whose state changed and for
// every change in version skew.
func (f *fleet) evaluateLocked(now time.Time) {
	k := f.currentKey()
	for _, a := range f.order {
		h := f.hosts[a]
		st, why := f.stateLocked(h, k, now)
		if st == h.state {
			continue
		}
		from := h.state
		h.state = st
		switch st {
		case HostUp:
			if from != HostUnknown {
				f.eventLocked(pipeline.Info, fmt.Sprintf("TF Serving host %s back in rotation (was %s)", a, from))
			}
		case HostDown:
			f.eventLocked(pipeline.Warn, fmt.Sprintf("TF Serving host %s out of rotation: %s", a, why))
			f.src.resolveNow()
		case HostExcluded:
			f.eventLocked(pipeline.Warn, fmt.Sprintf("TF Serving host %s gets no %s traffic: %s", a, k, why))
		case HostEjected:
			f.eventLocked(pipeline.Warn, fmt.Sprintf("TF Serving host %s ejected: %s", a, why))
		}
	}
	var msgs []string
	for _, s := range FindSkew(k.model, k.target, f.versionsLocked(k)) {
		msgs = append(msgs, s.Message)
		if !slices.Contains(f.skewSeen, s.Message) {
			f.eventLocked(pipeline.Warn, "version skew: "+s.Message)
		}
	}
	if len(msgs) == 0 && len(f.skewSeen) > 0 {
		f.eventLocked(pipeline.Info, fmt.Sprintf("version skew resolved: every host serves the same %s versions and labels", k.model))
	}
	f.skewSeen = msgs
}

// versionsLocked is what each answering host serves of k's model.
func (f *fleet) versionsLocked(k routeKey) []HostVersions {
	var out []HostVersions
	for _, a := range f.order {
		h := f.hosts[a]
		hv := HostVersions{Addr: a}
		switch {
		case !h.probed:
			hv.Err = "not probed yet"
		case h.err != "":
			hv.Err = h.err
		}
		if mf := h.facts[k.model]; mf != nil && hv.Err == "" {
			hv.Available = availableOf(mf.versions)
			for l, v := range mf.labels {
				if v != 0 {
					if hv.Labels == nil {
						hv.Labels = map[string]int64{}
					}
					hv.Labels[l] = v
				}
			}
		}
		out = append(out, hv)
	}
	return out
}

// rotate closes every host's stats window and ejects latency outliers.
func (f *fleet) rotate(now time.Time) {
	f.mu.Lock()
	length := now.Sub(f.lastRotate)
	f.lastRotate = now
	k := f.currentKey()
	var cands []*host
	up := 0
	for _, a := range f.order {
		h := f.hosts[a]
		h.last = h.rotate(length)
		st, _ := f.stateLocked(h, k, now)
		if st == HostUp {
			up++
			if h.last.ok >= outlierMinCalls {
				cands = append(cands, h)
			}
		}
	}
	ejected := 0
	for _, a := range f.order {
		if now.Before(f.hosts[a].ejectedUntil) {
			ejected++
		}
	}
	limit := max(1, len(f.order)/3)
	slow := outliers(cands)
	for _, a := range f.order {
		if h := f.hosts[a]; !slices.Contains(slow, h) {
			h.slowWindows = 0
		}
	}
	for _, h := range slow {
		if h.slowWindows++; h.slowWindows < outlierWindows {
			continue
		}
		if ejected >= limit || up <= 1 {
			break
		}
		h.slowWindows = 0
		if now.Sub(h.lastEjected) > 2*ejectMax {
			h.ejections = 0
		}
		h.ejections++
		d := min(ejectBase<<(h.ejections-1), ejectMax)
		h.ejectedUntil, h.lastEjected = now.Add(d), now
		h.ejectWhy = fmt.Sprintf("Predict p99 %v vs %v on its peers (ejected for %v)", h.last.p99.Round(100*time.Microsecond), h.peerP99.Round(100*time.Microsecond), d)
		ejected++
		up--
	}
	f.evaluateLocked(now)
	f.mu.Unlock()
	f.publish()
}

// outliers are the candidates much slower than the median of the others,
// slowest first; each gets peerP99 set to that median.
func outliers(cands []*host) []*host {
	if len(cands) < 2 {
		return nil
	}
	var out []*host
	for _, h := range cands {
		peers := make([]time.Duration, 0, len(cands)-1)
		for _, o := range cands {
			if o != h {
				peers = append(peers, o.last.p99)
			}
		}
		slices.Sort(peers)
		med := peers[len(peers)/2]
		if len(peers)%2 == 0 {
			med = (peers[len(peers)/2-1] + peers[len(peers)/2]) / 2
		}
		if h.last.p99 > outlierRatio*med && h.last.p99-med > outlierFloor {
			h.peerP99 = med
			out = append(out, h)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].last.p99 > out[j].last.p99 })
	return out
}

// eventLocked records a host event and logs it.
func (f *fleet) eventLocked(lv pipeline.Level, msg string) {
	e := pipeline.Event{Time: time.Now(), Source: pipeline.SourceModels, Kind: pipeline.KindHost, Level: lv, Message: msg}
	f.events = append(f.events, e)
	if len(f.events) > maxHostEvents {
		f.events = slices.Clone(f.events[len(f.events)-maxHostEvents:])
	}
	f.eventsTotal++
	if f.cfg.Log != nil {
		level := slog.LevelInfo
		switch lv {
		case pipeline.Warn:
			level = slog.LevelWarn
		case pipeline.Error:
			level = slog.LevelError
		}
		f.cfg.Log.Log(context.Background(), level, msg, "source", e.Source, "kind", e.Kind)
	}
}

// snapshot is Fleet.
func (f *fleet) snapshot() Fleet {
	k := f.currentKey()
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	fl := Fleet{Model: k.model, Target: k.target, EventsTotal: f.eventsTotal, Events: slices.Clone(f.events)}
	var total int64
	for _, a := range f.order {
		total += f.hosts[a].last.calls
	}
	for _, a := range f.order {
		h := f.hosts[a]
		st, why := f.stateLocked(h, k, now)
		hs := HostSnapshot{Addr: a, State: st, Reason: why, Calls: h.calls.Load(), Errors: h.errs.Load(), P50: h.last.p50, P99: h.last.p99}
		if h.last.length > 0 {
			hs.Rate = float64(h.last.calls) / h.last.length.Seconds()
		}
		if total > 0 {
			hs.Share = float64(h.last.calls) / float64(total)
		}
		if mf := h.facts[k.model]; mf != nil {
			hs.Versions = slices.Clone(mf.versions)
			for l, v := range mf.labels {
				if v != 0 {
					if hs.Labels == nil {
						hs.Labels = map[string]int64{}
					}
					hs.Labels[l] = v
				}
			}
		}
		if st == HostEjected {
			hs.EjectedUntil = h.ejectedUntil
		}
		if st == HostUp {
			fl.InRotation++
		}
		fl.Hosts = append(fl.Hosts, hs)
	}
	fl.Skew = FindSkew(k.model, k.target, f.versionsLocked(k))
	if len(f.order) == 0 {
		fl.Err = f.dnsErr
	}
	return fl
}

// Fleet reports every host behind the client: state, traffic, latency,
// versions, version skew and the latest host events. It makes no call.
func (c *Client) Fleet() Fleet { return c.fleet.snapshot() }

// Healthy counts the hosts in rotation for the latest target whose latest
// Predict attempt (if any) did not fail: zero means no host can take a
// call now, which is when a caller should stop calling (the worker's
// breaker counts a failure only then). With one host it is 0 after any
// failed attempt, as a single server's breaker always counted.
func (c *Client) Healthy() int {
	f := c.fleet
	k := f.currentKey()
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, a := range f.order {
		h := f.hosts[a]
		if st, _ := f.stateLocked(h, k, now); (st == HostUp || st == HostUnknown) && !h.failing.Load() {
			n++
		}
	}
	return n
}

// Probe asks every host now (waiting for the first DNS answer of a
// dns:/// address) and returns the fleet as it then stands: for one-shot
// readers (status, doctor) that cannot wait for the background probes.
func (c *Client) Probe(ctx context.Context) Fleet {
	f := c.fleet
	f.probeRound(ctx, f.probeSet())
	return f.snapshot()
}
