package modelserver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/inferops/inferops/internal/tlsfiles"
	"github.com/inferops/inferops/pipeline"

	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/tfpb"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Defaults beyond the addresses (pipeline.DefaultGRPCAddr, DefaultRESTAddr).
const (
	// DefaultMaxMessageBytes bounds one gRPC or REST request. TF Serving
	// allows INT32_MAX; we keep a bound a 2-core VM survives (a 64-row batch
	// of 32 floats is 8 KiB, so this is four orders of magnitude of room).
	DefaultMaxMessageBytes = 64 << 20
)

// Config is the model server's configuration (flags of `inferops serve`).
type Config struct {
	// GRPCAddr and RESTAddr are listen addresses; "-" disables REST.
	GRPCAddr, RESTAddr string
	// ModelName and ModelBasePath describe the single model served when
	// ModelConfigFile is empty. With neither, the shipped models (my_model
	// and ads_ctr) are written to <DataDir>/models/<name> (or a temp dir
	// when DataDir is empty) and served from there.
	ModelName, ModelBasePath string
	// ModelConfigFile is a text-format ModelServerConfig (TF's
	// --model_config_file); relative base paths are resolved against the
	// file's directory.
	ModelConfigFile string
	DataDir         string
	// StandIns are served next to the other models (--stand-in NAME=FILE),
	// each a model made up from a real model's metadata JSON; a stand-in
	// named like a shipped model replaces it.
	StandIns []StandIn
	// PollWait is how often base paths are re-read for new and removed
	// versions; negative polls once at start (TF's 0), zero means 1 s.
	PollWait time.Duration

	EnableBatching bool
	Batching       BatchingParameters
	// BatchingParametersFile is a text-format BatchingParameters; its
	// fields override Batching.
	BatchingParametersFile string

	TLS ServerTLS
	// InjectLatency is added to every Predict before it runs: a fault
	// injection knob for perf tests and demos of a slow model.
	InjectLatency time.Duration
	// Faults make single model versions slow or failing on purpose
	// (--fault, repeatable), for rollout drills; see Fault.
	Faults []Fault
	// MaxMessageBytes bounds one request (gRPC message or REST body).
	MaxMessageBytes int
	// AllowVersionLabelsForUnavailableModels is TF's flag of that name:
	// new labels may point at versions that are not yet AVAILABLE.
	AllowVersionLabelsForUnavailableModels bool

	Logger *slog.Logger
}

// StandIn is one --stand-in NAME=FILE: serve a model NAME with exactly the
// signatures in FILE, what TF Serving's REST API returns from
// GET /v1/models/NAME/metadata.
type StandIn struct {
	Name, File string
}

// ParseStandInFlag reads NAME=FILE.
func ParseStandInFlag(v string) (StandIn, error) {
	name, file, ok := strings.Cut(v, "=")
	if !ok || name == "" || file == "" {
		return StandIn{}, fmt.Errorf("--stand-in %q: want NAME=FILE, FILE being what GET /v1/models/NAME/metadata returns (curl it from TF Serving's REST port)", v)
	}
	return StandIn{Name: name, File: file}, nil
}

// BatchingParameters mirrors TF's BatchingParameters (text format in
// --batching-parameters-file). Zero values take TF's defaults, except
// MaxBatchSize and BatchTimeout, which take the seed's 64 and 1 ms.
type BatchingParameters struct {
	MaxBatchSize       int
	BatchTimeout       time.Duration
	MaxEnqueuedBatches int
	NumBatchThreads    int
	ThreadPoolName     string
	AllowedBatchSizes  []int
	// EnableLargeBatchSplitting splits requests bigger than MaxBatchSize
	// across batches instead of rejecting them.
	EnableLargeBatchSplitting bool
}

