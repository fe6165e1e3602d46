package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/inferops/inferops/internal/config"
	"github.com/inferops/inferops/internal/paths"
)

const configHelp = `Prints every common setting with its effective value and its source: flag,
env (INFEROPS_*), file (the config file and line) or default. It reads the
same layers every command reads (flag > env > file > default), so
'inferops config print --config /etc/inferops/inferops.yaml' checks a file
before the service uses it: unknown keys and bad values fail here with the
key's path. Secrets (the SASL password) always print as ***.`

// keyFlag is a flag.Value for one config key: config print accepts every
// key's flag and checks values the way the config file is checked, without
// the typed flags each command registers.
type keyFlag struct {
	key config.Key
	val string
}

func (k *keyFlag) String() string {
	if k == nil {
		return ""
	}
	return k.val
}

func (k *keyFlag) Set(v string) error {
	if err := k.key.CheckValue(v); err != nil {
		return err
	}
	if k.key.Kind == config.List && k.val != "" && v != "" {
		v = k.val + "," + v // repeated --brokers accumulate, as in every command
	}
	k.val = v
	return nil
}

func (k *keyFlag) IsBoolFlag() bool { return k.key.Kind == config.Bool }

// effectiveKey is one line of `config print`.
type effectiveKey struct {
	Key    string        `json:"key"`
	Flag   string        `json:"flag,omitempty"`
	Env    string        `json:"env"`
	Value  any           `json:"value"`
	Source config.Source `json:"source"`
	Where  string        `json:"where,omitempty"`
	Secret bool          `json:"secret,omitempty"`
	text   string
}

type effectiveConfig struct {
	File       string         `json:"config_file"`
	FileSource string         `json:"config_file_source,omitempty"`
	Warnings   []string       `json:"warnings,omitempty"`
	Keys       []effectiveKey `json:"keys"`
}

// configCmd is `inferops config print`: one flag per config key, which the
// layers fill as they fill every command's.
type configCmd struct {
	f      *cmdFlags
	asJSON bool
	values map[string]*keyFlag // by key path
}

func configCommand() (*cmdFlags, runFunc) {
	f := newFlags("config", "config print [--json] [--config FILE] [flags]", configHelp)
	f.verbs = []string{"print"}
	c := &configCmd{f: f, values: map[string]*keyFlag{}}
	f.BoolVar(&c.asJSON, "json", false, "print JSON instead of a table")
	for _, k := range config.Keys {
		if k.Secret {
			continue
		}
		v := &keyFlag{key: k, val: k.Default}
		if k.Path == "embedded.data_dir" {
			v.val = paths.StateDir()
		}
		c.values[k.Path] = v
		f.Var(v, k.Flag, k.Doc)
	}
	return f, c.run
}

func (c *configCmd) run(_ context.Context, std stdio) error {
	layers, w := c.f.layers, std.out
	ec := effectiveConfig{Keys: make([]effectiveKey, 0, len(config.Keys))}
	if layers.File != nil {
		ec.File = layers.File.Path
		ec.Warnings = layers.File.Warnings
		ec.FileSource = layers.Origins["config"].Source.String()
		if o := layers.Origins["config"]; o.Source != config.SourceDefault {
			ec.FileSource = o.Where
		}
	}
	for _, k := range config.Keys {
		e := effectiveKey{Key: k.Path, Env: k.Env(), Secret: k.Secret}
		if k.Secret {
			s, o := layers.Secret(k.Path)
			e.Value, e.text, e.Source, e.Where = s, s.String(), o.Source, o.Where
		} else {
			o := layers.Origins[k.Flag]
			e.Flag, e.Source, e.Where = "--"+k.Flag, o.Source, o.Where
			e.text = c.values[k.Path].val
			e.Value = typedValue(k, e.text)
		}
		ec.Keys = append(ec.Keys, e)
	}
	if c.asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(ec)
	}
	if ec.File != "" {
		fmt.Fprintf(w, "config file: %s (%s)\n\n", ec.File, ec.FileSource)
	} else {
		fmt.Fprintf(w, "config file: none (%s absent; set --config or %s)\n\n", config.DefaultPath, config.ConfigEnv)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE")
	for _, e := range ec.Keys {
		v := e.text
		if v == "" {
			v = "-"
		}
		src := e.Source.String()
		if e.Where != "" {
			src += " " + e.Where
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Key, config.Scrub(v), src)
	}
	return tw.Flush()
}

// typedValue gives JSON readers lists, booleans and numbers, not strings.
func typedValue(k config.Key, text string) any {
	switch k.Kind {
	case config.List:
		out := []string{}
		for _, s := range strings.Split(text, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	case config.Bool:
		b, _ := strconv.ParseBool(text)
		return b
	case config.Int:
		if n, err := strconv.Atoi(text); err == nil {
			return n
		}
	}
	return text
}

var _ flag.Value = (*keyFlag)(nil)
