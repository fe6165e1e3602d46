package tfserving

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/dns"
	"google.golang.org/grpc/serviceconfig"
	"google.golang.org/grpc/status"

	"github.com/inferops/inferops/infer/tfpb"
	"github.com/inferops/inferops/pipeline"
)

// Addresses is a parsed --tfserving: a static list of hosts, or a DNS name
// whose every address is a host.
type Addresses struct {
	Hosts []string // host:port, in the order given; nil for a DNS name
	DNS   string   // the dns:/// target as given; "" for a list
}

// ParseAddress reads --tfserving: "host:port", "h1:8500,h2:8500,..." or
// "dns:///name:port" (gRPC's DNS resolver; dns://server/name:port asks that
// DNS server). It is the one place the flag's syntax lives.
func ParseAddress(s string) (Addresses, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "dns:") {
		u, err := url.Parse(s)
		if err != nil {
			return Addresses{}, fmt.Errorf("--tfserving %q: %v (want dns:///name:port)", s, err)
		}
		if err := checkHostPort(s, dnsEndpointOf(u)); err != nil {
			return Addresses{}, err
		}
		return Addresses{DNS: s}, nil
	}
	var a Addresses
	seen := map[string]bool{}
	for _, h := range strings.Split(s, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			return Addresses{}, fmt.Errorf("--tfserving %q: empty address in the list (want host:port,host:port)", s)
		}
		if err := checkHostPort(s, h); err != nil {
			return Addresses{}, err
		}
		if !seen[h] {
			seen[h] = true
			a.Hosts = append(a.Hosts, h)
		}
	}
	return a, nil
}

// dnsEndpoint is the name:port of a dns: target.
func dnsEndpoint(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return target
	}
	return dnsEndpointOf(u)
}

func dnsEndpointOf(u *url.URL) string {
	if u.Opaque != "" {
		return u.Opaque
	}
	return strings.TrimPrefix(u.Path, "/")
}

func checkHostPort(flag, hp string) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil || port == "" {
		return fmt.Errorf("--tfserving %q: %q: want host:port, e.g. 10.0.0.5:8500 (a list: h1:8500,h2:8500; a DNS name: dns:///tfs.example:8500)", flag, hp)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return fmt.Errorf("--tfserving %q: port %q is not 1-65535", flag, port)
	}
	_ = host // empty host means localhost to gRPC, as for net.Dial
	return nil
}

// Host states, as Fleet reports them.
const (
	HostUnknown  = "unknown"  // not probed yet
	HostUp       = "up"       // in rotation
	HostDown     = "down"     // failed or timed out its GetModelStatus probe
	HostEjected  = "ejected"  // much slower than its peers: out for a while
	HostExcluded = "excluded" // answers, but does not serve the target
)

// Fleet is the client's view of every TF Serving host behind --tfserving,
// for the model and target of the latest Predict (before any, Config.Model
// latest). The console, status, the triage report and doctor read it.
type Fleet struct {
	Model  string
	Target Target
	// Err says why there are no hosts (a DNS name that does not resolve).
	Err   string
	Hosts []HostSnapshot // sorted by address
	// InRotation counts hosts Predicts for Target go to.
	InRotation int
	// Skew lists the ways the hosts disagree (FindSkew); empty: they agree.
	Skew []Skew
	// Events are the latest host events, oldest first; EventsTotal counts
	// every one ever raised, so a reader that saw n takes the last
	// EventsTotal-n of Events.
	Events      []pipeline.Event
	EventsTotal int
}

// HostSnapshot is one host's state and traffic.
type HostSnapshot struct {
	Addr   string
	State  string // HostUp, HostDown, ...
	Reason string // why it is not up, with the evidence
	// Versions and Labels are what the host said in its latest probe.
	Versions []VersionStatus
	Labels   map[string]int64
	// Calls and Errors count Predict attempts since the client started
	// (retries included; cancelled calls and rows refused as
	// INVALID_ARGUMENT are not errors of the host).
	Calls, Errors int64
	// Share, Rate, P50 and P99 describe the latest stats window (a few
	// seconds): this host's part of all Predict attempts, its attempts per
	// second, and its successful round trips.
	Share    float64
	Rate     float64
	P50, P99 time.Duration
	// EjectedUntil is when an ejected host gets traffic again.
	EjectedUntil time.Time
}

// Available lists the versions the host reports AVAILABLE, ascending.
func (h HostSnapshot) Available() []int64 { return availableOf(h.Versions) }

