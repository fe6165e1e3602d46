// Package logging builds the one kind of logger inferops uses: log/slog, JSON
// to stderr for headless commands (journald stores each line with the
// unit's metadata and `journalctl -o cat` shows the JSON), or text/JSON to a
// file for the console, whose stderr is the screen. Every handler it builds
// redacts secrets: config.Secret values resolve to "***", attributes named
// like a password are masked, and any registered secret value (config.Scrub)
// is cut out of messages, strings and errors.
package logging

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/inferops/inferops/internal/config"
)

// Options configure New. The zero value is JSON at info level to stderr.
type Options struct {
	Format string // "json" (default) or "text"
	Level  string // "debug", "info" (default), "warn", "error"
	// File, when set, receives the log (appended, created 0600, parent dirs
	// 0700); otherwise Writer, otherwise stderr.
	File   string
	Writer io.Writer
}

// SetDefaults fills empty fields.
func (o *Options) SetDefaults() {
	if o.Format == "" {
		o.Format = "json"
	}
	if o.Level == "" {
		o.Level = "info"
	}
	o.Format = strings.ToLower(strings.TrimSpace(o.Format))
}

// Validate names the flag to fix.
func (o Options) Validate() error {
	if o.Format != "json" && o.Format != "text" {
		return fmt.Errorf("--log-format %q: want json or text", o.Format)
	}
	if _, err := ParseLevel(o.Level); err != nil {
		return err
	}
	return nil
}

// ParseLevel reads --log-level.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
}

// ConsoleFile is where the console logs: a file in the state directory,
// because its stderr is the screen.
func ConsoleFile(stateDir string) string { return filepath.Join(stateDir, "console.log") }

// New returns the logger and a closer for its file (a no-op for stderr).
func New(o Options) (*slog.Logger, func() error, error) {
	o.SetDefaults()
	if err := o.Validate(); err != nil {
		return nil, nil, err
	}
	level, _ := ParseLevel(o.Level)
	w := o.Writer
	closer := func() error { return nil }
	if o.File != "" {
		if err := os.MkdirAll(filepath.Dir(o.File), 0o700); err != nil {
			return nil, nil, fmt.Errorf("--log-file %s: %v (pick a writable directory)", o.File, errors.Unwrap(err))
		}
		f, err := os.OpenFile(o.File, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("--log-file %s: %v (pick a writable file)", o.File, errors.Unwrap(err))
		}
		w, closer = f, f.Close
	}
	if w == nil {
		w = os.Stderr
	}
	return slog.New(NewHandler(w, o.Format, level)), closer, nil
}

// NewHandler is the redacting handler behind New, for callers that need a
// handler (a tee, a test) rather than a logger.
func NewHandler(w io.Writer, format string, level slog.Leveler) slog.Handler {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: ReplaceAttr}
	if format == "text" {
		return slog.NewTextHandler(w, opts)
	}
	return slog.NewJSONHandler(w, opts)
}

// ReplaceAttr is the redaction step as a slog.HandlerOptions.ReplaceAttr, so
// a package building its own handler gets the same guarantee. slog has
// already resolved LogValuers (config.Secret -> "***") when it is called,
// and it is called for the message too.
func ReplaceAttr(groups []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindGroup {
		return a
	}
	if config.IsSensitiveKey(a.Key) {
		if a.Value.Kind() == slog.KindString && a.Value.String() == "" {
			return a
		}
		return slog.String(a.Key, config.Redacted)
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); config.Scrub(s) != s {
			a.Value = slog.StringValue(config.Scrub(s))
		}
	case slog.KindAny:
		a.Value = scrubAny(a.Value.Any())
	}
	return a
}

// scrubAny handles errors, Stringers and structs: their text is checked for
// registered secrets and, if one is found, replaced by the scrubbed text.
func scrubAny(v any) slog.Value {
	var text string
	switch x := v.(type) {
	case error:
		// slog prints errors with Error(); scrub that text.
		if s := x.Error(); config.Scrub(s) != s {
			return slog.StringValue(config.Scrub(s))
		}
		return slog.AnyValue(v)
	case fmt.Stringer:
		text = x.String()
	default:
		b, err := json.Marshal(v)
		if err != nil {
			text = fmt.Sprintf("%+v", v)
		} else {
			text = string(b)
		}
		// A struct with an unexported password field would not show in
		// JSON but would in %+v (the text handler's form): check both.
		if t2 := fmt.Sprintf("%+v", v); config.Scrub(t2) != t2 {
			return slog.StringValue(config.Scrub(t2))
		}
	}
	if config.Scrub(text) != text {
		return slog.StringValue(config.Scrub(text))
	}
	return slog.AnyValue(v)
}
