package modelserver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/tfpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// Server is a running model server. Close it and Start another on the same
// addresses to restart (the worker tests do, mid-stream).
type Server struct {
	cfg     Config
	models  *manager
	metrics *metrics
	batcher *batcher
	faults  faults

	grpcLis, restLis net.Listener
	grpc             *grpc.Server
	http             *http.Server
	tempDir          string // materialised shipped model without a data dir

	closeOnce sync.Once
	closeErr  error
	serveErr  chan error
}

// Start loads the models, then listens. When it returns the initial models
// are AVAILABLE (as tensorflow_model_server before it opens its ports).
func Start(ctx context.Context, cfg Config) (*Server, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, metrics: newMetrics(cfg.EnableBatching), faults: newFaults(cfg.Faults), serveErr: make(chan error, 2)}
	if len(s.faults) > 0 {
		s.metrics.countFaults()
	}
	modelCfg, err := s.initialConfig()
	if err != nil {
		s.cleanup()
		return nil, err
	}
	s.models = newManager(cfg.Logger, cfg.PollWait, s.metrics, cfg.AllowVersionLabelsForUnavailableModels)
	if err := s.models.apply(ctx, modelCfg, true); err != nil {
		s.cleanup()
		return nil, fmt.Errorf("model config: %w", err)
	}
	if err := s.models.checkStartupLabels(); err != nil {
		s.cleanup()
		return nil, err
	}
	if err := s.checkFaults(); err != nil {
		s.cleanup()
		return nil, err
	}
	if cfg.EnableBatching {
		s.batcher = newBatcher(cfg.Batching, s.metrics)
	}
	if err := s.listen(); err != nil {
		s.cleanup()
		return nil, err
	}
	return s, nil
}

// checkFaults refuses a fault for a model that is not served (a typo would
// make a drill pass for the wrong reason), then warns that this server
// misbehaves on purpose.
func (s *Server) checkFaults() error {
	if len(s.faults) == 0 {
		return nil
	}
	for _, f := range s.faults {
		if s.models.get(f.Model) == nil {
			s.models.mu.RLock()
			served := slices.Sorted(maps.Keys(s.models.models))
			s.models.mu.RUnlock()
			return fmt.Errorf("--fault %s: no model %q is served (served: %s)", f.spec, f.Model, strings.Join(served, ", "))
		}
	}
	s.cfg.Logger.Warn("injecting faults on purpose: Predict of these versions is slowed or failed (--fault)", "faults", strings.Join(s.faults.specs(), " "))
	return nil
}

