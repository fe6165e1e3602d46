package tfserving

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	_ "google.golang.org/grpc/balancer/leastrequest" // registers least_request_experimental
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/inferops/inferops/infer/tfpb"
)

// Balancing policies (Config.Balancer): gRPC's own, chosen by service config.
const (
	// BalanceLeastRequest samples two hosts and sends to the one with fewer
	// calls in flight, so a slow host gets less traffic before it is ejected
	// (DESIGN.md, "TF Serving hosts", has the measurement).
	BalanceLeastRequest = "least_request"
	// BalanceRoundRobin sends to every host in turn, whatever its speed.
	BalanceRoundRobin = "round_robin"
)

// serviceConfig selects the balancer and retries a Predict (or status call)
// that failed UNAVAILABLE on another host: each retry is a new pick, so the
// in-flight batches of a host that dies land elsewhere within milliseconds,
// without the caller's backoff. Predict is a pure function of its request,
// so a retry cannot double anything. The throttle stops retries from
// multiplying load when every host fails.
func serviceConfig(policy string) string {
	lb := `{"round_robin":{}}`
	switch policy {
	case BalanceLeastRequest:
		lb = `{"least_request_experimental":{"choiceCount":2}}`
	case "pick_first":
		lb = `{"pick_first":{}}`
	}
	return `{"loadBalancingConfig":[` + lb + `],` +
		`"methodConfig":[{"name":[{"service":"tensorflow.serving.PredictionService"},{"service":"tensorflow.serving.ModelService","method":"GetModelStatus"}],` +
		`"retryPolicy":{"maxAttempts":3,"initialBackoff":"0.01s","maxBackoff":"0.1s","backoffMultiplier":2,"retryableStatusCodes":["UNAVAILABLE"]}}],` +
		`"retryThrottling":{"maxTokens":100,"tokenRatio":1}}`
}

// routeKey is what a call asks for. Each key has its own ClientConn whose
// resolver publishes only the hosts that serve it: a Predict for v2 never
// reaches a host without v2, while the worker switching targets just starts
// using another route.
type routeKey struct {
	model  string
	target Target
	any    bool // calls about no model (Reload): any host that answers
	// pinned calls (GetModelStatus) go to the first host in rotation, not
	// a balanced one: a console asking every second must not see the
	// version list flip between hosts that disagree (the skew flag and the
	// host table say that).
	pinned bool
}

func (k routeKey) String() string {
	if k.any {
		return "any host"
	}
	return k.target.describe(k.model)
}

// keyOf reads the ModelSpec every TF Serving request but Reload carries.
func keyOf(req any) routeKey {
	m, ok := req.(interface{ GetModelSpec() *tfpb.ModelSpec })
	if !ok || m.GetModelSpec().GetName() == "" {
		return routeKey{any: true}
	}
	spec := m.GetModelSpec()
	_, isStatus := req.(*tfpb.GetModelStatusRequest)
	k := routeKey{model: spec.GetName(), pinned: isStatus}
	if l := spec.GetVersionLabel(); l != "" {
		k.target.Label = l
	} else if v := spec.GetVersion(); v != nil {
		k.target.Version = v.GetValue()
	}
	return k
}

// route is one ClientConn over the hosts that serve its key.
type route struct {
	key   routeKey
	res   *manual.Resolver
	cc    *grpc.ClientConn
	ready chan struct{} // closed once the hosts were probed for key
	// published is the address list the resolver holds (fleet.pubMu);
	// hosts is the same for readers without the lock.
	published []string
	hosts     atomic.Pointer[[]string]
}

// router is the grpc.ClientConnInterface the generated stubs call: it
// sends each call down the route of its ModelSpec.
type router struct{ f *fleet }

// callNote carries, per call, which host served the latest attempt, so an
// error names the host that failed rather than the whole list.
type callNote struct {
	predict bool // only Predict attempts count in a host's stats
	host    atomic.Pointer[host]
}

type callNoteKey struct{}

