// Package tfserving is the TF Serving gRPC client used by the worker, the
// console, `inferops status` and doctor. It speaks the public TF Serving API
// (infer/tfpb), so the same code drives a real tensorflow_model_server and
// the embedded server in infer/modelserver.
package tfserving

import (
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/inferops/inferops/internal/tlsfiles"
	"github.com/inferops/inferops/pipeline"
)

// DefaultTimeout bounds one call when Config.Timeout is zero: well above the
// seed's 200 ms SLO so slow models show as latency, not as errors.
const DefaultTimeout = 10 * time.Second

// Config says where TF Serving is and how to talk to it.
type Config struct {
	// Address is host:port of the gRPC API (--tfserving).
	Address string
	TLS     TLSConfig
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
	host, port, err := net.SplitHostPort(c.Address)
	if err != nil || port == "" {
		return fmt.Errorf("--tfserving %q: want host:port, e.g. 10.0.0.5:8500", c.Address)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return fmt.Errorf("--tfserving %q: port %q is not 1-65535", c.Address, port)
	}
	_ = host // empty host means localhost to gRPC, as for net.Dial
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
