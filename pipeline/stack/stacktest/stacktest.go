// Package stacktest starts the embedded stack for a test: on free ports,
// with its state under t.TempDir(), stopped when the test ends. Tests of the
// broker (cluster) and of the model server (infer/modelserver) cannot import
// it, since the stack is built from them; they start what they test
// directly.
package stacktest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/inferops/inferops/pipeline/stack"
)

// Start runs cfg's parts for t. Every listen address cfg leaves empty is
// 127.0.0.1:0, and DataDir is a fresh t.TempDir() unless cfg sets one or is
// Ephemeral. A part that fails to start fails the test; the stack is closed
// in the test's cleanup.
func Start(t testing.TB, cfg stack.Config) *stack.Stack {
	t.Helper()
	if cfg.Broker != nil {
		b := *cfg.Broker
		if b.Addr == "" {
			b.Addr = "127.0.0.1:0"
		}
		cfg.Broker = &b
	}
	if cfg.Models != nil {
		m := *cfg.Models
		if m.GRPCAddr == "" {
			m.GRPCAddr = "127.0.0.1:0"
		}
		if m.RESTAddr == "" {
			m.RESTAddr = "127.0.0.1:0"
		}
		cfg.Models = &m
	}
	if cfg.DataDir == "" && !cfg.Ephemeral {
		cfg.DataDir = t.TempDir()
	}
	// Generous: loading the model and creating 27 partitions on a loaded
	// 2-core machine takes seconds, not minutes.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := stack.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start the embedded stack: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("stop the embedded stack: %v", err)
		}
	})
	return s
}

var (
	binMu   sync.Mutex
	binPath string
)

// Build builds cmd/inferops into dir, for a TestMain that runs the binary
// from many tests (test/chaos); Binary is the per-test way.
func Build(dir string) (string, error) {
	path := filepath.Join(dir, "inferops")
	// The go that runs this test, else the one on PATH.
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	if out, err := exec.Command(goBin, "build", "-o", path, "github.com/inferops/inferops/cmd/inferops").CombinedOutput(); err != nil {
		return "", fmt.Errorf("build inferops: %v\n%s", err, out)
	}
	return path, nil
}

// Binary builds cmd/inferops for tests that run it as separate processes
// (real signals, exit codes, SIGKILL). The binary lives in a t.TempDir()
// (nothing outside it is written), so it is rebuilt, a link from the build
// cache, only when an earlier test's directory is gone.
func Binary(t testing.TB) string {
	t.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	if binPath != "" {
		if _, err := os.Stat(binPath); err == nil {
			return binPath
		}
	}
	path, err := Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	binPath = path
	return path
}
