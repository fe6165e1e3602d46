package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
)

// dialAll opens (and closes) a TCP connection to every address within ctx.
// It runs before any protocol client so that a wrong address or a stopped
// server reads as "connection refused" in a second, not as a client's
// retry loop or a generic timeout.
func dialAll(ctx context.Context, addrs []string) (ok []string, failed map[string]error) {
	failed = map[string]error{}
	var d net.Dialer
	for _, a := range addrs {
		conn, err := d.DialContext(ctx, "tcp", a)
		if err != nil {
			failed[a] = err
			continue
		}
		conn.Close()
		ok = append(ok, a)
	}
	return ok, failed
}

// dialReason is the short cause of a dial failure for the Seen column.
func dialReason(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("cannot resolve %q", dnsErr.Name)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "timed out"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to host"
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// unreachable describes addresses that did not answer: "a:1 (connection refused)".
func unreachable(failed map[string]error, order []string) string {
	var parts []string
	for _, a := range order {
		if err, ok := failed[a]; ok {
			parts = append(parts, a+" ("+dialReason(err)+")")
		}
	}
	return strings.Join(parts, ", ")
}

// skipped marks the checks that could not run because an earlier one failed.
func skipped(section, because string, ids ...[2]string) []Check {
	out := make([]Check, 0, len(ids))
	for _, id := range ids {
		out = append(out, Check{Section: section, ID: id[0], Name: id[1], Status: Skip, Seen: "not checked: " + because})
	}
	return out
}
