package cluster

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/inferops/inferops/internal/testpki"
	"github.com/inferops/inferops/pipeline"

	"github.com/IBM/sarama"
)

func TestSASL(t *testing.T) {
	for _, mech := range []string{SASLPlain, SASLScramSHA256, SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			b := startTestBroker(t, func(c *BrokerConfig) {
				c.Ephemeral = true
				c.SASL = BrokerSASL{Mechanism: mech, Users: map[string]string{"alice": "right-password"}}
			})
			good := b.ClientConfig()
			if good.SASL.Username != "alice" || good.SASL.Mechanism != mech {
				t.Fatalf("ClientConfig SASL = %+v", good.SASL)
			}
			c := newTestClient(t, good)
			if got := partitionCounts(t, c, pipeline.DefaultInput)[pipeline.DefaultInput]; got != 12 {
				t.Errorf("with the right password: ai_input has %d partitions, want 12", got)
			}
			if s := refresh(t, newTestCollector(t, good, pipeline.DefaultInput, pipeline.DefaultGroup)); len(s.Partitions) != 12 {
				t.Errorf("collector over SASL saw %d partitions", len(s.Partitions))
			}

			bad := good
			bad.SASL.Password = "wrong-password"
			err := connectErr(t, bad)
			if err == nil {
				t.Fatal("connected with a wrong password")
			}
			for _, w := range []string{"authentication failed", `"alice"`, "INFEROPS_SASL_PASSWORD"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("wrong password: %q does not contain %q", err, w)
				}
			}

			none := good
			none.SASL = SASLConfig{}
			if err := connectErr(t, none); err == nil {
				t.Fatal("connected without SASL to a SASL broker")
			} else if !strings.Contains(err.Error(), "--sasl-mechanism") {
				t.Errorf("no SASL: %q does not point at --sasl-mechanism", err)
			}
		})
	}
}

// connectErr connects a client and fetches metadata, returning the explained
// error (nil on success).
func connectErr(t *testing.T, cfg Config) error {
	t.Helper()
	cfg.DialTimeout = 2 * time.Second
	cfg.RequestTimeout = 2 * time.Second
	sc, err := cfg.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	c, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		return cfg.Explain(err)
	}
	defer c.Close()
	if err := c.RefreshMetadata(pipeline.DefaultInput); err != nil {
		return cfg.Explain(err)
	}
	return nil
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := testpki.WriteServer(t, dir)
	b := startTestBroker(t, func(c *BrokerConfig) {
		c.Ephemeral = true
		c.TLS = BrokerTLS{CertFile: certFile, KeyFile: keyFile}
	})
	tests := []struct {
		name    string
		tls     TLSConfig
		wantErr string // "" = connects
	}{
		{"trusted CA", TLSConfig{CAFile: caFile}, ""},
		{"skip verify", TLSConfig{Enable: true, InsecureSkipVerify: true}, ""},
		{"unknown CA", TLSConfig{Enable: true}, "--kafka-tls-ca-file"},
		{"plaintext client", TLSConfig{}, "--kafka-tls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := b.ClientConfig()
			cfg.TLS = tt.tls
			err := connectErr(t, cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("connect: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatal("connected, want an error")
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestUnreachableBroker(t *testing.T) {
	// A port nothing listens on: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	// A listener that accepts and never answers: the request timeout.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()

	tests := []struct {
		name string
		addr string
		want []string
	}{
		{"refused", closed, []string{closed, "connection refused", "--brokers"}},
		{"silent", silent.Addr().String(), []string{silent.Addr().String(), "timed out"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Brokers: []string{tt.addr}, DialTimeout: 500 * time.Millisecond, RequestTimeout: 500 * time.Millisecond}
			sc, err := cfg.Sarama()
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			c, err := sarama.NewClient(cfg.Brokers, sc)
			took := time.Since(start)
			if err == nil {
				c.Close()
				t.Fatal("connected to nothing")
			}
			err = cfg.Explain(err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not contain %q", err, w)
				}
			}
			// Not a speed target: a guard that the configured timeout is
			// what bounds the failure (sarama retries once, see Sarama()).
			if limit := 4 * (cfg.DialTimeout + cfg.RequestTimeout); took > limit {
				t.Errorf("failing took %v, more than the configured timeouts allow (%v)", took, limit)
			}
		})
	}
}

// TestTLSClientPlainBroker: a TLS client on a plaintext listener hears
// nothing back; the message must point at the port / --kafka-tls.
func TestTLSClientPlainBroker(t *testing.T) {
	b := startTestBroker(t, func(c *BrokerConfig) { c.Ephemeral = true })
	cfg := b.ClientConfig()
	cfg.TLS.Enable = true
	err := connectErr(t, cfg)
	if err == nil || !strings.Contains(err.Error(), "TLS listener") || !strings.Contains(err.Error(), "--kafka-tls") {
		t.Fatalf("err = %v, want a hint that the port is not a TLS listener", err)
	}
}
