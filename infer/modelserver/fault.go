package modelserver

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/inferops/inferops/infer/tfpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Fault makes one model version misbehave on purpose (`inferops serve
// --fault MODEL/VERSION:latency=50ms,errors=5%`): an SRE rehearses a bad
// rollout on the embedded stack, and the rollout gates are tested against
// a version that really is slow or failing. It applies to Predict (gRPC
// and REST) only: GetModelStatus and metadata still say AVAILABLE, as they
// do for a real model that is slow or broken.
type Fault struct {
	Model string
	// Version is the version it applies to; 0 (written "*") is every
	// version of Model.
	Version int64
	// Latency is added to every Predict of the version, after its batch
	// ran (a cancelled or timed-out call stops waiting).
	Latency time.Duration
	// Errors is the fraction (0..1] of Predict calls that fail, after
	// their latency, with Code. Which calls fail is pseudo-random but fixed
	// by the spec: the same spec fails the same call numbers on every run,
	// so a test's count is exact.
	Errors float64
	// Code is the failed calls' status (code=internal); zero is
	// UNAVAILABLE (REST 503). Clients retry UNAVAILABLE (ours up to 3
	// attempts), so a caller sees about Errors^3 of its calls fail; a code
	// no one retries, e.g. INTERNAL (REST 500), shows every failure.
	Code codes.Code
}

// faultForm is the form every --fault error teaches.
const faultForm = "want MODEL/VERSION:KEY=VALUE[,KEY=VALUE] with VERSION a number or * (every version) and keys latency (a duration, e.g. latency=50ms), errors (a percentage, e.g. errors=5%) and code (the failures' gRPC code, default unavailable, e.g. code=internal), e.g. --fault my_model/2:latency=50ms,errors=5%"

// maxFaultLatency bounds latency=: past a minute every client has timed
// out long ago (REST's own write timeout is 30 s).
const maxFaultLatency = time.Minute

// ParseFault reads one --fault spec, e.g. "my_model/2:latency=50ms,errors=5%"
// or "ads_ctr/*:errors=100%".
func ParseFault(spec string) (Fault, error) {
	bad := func(format string, a ...any) (Fault, error) {
		return Fault{}, fmt.Errorf("--fault %q: %s (%s)", spec, fmt.Sprintf(format, a...), faultForm)
	}
	target, params, ok := strings.Cut(spec, ":")
	if !ok {
		return bad("no KEY=VALUE after the model")
	}
	name, ver, ok := strings.Cut(strings.TrimSpace(target), "/")
	if !ok {
		return bad("no version: give MODEL/VERSION, e.g. %s/2, or %s/* for every version", target, target)
	}
	f := Fault{Model: name}
	if ver != "*" {
		v, err := strconv.ParseInt(ver, 10, 64)
		if err != nil || v < 1 {
			return bad("version %q is not a version number (1, 2, ...) or *", ver)
		}
		f.Version = v
	}
	seen := map[string]bool{}
	for _, kv := range strings.Split(params, ",") {
		key, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return bad("%q is not KEY=VALUE", strings.TrimSpace(kv))
		}
		if seen[key] {
			return bad("%s is given twice", key)
		}
		seen[key] = true
		switch key {
		case "latency":
			d, err := time.ParseDuration(val)
			if err != nil {
				return bad("latency=%s is not a duration with a unit, e.g. latency=50ms", val)
			}
			f.Latency = d
		case "errors":
			num, ok := strings.CutSuffix(val, "%")
			if !ok {
				return bad("errors=%s is not a percentage, e.g. errors=5%%", val)
			}
			p, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return bad("errors=%s is not a percentage, e.g. errors=5%%", val)
			}
			f.Errors = p / 100
		case "code":
			c, ok := tfpb.Code_value[strings.ToUpper(val)]
			if !ok || c == 0 {
				return bad("code=%s is not a gRPC error code, e.g. code=unavailable or code=internal", val)
			}
			f.Code = codes.Code(c)
		default:
			return bad("unknown key %q", key)
		}
	}
	if err := f.validate(); err != nil {
		return Fault{}, fmt.Errorf("--fault %q: %v", spec, err)
	}
	return f, nil
}