// ServerTLS makes both listeners use TLS; ClientCAFile turns on mutual TLS.
type ServerTLS struct {
	CertFile, KeyFile, ClientCAFile string
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.GRPCAddr == "" {
		c.GRPCAddr = pipeline.DefaultGRPCAddr
	}
	if c.RESTAddr == "" {
		c.RESTAddr = pipeline.DefaultRESTAddr
	}
	if c.ModelName == "" {
		c.ModelName = model.Name
	}
	if c.PollWait == 0 {
		c.PollWait = time.Second
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	b := &c.Batching
	if b.MaxBatchSize == 0 {
		b.MaxBatchSize = pipeline.DefaultMaxBatch
	}
	if b.BatchTimeout == 0 {
		b.BatchTimeout = pipeline.DefaultBatchTimeout
	}
	if b.MaxEnqueuedBatches == 0 {
		b.MaxEnqueuedBatches = 10
	}
	if b.NumBatchThreads == 0 {
		b.NumBatchThreads = max(2, runtime.NumCPU())
	}
	if b.ThreadPoolName == "" {
		b.ThreadPoolName = "model_server_batch_threads"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first bad setting, naming its flag. It also reads
// the batching parameters file into Batching.
func (c *Config) Validate() error {
	for _, a := range []struct{ flag, addr string }{{"--grpc-addr", c.GRPCAddr}, {"--rest-addr", c.RESTAddr}} {
		if a.flag == "--rest-addr" && a.addr == "-" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return fmt.Errorf("%s %q: want host:port, e.g. 127.0.0.1:8500", a.flag, a.addr)
		}
	}
	if c.RESTAddr == c.GRPCAddr && !isPortZero(c.GRPCAddr) {
		return fmt.Errorf("--rest-addr %q: must differ from --grpc-addr", c.RESTAddr)
	}
	if c.ModelConfigFile != "" && c.ModelBasePath != "" {
		return errors.New("--model-config-file and --model-base-path exclude each other: the config file names every model's base_path")
	}
	if c.BatchingParametersFile != "" {
		if !c.EnableBatching {
			return errors.New("--batching-parameters-file needs --enable-batching (TF Serving refuses it too)")
		}
		bp, err := ReadBatchingParametersFile(c.BatchingParametersFile)
		if err != nil {
			return err
		}
		c.Batching.apply(bp)
	}
	if err := c.Batching.validate(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, st := range c.StandIns {
		if !validModelName(st.Name) {
			return fmt.Errorf("--stand-in %s=%s: a model name is letters, digits, '_', '-' and '.', not starting with '.'", st.Name, st.File)
		}
		if seen[st.Name] {
			return fmt.Errorf("--stand-in %s is given twice", st.Name)
		}
		seen[st.Name] = true
	}
	if c.InjectLatency < 0 {
		return fmt.Errorf("--inject-latency %v: must not be negative", c.InjectLatency)
	}
	if err := validateFaults(c.Faults); err != nil {
		return err
	}
	if c.MaxMessageBytes < 1024 {
		return fmt.Errorf("max message size %d: must be at least 1024 bytes", c.MaxMessageBytes)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return errors.New("--grpc-tls-cert-file and --grpc-tls-key-file go together")
	}
	if c.TLS.ClientCAFile != "" && c.TLS.CertFile == "" {
		return errors.New("--grpc-tls-client-ca-file needs a server certificate (--grpc-tls-cert-file)")
	}
	return nil
}

// Upper bounds of the batching parameters: the queue is a channel of
// max_enqueued_batches x max_batch_size tasks, made up front, and every
// batch thread is a goroutine, so an unbounded value from a flag or a
// parameters file was a panic (makechan: size out of range) or gigabytes
// at start. TF Serving's own tuning guides stay far below them.
const (
	maxBatchRows      = 1 << 16
	maxQueuedRows     = 1 << 20
	maxBatchThreads   = 1024
	maxBatchTimeout   = time.Minute
	batchFlagsAndFile = "(--batching-* flags or --batching-parameters-file)"
)

// validate names the parameter (TF's name) to fix.
func (b BatchingParameters) validate() error {
	switch {
	case b.MaxBatchSize < 1 || b.MaxBatchSize > maxBatchRows:
		return fmt.Errorf("batching max_batch_size %d: want 1..%d %s", b.MaxBatchSize, maxBatchRows, batchFlagsAndFile)
	case b.BatchTimeout < 0 || b.BatchTimeout > maxBatchTimeout:
		return fmt.Errorf("batching batch_timeout_micros %d: want 0..%d %s", b.BatchTimeout.Microseconds(), maxBatchTimeout.Microseconds(), batchFlagsAndFile)
	case b.MaxEnqueuedBatches < 1 || b.MaxEnqueuedBatches > maxQueuedRows:
		return fmt.Errorf("batching max_enqueued_batches %d: want 1..%d %s", b.MaxEnqueuedBatches, maxQueuedRows, batchFlagsAndFile)
	case b.MaxEnqueuedBatches*b.MaxBatchSize > maxQueuedRows:
		return fmt.Errorf("batching max_enqueued_batches %d x max_batch_size %d: at most %d rows may queue %s", b.MaxEnqueuedBatches, b.MaxBatchSize, maxQueuedRows, batchFlagsAndFile)
	case b.NumBatchThreads < 1 || b.NumBatchThreads > maxBatchThreads:
		return fmt.Errorf("batching num_batch_threads %d: want 1..%d %s", b.NumBatchThreads, maxBatchThreads, batchFlagsAndFile)
	}
	for i, s := range b.AllowedBatchSizes {
		if s < 1 || (i > 0 && s <= b.AllowedBatchSizes[i-1]) {
			return fmt.Errorf("batching allowed_batch_sizes %v: must be positive and increasing", b.AllowedBatchSizes)
		}
	}
	if n := len(b.AllowedBatchSizes); n > 0 && b.AllowedBatchSizes[n-1] != b.MaxBatchSize {
		return fmt.Errorf("batching allowed_batch_sizes %v: the last must equal max_batch_size %d", b.AllowedBatchSizes, b.MaxBatchSize)
	}
	return nil
}

// clampInt turns a file's int64 into an int that validate refuses when it
// was out of range, instead of one that wrapped into range.
func clampInt(v int64) int {
	switch {
	case v > math.MaxInt32:
		return math.MaxInt32
	case v < math.MinInt32:
		return math.MinInt32
	}
	return int(v)
}

// validModelName keeps a stand-in's name a single safe path element.
func validModelName(n string) bool {
	if n == "" || n[0] == '.' {
		return false
	}
	for _, r := range n {
		if !(r == '_' || r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

func isPortZero(addr string) bool {
	_, p, err := net.SplitHostPort(addr)
	return err == nil && p == "0"
}

func (b *BatchingParameters) apply(p *tfpb.BatchingParameters) {
	if p.MaxBatchSize != nil {
		b.MaxBatchSize = clampInt(p.MaxBatchSize.Value)
	}
	if p.BatchTimeoutMicros != nil {
		us := p.BatchTimeoutMicros.Value
		// Saturate rather than overflow into a valid-looking timeout.
		us = max(min(us, 2*maxBatchTimeout.Microseconds()), -1)
		b.BatchTimeout = time.Duration(us) * time.Microsecond
	}
	if p.MaxEnqueuedBatches != nil {
		b.MaxEnqueuedBatches = clampInt(p.MaxEnqueuedBatches.Value)
	}
	if p.NumBatchThreads != nil {
		b.NumBatchThreads = clampInt(p.NumBatchThreads.Value)
	}
	if p.ThreadPoolName != nil {
		b.ThreadPoolName = p.ThreadPoolName.Value
	}
	if len(p.AllowedBatchSizes) > 0 {
		b.AllowedBatchSizes = b.AllowedBatchSizes[:0]
		for _, s := range p.AllowedBatchSizes {
			b.AllowedBatchSizes = append(b.AllowedBatchSizes, clampInt(s))
		}
	}
	if p.EnableLargeBatchSplitting != nil {
		b.EnableLargeBatchSplitting = p.EnableLargeBatchSplitting.Value
	}
}

// Proto is the parameters as TF's message (for logs and round trips).
func (b BatchingParameters) Proto() *tfpb.BatchingParameters {
	p := &tfpb.BatchingParameters{
		MaxBatchSize:              wrapperspb.Int64(int64(b.MaxBatchSize)),
		BatchTimeoutMicros:        wrapperspb.Int64(b.BatchTimeout.Microseconds()),
		MaxEnqueuedBatches:        wrapperspb.Int64(int64(b.MaxEnqueuedBatches)),
		NumBatchThreads:           wrapperspb.Int64(int64(b.NumBatchThreads)),
		ThreadPoolName:            wrapperspb.String(b.ThreadPoolName),
		EnableLargeBatchSplitting: wrapperspb.Bool(b.EnableLargeBatchSplitting),
	}
	for _, s := range b.AllowedBatchSizes {
		p.AllowedBatchSizes = append(p.AllowedBatchSizes, int64(s))
	}
	return p
}

// ReadBatchingParametersFile parses TF's text-format BatchingParameters,
// e.g. `max_batch_size { value: 64 } batch_timeout_micros { value: 1000 }`.
func ReadBatchingParametersFile(path string) (*tfpb.BatchingParameters, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--batching-parameters-file: %v", err)
	}
	p, err := ParseBatchingParameters(b)
	if err != nil {
		return nil, fmt.Errorf("--batching-parameters-file %s: %v", path, err)
	}
	return p, nil
}

// ParseBatchingParameters reads the contents of a batching parameters file.
func ParseBatchingParameters(b []byte) (*tfpb.BatchingParameters, error) {
	var p tfpb.BatchingParameters
	if err := prototext.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("not a text-format BatchingParameters (e.g. max_batch_size { value: 64 }): %v", err)
	}
	return &p, nil
}

// ReadModelConfigFile parses TF's text-format ModelServerConfig and resolves
// relative base paths against the file's directory.
func ReadModelConfigFile(path string) (*tfpb.ModelServerConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--model-config-file: %v", err)
	}
	cfg, err := ParseModelConfig(b, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("--model-config-file %s: %v", path, err)
	}
	return cfg, nil
}

// ParseModelConfig reads the contents of a model config file whose relative
// base paths are relative to dir.
func ParseModelConfig(b []byte, dir string) (*tfpb.ModelServerConfig, error) {
	var cfg tfpb.ModelServerConfig
	if err := prototext.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("not a text-format ModelServerConfig (model_config_list { config { name: \"m\" base_path: \"/models/m\" } }): %v", err)
	}
	if cfg.GetModelConfigList() == nil {
		return nil, errors.New("needs a model_config_list")
	}
	for _, mc := range cfg.GetModelConfigList().GetConfig() {
		if mc.BasePath != "" && !filepath.IsAbs(mc.BasePath) {
			mc.BasePath = filepath.Join(dir, mc.BasePath)
		}
	}
	return &cfg, nil
}

// tlsConfig builds the listeners' TLS config, or nil.
func (t ServerTLS) tlsConfig() (*tls.Config, error) {
	if t.CertFile == "" {
		return nil, nil
	}
	cert, err := tlsfiles.KeyPair("--grpc-tls-cert-file/--grpc-tls-key-file", t.CertFile, t.KeyFile)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if t.ClientCAFile != "" {
		pool, err := tlsfiles.CertPool("--grpc-tls-client-ca-file", t.ClientCAFile)
		if err != nil {
			return nil, err
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}