// host is one TF Serving address: its own connection for probes, its
// Predict stats (fed by the stats handler of every route), and what its
// probes found (guarded by fleet.mu).
type host struct {
	addr   string
	conn   *grpc.ClientConn // direct, pick_first: probes never go through a balancer
	models tfpb.ModelServiceClient
	meta   tfpb.PredictionServiceClient

	calls, errs atomic.Int64
	failing     atomic.Bool // the latest Predict attempt failed for the host's own reasons
	mu          sync.Mutex
	win         *hdrhistogram.Histogram // successful Predict round trips, µs, this window
	winCalls    int64                   // calls.Load() at the window's start

	// Guarded by fleet.mu.
	probed       bool
	err          string                 // the latest probe failure; "" = answered
	facts        map[string]*modelFacts // model -> what the host serves
	last         windowStats
	ejectedUntil time.Time
	ejectWhy     string
	peerP99      time.Duration // the peers' median p99 when last judged an outlier
	ejections    int           // consecutive ejections, for the growing ejection time
	lastEjected  time.Time
	slowWindows  int    // consecutive stats windows as a latency outlier
	state        string // as of the latest evaluation, to raise events on change
}

// modelFacts is one model on one host, as of the latest probe.
type modelFacts struct {
	err      string // GetModelStatus refused (NOT_FOUND: the host lacks the model)
	versions []VersionStatus
	labels   map[string]int64 // every label asked about; 0 = does not resolve here
}

type windowStats struct {
	calls    int64 // attempts
	ok       int64 // successful ones, whose latency is in p50/p99
	p50, p99 time.Duration
	length   time.Duration
}

func newHost(addr string, conn *grpc.ClientConn) *host {
	return &host{addr: addr, conn: conn, models: tfpb.NewModelServiceClient(conn), meta: tfpb.NewPredictionServiceClient(conn),
		win: hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3), facts: map[string]*modelFacts{}, state: HostUnknown}
}

// record is one Predict attempt this host served (or failed).
func (h *host) record(d time.Duration, err error) {
	h.calls.Add(1)
	if err != nil {
		switch status.Code(err) {
		case codes.Canceled, codes.InvalidArgument:
		default:
			h.errs.Add(1)
			h.failing.Store(true)
		}
		return
	}
	if h.failing.Load() {
		h.failing.Store(false)
	}
	us := max(d.Microseconds(), 1)
	h.mu.Lock()
	_ = h.win.RecordValue(us) // only fails above 60 s, which the timeout prevents
	h.mu.Unlock()
}

// rotate closes the stats window.
func (h *host) rotate(length time.Duration) windowStats {
	calls := h.calls.Load()
	h.mu.Lock()
	defer h.mu.Unlock()
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	w := windowStats{calls: calls - h.winCalls, ok: h.win.TotalCount(), length: length}
	if w.ok > 0 {
		w.p50, w.p99 = us(h.win.ValueAtQuantile(50)), us(h.win.ValueAtQuantile(99))
	}
	h.win.Reset()
	h.winCalls = calls
	return w
}

// serves reports whether the host can answer Predicts for k. Facts not
// gathered yet give the benefit of the doubt: the first probe for a new
// route runs before its first call (fleet.route).
func (h *host) serves(k routeKey) (bool, string) {
	if k.any {
		return true, ""
	}
	f := h.facts[k.model]
	if f == nil {
		return true, ""
	}
	if f.err != "" {
		return false, f.err
	}
	avail := availableOf(f.versions)
	switch {
	case k.target.Label != "":
		v, asked := f.labels[k.target.Label]
		if asked && v == 0 {
			return false, fmt.Sprintf("label %s does not resolve here (AVAILABLE: %s)", k.target.Label, versionsString(avail))
		}
	case k.target.Version != 0:
		for _, v := range avail {
			if v == k.target.Version {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%s v%d is not AVAILABLE here (AVAILABLE: %s)", k.model, k.target.Version, versionsString(avail))
	default:
		if len(avail) == 0 {
			return false, fmt.Sprintf("no version of %s is AVAILABLE here", k.model)
		}
	}
	return true, ""
}

func availableOf(vs []VersionStatus) []int64 {
	var out []int64
	for _, v := range vs {
		if v.State == "AVAILABLE" {
			out = append(out, v.Version)
		}
	}
	return out
}

func versionsString(vs []int64) string {
	if len(vs) == 0 {
		return "none"
	}
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = strconv.FormatInt(v, 10)
	}
	return strings.Join(parts, ",")
}

// probeResult is what one probe of one host found.
type probeResult struct {
	err   string // transport failure or timeout: the host is down
	facts map[string]*modelFacts
}

// probe asks the host GetModelStatus for each model and resolves each label
// with GetModelMetadata (TF Serving 2.12's GetModelStatus ignores labels).
// Only answers that come from a TF Serving (OK, NOT_FOUND, ...) count as
// up; a connection failure, a timeout or a non-TF-Serving peer is down.
func (h *host) probe(ctx context.Context, timeout time.Duration, models map[string][]string) probeResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res := probeResult{facts: map[string]*modelFacts{}}
	for model, labels := range models {
		resp, err := h.models.GetModelStatus(ctx, &tfpb.GetModelStatusRequest{ModelSpec: &tfpb.ModelSpec{Name: model}})
		f := &modelFacts{labels: map[string]int64{}}
		if err != nil {
			if hostFault(err) {
				return probeResult{err: probeError(err, timeout)}
			}
			f.err = fmt.Sprintf("GetModelStatus %s: %s: %s", model, tfpb.Code(status.Code(err)), status.Convert(err).Message())
			res.facts[model] = f
			continue
		}
		for _, v := range resp.GetModelVersionStatus() {
			f.versions = append(f.versions, VersionStatus{Version: v.GetVersion(), State: v.GetState().String(),
				ErrorCode: v.GetStatus().GetErrorCode().String(), ErrorMessage: v.GetStatus().GetErrorMessage()})
		}
		sort.Slice(f.versions, func(i, j int) bool { return f.versions[i].Version < f.versions[j].Version })
		for _, l := range labels {
			md, err := h.meta.GetModelMetadata(ctx, &tfpb.GetModelMetadataRequest{
				ModelSpec: Target{Label: l}.Spec(model, ""), MetadataField: []string{"signature_def"}})
			switch {
			case err == nil:
				f.labels[l] = md.GetModelSpec().GetVersion().GetValue()
			case hostFault(err):
				return probeResult{err: probeError(err, timeout)}
			default:
				f.labels[l] = 0
			}
		}
		res.facts[model] = f
	}
	return res
}