// initialConfig is the config file, or one model from name + base path,
// or every shipped model (materialised into the data dir) when neither is
// given; then the stand-ins.
func (s *Server) initialConfig() (*tfpb.ModelServerConfig, error) {
	var list []*tfpb.ModelConfig
	switch {
	case s.cfg.ModelConfigFile != "":
		cfg, err := ReadModelConfigFile(s.cfg.ModelConfigFile)
		if err != nil {
			return nil, err
		}
		list = cfg.GetModelConfigList().GetConfig()
	case s.cfg.ModelBasePath != "":
		base := s.cfg.ModelBasePath
		abs, err := filepath.Abs(base)
		if err != nil {
			return nil, fmt.Errorf("--model-base-path %q: %v", base, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("--model-base-path %q: %v (it must hold version directories like %s/1)", base, err, base)
		}
		// TF Serving's default policy: the latest version only, no labels.
		list = []*tfpb.ModelConfig{{Name: s.cfg.ModelName, BasePath: abs, ModelPlatform: "tensorflow"}}
	default:
		if !slices.Contains(model.ShippedNames(), s.cfg.ModelName) {
			return nil, fmt.Errorf("--model-name %q needs --model-base-path: only %s ship with inferops", s.cfg.ModelName, strings.Join(model.ShippedNames(), " and "))
		}
		root, err := s.root("models")
		if err != nil {
			return nil, err
		}
		for _, sh := range model.Shipped {
			if s.standIn(sh.Name) {
				continue // the operator's stand-in takes the name
			}
			base := filepath.Join(root, sh.Name)
			wrote, err := model.Materialize(sh.Name, base)
			if err != nil {
				return nil, fmt.Errorf("%v (check --data-dir permissions, or set --model-base-path)", err)
			}
			if wrote {
				s.cfg.Logger.Info("wrote the shipped model", "model", sh.Name, "base_path", base)
			}
			// The shipped models are served whole: both versions, labelled,
			// so switching versions works out of the box.
			list = append(list, &tfpb.ModelConfig{
				Name: sh.Name, BasePath: base, ModelPlatform: "tensorflow",
				ModelVersionPolicy: &tfpb.FileSystemStoragePathSourceConfig_ServableVersionPolicy{
					PolicyChoice: &tfpb.FileSystemStoragePathSourceConfig_ServableVersionPolicy_All_{
						All: &tfpb.FileSystemStoragePathSourceConfig_ServableVersionPolicy_All{},
					},
				},
				VersionLabels: maps.Clone(model.Labels),
			})
		}
	}
	for _, st := range s.cfg.StandIns {
		for _, mc := range list {
			if mc.GetName() == st.Name {
				return nil, fmt.Errorf("--stand-in %s=%s: the model config already serves %s (pick another name)", st.Name, st.File, st.Name)
			}
		}
		mc, err := s.writeStandIn(st)
		if err != nil {
			return nil, err
		}
		list = append(list, mc)
	}
	return &tfpb.ModelServerConfig{Config: &tfpb.ModelServerConfig_ModelConfigList{ModelConfigList: &tfpb.ModelConfigList{Config: list}}}, nil
}

// standIn reports whether name is one of the configured stand-ins.
func (s *Server) standIn(name string) bool {
	for _, st := range s.cfg.StandIns {
		if st.Name == name {
			return true
		}
	}
	return false
}

// root is a directory for generated model files: <DataDir>/<sub>, or under
// a temporary directory removed at Close when there is no data dir.
func (s *Server) root(sub string) (string, error) {
	if s.cfg.DataDir != "" {
		return filepath.Join(s.cfg.DataDir, sub), nil
	}
	if s.tempDir == "" {
		d, err := os.MkdirTemp("", "inferops-models-")
		if err != nil {
			return "", fmt.Errorf("temporary model directory: %v (set --data-dir)", err)
		}
		s.tempDir = d
	}
	return filepath.Join(s.tempDir, sub), nil
}

// writeStandIn checks a stand-in's metadata file and writes it as the one
// version of the model NAME (the file's own version number, or 1), fresh on
// every start so an edited file is what is served.
func (s *Server) writeStandIn(st StandIn) (*tfpb.ModelConfig, error) {
	b, err := os.ReadFile(st.File)
	if err != nil {
		return nil, fmt.Errorf("--stand-in %s=%s: %v", st.Name, st.File, err)
	}
	parsed, err := parseStandIn(b)
	if err != nil {
		return nil, fmt.Errorf("--stand-in %s=%s: %v", st.Name, st.File, err)
	}
	root, err := s.root("stand-ins")
	if err != nil {
		return nil, err
	}
	base := filepath.Join(root, st.Name)
	if err := os.RemoveAll(base); err != nil {
		return nil, fmt.Errorf("--stand-in %s: %v", st.Name, err)
	}
	v := parsed.version
	if v == 0 {
		v = 1
	}
	if err := model.WriteFile(filepath.Join(base, strconv.FormatInt(v, 10), StandInFile), b); err != nil {
		return nil, fmt.Errorf("--stand-in %s: %v (check --data-dir permissions)", st.Name, err)
	}
	s.cfg.Logger.Info("serving a stand-in", "model", st.Name, "file", st.File, "version", v, "base_path", base)
	return &tfpb.ModelConfig{Name: st.Name, BasePath: base, ModelPlatform: "tensorflow"}, nil
}

func (s *Server) listen() error {
	tc, err := s.cfg.TLS.tlsConfig()
	if err != nil {
		return err
	}
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(s.cfg.MaxMessageBytes),
		grpc.MaxSendMsgSize(s.cfg.MaxMessageBytes),
		// Clients ping idle connections (ours every 30 s); allow it rather
		// than answering with GOAWAY too_many_pings.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		// Fixed 1 MiB flow-control windows: no window updates for typical
		// batches, and no BDP-estimation pings racing every request's data
		// (measured: ~60 µs less per batch-64 Predict on loopback).
		grpc.InitialWindowSize(1 << 20),
		grpc.InitialConnWindowSize(1 << 20),
		// Long-lived handler goroutines keep their grown stacks: a fresh
		// goroutine per request paid for stack copying (~3% in profiles).
		grpc.NumStreamWorkers(uint32(runtime.NumCPU())),
	}
	if tc != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	s.grpc = grpc.NewServer(opts...)
	svc := &grpcService{s: s}
	tfpb.RegisterPredictionServiceServer(s.grpc, svc)
	tfpb.RegisterModelServiceServer(s.grpc, svc)

	s.grpcLis, err = net.Listen("tcp", s.cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("--grpc-addr %s: %v (is another model server or tensorflow_model_server running? pick another port)", s.cfg.GRPCAddr, err)
	}
	go func() { s.serveErr <- s.grpc.Serve(s.grpcLis) }()

	if s.cfg.RESTAddr == "-" {
		return nil
	}
	s.restLis, err = net.Listen("tcp", s.cfg.RESTAddr)
	if err != nil {
		return fmt.Errorf("--rest-addr %s: %v (pick another port, or --rest-addr=- to turn REST off)", s.cfg.RESTAddr, err)
	}
	s.http = &http.Server{
		Handler:           s.restHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second, // TF's --rest_api_timeout_in_ms default
		IdleTimeout:       2 * time.Minute,
		TLSConfig:         tc,
		ErrorLog:          nil,
	}
	go func() {
		var err error
		if tc != nil {
			err = s.http.ServeTLS(s.restLis, "", "")
		} else {
			err = s.http.Serve(s.restLis)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.serveErr <- err
	}()
	return nil
}

// GRPCAddr is the gRPC listen address (the real port when :0 was asked).
func (s *Server) GRPCAddr() string { return s.grpcLis.Addr().String() }

// RESTAddr is the REST listen address, or "" when REST is off.
func (s *Server) RESTAddr() string {
	if s.restLis == nil {
		return ""
	}
	return s.restLis.Addr().String()
}

// Close stops listening, lets in-flight requests finish (up to 5 s), and
// stops the pollers and the batcher.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if s.http != nil {
			if err := s.http.Shutdown(ctx); err != nil {
				_ = s.http.Close()
			}
		}
		if s.grpc != nil {
			grpcSrv := s.grpc
			done := make(chan struct{})
			go func() { grpcSrv.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-ctx.Done():
				grpcSrv.Stop()
				<-done
			}
		}
		s.cleanup()
	})
	return s.closeErr
}

