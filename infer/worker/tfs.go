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

	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
)

// predictOnce is one Predict of a batch of rows.
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
func (p *Pool) predictOnce(ctx context.Context, t tfserving.Target, rows int, in map[string]*tensor.Tensor) (predictResult, error) {
	var res *tfserving.PredictResult
	var err error
	if p.predictHook != nil {
		err = p.predictHook(in)
	}
	if err == nil {
		res, err = p.tfs.Predict(ctx, tfserving.PredictRequest{
			Model: p.cfg.Model, Target: t, Inputs: in, OutputFilter: p.outputs,
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
	pr := predictResult{version: res.Version, outputs: make([]pipeline.Output, len(p.outputs)), tensors: make([]*tensor.Tensor, len(p.outputs))}
	for i, name := range p.outputs {
		out, ok := res.Outputs[name]
		if !ok {
			return predictResult{}, fmt.Errorf("model %s v%d returned no output %q", p.cfg.Model, res.Version, name)
		}
		if len(out.Shape) == 0 || out.Shape[0] != int64(rows) {
			return predictResult{}, fmt.Errorf("model %s v%d output %q has shape %v for %d rows: outputs must have the batch first", p.cfg.Model, res.Version, name, out.Shape, rows)
		}
		pr.outputs[i] = pipeline.Output{NameJSON: p.outputJSON[i], Rows: resultRows{t: &out, opt: tensor.JSONOptions{Binary: p.binary[i]}}}
		pr.tensors[i] = &out
	}
	return pr, nil
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
// with what the worker sends and reads (signatureFault). Any failure to
// answer (unknown label: INVALID_ARGUMENT, unknown version: NOT_FOUND, the
// server going away) is the target's problem too.
func (p *Pool) checkTarget(ctx context.Context, t tfserving.Target) error {
	md, err := p.tfs.Metadata(ctx, p.cfg.Model, t)
	if err != nil {
		return err
	}
	if problem := p.signatureFault(md); problem != nil {
		return fmt.Errorf("model %s v%d (%s) %s: %w", md.Model, md.Version, t, tfserving.DefaultSignature, problem)
	}
	return nil
}

// signatureFault says which input or output of md's serving_default is
// not the one the running worker validates records for and writes
// results from; nil when it serves them.
func (p *Pool) signatureFault(md *tfserving.Metadata) error {
	sig, ok := md.Signatures[tfserving.DefaultSignature]
	if !ok {
		return fmt.Errorf("there is no %s signature", tfserving.DefaultSignature)
	}
	if err := p.schema.Diff(sig.InputSpecs()); err != nil {
		return err
	}
	for _, o := range p.outputs {
		if _, ok := sig.Outputs[o]; !ok {
			return fmt.Errorf("it has outputs %s, not %q, which the worker writes in results", aliases(sig.Outputs), o)
		}
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
