package paths

import (
	"path/filepath"
	"testing"
)

func TestStateDir(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("XDG_STATE_HOME", tmp)
	if got, want := StateDir(), filepath.Join(tmp, "inferops"); got != want {
		t.Fatalf("StateDir with XDG_STATE_HOME = %q, want %q", got, want)
	}
	t.Setenv("XDG_STATE_HOME", "relative/ignored")
	t.Setenv("HOME", tmp)
	if got, want := StateDir(), filepath.Join(tmp, ".local", "state", "inferops"); got != want {
		t.Fatalf("StateDir with HOME = %q, want %q", got, want)
	}
}
