package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/inferops/inferops/internal/config"
	"github.com/inferops/inferops/internal/logging"
)

// newFlagSet returns a FlagSet whose --help prints the summary, an optional
// longer explanation and every flag with the environment variable and the
// config file key it reads.
func newFlagSet(name, synopsis, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: inferops %s\n", synopsis)
		if help != "" {
			fmt.Fprintf(w, "\n%s\n", strings.TrimRight(help, "\n"))
		}
		fmt.Fprintln(w, "\nFlags:")
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "[]" && f.DefValue != "false" && f.DefValue != "0s" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			key := ""
			if k, ok := config.KeyForFlag(f.Name); ok {
				key = ", " + k.Path
			}
			fmt.Fprintf(w, "  --%s\n      %s%s [$%s%s]\n", f.Name, f.Usage, def, envName(f.Name), key)
		})
	}
	return fs
}

// envName is the environment variable that backs a flag: --kafka-addr reads
// INFEROPS_KAFKA_ADDR.
func envName(flagName string) string { return config.EnvName(flagName) }

// parseFlags parses args, then fills every flag the command line did not set
// from its INFEROPS_* environment variable, else from the config file key
// that names it (flag > env > file > default). Every command uses it, so
// every command accepts --config.
func parseFlags(fs *flag.FlagSet, args []string) error {
	_, err := parseFlagLayers(fs, args)
	return err
}

// parseFlagLayers is parseFlags returning the layers, so `config print` can
// show where each value came from.
func parseFlagLayers(fs *flag.FlagSet, args []string) (*config.Layers, error) {
	hooks := takeSecretHooks(fs)
	if fs.Lookup("config") == nil {
		fs.String("config", "", "YAML config file (default "+config.DefaultPath+" when it exists; --config= for none)")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err // --help: exit 0
		}
		// An unknown flag or a bad value is a usage error like any other
		// (exit 2); flag already printed the flags to stderr.
		return nil, fmt.Errorf("%w: %v (see 'inferops %s --help')", errUsage, err, fs.Name())
	}
	// The config file is located from the parsed --config rather than by
	// scanning args: flag parsing already knows --config=x, -config x and
	// where "--" ends the flags, and values only fill flags after Parse.
	configSet := false
	fs.Visit(func(f *flag.Flag) { configSet = configSet || f.Name == "config" })
	path, where := config.ResolvePath(fs.Lookup("config").Value.String(), configSet, os.LookupEnv)
	layers := &config.Layers{LookupEnv: os.LookupEnv}
	if path != "" {
		f, err := config.Load(path)
		if err != nil {
			if where != "--config" && where != "" && where != "default" {
				err = fmt.Errorf("%v (named by %s)", err, where)
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		layers.File = f
		for _, w := range f.Warnings {
			fmt.Fprintf(os.Stderr, "inferops: warning: %s\n", w)
		}
	}
	if err := layers.Apply(fs); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if where == "default" {
		_ = fs.Set("config", path) // so the command (and --help) see which file was read
		layers.Origins["config"] = config.Origin{Source: config.SourceDefault}
	}
	for _, h := range hooks {
		s, _ := layers.Secret(h.key)
		*h.dst = s.Reveal()
	}
	// Password files are read by the code that authenticates; register
	// their contents now so no log line or error can repeat them.
	fs.VisitAll(func(f *flag.Flag) {
		if strings.HasSuffix(f.Name, "password-file") {
			config.RegisterSecretFile(f.Value.String())
		}
	})
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q (flags start with --; see 'inferops %s --help')", errUsage, fs.Arg(0), fs.Name())
	}
	parsedLayers.Store(fs, layers)
	return layers, nil
}

// parsedLayers remembers, per parsed FlagSet, where each value came from,
// for the configuration section of a triage report (reportConfig). One
// entry per command run: a process parses its flags once.
var parsedLayers sync.Map // *flag.FlagSet -> *config.Layers

// secretHook fills a secret (a config key with no flag, e.g.
// kafka.sasl.password) once the layers are known.
type secretHook struct {
	key string
	dst *string
}

var secretHooks sync.Map // *flag.FlagSet -> []secretHook

// secretVar makes parseFlags set *dst from the secret config key: its
// INFEROPS_* variable, else the config file. There is deliberately no flag:
// ps(1) shows command lines to every user on the host.
func secretVar(fs *flag.FlagSet, dst *string, key string) {
	if k, ok := config.Lookup(key); !ok || !k.Secret {
		panic("inferops: secretVar: " + key + " is not a secret key in internal/config")
	}
	var hooks []secretHook
	if v, ok := secretHooks.Load(fs); ok {
		hooks = v.([]secretHook)
	}
	secretHooks.Store(fs, append(hooks, secretHook{key, dst}))
}

func takeSecretHooks(fs *flag.FlagSet) []secretHook {
	v, ok := secretHooks.LoadAndDelete(fs)
	if !ok {
		return nil
	}
	return v.([]secretHook)
}

// addLogFlags registers --log-level, --log-format and --log-file (config
// keys log.level, log.format, log.file) with the command's defaults: JSON to
// stderr for headless commands, a file in the state dir for the console.
// After parseFlags, pass the result to logging.New.
func addLogFlags(fs *flag.FlagSet, def logging.Options) *logging.Options {
	o := def
	o.SetDefaults()
	fs.StringVar(&o.Level, "log-level", o.Level, "log level: debug, info, warn or error")
	fs.StringVar(&o.Format, "log-format", o.Format, "log format: json (one object per line, for journald) or text")
	fs.StringVar(&o.File, "log-file", o.File, "append the log to this file instead of stderr")
	return &o
}