// hostFault: the error says the host is unusable, not that it lacks
// something. Anything TF Serving answers about a model or label (NOT_FOUND,
// INVALID_ARGUMENT, FAILED_PRECONDITION) means it is up.
func hostFault(err error) bool {
	switch status.Code(err) {
	case codes.NotFound, codes.InvalidArgument, codes.FailedPrecondition:
		return false
	}
	return true
}

func probeError(err error, timeout time.Duration) string {
	st := status.Convert(err)
	if st.Code() == codes.DeadlineExceeded {
		return fmt.Sprintf("GetModelStatus timed out after %v", timeout)
	}
	return fmt.Sprintf("GetModelStatus: %s: %s", tfpb.Code(st.Code()), st.Message())
}

// hostSource yields the host list: once for a static list, on every
// resolution for a DNS name.
type hostSource interface {
	resolveNow()
	close()
}

type staticSource struct{}

func (staticSource) resolveNow() {}
func (staticSource) close()      {}

// dnsSource runs gRPC's own DNS resolver (the one dns:/// targets use) and
// hands each resolution to update. gRPC's resolver re-resolves only when
// asked (ResolveNow), at most every 30 s; the fleet asks when a host goes
// down and periodically, so hosts that join the name are found.
type dnsSource struct {
	r resolver.Resolver
}

func startDNS(target string, update func([]string), fail func(error)) (*dnsSource, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("--tfserving %q: %v", target, err)
	}
	r, err := dns.NewBuilder().Build(resolver.Target{URL: *u}, &dnsWatch{update: update, fail: fail}, resolver.BuildOptions{DisableServiceConfig: true})
	if err != nil {
		return nil, fmt.Errorf("--tfserving %q: %v", target, err)
	}
	return &dnsSource{r: r}, nil
}

func (d *dnsSource) resolveNow() { d.r.ResolveNow(resolver.ResolveNowOptions{}) }
func (d *dnsSource) close()      { d.r.Close() }

// dnsWatch is the resolver.ClientConn gRPC's DNS resolver reports to.
type dnsWatch struct {
	update func([]string)
	fail   func(error)
}

func (w *dnsWatch) UpdateState(s resolver.State) error {
	var addrs []string
	for _, e := range s.Endpoints {
		for _, a := range e.Addresses {
			addrs = append(addrs, a.Addr)
		}
	}
	if len(s.Endpoints) == 0 {
		for _, a := range s.Addresses {
			addrs = append(addrs, a.Addr)
		}
	}
	w.update(addrs)
	return nil
}

func (w *dnsWatch) ReportError(err error) { w.fail(err) }

func (w *dnsWatch) NewAddress(as []resolver.Address) {
	_ = w.UpdateState(resolver.State{Addresses: as})
}

func (w *dnsWatch) ParseServiceConfig(string) *serviceconfig.ParseResult {
	return &serviceconfig.ParseResult{Err: errors.New("service configs from DNS are not used")}
}