func (s *Server) cleanup() {
	if s.batcher != nil {
		s.batcher.close()
	}
	if s.models != nil {
		s.models.close()
	}
	// After a failed Start the listeners may be open and serving.
	if s.grpc != nil {
		s.grpc.Stop()
	} else if s.grpcLis != nil {
		_ = s.grpcLis.Close()
	}
	if s.http != nil {
		_ = s.http.Close()
	} else if s.restLis != nil {
		_ = s.restLis.Close()
	}
	if s.tempDir != "" {
		_ = os.RemoveAll(s.tempDir)
	}
}

// ModelVersions is a model's status for in-process callers (the console's
// embedded view): versions highest first, and its labels.
func (s *Server) ModelVersions(name string) ([]VersionStatus, map[string]int64, error) {
	vs, err := s.models.status(name, 0, false)
	return vs, s.models.labelsOf(name), err
}

// Reload applies a new model config, as HandleReloadConfigRequest does.
func (s *Server) Reload(ctx context.Context, cfg *tfpb.ModelServerConfig) error {
	return s.models.apply(ctx, cfg, false)
}

// Poll re-reads every base path now instead of waiting for the next tick.
func (s *Server) Poll() {
	s.models.reloadMu.Lock() // pollers start and stop only under reloadMu
	defer s.models.reloadMu.Unlock()
	s.models.mu.RLock()
	defer s.models.mu.RUnlock()
	for _, mm := range s.models.models {
		if mm.kick != nil && mm.stop != nil {
			mm.poke()
		}
	}
}
