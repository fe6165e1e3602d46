package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/internal/config"
	"github.com/inferops/inferops/internal/logging"
	"github.com/inferops/inferops/internal/paths"
	"github.com/inferops/inferops/pipeline"
)

func init() {
	register(&command{name: "serve", summary: "run the embedded Kafka broker and model server in the foreground", run: runServe})
	serveParts = append(serveParts, brokerPart())
}

// servePart is one thing `inferops serve` runs: the Kafka broker here, the
// model server in serve_models.go. A part registers itself by appending to
// serveParts from init() in its own file, so adding one never edits this file.
type servePart struct {
	name string
	// flags registers the part's own flags (e.g. --broker, --kafka-addr).
	flags func(fs *flag.FlagSet)
	// start runs the part until stop is called. addrs are "label=host:port"
	// entries for the ready line (e.g. "kafka=127.0.0.1:9092"). A part that
	// its flags switched off returns no addrs, a nil stop and no error.
	start func(ctx context.Context, env serveEnv) (addrs []string, stop func() error, err error)
}

// serveParts run in order, broker first, and stop in reverse.
var serveParts []*servePart

// serveEnv is what every part shares.
type serveEnv struct {
	// DataDir is the root state dir (--data-dir); each part keeps its data
	// in a subdirectory: kafka/, models/.
	DataDir string
	// Ephemeral keeps everything in memory (--ephemeral).
	Ephemeral bool
	Log       *slog.Logger
}

const serveHelp = `Runs, in this process and on loopback by default, the pieces a pipeline
needs when you have no cluster: a Kafka-protocol broker (topics ai_input,
ai_output, ai_input.dlq) and the parts other packages add (the model server).
State persists under --data-dir unless --ephemeral. Prints one "ready" line
with every address, then runs until SIGINT or SIGTERM.`

func runServe(ctx context.Context, args []string) error {
	fs := newFlagSet("serve", "serve [flags]", serveHelp)
	var env serveEnv
	fs.StringVar(&env.DataDir, "data-dir", paths.StateDir(), "root directory for embedded state (broker data in <data-dir>/kafka, models in <data-dir>/models)")
	fs.BoolVar(&env.Ephemeral, "ephemeral", false, "keep all embedded state in memory; nothing is written to --data-dir")
	// JSON to stderr like every headless command (journald keeps each line
	// whole); the handler redacts secrets, e.g. a --kafka-sasl-user password
	// quoted in an error.
	logOpts := addLogFlags(fs, logging.Options{Format: "json"})
	parts := orderedServeParts()
	for _, p := range parts {
		if p.flags != nil {
			p.flags(fs)
		}
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if !env.Ephemeral {
		if env.DataDir == "" {
			return fmt.Errorf("%w: --data-dir is empty (give a directory, or use --ephemeral)", errUsage)
		}
		abs, err := filepath.Abs(env.DataDir)
		if err != nil {
			return fmt.Errorf("%w: --data-dir %q: %v", errUsage, env.DataDir, err)
		}
		env.DataDir = abs
	}
	log, closeLog, err := logging.New(*logOpts)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	defer closeLog()
	env.Log = log
	limitMemory()

	type running struct {
		name string
		stop func() error
	}
	var started []running
	stopAll := func() error {
		var errs []error
		for i := len(started) - 1; i >= 0; i-- {
			if err := started[i].stop(); err != nil {
				errs = append(errs, fmt.Errorf("stop %s: %w", started[i].name, err))
			}
		}
		started = nil
		return errors.Join(errs...)
	}
	var ready []string
	for _, p := range parts {
		addrs, stop, err := p.start(ctx, env)
		if err != nil {
			_ = stopAll()
			return fmt.Errorf("start %s: %w", p.name, err)
		}
		if stop != nil {
			started = append(started, running{p.name, stop})
		}
		ready = append(ready, addrs...)
	}
	if len(started) == 0 {
		return fmt.Errorf("%w: every part is switched off (e.g. --broker=false): nothing to serve", errUsage)
	}
	if env.Ephemeral {
		ready = append(ready, "data=memory")
	} else {
		ready = append(ready, "data="+env.DataDir)
	}
	fmt.Fprintf(os.Stdout, "inferops serve: ready %s\n", strings.Join(ready, " "))

	<-ctx.Done()
	env.Log.Info("shutting down (a second SIGINT/SIGTERM exits at once)", "reason", context.Cause(ctx))
	forceExitOnSecondSignal()
	if err := stopAll(); err != nil {
		return err
	}
	fmt.Fprintln(os.Stdout, "inferops serve: stopped")
	return nil
}

// forceExitOnSecondSignal lets an operator whose shutdown hangs (a huge
// broker state to flush) press Ctrl-C again instead of reaching for kill -9.
func forceExitOnSecondSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ch
		fmt.Fprintln(os.Stderr, "inferops serve: second signal: exiting without a clean stop")
		os.Exit(130)
	}()
}

