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
	s := &Server{cfg: cfg, metrics: newMetrics(cfg.EnableBatching), serveErr: make(chan error, 2)}
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
	if cfg.EnableBatching {
		s.batcher = newBatcher(cfg.Batching, s.metrics)
	}
	if err := s.listen(); err != nil {
		s.cleanup()
		return nil, err
	}
	return s, nil
}

// initialConfig is the config file, or one model from name + base path,
// materialising the shipped my_model when no base path is given.
func (s *Server) initialConfig() (*tfpb.ModelServerConfig, error) {
	if s.cfg.ModelConfigFile != "" {
		return ReadModelConfigFile(s.cfg.ModelConfigFile)
	}
	base := s.cfg.ModelBasePath
	shipped := base == ""
	if shipped {
		root := s.cfg.DataDir
		if root == "" {
			d, err := os.MkdirTemp("", "inferops-models-")
			if err != nil {
				return nil, fmt.Errorf("temporary model directory: %v (set --data-dir)", err)
			}
			s.tempDir, root = d, d
		} else {
			root = filepath.Join(root, "models")
		}
		base = filepath.Join(root, model.Name)
		if s.cfg.ModelName != model.Name {
			return nil, fmt.Errorf("--model-name %q needs --model-base-path: only %s ships with inferops", s.cfg.ModelName, model.Name)
		}
		wrote, err := model.Materialize(base)
		if err != nil {
			return nil, fmt.Errorf("%v (check --data-dir permissions, or set --model-base-path)", err)
		}
		if wrote {
			s.cfg.Logger.Info("wrote the shipped model", "model", model.Name, "base_path", base)
		}
	}
	abs, err := filepath.Abs(base)
	if err != nil {
		return nil, fmt.Errorf("--model-base-path %q: %v", base, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("--model-base-path %q: %v (it must hold version directories like %s/1)", base, err, base)
	}
	mc := &tfpb.ModelConfig{Name: s.cfg.ModelName, BasePath: abs, ModelPlatform: "tensorflow"}
	if shipped {
		// The shipped model is served whole: both versions, labelled, so
		// switching versions works out of the box. A --model-base-path gets
		// TF Serving's default (the latest version only, no labels).
		mc.ModelVersionPolicy = &tfpb.FileSystemStoragePathSourceConfig_ServableVersionPolicy{
			PolicyChoice: &tfpb.FileSystemStoragePathSourceConfig_ServableVersionPolicy_All_{
				All: &tfpb.FileSystemStoragePathSourceConfig_ServableVersionPolicy_All{},
			},
		}
		mc.VersionLabels = maps.Clone(model.Labels)
	}
	return &tfpb.ModelServerConfig{Config: &tfpb.ModelServerConfig_ModelConfigList{ModelConfigList: &tfpb.ModelConfigList{
		Config: []*tfpb.ModelConfig{mc},
	}}}, nil
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
