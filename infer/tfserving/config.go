// Package tfserving is the TF Serving gRPC client used by the worker, the
// console, `inferops status` and doctor. It speaks the public TF Serving API
// (infer/tfpb), so the same code drives a real tensorflow_model_server and
// the embedded server in infer/modelserver.
package tfserving

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/inferops/inferops/internal/tlsfiles"
	"github.com/inferops/inferops/pipeline"
)

// DefaultTimeout bounds one call when Config.Timeout is zero: well above the
// seed's 200 ms SLO so slow models show as latency, not as errors.
const DefaultTimeout = 10 * time.Second

// Config says where TF Serving is and how to talk to it.
type Config struct {
	// Address is where the gRPC API is (--tfserving): one host:port, a
	// comma-separated list of them (a fleet), or dns:///name:port for every
	// address the name resolves to. ParseAddress reads it.
	Address string
	// Model is the model every host is probed for (GetModelStatus) and
	// Fleet reports on before the first Predict; empty: pipeline.DefaultModel.
	Model string
	// Balancer is gRPC's load-balancing policy across the hosts in rotation:
	// BalanceLeastRequest (default) or BalanceRoundRobin.
	Balancer string
	// ProbeInterval is how often every host is asked GetModelStatus; a host
	// that fails it leaves the rotation until it answers again.
	ProbeInterval time.Duration
	// Log receives host events (out of rotation, ejected, skew); nil: none.
	// Fleet().Events holds them too.
	Log *slog.Logger
	TLS TLSConfig
	// Timeout is the deadline of one call when the context has none sooner.
	Timeout time.Duration
	// KeepaliveTime is how often an idle connection is pinged, so a dead
	// server behind a NAT or load balancer is noticed before the next call.
	KeepaliveTime time.Duration
	// MaxMessageBytes bounds a received message (TF Serving's own limit is
	// INT32_MAX; large batches of wide rows need more than gRPC's 4 MiB).
	MaxMessageBytes int
}

// TLSConfig is the client side of --tfserving-tls-*.
type TLSConfig struct {
	Enable             bool
	CAFile             string
	CertFile           string
	KeyFile            string
	ServerName         string
	InsecureSkipVerify bool
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.Address == "" {
		c.Address = pipeline.DefaultGRPCAddr
	}
	if c.Model == "" {
		c.Model = pipeline.DefaultModel
	}
	if c.Balancer == "" {
		c.Balancer = BalanceLeastRequest
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.KeepaliveTime == 0 {
		c.KeepaliveTime = 30 * time.Second
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 256 << 20
	}
	// Any TLS file implies TLS, like the Kafka flags.
	if c.TLS.CAFile != "" || c.TLS.CertFile != "" || c.TLS.KeyFile != "" {
		c.TLS.Enable = true
	}
}

// Validate reports the first bad setting, naming its flag.
func (c *Config) Validate() error {
	if _, err := ParseAddress(c.Address); err != nil {
		return err
	}
	switch c.Balancer {
	case BalanceLeastRequest, BalanceRoundRobin:
	default:
		return fmt.Errorf("tfserving balancer %q: want %s or %s", c.Balancer, BalanceLeastRequest, BalanceRoundRobin)
	}
	if c.ProbeInterval < 0 {
		return fmt.Errorf("tfserving probe interval %v: must be positive", c.ProbeInterval)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("tfserving timeout %v: must be positive", c.Timeout)
	}
	if c.KeepaliveTime < 0 {
		return fmt.Errorf("tfserving keepalive %v: must be positive", c.KeepaliveTime)
	}
	if c.MaxMessageBytes < 0 {
		return fmt.Errorf("tfserving max message size %d: must be positive", c.MaxMessageBytes)
	}
	return c.TLS.files().Validate()
}

// tlsConfig builds the crypto/tls config, or nil when TLS is off.
func (t TLSConfig) tlsConfig() (*tls.Config, error) {
	if !t.Enable {
		return nil, nil
	}
	return t.files().Config()
}

func (t TLSConfig) files() tlsfiles.Client {
	return tlsfiles.Client{Prefix: "--tfserving-tls", CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile,
		ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
}
