// Command inferops is the operations console and headless toolkit for Kafka ->
// TF Serving inference pipelines. This package only parses flags and wires the
// cluster/, infer/, pipeline/ and tui/ packages together; no pipeline logic
// lives here.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/inferops/inferops/internal/config"
)

// Set at build time by the Makefile (-ldflags -X).
var (
	version = "dev"
	commit  = "unknown"
	date    = "unknown"
)

// command is one subcommand. setup registers its flags on a fresh set and
// returns what runs once they are parsed, so every run, and every test
// that calls realMain again, starts from nothing.
type command struct {
	name    string
	summary string
	setup   func() (*cmdFlags, runFunc)
	// subs are the commands of a family (`inferops dlq list`), each with
	// flags of its own, picked by the word after the name; each takes its
	// own name as its only cmdFlags verb, so parse takes that word off.
	// (A command whose verbs share one set of flags, `inferops fleet`,
	// lists them as verbs instead.)
	subs []command
}

// runFunc runs a command whose flags are parsed.
type runFunc func(ctx context.Context, std stdio) error

// stdio is where a command writes: the process's stdout and stderr, or a
// test's buffers.
type stdio struct {
	out, err io.Writer
}

// commands is every subcommand, in the order `inferops --help` lists them.
var commands = []command{
	{"config", "print the effective configuration and where each value came from", configCommand, nil},
	{"console", "the live pipeline console (default): lag, throughput, latency, models, workers, perf", consoleCommand, nil},
	{"dlq", "the dead letters: list them by reason, show them, replay them to the input exactly once", nil, dlqCommands},
	{"doctor", "check the host, Kafka and TF Serving against the seed's tuning", doctorCommand, nil},
	{"fleet", "every worker pool of the group on every host: status, scale N, target, pause, resume", fleetCommand, nil},
	{"offsets", "move a consumer group's offsets: to earliest, latest, a time, an offset or N back", nil, offsetsCommands},
	{"rollout", "move the fleet to a model version gradually: canary by key, shadow, SLO gates, automatic rollback", rolloutCommand, nil},
	{"perf", "run the seed's perf scenarios (small/medium/high) and report throughput, latency percentiles and SLO verdicts", perfCommand, nil},
	{"serve", "run the embedded Kafka broker and model server in the foreground", serveCommand, nil},
	{"status", "print one snapshot of the pipeline: Kafka lag per partition, group members, health", statusCommand, nil},
	{"version", "print the version and build information", versionCommand, nil},
	{"worker", "run the inference worker headless: Kafka -> TF Serving -> Kafka", workerCommand, nil},
}

// defaultCommand is what a bare `inferops` runs.
const defaultCommand = "console"

// errUsage marks an error the user fixes by changing the command line; it
// exits 2 like flag parsing errors do.
var errUsage = errors.New("usage")

// Exit statuses. Every command exits 0, 1 (it failed) or 2 (usage); perf
// also tells a verdict from a run that could not be carried out, so a
// script can retry the one and page about the other.
const (
	exitFailed = 1 // perf: a scenario's SLO verdict is FAIL
	exitUsage  = 2
	exitNotRun = 3 // perf: nothing (or not all) was measured: a part unreachable, interrupted
)

// exitError is an error that chooses its command's exit status; it is
// printed like any other error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	name := defaultCommand
	named := len(args) > 0 && !strings.HasPrefix(args[0], "-")
	if named {
		name, args = args[0], args[1:]
	}
	// A bare `inferops --help` lists the commands; `inferops console --help`
	// shows the console's flags like every other command.
	if name == "help" || (!named && len(args) == 1 && isHelp(args[0])) {
		usage(stdout)
		return 0
	}
	cmd, ok := lookup(name)
	if !ok {
		fmt.Fprintf(stderr, "inferops: unknown command %q\n\n", name)
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := execute(ctx, cmd, args, stdio{out: stdout, err: stderr})
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if len(cmd.subs) > 0 && len(args) > 0 {
		for _, s := range cmd.subs {
			if s.name == args[0] {
				name += " " + s.name // "inferops dlq replay: ..."
			}
		}
	}
	fmt.Fprintf(stderr, "inferops %s: %s\n", name, config.Scrub(err.Error())) // no password in any error
	return exitCode(err)
}

// exitCode is the exit status of a command's error.
func exitCode(err error) int {
	var ee *exitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.As(err, &ee):
		return ee.code
	}
	return exitFailed
}

func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// execute builds the command's flags, parses args and runs it.
func execute(ctx context.Context, c command, args []string, std stdio) error {
	if c.subs != nil {
		sub, err := pickSub(c, args, std)
		if err != nil {
			return err
		}
		c = sub
	}
	f, run := c.setup()
	f.SetOutput(std.err)
	if err := f.parse(args); err != nil {
		return err
	}
	return run(ctx, std)
}

// pickSub is the command of c's family that args name; --help or no
// word lists them.
func pickSub(c command, args []string, std stdio) (command, error) {
	list := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: inferops %s <command> [flags]\n\nCommands:\n", c.name)
		for _, s := range c.subs {
			fmt.Fprintf(w, "  %-8s %s\n", s.name, s.summary)
		}
		fmt.Fprintf(w, "\nRun 'inferops %s <command> --help' for a command's flags.\n", c.name)
	}
	if len(args) > 0 && isHelp(args[0]) {
		list(std.out)
		return command{}, flag.ErrHelp
	}
	if len(args) > 0 {
		for _, s := range c.subs {
			if s.name == args[0] {
				return s, nil
			}
		}
	}
	list(std.err)
	names := make([]string, len(c.subs))
	for i, s := range c.subs {
		names[i] = s.name
	}
	return command{}, fmt.Errorf("%w: want 'inferops %s %s'", errUsage, c.name, strings.Join(names, "|"))
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `inferops %s - operations console for Kafka -> TF Serving inference pipelines

Usage:
  inferops [command] [flags]

With no command, inferops runs %q. Without --brokers everything runs embedded
in this process (a Kafka-protocol broker and a TF-Serving-compatible model
server on loopback), so it works on a machine with nothing else installed.

Commands:
`, version, defaultCommand)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Every flag can also be set with an environment variable: --kafka-addr is
INFEROPS_KAFKA_ADDR, --brokers is INFEROPS_BROKERS, and so on. A flag given on
the command line wins over the environment.

Run 'inferops <command> --help' for a command's flags.
`)
}