// validate checks the ranges, for ParseFault and for a Config built in
// code; its errors follow "--fault SPEC: ".
func (f Fault) validate() error {
	switch {
	case !validModelName(f.Model):
		return fmt.Errorf("model %q: a model name is letters, digits, '_', '-' and '.', not starting with '.'", f.Model)
	case f.Version < 0:
		return fmt.Errorf("version %d: a version is 1, 2, ... or * (0) for every version", f.Version)
	case f.Latency < 0 || f.Latency > maxFaultLatency:
		return fmt.Errorf("latency=%v: want 0 to %v", f.Latency, maxFaultLatency)
	case !(f.Errors >= 0 && f.Errors <= 1): // NaN too
		return fmt.Errorf("errors=%s: want 0%% to 100%%", percent(f.Errors))
	case f.Latency == 0 && f.Errors == 0:
		return errors.New("does nothing: give latency=50ms and/or errors=5%")
	case f.Code != 0 && f.Errors == 0:
		return fmt.Errorf("code=%s needs errors=, e.g. errors=5%%,code=%[1]s", f.codeName())
	case f.Code > codes.Unauthenticated:
		return fmt.Errorf("code %d is not a gRPC error code", uint32(f.Code))
	}
	return nil
}

// String is the spec form ParseFault reads.
func (f Fault) String() string {
	ver := "*"
	if f.Version != 0 {
		ver = strconv.FormatInt(f.Version, 10)
	}
	var kv []string
	if f.Latency > 0 {
		kv = append(kv, "latency="+f.Latency.String())
	}
	if f.Errors > 0 {
		kv = append(kv, "errors="+percent(f.Errors))
	}
	if f.Code != 0 && f.Code != codes.Unavailable {
		kv = append(kv, "code="+f.codeName())
	}
	return f.Model + "/" + ver + ":" + strings.Join(kv, ",")
}

// codeName is the code as code= takes it: internal, resource_exhausted.
func (f Fault) codeName() string { return strings.ToLower(tfpb.Code(f.failCode()).String()) }

// failCode is the status of a failed call.
func (f Fault) failCode() codes.Code {
	if f.Code == codes.OK {
		return codes.Unavailable
	}
	return f.Code
}

func percent(frac float64) string { return strconv.FormatFloat(frac*100, 'g', 10, 64) + "%" }

// validateFaults is Config.Validate's part: each fault, and one fault per
// model version (two specs for one version are one spec with both keys).
func validateFaults(fs []Fault) error {
	seen := map[[2]string]bool{}
	for _, f := range fs {
		if err := f.validate(); err != nil {
			return fmt.Errorf("--fault %s: %v", f, err)
		}
		k := [2]string{f.Model, strconv.FormatInt(f.Version, 10)}
		if seen[k] {
			return fmt.Errorf("--fault %s: a second fault for %s: put every key in one spec, e.g. %s:latency=50ms,errors=5%%", f, f.target(), f.target())
		}
		seen[k] = true
	}
	return nil
}

// target is MODEL/VERSION as the spec writes it.
func (f Fault) target() string {
	s := f.String()
	return s[:strings.IndexByte(s, ':')]
}

// activeFault is a configured fault with its call counter.
type activeFault struct {
	Fault
	spec  string
	seed  uint64
	calls atomic.Uint64
}

// faults are a server's active faults; nil when there are none, so a
// server without --fault pays one length check per Predict.
type faults []*activeFault

func newFaults(fs []Fault) faults {
	var out faults
	for _, f := range fs {
		h := fnv.New64a()
		h.Write([]byte(f.String()))
		out = append(out, &activeFault{Fault: f, spec: f.String(), seed: h.Sum64()})
	}
	return out
}

// specs lists the faults for the start-up warning.
func (fs faults) specs() []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.spec
	}
	return out
}

// apply runs the faults that match a Predict just computed by model
// version: their latency, then maybe their error.
func (fs faults) apply(ctx context.Context, m *metrics, model string, version int64) error {
	for _, f := range fs {
		if f.Model != model || (f.Version != 0 && f.Version != version) {
			continue
		}
		if f.Latency > 0 {
			m.injected(model, version, "latency")
			if err := pause(ctx, f.Latency); err != nil {
				return err
			}
		}
		if f.Errors > 0 && f.fails(f.calls.Add(1)) {
			m.injected(model, version, "error")
			return status.Errorf(f.failCode(), "injected fault: %s v%d fails %s of Predict calls on purpose (inferops serve --fault %s)", model, version, percent(f.Errors), f.spec)
		}
	}
	return nil
}

// fails says whether call n fails: a splitmix64 hash of the call number is
// uniform, so any run of calls fails close to Errors of them, yet not every
// 1/Errors-th call: a client's retry of a failed call (ours retries
// UNAVAILABLE) fails again as often as a real flaky version would.
func (f *activeFault) fails(n uint64) bool {
	z := f.seed + n*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11)/(1<<53) < f.Errors
}

// pause waits d, or until ctx ends (then the call's status is ctx's):
// --inject-latency and latency= faults both wait this way.
func pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}
