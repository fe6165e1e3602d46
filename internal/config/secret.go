package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
)

// Redacted is what a secret prints as, everywhere.
const Redacted = "***"

// Secret is a string that never prints itself. Hold passwords in a Secret
// instead of a string and fmt (every verb, including %#v and %x), JSON,
// YAML, encoding.TextMarshaler users and log/slog all show "***", so a
// debug log line or a triage report cannot leak it by accident. Reveal is
// the one way to the value and is meant for the code that authenticates.
// The empty Secret prints as "" so "not set" stays visible.
type Secret string

// Reveal returns the secret itself; call it only where the value is used
// (building the SASL config), never for display.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) redacted() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// String implements fmt.Stringer.
func (s Secret) String() string { return s.redacted() }

// GoString implements fmt.GoStringer so %#v redacts too.
func (s Secret) GoString() string { return fmt.Sprintf("config.Secret(%q)", s.redacted()) }

// Format implements fmt.Formatter: without it %x or %q would print the raw
// bytes of the underlying string.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		fmt.Fprintf(f, "%q", s.redacted())
	case 'v':
		if f.Flag('#') {
			fmt.Fprint(f, s.GoString())
			return
		}
		fmt.Fprint(f, s.redacted())
	default:
		fmt.Fprint(f, s.redacted())
	}
}

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.redacted() + `"`), nil }

// MarshalText implements encoding.TextMarshaler (also used by slog's text
// handler and by encoding/json for map keys).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.redacted()), nil }

// MarshalYAML implements yaml.Marshaler.
func (s Secret) MarshalYAML() (any, error) { return s.redacted(), nil }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.redacted()) }

// The registry of secret values in use by this process. Typed Secrets
// protect the places that know they hold one; the registry protects the
// places that do not: an error message from a library that quotes its
// input, a log line that formats a whole struct. The logging package and
// the error printer pass text through Scrub.
var known struct {
	sync.RWMutex
	values []string // longest first, so a secret containing another is replaced whole
}

// minSecretLen keeps one-letter "passwords" (test fixtures, typos) from
// turning every "a" in every log line into "***".
const minSecretLen = 3

// RegisterSecret records a secret value so Scrub removes it from any text.
// Surrounding whitespace (a trailing newline in a password file) is ignored.
func RegisterSecret(v string) {
	v = strings.TrimSpace(v)
	if len(v) < minSecretLen {
		return
	}
	known.Lock()
	defer known.Unlock()
	for _, k := range known.values {
		if k == v {
			return
		}
	}
	known.values = append(known.values, v)
	sort.Slice(known.values, func(i, j int) bool { return len(known.values[i]) > len(known.values[j]) })
}

// RegisterSecretFile records the contents of a password file. A file that
// cannot be read is ignored here: the code that uses it reports that error.
func RegisterSecretFile(path string) {
	if path == "" {
		return
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) > 64<<10 {
		return
	}
	RegisterSecret(string(b))
}

// Scrub replaces every registered secret value in s with "***".
func Scrub(s string) string {
	known.RLock()
	defer known.RUnlock()
	for _, v := range known.values {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, Redacted)
		}
	}
	return s
}

// Redact replaces each of secrets in s with "***", for callers that hold
// the values themselves (a report built from a config it was handed).
func Redact(s string, secrets ...string) string {
	sorted := append([]string(nil), secrets...)
	sort.Slice(sorted, func(i, j int) bool { return len(sorted[i]) > len(sorted[j]) })
	for _, v := range sorted {
		if v = strings.TrimSpace(v); len(v) >= minSecretLen {
			s = strings.ReplaceAll(s, v, Redacted)
		}
	}
	return Scrub(s)
}

// sensitiveWords mark a key (a log attribute, a config key, a JSON field)
// whose value is a secret whatever its type.
var sensitiveWords = []string{"password", "passwd", "secret", "token", "credential", "private_key", "privatekey"}

// IsSensitiveKey reports whether a key name says its value is a secret:
// "password", "sasl_password", "SASLPassword", "api-token". Key *file*
// names (password_file, key_file) are paths, not secrets.
func IsSensitiveKey(key string) bool {
	k := strings.ToLower(key)
	if strings.HasSuffix(k, "file") || strings.HasSuffix(k, "path") {
		return false
	}
	for _, w := range sensitiveWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// ScrubJSON is Scrub for encoded JSON: a secret inside a JSON string may
// appear escaped (a quote as \", < as \u003c), so each registered value is
// also cut out in its escaped forms. The result stays valid JSON.
func ScrubJSON(b []byte) []byte {
	known.RLock()
	defer known.RUnlock()
	for _, v := range known.values {
		forms := []string{v}
		if e, err := json.Marshal(v); err == nil {
			forms = append(forms, string(e[1:len(e)-1]))
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if enc.Encode(v) == nil {
			e := bytes.TrimSpace(buf.Bytes())
			forms = append(forms, string(e[1:len(e)-1]))
		}
		for _, f := range forms {
			b = bytes.ReplaceAll(b, []byte(f), []byte(Redacted))
		}
	}
	return b
}
