package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/inferops/inferops/internal/logging"
	"github.com/inferops/inferops/pipeline/stack"
)

const serveHelp = `Runs, in this process and on loopback by default, the pieces a pipeline
needs when you have no cluster: a Kafka-protocol broker (topics ai_input,
ai_output, ai_input.dlq), then the TF-Serving-compatible model server.
--broker=false or --model-server=false runs either alone. State persists
under --data-dir unless --ephemeral. Prints one "ready" line with every
address, then runs until SIGINT or SIGTERM.

Drills: --fault MODEL/VERSION:KEY=VALUE[,KEY=VALUE] makes one version of a
model misbehave on purpose, to rehearse a bad rollout and to see the
rollout gates catch it. latency=50ms adds 50 ms to every Predict of that
version; errors=5% fails 5% of them with UNAVAILABLE (REST 503) and a
message saying the fault is injected; code=internal fails them with
INTERNAL (REST 500) instead, which clients do not retry (inferops retries
UNAVAILABLE up to 3 times, so it sees about errors^3 of those fail).
VERSION * is every version; repeat --fault for several. Status and
metadata still say AVAILABLE, as they do for a real slow model. For
example, a slow and flaky candidate v2:
  inferops serve --fault my_model/2:latency=50ms,errors=5%,code=internal`

// serveCmd is `inferops serve`.
type serveCmd struct {
	embedded *embeddedFlags
	log      *logging.Options
}

func serveCommand() (*cmdFlags, runFunc) {
	f := newFlags("serve", "serve [flags]", serveHelp)
	c := &serveCmd{
		embedded: addEmbeddedFlags(f),
		// JSON to stderr like every headless command (journald keeps each
		// line whole); the handler redacts secrets, e.g. a
		// --kafka-sasl-user password quoted in an error.
		log: addLogFlags(f, logging.Options{Format: "json"}),
	}
	return f, c.run
}

// repeatedFlag is a flag given once per value, each kept whole: unlike
// commaList, a --fault spec has commas of its own.
type repeatedFlag []string

func (r *repeatedFlag) String() string {
	if r == nil {
		return ""
	}
	return strings.Join(*r, " ")
}

func (r *repeatedFlag) Set(v string) error {
	*r = append(*r, v)
	return nil
}

func (c *serveCmd) run(ctx context.Context, std stdio) error {
	e := c.embedded
	if !e.broker && !e.models {
		return fmt.Errorf("%w: every part is switched off (--broker=false --model-server=false): nothing to serve", errUsage)
	}
	dataDir := e.dataDir
	if !e.ephemeral {
		if dataDir == "" {
			return fmt.Errorf("%w: --data-dir is empty (give a directory, or use --ephemeral)", errUsage)
		}
		abs, err := filepath.Abs(dataDir)
		if err != nil {
			return fmt.Errorf("%w: --data-dir %q: %v", errUsage, dataDir, err)
		}
		dataDir = abs
	}
	log, closeLog, err := logging.New(*c.log)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	defer closeLog()
	sc, err := e.stackConfig(dataDir, log)
	if err != nil {
		return err
	}
	limitMemory()
	st, err := stack.Start(ctx, sc)
	if err != nil {
		return err
	}
	ready := readyLine(st.Addrs, dataDir, e.ephemeral)
	if st.Broker != nil && st.Broker.ListenAddr() != st.Addrs.Kafka {
		// Advertised elsewhere (--kafka-advertised-addr): say where the
		// broker itself is, for whoever forwards to it.
		ready += " kafka-listen=" + st.Broker.ListenAddr()
	}
	fmt.Fprintf(std.out, "inferops serve: ready %s\n", ready)

	<-ctx.Done()
	log.Info("shutting down (a second SIGINT/SIGTERM exits at once)", "reason", context.Cause(ctx))
	forceExitOnSecondSignal(std)
	if err := st.Close(); err != nil {
		return err
	}
	fmt.Fprintln(std.out, "inferops serve: stopped")
	return nil
}

// readyLine names every address, then where the state is:
// "kafka=127.0.0.1:9092 grpc=127.0.0.1:8500 rest=127.0.0.1:8501 data=/var/lib/inferops".
func readyLine(a stack.Addrs, dataDir string, ephemeral bool) string {
	var fields []string
	for _, f := range []struct{ label, addr string }{{"kafka", a.Kafka}, {"grpc", a.GRPC}, {"rest", a.REST}} {
		if f.addr != "" {
			fields = append(fields, f.label+"="+f.addr)
		}
	}
	if ephemeral {
		return strings.Join(append(fields, "data=memory"), " ")
	}
	return strings.Join(append(fields, "data="+dataDir), " ")
}

// forceExitOnSecondSignal lets an operator whose shutdown hangs (a huge
// broker state to flush) press Ctrl-C again instead of reaching for kill -9.
func forceExitOnSecondSignal(std stdio) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ch
		fmt.Fprintln(std.err, "inferops serve: second signal: exiting without a clean stop")
		os.Exit(130)
	}()
}
