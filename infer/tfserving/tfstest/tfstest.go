// Package tfstest starts TF Serving hosts for tests the way users start
// extra ones: the built inferops binary running `serve --broker=false`,
// each its own process, so a test can SIGKILL one, slow one down with
// --inject-latency or serve it other versions, and read each host's own
// request counter from its Prometheus page. Tests only.
package tfstest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// Host is one `inferops serve --broker=false` process.
type Host struct {
	GRPC, REST string // the addresses its ready line names
	cmd        *exec.Cmd
	stderr     *syncBuffer
	once       sync.Once
}

// Start runs a model server on loopback port 0 (gRPC and REST), nothing on
// disk, with extra serve flags (e.g. "--inject-latency", "30ms" or
// "--model-base-path", dir). It is killed at cleanup.
func Start(t testing.TB, args ...string) *Host {
	t.Helper()
	return StartAt(t, "127.0.0.1:0", args...)
}

// StartAt is Start on a given gRPC address, e.g. to restart a killed host
// where its clients expect it.
func StartAt(t testing.TB, grpcAddr string, args ...string) *Host {
	t.Helper()
	bin := stacktest.Binary(t)
	all := append([]string{"serve", "--broker=false", "--grpc-addr", grpcAddr, "--rest-addr", "127.0.0.1:0", "--ephemeral", "--log-level", "warn"}, args...)
	cmd := exec.Command(bin, all...)
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	h := &Host{cmd: cmd, stderr: &syncBuffer{}}
	cmd.Stderr = h.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Kill)
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-lines:
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "inferops serve: ready ")
		for _, f := range strings.Fields(rest) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "grpc":
				h.GRPC = v
			case "rest":
				h.REST = v
			}
		}
		if !ok || h.GRPC == "" || h.REST == "" {
			t.Fatalf("serve %v: ready line %q; stderr:\n%s", args, line, h.stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("serve %v: no ready line; stderr:\n%s", args, h.stderr.String())
	}
	return h
}

// Kill sends SIGKILL (no drain, connections reset) and reaps the process.
func (h *Host) Kill() {
	h.once.Do(func() {
		_ = h.cmd.Process.Signal(syscall.SIGKILL)
		_ = h.cmd.Wait()
	})
}

// Stderr is what the process logged.
func (h *Host) Stderr() string { return h.stderr.String() }

// Requests is the host's own count of Predict requests
// (:tensorflow:serving:request_count summed over models and statuses, as
// TF Serving counts them).
func (h *Host) Requests(ctx context.Context) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+h.REST+"/monitoring/prometheus/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s metrics: HTTP %s", h.REST, resp.Status)
	}
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, ":tensorflow:serving:request_count{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("%s metrics: %q: %v", h.REST, line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
