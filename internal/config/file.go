package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// File is a parsed config file: every key it sets, already checked against
// the schema and written in flag form (lists as comma lists).
type File struct {
	Path   string
	Values map[string]Value // by key path
	// Warnings are problems that do not stop a command, e.g. a password in
	// a file every local user can read.
	Warnings []string
}

// Value is one key the file sets.
type Value struct {
	Key  Key
	Text string // flag form: "b1:9092,b2:9092", "4", "1ms", "true"
	Line int
}

// Get returns the value the file sets for a key path.
func (f *File) Get(path string) (Value, bool) {
	if f == nil {
		return Value{}, false
	}
	v, ok := f.Values[path]
	return v, ok
}

// Load reads and checks the config file at path. A secret in the file is
// registered with Scrub so it never reaches a log or an error.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("config file %s does not exist (fix --config or %s, or create it; an example is in packaging/inferops.yaml)", path, ConfigEnv)
		}
		return nil, fmt.Errorf("config file %s: %v", path, errors.Unwrap(err))
	}
	f, err := Parse(path, b)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o004 != 0 {
		for _, k := range Keys {
			if _, set := f.Values[k.Path]; set && k.Secret {
				f.Warnings = append(f.Warnings, fmt.Sprintf("%s holds %s and every local user can read it (mode %04o): chmod 0640 it, or move the password to %s or %s.password_file",
					path, k.Path, st.Mode().Perm(), k.Env(), strings.TrimSuffix(k.Path, ".password")))
			}
		}
	}
	return f, nil
}

// Parse checks data (the contents of path) against the schema. Errors name
// the file, the key's path and the expected form:
//
//	/etc/inferops/inferops.yaml: pipeline.workers: "four" is not a whole number (line 12)
func Parse(path string, data []byte) (*File, error) {
	f := &File{Path: path, Values: map[string]Value{}}
	if len(bytes.TrimSpace(data)) == 0 {
		return f, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// yaml errors quote the offending text, which may be a password.
		return nil, fmt.Errorf("%s: not valid YAML: %s", path, Scrub(strings.TrimPrefix(err.Error(), "yaml: ")))
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return f, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return f, nil
	}
	if err := f.walk(root, ""); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, v := range f.Values {
		if v.Key.Secret {
			RegisterSecret(v.Text)
		}
	}
	return f, nil
}

func (f *File) walk(n *yaml.Node, prefix string) error {
	if n.Kind != yaml.MappingNode {
		where := prefix
		if where == "" {
			where = "top level"
		}
		return fmt.Errorf("%s: want a mapping of keys (e.g. %s), got %s (line %d)", where, exampleChild(prefix), describe(n), n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		path := kn.Value
		if prefix != "" {
			path = prefix + "." + kn.Value
		}
		if _, dup := f.Values[path]; dup {
			return fmt.Errorf("%s: set twice (line %d)", path, kn.Line)
		}
		if key, ok := Lookup(path); ok {
			text, err := scalarText(key, vn)
			if err != nil {
				return fmt.Errorf("%s: %v (line %d)", path, err, vn.Line)
			}
			if text == nil {
				continue // "key:" with no value leaves it unset
			}
			if err := key.CheckValue(*text); err != nil {
				if key.Secret {
					err = errors.New("invalid value")
				}
				return fmt.Errorf("%s: %v (line %d)", path, err, vn.Line)
			}
			f.Values[path] = Value{Key: key, Text: *text, Line: vn.Line}
			continue
		}
		if isSection(path) {
			if vn.Kind == yaml.ScalarNode && vn.Tag == "!!null" {
				continue
			}
			if err := f.walk(vn, path); err != nil {
				return err
			}
			continue
		}
		msg := fmt.Sprintf("%s: unknown key", path)
		if s := suggest(path); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", s)
		} else {
			msg += fmt.Sprintf(" (known keys: %s)", strings.Join(childrenOf(prefix), ", "))
		}
		return fmt.Errorf("%s (line %d)", msg, kn.Line)
	}
	return nil
}

// scalarText turns a YAML value into flag form, or nil for an empty value.
func scalarText(k Key, n *yaml.Node) (*string, error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if k.Kind == List {
		var items []string
		switch n.Kind {
		case yaml.SequenceNode:
			for i, c := range n.Content {
				if c.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("item %d: want a string, got %s", i, describe(c))
				}
				if strings.Contains(c.Value, ",") {
					return nil, fmt.Errorf("item %d %q: one entry per list item (no commas)", i, c.Value)
				}
				items = append(items, strings.TrimSpace(c.Value))
			}
		case yaml.ScalarNode:
			items = splitList(n.Value)
		default:
			return nil, fmt.Errorf("want a list (e.g. [broker1:9092, broker2:9092]), got %s", describe(n))
		}
		s := strings.Join(items, ",")
		return &s, nil
	}
	if n.Kind != yaml.ScalarNode {
		return nil, fmt.Errorf("want %s, got %s", kindForm(k.Kind), describe(n))
	}
	switch k.Kind {
	case Bool:
		if n.Tag != "!!bool" {
			return nil, fmt.Errorf("%q is not true or false", n.Value)
		}
	case Int:
		if n.Tag != "!!int" {
			return nil, fmt.Errorf("%q is not a whole number", n.Value)
		}
	case Duration:
		if n.Tag == "!!int" || n.Tag == "!!float" {
			return nil, fmt.Errorf("%q has no unit (want e.g. 1ms, 500us, 2s)", n.Value)
		}
	}
	s := n.Value
	return &s, nil
}

func kindForm(k Kind) string {
	switch k {
	case Bool:
		return "true or false"
	case Int:
		return "a whole number"
	case Duration:
		return "a duration like 1ms"
	case HostPort:
		return "host:port"
	}
	return "a string"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", Scrub(n.Value))
	}
	return "an alias"
}

// isSection reports whether path is a prefix of some key (kafka, kafka.tls).
func isSection(path string) bool {
	for _, k := range Keys {
		if strings.HasPrefix(k.Path, path+".") {
			return true
		}
	}
	return false
}

// childrenOf lists the names directly under prefix ("" = top level).
func childrenOf(prefix string) []string {
	seen := map[string]bool{}
	var out []string
	for _, k := range Keys {
		rest := k.Path
		if prefix != "" {
			if !strings.HasPrefix(k.Path, prefix+".") {
				continue
			}
			rest = strings.TrimPrefix(k.Path, prefix+".")
		}
		name, _, _ := strings.Cut(rest, ".")
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func exampleChild(prefix string) string {
	c := childrenOf(prefix)
	if len(c) == 0 {
		return "name: value"
	}
	return c[0] + ": ..."
}

// suggest returns the known key or section closest to path, if close enough
// to be a typo.
func suggest(path string) string {
	cands := map[string]bool{}
	for _, k := range Keys {
		parts := strings.Split(k.Path, ".")
		for i := range parts {
			cands[strings.Join(parts[:i+1], ".")] = true
		}
	}
	best, bestD := "", 1<<30
	for c := range cands {
		d := levenshtein(path, c)
		if d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	limit := 2
	if len(path) > 12 {
		limit = 3
	}
	if bestD <= limit {
		return best
	}
	return ""
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
