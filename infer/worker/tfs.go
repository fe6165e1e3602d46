package worker

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/inferops/inferops/infer/tfpb"
	"github.com/inferops/inferops/infer/tfserving"
)

// predictOnce is one Predict of rows x p.width features.
//
// A Predict refused as INVALID_ARGUMENT may be about the rows (bisect and
// dead-letter them) or about the request as a whole: a label that does not
// exist, a version whose signature is not the one records were validated
// for. Splitting the batch in the second case would dead-letter every record
// for an operator's typo, so the server itself is asked (targetFault) before
// the rows are blamed. Messages are never parsed: their wording is the
// server's, and differs between TF Serving versions and our embedded server.
// The client's own checks are a *tfserving.RequestError with no gRPC code,
// so they fall through to the outage path like any other non-row failure.
func (p *Pool) predictOnce(ctx context.Context, t tfserving.Target, rows int, data []float32) (predictResult, error) {
	var res *tfserving.PredictResult
	var err error
	if p.predictHook != nil {
		err = p.predictHook(rows, data, p.width)
	}
	if err == nil {
		res, err = p.tfs.Predict(ctx, tfserving.PredictRequest{
			Model: p.cfg.Model, Target: t, Input: p.inputName, Rows: rows, Width: p.width, Data: data,
			OutputFilter: p.outputFilter,
		})
	}
	if err != nil {
		switch code := status.Code(err); code {
		case codes.InvalidArgument, codes.FailedPrecondition:
			if problem := p.targetFault(ctx, t); problem != nil {
				return predictResult{}, &targetError{predict: err, problem: problem}
			}
			if code == codes.FailedPrecondition {
				// The target checks out, yet the server is not in a state
				// to run it (TF: e.g. uninitialised variables): a broken
				// model is no fault of the rows either, so retry as before.
				return predictResult{}, err
			}
			return predictResult{}, &rejectedError{msg: status.Convert(err).Message()}
		}
		return predictResult{}, err
	}
	out, ok := res.Outputs[p.outputName]
	if !ok {
		return predictResult{}, fmt.Errorf("model %s v%d returned no output %q", p.cfg.Model, res.Version, p.outputName)
	}
	vals, err := out.AsFloat32()
	if err != nil {
		return predictResult{}, fmt.Errorf("model %s v%d output %q: %v", p.cfg.Model, res.Version, p.outputName, err)
	}
	if len(vals) == 0 || len(vals)%rows != 0 {
		return predictResult{}, fmt.Errorf("model %s v%d output %q has %d values for %d rows", p.cfg.Model, res.Version, p.outputName, len(vals), rows)
	}
	return predictResult{version: res.Version, values: vals, width: len(vals) / rows}, nil
}

// targetError is a Predict refused because of what it was sent to, not
// because of its rows. predictRetry treats it like an outage (backoff,
// breaker, an event saying what is wrong) and never dead-letters for it.
type targetError struct {
	predict error // what Predict said
	problem error // what the metadata probe found wrong with the target
}

func (e *targetError) Error() string {
	return fmt.Sprintf("%v; the target is at fault, not the records: %v (nothing is dead-lettered: the records wait until the target serves the signature they were validated for; switch the target, or restart the worker to adopt a new signature)", e.predict, e.problem)
}

func (e *targetError) Unwrap() error { return e.predict }

// probeTTL is how long a verdict on a target is trusted. Bisecting one batch
// takes up to 2*MaxBatch Predicts and a flood of bad rows many more: one
// metadata call a second bounds what the probing costs TF Serving, while a
// target that breaks is noticed within a second.
const probeTTL = time.Second

// targetProbes caches targetFault's verdicts per target. The zero value is
// ready; a verdict being computed is shared by every caller that wants it,
// so concurrent rejections cost one GetModelMetadata, not one each.
type targetProbes struct {
	mu      sync.Mutex
	entries map[tfserving.Target]*probeEntry
	calls   atomic.Uint64 // GetModelMetadata calls made (tests)
}

type probeEntry struct {
	done  chan struct{} // closed once err and until are set
	err   error         // nil: the target serves what records are validated for
	until time.Time
}

// targetFault says why t cannot serve the records the worker validated, or
// nil when it can (then a refused batch is the rows' fault).
func (p *Pool) targetFault(ctx context.Context, t tfserving.Target) error {
	pr := &p.probes
	now := time.Now()
	pr.mu.Lock()
	e := pr.entries[t]
	if e != nil && e.settled() && !now.Before(e.until) {
		e = nil
	}
	if e == nil {
		if pr.entries == nil {
			pr.entries = map[tfserving.Target]*probeEntry{}
		}
		// Old targets go, so switching targets all day does not grow the map.
		for k, old := range pr.entries {
			if old.settled() && !now.Before(old.until) {
				delete(pr.entries, k)
			}
		}
		e = &probeEntry{done: make(chan struct{})}
		pr.entries[t] = e
		pr.mu.Unlock()
		pr.calls.Add(1)
		e.err = p.checkTarget(ctx, t)
		e.until = time.Now().Add(probeTTL)
		if ctx.Err() != nil {
			// The probe was cut short by this caller's deadline or stop,
			// which says nothing about the target: let the next one ask.
			e.until = time.Time{}
		}
		close(e.done)
		return e.err
	}
	pr.mu.Unlock()
	select {
	case <-e.done:
		return e.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *probeEntry) settled() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// checkTarget asks TF Serving what t serves and compares its serving_default
// with what the worker sends: one DT_FLOAT input p.inputName of [-1, p.width]
// and the output p.outputName. Any failure to answer (unknown label:
// INVALID_ARGUMENT, unknown version: NOT_FOUND, the server going away) is the
// target's problem too.
func (p *Pool) checkTarget(ctx context.Context, t tfserving.Target) error {
	md, err := p.tfs.Metadata(ctx, p.cfg.Model, t)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("model %s v%d (%s) %s", md.Model, md.Version, t, tfserving.DefaultSignature)
	sig, ok := md.Signatures[tfserving.DefaultSignature]
	if !ok {
		return fmt.Errorf("%s does not exist", what)
	}
	in, ok := sig.Inputs[p.inputName]
	switch {
	case !ok || len(sig.Inputs) != 1:
		return fmt.Errorf("%s takes inputs %s; the worker sends one, %q", what, aliases(sig.Inputs), p.inputName)
	case in.DType != tfpb.DataType_DT_FLOAT:
		return fmt.Errorf("%s input %q is %s; the worker sends DT_FLOAT", what, p.inputName, in.DType)
	case len(in.Shape) != 2 || in.Shape[1] != int64(p.width):
		return fmt.Errorf("%s input %q has shape %v; the worker validates records for [-1 %d]", what, p.inputName, in.Shape, p.width)
	}
	if _, ok := sig.Outputs[p.outputName]; !ok {
		return fmt.Errorf("%s has outputs %s, not %q, which the worker asks for", what, aliases(sig.Outputs), p.outputName)
	}
	return nil
}

func aliases(m map[string]tfserving.TensorInfo) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, fmt.Sprintf("%q", n))
	}
	sort.Strings(names)
	return "{" + strings.Join(names, ", ") + "}"
}
