// Command inferops is the operations console and headless toolkit for Kafka ->
// TF Serving inference pipelines. This package only parses flags and wires the
// cluster/, infer/ and tui/ packages together; no pipeline logic lives here.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
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

// command is one subcommand. Each lives in its own file and registers itself
// from init(), so adding a command never touches this file.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("inferops: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// errUsage marks an error the user fixes by changing the command line; it
// exits 2 like flag parsing errors do.
var errUsage = errors.New("usage")

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	name := defaultCommand()
	named := len(args) > 0 && !strings.HasPrefix(args[0], "-")
	if named {
		name, args = args[0], args[1:]
	}
	// A bare `inferops --help` lists the commands; `inferops console --help`
	// shows the console's flags like every other command.
	if name == "help" || (len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help")) && len(args) == 1 && !named {
		usage(stdout)
		return 0
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "inferops: unknown command %q\n\n", name)
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.run(ctx, args)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "inferops %s: %s\n", name, config.Scrub(err.Error())) // no password in any error
		return 2
	default:
		fmt.Fprintf(stderr, "inferops %s: %s\n", name, config.Scrub(err.Error())) // no password in any error
		return 1
	}
}

// defaultCommand is what a bare `inferops` runs: the console when it is built
// in, otherwise the embedded stack.
func defaultCommand() string {
	if _, ok := commands["console"]; ok {
		return "console"
	}
	return "serve"
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `inferops %s - operations console for Kafka -> TF Serving inference pipelines

Usage:
  inferops [command] [flags]

With no command, inferops runs %q. Without --brokers everything runs embedded
in this process (a Kafka-protocol broker and a TF-Serving-compatible model
server on loopback), so it works on a machine with nothing else installed.

Commands:
`, version, defaultCommand())
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprint(w, `
Every flag can also be set with an environment variable: --kafka-addr is
INFEROPS_KAFKA_ADDR, --brokers is INFEROPS_BROKERS, and so on. A flag given on
the command line wins over the environment.

Run 'inferops <command> --help' for a command's flags.
`)
}