func (r router) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	if r.f.ctx.Err() != nil {
		return status.Error(codes.Canceled, "tfserving: the client is closed")
	}
	predict := method == tfpb.PredictionService_Predict_FullMethodName
	k := keyOf(args)
	if predict {
		r.f.notePredictKey(k)
	}
	rt := r.f.route(ctx, k)
	note := &callNote{predict: predict}
	err := rt.cc.Invoke(context.WithValue(ctx, callNoteKey{}, note), method, args, reply, opts...)
	if err == nil {
		return nil
	}
	if h := note.host.Load(); h != nil {
		return &hostError{addr: h.addr, err: err}
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		// No attempt reached a host: gRPC had no connection ready to any
		// host of the route (refused, unreachable), so each is failing.
		for _, a := range *rt.hosts.Load() {
			if h := r.f.lookup(a); h != nil {
				h.failing.Store(true)
			}
		}
	}
	return err
}

func (r router) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Errorf(codes.Unimplemented, "%s: TF Serving's API has no streaming calls", method)
}

// hostError is a call's error plus the host whose attempt failed last.
type hostError struct {
	addr string
	err  error
}

func (e *hostError) Error() string              { return e.addr + ": " + e.err.Error() }
func (e *hostError) Unwrap() error              { return e.err }
func (e *hostError) GRPCStatus() *status.Status { return status.Convert(e.err) }

// route returns the route for k, creating it on first use. A new route
// waits for one probe of every host for its model and label (bounded by
// the probe timeout), so its first Predict already avoids hosts that lack
// the target.
func (f *fleet) route(ctx context.Context, k routeKey) *route {
	if v, ok := f.routes.Load(k); ok {
		rt := v.(*route)
		f.waitReady(ctx, rt)
		return rt
	}
	f.mu.Lock()
	if v, ok := f.routes.Load(k); ok {
		f.mu.Unlock()
		rt := v.(*route)
		f.waitReady(ctx, rt)
		return rt
	}
	rt, err := f.newRoute(k)
	if err != nil {
		// grpc.NewClient fails only on bad options, which Dial has already
		// built once for the same settings.
		panic(fmt.Sprintf("tfserving: route %s: %v", k, err))
	}
	f.routes.Store(k, rt)
	f.mu.Unlock()
	go func() {
		defer close(rt.ready)
		if !k.any {
			f.probeRound(f.ctx, map[string][]string{k.model: f.labelsFor(k.model)})
		}
	}()
	f.waitReady(ctx, rt)
	return rt
}

func (f *fleet) waitReady(ctx context.Context, rt *route) {
	select {
	case <-rt.ready:
	case <-ctx.Done():
	}
}

// notePredictKey remembers the target of the latest Predict: Fleet reports
// host states against it.
func (f *fleet) notePredictKey(k routeKey) {
	if p := f.current.Load(); p != nil && *p == k {
		return
	}
	f.current.Store(&k)
}

var routeSeq atomic.Uint64

// newRoute builds the ClientConn for k (f.mu held).
func (f *fleet) newRoute(k routeKey) (*route, error) {
	scheme := fmt.Sprintf("inferops-tfs-%d", routeSeq.Add(1))
	rt := &route{key: k, res: manual.NewBuilderWithScheme(scheme), ready: make(chan struct{})}
	// The balancer asks for a re-resolution when a connection fails: probe
	// now rather than at the next tick.
	rt.res.ResolveNowCallback = func(resolver.ResolveNowOptions) { f.kickProbe() }
	rt.published = f.eligibleLocked(k, time.Now())
	rt.hosts.Store(&rt.published)
	rt.res.InitialState(f.stateOf(rt.published))
	policy := f.cfg.Balancer
	if k.pinned || k.any {
		policy = "pick_first"
	}
	opts := append(slices.Clone(f.dialOpts),
		grpc.WithResolvers(rt.res),
		grpc.WithDefaultServiceConfig(serviceConfig(policy)),
		grpc.WithStatsHandler(attribution{f}),
		// Routes for targets nobody asks for any more drop their
		// connections; the route itself is a few hundred bytes.
		grpc.WithIdleTimeout(5*time.Minute),
	)
	cc, err := grpc.NewClient(scheme+":///"+f.authority, opts...)
	if err != nil {
		return nil, err
	}
	rt.cc = cc
	return rt, nil
}

