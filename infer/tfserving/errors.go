package tfserving

import (
	"context"
	"errors"
	"fmt"

	"github.com/inferops/inferops/infer/tfpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is a failed call: which server, what was asked, the gRPC status, and
// what the operator can do. status.Code(err) still sees the gRPC code (via
// GRPCStatus), because callers act on it: the worker retries UNAVAILABLE and
// looks closer at INVALID_ARGUMENT. The status always came from the server
// (or the gRPC transport), never from the client's own checks: those give a
// *RequestError.
type Error struct {
	Addr   string
	Op     string // e.g. "Predict my_model v2"
	Status *status.Status
	Advice string
}

func (e *Error) Error() string {
	msg := e.Status.Message()
	var s string
	if e.Status.Code() == codes.Unavailable {
		s = fmt.Sprintf("connect to TF Serving at %s: %s: %s", e.Addr, e.Op, msg)
	} else {
		// TF's spelling (NOT_FOUND), which operators see in TF's own logs.
		s = fmt.Sprintf("TF Serving at %s: %s: %s: %s", e.Addr, e.Op, tfpb.Code(e.Status.Code()), msg)
	}
	if e.Advice != "" {
		s += " (" + e.Advice + ")"
	}
	return s
}

// GRPCStatus lets status.Code and status.FromError see through the wrapper.
func (e *Error) GRPCStatus() *status.Status { return e.Status }

// Code is the gRPC code.
func (e *Error) Code() codes.Code { return e.Status.Code() }

// Is makes errors.Is(err, context.DeadlineExceeded) and
// errors.Is(err, context.Canceled) work on timed-out and cancelled calls.
func (e *Error) Is(target error) bool {
	switch target {
	case context.DeadlineExceeded:
		return e.Status.Code() == codes.DeadlineExceeded
	case context.Canceled:
		return e.Status.Code() == codes.Canceled
	}
	return false
}

// RequestError is a request the client refused to send because it is
// malformed on its face (no model, no input alias, data that does not fill
// rows x width). No server saw it, so it has no gRPC status: callers tell it
// from a server's INVALID_ARGUMENT with errors.As, and it is always the
// caller's setup or code that is wrong, never the data of one row.
type RequestError struct {
	Addr string // the server it was meant for
	Op   string // e.g. "Predict my_model latest"
	Err  error  // what is wrong, with the fix
}

func (e *RequestError) Error() string {
	return fmt.Sprintf("%s: request not sent to TF Serving at %s: %v", e.Op, e.Addr, e.Err)
}

func (e *RequestError) Unwrap() error { return e.Err }

// Retryable reports errors a caller should retry with backoff (the server is
// down, overloaded or slow), as opposed to requests that can never succeed.
func Retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
		return true
	}
	return false
}

// wrap turns a gRPC error into *Error with advice for its code.
func (c *Client) wrap(op, model string, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	// With several hosts, name the one that failed.
	addr := c.addr
	var he *hostError
	if errors.As(err, &he) {
		addr, err = he.addr, he.err
	}
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err)
	}
	return &Error{Addr: addr, Op: op, Status: st, Advice: advice(st.Code(), addr, model)}
}

func advice(code codes.Code, addr, model string) string {
	switch code {
	case codes.Unavailable:
		return "is tensorflow_model_server running? set --tfserving"
	case codes.NotFound:
		return fmt.Sprintf("check --model %q and the version; 'inferops status --tfserving %s --model %s' lists what is loaded", model, addr, model)
	case codes.DeadlineExceeded:
		return "the server did not answer in time: check its load and batching, or raise the timeout"
	case codes.Unauthenticated, codes.PermissionDenied:
		return "check the --tfserving-tls-* certificate flags"
	case codes.ResourceExhausted:
		return "the server is overloaded or the message too large: send smaller batches (--max-batch)"
	case codes.FailedPrecondition:
		return "check the signature name and version labels against 'inferops status'"
	case codes.Unimplemented:
		return "is --tfserving pointing at the gRPC port (8500), not REST (8501)?"
	}
	return ""
}
