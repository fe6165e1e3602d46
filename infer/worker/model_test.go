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
)

// modelEnv is the embedded model server on loopback, serving every shipped
// version of my_model (policy all) so tests can switch between 1 and 2. It
// can be stopped and restarted on the same addresses mid-stream.
type modelEnv struct {
	t        testing.TB
	cfg      modelserver.Config
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
	m := &modelEnv{t: t, base: base, cfg: modelserver.Config{GRPCAddr: "127.0.0.1:0", RESTAddr: "127.0.0.1:0", DataDir: dir, ModelConfigFile: conf}}
	m.start()
	// Later restarts reuse the addresses, like a restarted tensorflow_model_server.
	m.cfg.GRPCAddr, m.cfg.RESTAddr = m.srv.GRPCAddr(), m.srv.RESTAddr()
	m.restAddr = m.srv.RESTAddr()
	c, err := tfserving.Dial(tfserving.Config{Address: m.srv.GRPCAddr(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m.client = c
	t.Cleanup(func() {
		_ = c.Close()
		if m.srv != nil {
			_ = m.srv.Close()
		}
	})
	return m
}

func (m *modelEnv) start() {
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
	m.t.Fatalf("start the model server: %v", err)
}

func (m *modelEnv) stop() {
	_ = m.srv.Close()
	m.srv = nil
}

func (m *modelEnv) restart() { m.start() }
