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
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
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

// SeedRecord is the seed's input record {"id": id, "features": [...]} with
// width features made deterministically from n (the same n, the same
// features), for tests that check results record by record.
func SeedRecord(id string, n, width int) []byte {
	b := []byte(`{"id":"` + id + `","features":[`)
	x := uint32(n*2654435761 + 7)
	for j := 0; j < width; j++ {
		if j > 0 {
			b = append(b, ',')
		}
		x = x*1664525 + 1013904223
		b = strconv.AppendFloat(b, float64(x>>8)/float64(1<<24), 'f', 6, 32)
	}
	return append(b, "]}"...)
}

// Client dials the stack's model server for t (closed at cleanup) and
// returns it with the width of the default model's features input.
func Client(t testing.TB, s *stack.Stack) (*tfserving.Client, int) {
	t.Helper()
	tfs, err := tfserving.Dial(tfserving.Config{Address: s.Addrs.GRPC})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tfs.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := tfs.Metadata(ctx, pipeline.DefaultModel, tfserving.Target{})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := md.ServingDefault()
	if err != nil {
		t.Fatal(err)
	}
	return tfs, int(sig.InputSpecs()[0].Shape[1])
}
