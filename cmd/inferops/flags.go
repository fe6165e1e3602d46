package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/inferops/inferops/internal/config"
	"github.com/inferops/inferops/internal/report"
)

// cmdFlags is one run's flag set: the flags a command registered, the
// secrets they stand in for, the flags only the command line may set and,
// once parsed, where every value came from. Each run builds its own, so a
// second run in the same process (the tests' realMain) starts clean.
type cmdFlags struct {
	*flag.FlagSet
	synopsis, help string
	// verbs are the words the command takes before its flags ("print" of
	// `inferops config print`; status, scale... of `inferops fleet`); verb
	// is the one given, once parsed.
	verbs []string
	verb  string
	// operands are the words after the verb that are not flags ("9" of
	// `inferops fleet scale 9 --wait`), at most maxOperands of them.
	operands    []string
	maxOperands int
	secrets     []secretHook
	// cmdLineOnly are flags the environment and the config file do not
	// fill, with why (shown when a value there is ignored).
	cmdLineOnly    []string
	cmdLineOnlyWhy string
	// layers is where each value came from; set by parse.
	layers *config.Layers
}

// secretHook fills a secret (a config key with no flag, e.g.
// kafka.sasl.password) once the layers are known.
type secretHook struct {
	key string
	dst *string
}

// newFlags returns an empty flag set (but for --config, which every
// command reads) whose --help prints the synopsis, the longer help and
// every flag with the environment variable and the config key behind it.
func newFlags(name, synopsis, help string) *cmdFlags {
	f := &cmdFlags{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), synopsis: synopsis, help: help}
	f.Usage = f.usage
	f.String("config", "", "YAML config file (default "+config.DefaultPath+" when it exists; --config= for none)")
	return f
}

func (f *cmdFlags) usage() {
	w := f.Output()
	fmt.Fprintf(w, "Usage: inferops %s\n", f.synopsis)
	if f.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(f.help, "\n"))
	}
	fmt.Fprintln(w, "\nFlags:")
	f.VisitAll(func(fl *flag.Flag) {
		def := ""
		if fl.DefValue != "" && fl.DefValue != "0" && fl.DefValue != "[]" && fl.DefValue != "false" && fl.DefValue != "0s" {
			def = fmt.Sprintf(" (default %s)", fl.DefValue)
		}
		source := "$" + config.EnvName(fl.Name)
		if k, ok := config.KeyForFlag(fl.Name); ok {
			source += ", " + k.Path
		}
		if f.isCmdLineOnly(fl.Name) {
			source = "command line only"
		}
		fmt.Fprintf(w, "  --%s\n      %s%s [%s]\n", fl.Name, fl.Usage, def, source)
	})
}

// secretVar makes parse set *dst from the secret config key: its INFEROPS_*
// variable, else the config file. There is deliberately no flag: ps(1)
// shows command lines to every user on the host.
func (f *cmdFlags) secretVar(dst *string, key string) {
	if k, ok := config.Lookup(key); !ok || !k.Secret {
		panic("inferops: secretVar: " + key + " is not a secret key in internal/config")
	}
	f.secrets = append(f.secrets, secretHook{key, dst})
}

// commandLineOnly keeps the environment and the config file away from the
// named (already registered) flags; parse warns, saying why, when one of
// them would have set a value.
func (f *cmdFlags) commandLineOnly(why string, names ...string) {
	for _, n := range names {
		if f.Lookup(n) == nil {
			panic("inferops: commandLineOnly: no flag --" + n)
		}
	}
	f.cmdLineOnly, f.cmdLineOnlyWhy = append(f.cmdLineOnly, names...), why
}

func (f *cmdFlags) isCmdLineOnly(name string) bool { return slices.Contains(f.cmdLineOnly, name) }

