package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
)

// Source is where an effective value came from.
type Source int

const (
	SourceDefault Source = iota
	SourceFile
	SourceEnv
	SourceFlag
)

func (s Source) String() string {
	switch s {
	case SourceFile:
		return "file"
	case SourceEnv:
		return "env"
	case SourceFlag:
		return "flag"
	}
	return "default"
}

// MarshalText makes a Source print as its name in JSON.
func (s Source) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Origin is a Source plus where exactly: "--brokers", "INFEROPS_BROKERS",
// "/etc/inferops/inferops.yaml:3".
type Origin struct {
	Source Source
	Where  string
}

func (o Origin) String() string {
	if o.Where == "" {
		return o.Source.String()
	}
	return o.Source.String() + " " + o.Where
}

// ResolvePath decides which config file to read: the --config value when
// the command line gave one, else INFEROPS_CONFIG, else DefaultPath when it
// exists. An empty --config or INFEROPS_CONFIG means "no file", which is
// how a test or a one-off run ignores /etc/inferops/inferops.yaml.
func ResolvePath(flagValue string, flagSet bool, lookupEnv func(string) (string, bool)) (path string, where string) {
	if flagSet {
		return flagValue, "--config"
	}
	if v, ok := lookupEnv(ConfigEnv); ok {
		return v, ConfigEnv
	}
	if _, err := os.Stat(DefaultPath); err == nil {
		return DefaultPath, "default"
	}
	return "", ""
}

// Layers is everything below the command line: the environment and the
// config file (nil when there is none).
type Layers struct {
	File      *File
	LookupEnv func(string) (string, bool)
	// Origins records, by flag name, where each registered flag's value
	// came from; Apply fills it.
	Origins map[string]Origin
	// CommandLineOnly names flags Apply leaves at their defaults whatever
	// the environment and the file say: perf's own topics and group, which
	// a file written for the production pipeline must not redirect.
	CommandLineOnly []string
	// Ignored records, by flag name, the variable or file key that would
	// have set a CommandLineOnly flag; Apply fills it.
	Ignored map[string]Origin
}

// Apply runs after fs.Parse: every flag the command registered but the
// command line did not set is filled from its INFEROPS_* variable, else from
// the config file key that names it; the rest keep their defaults. So the
// precedence is flag > env > file > default for whatever flags a command
// has, and keys for flags it lacks are ignored.
func (l *Layers) Apply(fs *flag.FlagSet) error {
	if l.LookupEnv == nil {
		l.LookupEnv = os.LookupEnv
	}
	// Secrets first, so an error about any other value cannot echo one.
	for _, k := range Keys {
		if v, ok := l.LookupEnv(k.Env()); ok && k.Secret {
			RegisterSecret(v)
		}
	}
	l.Origins, l.Ignored = map[string]Origin{}, map[string]Origin{}
	fs.Visit(func(f *flag.Flag) { l.Origins[f.Name] = Origin{SourceFlag, "--" + f.Name} })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if _, set := l.Origins[f.Name]; set {
			return
		}
		if slices.Contains(l.CommandLineOnly, f.Name) {
			if o, found := l.find(f.Name); found {
				l.Ignored[f.Name] = o
			}
			l.Origins[f.Name] = Origin{Source: SourceDefault}
			return
		}
		o, err := l.fill(fs, f)
		if err != nil {
			errs = append(errs, err)
			return
		}
		l.Origins[f.Name] = o
	})
	return errors.Join(errs...)
}

// fill sets one flag from the environment, else the file.
func (l *Layers) fill(fs *flag.FlagSet, f *flag.Flag) (Origin, error) {
	env := EnvName(f.Name)
	if v, ok := l.LookupEnv(env); ok {
		err := fs.Set(f.Name, v)
		if err == nil {
			return Origin{SourceEnv, env}, nil
		}
		// INFEROPS_WORKERS= in an EnvironmentFile means "not set" for a
		// flag that has no empty value; fall through to the file.
		if v != "" {
			shown := v
			if IsSensitiveKey(f.Name) {
				shown = Redacted
			}
			return Origin{}, fmt.Errorf("%s=%q: %v (it sets --%s)", env, Scrub(shown), Scrub(err.Error()), f.Name)
		}
	}
	key, ok := KeyForFlag(f.Name)
	if !ok {
		return Origin{Source: SourceDefault}, nil
	}
	v, ok := l.File.Get(key.Path)
	if !ok {
		return Origin{Source: SourceDefault}, nil
	}
	if err := fs.Set(f.Name, v.Text); err != nil {
		return Origin{}, fmt.Errorf("%s: %s: %q: %v (line %d; it sets --%s)", l.File.Path, key.Path, Scrub(v.Text), Scrub(err.Error()), v.Line, f.Name)
	}
	return Origin{SourceFile, fmt.Sprintf("%s:%d", l.File.Path, v.Line)}, nil
}

// find is where a value for a flag would come from: its variable when set,
// else the file key that names it.
func (l *Layers) find(name string) (Origin, bool) {
	if _, ok := l.LookupEnv(EnvName(name)); ok {
		return Origin{SourceEnv, EnvName(name)}, true
	}
	if key, ok := KeyForFlag(name); ok {
		if v, ok := l.File.Get(key.Path); ok {
			return Origin{SourceFile, fmt.Sprintf("%s:%d", l.File.Path, v.Line)}, true
		}
	}
	return Origin{}, false
}

// Secret resolves a secret key (one with no flag): its environment variable
// wins over the file. The value is registered with Scrub.
func (l *Layers) Secret(path string) (Secret, Origin) {
	key, ok := Lookup(path)
	if !ok || !key.Secret {
		return "", Origin{}
	}
	lookup := l.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if v, ok := lookup(key.Env()); ok && v != "" {
		RegisterSecret(v)
		return Secret(v), Origin{SourceEnv, key.Env()}
	}
	if v, ok := l.File.Get(path); ok {
		RegisterSecret(v.Text)
		return Secret(v.Text), Origin{SourceFile, fmt.Sprintf("%s:%d", l.File.Path, v.Line)}
	}
	return "", Origin{Source: SourceDefault}
}
