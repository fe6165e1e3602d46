package worker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// modelEnv is the embedded model server on loopback, serving every shipped
// version of my_model (policy all) so tests can switch between 1 and 2. It
// can be stopped and restarted on the same addresses mid-stream.
type modelEnv struct {
	t        testing.TB
	cfg      modelserver.Config // what restart starts again
	srv      *modelserver.Server
	client   *tfserving.Client
	restAddr string
	base     string // <base>/<version>/ of my_model
}

func startModel(t testing.TB) *modelEnv {
	t.Helper()
	dir := t.TempDir()
	base := filepath.Join(dir, model.Name)
	if _, err := model.Materialize(model.Name, base); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "models.config")
	text := fmt.Sprintf("model_config_list {\n  config {\n    name: %q\n    base_path: %q\n    model_platform: \"tensorflow\"\n    model_version_policy { all {} }\n  }\n}\n", model.Name, base)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	st := stacktest.Start(t, stack.Config{Models: &modelserver.Config{ModelConfigFile: conf}, DataDir: dir})
	m := &modelEnv{t: t, base: base, srv: st.Models, restAddr: st.Addrs.REST,
		// Restarts reuse the addresses, like a restarted tensorflow_model_server.
		cfg: modelserver.Config{GRPCAddr: st.Addrs.GRPC, RESTAddr: st.Addrs.REST, DataDir: dir, ModelConfigFile: conf}}
	c, err := tfserving.Dial(tfserving.Config{Address: st.Addrs.GRPC, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m.client = c
	t.Cleanup(func() {
		_ = c.Close()
		if m.srv != nil {
			_ = m.srv.Close() // a restarted server; the stack closes the first
		}
	})
	return m
}

// restart starts a new model server on the same addresses, as a restarted
// tensorflow_model_server comes back; by hand, since a stack starts its
// parts once.
func (m *modelEnv) restart() {
	m.t.Helper()
	var err error
	for i := 0; i < 50; i++ { // the old listener's port may take a moment to free
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		m.srv, err = modelserver.Start(ctx, m.cfg)
		cancel()
		if err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	m.t.Fatalf("restart the model server: %v", err)
}

func (m *modelEnv) stop() {
	_ = m.srv.Close()
	m.srv = nil
}