// orderedServeParts puts the broker first whatever the file init order, and
// keeps the others in registration order.
func orderedServeParts() []*servePart {
	ps := append([]*servePart(nil), serveParts...)
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].name == "broker" && ps[j].name != "broker" })
	return ps
}

// limitMemory sets a soft heap limit unless the operator set GOMEMLIMIT: Go
// keeps freed heap, and the broker's churn otherwise shows as a large RSS on
// a small VM (kfake.md measured 1.7 GB falling to 330 MB with a limit).
func limitMemory() {
	if _, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		return
	}
	debug.SetMemoryLimit(1 << 30)
}

// brokerPart is the embedded Kafka broker.
func brokerPart() *servePart {
	var (
		enabled   bool
		cfg       cluster.BrokerConfig
		users     commaList
		usersFile string
	)
	return &servePart{
		name: "broker",
		flags: func(fs *flag.FlagSet) {
			// Fresh state per run: tests call realMain more than once.
			cfg, users = cluster.BrokerConfig{}, nil
			fs.BoolVar(&enabled, "broker", true, "run the embedded Kafka broker (--broker=false when you point the pipeline at a real cluster)")
			fs.StringVar(&cfg.Addr, "kafka-addr", pipeline.DefaultKafkaAddr, "address the embedded broker listens on and advertises")
			fs.StringVar(&cfg.SASL.Mechanism, "kafka-sasl-mechanism", "", "make the embedded broker require SASL: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
			fs.Var(&users, "kafka-sasl-user", "user:password the embedded broker accepts (repeat or comma-separate; prefer the env variable or --kafka-sasl-users-file)")
			fs.StringVar(&usersFile, "kafka-sasl-users-file", "", "file of user:password lines the embedded broker accepts")
			fs.StringVar(&cfg.TLS.CertFile, "kafka-tls-server-cert-file", "", "PEM certificate: the embedded broker listens with TLS")
			fs.StringVar(&cfg.TLS.KeyFile, "kafka-tls-server-key-file", "", "PEM key for --kafka-tls-server-cert-file")
		},
		start: func(ctx context.Context, env serveEnv) ([]string, func() error, error) {
			if !enabled {
				return nil, nil, nil
			}
			cfg.Ephemeral = env.Ephemeral
			if !env.Ephemeral {
				cfg.DataDir = filepath.Join(env.DataDir, "kafka")
			}
			cfg.Logger = env.Log.With("part", "broker")
			var err error
			if cfg.SASL.Users, err = parseSASLUsers(users, usersFile); err != nil {
				return nil, nil, err
			}
			b, err := cluster.StartBroker(ctx, cfg)
			if err != nil {
				return nil, nil, err
			}
			return []string{"kafka=" + b.Addr()}, b.Close, nil
		},
	}
}

// parseSASLUsers reads user:password pairs from the flag and the file.
func parseSASLUsers(list []string, file string) (map[string]string, error) {
	type src struct{ where, entry string }
	var entries []src
	for _, e := range list {
		entries = append(entries, src{"--kafka-sasl-user", e})
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--kafka-sasl-users-file: %v", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				entries = append(entries, src{"--kafka-sasl-users-file " + file, line})
			}
		}
	}
	if len(entries) == 0 {
		return nil, nil
	}
	users := map[string]string{}
	for _, e := range entries {
		u, p, ok := strings.Cut(e.entry, ":")
		if !ok || u == "" || p == "" {
			// Never echo the entry: it may hold a password.
			return nil, fmt.Errorf("%s: want user:password entries", e.where)
		}
		users[u] = p
		// Scrubbed from every log line and error from now on: the broker
		// or a client error may quote what it was given.
		config.RegisterSecret(p)
	}
	return users, nil
}
