// Package paths knows where inferops keeps its state on a host.
package paths

import (
	"os"
	"path/filepath"
)

// StateDir is the user's state directory for inferops:
// $XDG_STATE_HOME/inferops, or ~/.local/state/inferops. The embedded broker's
// data, the default model files, perf history and console logs live under it.
// Tests never use it: they pass a t.TempDir() explicitly.
func StateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "inferops")
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return filepath.Join(home, ".local", "state", "inferops")
	}
	return filepath.Join(os.TempDir(), "inferops-state")
}