// stateOf is the resolver state for a list of hosts; each address carries
// the name its certificate must have (the route's own target names no host).
func (f *fleet) stateOf(addrs []string) resolver.State {
	s := resolver.State{}
	for _, a := range addrs {
		ra := resolver.Address{Addr: a, ServerName: f.serverName(a)}
		s.Addresses = append(s.Addresses, ra)
		s.Endpoints = append(s.Endpoints, resolver.Endpoint{Addresses: []resolver.Address{ra}})
	}
	return s
}

// eligibleLocked is the address list route k publishes: the hosts that
// answer, serve k and are not ejected. It never publishes nothing: with no
// such host the caller must still get TF Serving's own answer (NOT_FOUND
// for a version no host has, a connection error when all are down), as it
// did with one host.
func (f *fleet) eligibleLocked(k routeKey, now time.Time) []string {
	var in, notEjected, reachable []string
	for _, a := range f.order {
		h := f.hosts[a]
		if !h.probed {
			continue
		}
		if h.err != "" {
			continue
		}
		reachable = append(reachable, a)
		if ok, _ := h.serves(k); !ok {
			continue
		}
		notEjected = append(notEjected, a)
		if now.Before(h.ejectedUntil) {
			continue
		}
		in = append(in, a)
	}
	switch {
	case len(in) > 0:
		return in
	case len(notEjected) > 0:
		return notEjected
	case len(reachable) > 0:
		return reachable
	}
	return slices.Clone(f.order)
}

// publish pushes every route's eligible hosts into its resolver when they
// changed. Resolver updates run outside f.mu (the balancer may call back).
func (f *fleet) publish() {
	f.pubMu.Lock()
	defer f.pubMu.Unlock()
	if f.ctx.Err() != nil {
		return // closed: the routes' connections are gone
	}
	type update struct {
		rt    *route
		addrs []string
	}
	var ups []update
	now := time.Now()
	f.mu.Lock()
	f.routes.Range(func(_, v any) bool {
		rt := v.(*route)
		addrs := f.eligibleLocked(rt.key, now)
		if !slices.Equal(addrs, rt.published) {
			ups = append(ups, update{rt, addrs})
		}
		return true
	})
	f.mu.Unlock()
	for _, u := range ups {
		u.rt.published = u.addrs
		u.rt.hosts.Store(&u.addrs)
		u.rt.res.UpdateState(f.stateOf(u.addrs))
	}
}

// attribution is the stats handler on every route's ClientConn: it charges
// each Predict attempt (retries included) to the host that served it. The
// dialer names each connection's remote address after its host (namedConn),
// so the address the transport reports is the host's key even when the
// host was given by name.
type attribution struct{ f *fleet }

func (a attribution) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (a attribution) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (a attribution) HandleConn(context.Context, stats.ConnStats) {}

func (a attribution) HandleRPC(ctx context.Context, s stats.RPCStats) {
	switch s := s.(type) {
	case *stats.OutHeader:
		if n, ok := ctx.Value(callNoteKey{}).(*callNote); ok && s.RemoteAddr != nil {
			n.host.Store(a.f.lookup(s.RemoteAddr.String()))
		}
	case *stats.End:
		n, ok := ctx.Value(callNoteKey{}).(*callNote)
		if !ok {
			return
		}
		h := n.host.Load()
		if h == nil {
			return
		}
		if !n.predict {
			return
		}
		h.record(s.EndTime.Sub(s.BeginTime), s.Error)
		if status.Code(s.Error) == codes.Unavailable {
			a.f.kickProbe()
		}
	}
}

// lookup finds the host of an address without a lock: the map is replaced
// whole when hosts come and go.
func (f *fleet) lookup(addr string) *host {
	m := f.byAddr.Load()
	if m == nil {
		return nil
	}
	return (*m)[addr]
}

// dialHost is the dialer of every connection to a host: plain TCP (gRPC to
// TF Serving never goes through an HTTP proxy), the connection's remote
// address renamed to the host's key for attribution.
func dialHost(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return namedConn{Conn: c, remote: hostAddr(addr)}, nil
}

type hostAddr string

func (a hostAddr) Network() string { return "tcp" }
func (a hostAddr) String() string  { return string(a) }

type namedConn struct {
	net.Conn
	remote net.Addr
}

func (c namedConn) RemoteAddr() net.Addr { return c.remote }