// parse parses args, then fills every flag the command line did not set
// from its INFEROPS_* environment variable, else from the config file key
// that names it (flag > env > file > default).
func (f *cmdFlags) parse(args []string) error {
	if len(f.verbs) > 0 {
		switch {
		case len(args) > 0 && slices.Contains(f.verbs, args[0]):
			f.verb, args = args[0], args[1:]
		case len(args) > 0 && isHelp(args[0]):
			f.Usage()
			return flag.ErrHelp
		default:
			return fmt.Errorf("%w: want 'inferops %s' (see 'inferops %s --help')", errUsage, f.synopsis, f.Name())
		}
	}
	// Operands may come before, between or after the flags.
	for err := f.Parse(args); ; err = f.Parse(f.Args()[1:]) {
		if err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err // --help: exit 0
			}
			// An unknown flag or a bad value is a usage error like any
			// other (exit 2); flag already printed the flags.
			return fmt.Errorf("%w: %v (see 'inferops %s --help')", errUsage, err, f.commandName())
		}
		if f.NArg() == 0 || len(f.operands) == f.maxOperands {
			break
		}
		f.operands = append(f.operands, f.Arg(0))
	}
	// The config file is located from the parsed --config rather than by
	// scanning args: flag parsing already knows --config=x, -config x and
	// where "--" ends the flags, and values only fill flags after Parse.
	configSet := false
	f.Visit(func(fl *flag.Flag) { configSet = configSet || fl.Name == "config" })
	path, where := config.ResolvePath(f.Lookup("config").Value.String(), configSet, os.LookupEnv)
	layers := &config.Layers{LookupEnv: os.LookupEnv, CommandLineOnly: f.cmdLineOnly}
	if path != "" {
		file, err := config.Load(path)
		if err != nil {
			if where != "--config" && where != "" && where != "default" {
				err = fmt.Errorf("%v (named by %s)", err, where)
			}
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		layers.File = file
		for _, w := range file.Warnings {
			fmt.Fprintf(f.Output(), "inferops: warning: %s\n", w)
		}
	}
	if err := layers.Apply(f.FlagSet); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if where == "default" {
		_ = f.Set("config", path) // so the command (and --help) see which file was read
		layers.Origins["config"] = config.Origin{Source: config.SourceDefault}
	}
	for _, name := range f.cmdLineOnly {
		if o, ok := layers.Ignored[name]; ok {
			fmt.Fprintf(f.Output(), "inferops %s: ignoring --%s from %s: %s\n", f.commandName(), name, o, f.cmdLineOnlyWhy)
		}
	}
	for _, h := range f.secrets {
		s, _ := layers.Secret(h.key)
		*h.dst = s.Reveal()
	}
	// Password files are read by the code that authenticates; register
	// their contents now so no log line or error can repeat them.
	f.VisitAll(func(fl *flag.Flag) {
		if strings.HasSuffix(fl.Name, "password-file") {
			config.RegisterSecretFile(fl.Value.String())
		}
	})
	if f.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (flags start with --; see 'inferops %s --help')", errUsage, f.Arg(0), f.commandName())
	}
	f.layers = layers
	return nil
}

// commandName is how the user typed the command: "config print".
func (f *cmdFlags) commandName() string {
	if f.verb != "" {
		return f.Name() + " " + f.verb
	}
	return f.Name()
}

// origin is where a flag's value came from (after parse).
func (f *cmdFlags) origin(name string) config.Origin {
	if f.layers == nil {
		return config.Origin{}
	}
	return f.layers.Origins[name]
}

// reportConfig is the configuration section of a triage report (`status
// --report`, the console's export): every flag with a config key, with its
// value and source. Secrets have no flag, so they cannot appear; report.Build
// redacts the rest.
func (f *cmdFlags) reportConfig() []report.Setting {
	var out []report.Setting
	for _, k := range config.Keys {
		for _, name := range k.Flags() {
			fl := f.Lookup(name)
			if fl == nil {
				continue
			}
			out = append(out, report.Setting{Key: k.Path, Value: fl.Value.String(), Source: f.origin(name).Source.String()})
			break
		}
	}
	return out
}

func isHelp(arg string) bool { return arg == "-h" || arg == "--help" || arg == "-help" }

// commaList is a flag.Value for host lists: "a:1,b:2", or the flag repeated
// (values accumulate).
type commaList []string

func (l *commaList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *commaList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}
