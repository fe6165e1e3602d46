// Package cluster owns everything Kafka: the client configuration (brokers,
// version, TLS, SASL) that every sarama user in inferops builds from, the
// explanation of connection errors, the embedded kfake broker, topic setup and
// the lag collector that turns offsets and group state into snapshots.
package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/inferops/inferops/internal/tlsfiles"
	"github.com/inferops/inferops/pipeline"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
)

// Defaults from the seed: Kafka 3.5, the embedded broker on loopback.
const (
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 10 * time.Second
)

// SASL mechanisms we speak. GSSAPI is deliberately absent: nobody asked for
// Kerberos and kfake cannot test it.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// Config is how inferops reaches a Kafka cluster. Every command that talks to
// Kafka fills one from the flags in DESIGN.md (cmd/inferops/kafkaflags.go) and
// calls Sarama(); nothing else builds a *sarama.Config from scratch.
type Config struct {
	Brokers        []string
	Version        string // Kafka version, e.g. "3.5.0"
	ClientID       string
	TLS            TLSConfig
	SASL           SASLConfig
	DialTimeout    time.Duration
	RequestTimeout time.Duration
}

// TLSConfig is client-side TLS. Any file implies Enable.
type TLSConfig struct {
	Enable             bool
	CAFile             string
	CertFile           string
	KeyFile            string
	InsecureSkipVerify bool
}

// SASLConfig is client-side SASL. The password comes from Password (filled
// from INFEROPS_SASL_PASSWORD) or PasswordFile, never from a command-line flag
// where ps(1) would show it.
type SASLConfig struct {
	Mechanism    string
	Username     string
	Password     string
	PasswordFile string
}

// SetDefaults fills every zero field with the seed's default.
func (c *Config) SetDefaults() {
	if c.Version == "" {
		c.Version = pipeline.DefaultKafkaVersion
	}
	if c.ClientID == "" {
		c.ClientID = pipeline.DefaultClientID
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.TLS.CAFile != "" || c.TLS.CertFile != "" || c.TLS.KeyFile != "" {
		c.TLS.Enable = true
	}
	c.SASL.Mechanism = normalizeMechanism(c.SASL.Mechanism)
	var bs []string
	for _, b := range c.Brokers {
		if b = strings.TrimSpace(b); b != "" {
			bs = append(bs, b)
		}
	}
	c.Brokers = bs
}

// normalizeMechanism accepts the spellings people copy from other tools
// (scram-sha-256, SCRAM_SHA_512, plain).
func normalizeMechanism(m string) string {
	m = strings.ToUpper(strings.TrimSpace(m))
	switch strings.ReplaceAll(m, "_", "-") {
	case "SCRAM-SHA-256", "SCRAM-SHA256":
		return SASLScramSHA256
	case "SCRAM-SHA-512", "SCRAM-SHA512":
		return SASLScramSHA512
	}
	return m
}

// Validate reports the first setting that cannot work, naming its flag.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("no Kafka brokers (set --brokers host:port[,host:port...])")
	}
	for _, b := range c.Brokers {
		if err := validateHostPort(b); err != nil {
			return fmt.Errorf("--brokers: %q: %v (want host:port, e.g. kafka-1:9092)", b, err)
		}
	}
	v, err := sarama.ParseKafkaVersion(c.Version)
	if err != nil {
		return fmt.Errorf("--kafka-version %q: not a Kafka version (want e.g. 3.5.0)", c.Version)
	}
	if !v.IsAtLeast(sarama.V0_11_0_0) {
		return fmt.Errorf("--kafka-version %s: inferops needs Kafka 0.11.0 or newer (record headers, idempotence)", c.Version)
	}
	if c.ClientID == "" {
		return errors.New("--client-id is empty")
	}
	if c.DialTimeout <= 0 || c.RequestTimeout <= 0 {
		return errors.New("Kafka dial and request timeouts must be positive")
	}
	if err := c.TLS.files().Validate(); err != nil {
		return err
	}
	switch c.SASL.Mechanism {
	case "":
		if c.SASL.Username != "" {
			return fmt.Errorf("--sasl-username %q given without --sasl-mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", c.SASL.Username)
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if c.SASL.Username == "" {
			return fmt.Errorf("--sasl-mechanism %s needs --sasl-username", c.SASL.Mechanism)
		}
		if c.SASL.Password == "" && c.SASL.PasswordFile == "" {
			return fmt.Errorf("--sasl-mechanism %s needs a password: set INFEROPS_SASL_PASSWORD or --sasl-password-file", c.SASL.Mechanism)
		}
		if c.SASL.PasswordFile != "" {
			if _, err := os.Stat(c.SASL.PasswordFile); err != nil {
				return fmt.Errorf("--sasl-password-file %s: %v", c.SASL.PasswordFile, errors.Unwrap(err))
			}
		}
	default:
		return fmt.Errorf("--sasl-mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASL.Mechanism)
	}
	return nil
}

func validateHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("missing port")
	}
	if host == "" {
		return errors.New("missing host")
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

// Sarama returns a fresh sarama config for c: version, client id, timeouts,
// TLS and SASL. Callers (worker, perf) then tune producer and consumer fields
// on the copy they own. It applies defaults and validates first.
func (c Config) Sarama() (*sarama.Config, error) {
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	sc := sarama.NewConfig()
	v, _ := sarama.ParseKafkaVersion(c.Version) // Validate checked it
	sc.Version = v
	sc.ClientID = c.ClientID
	sc.Net.DialTimeout = c.DialTimeout
	sc.Net.ReadTimeout = c.RequestTimeout
	sc.Net.WriteTimeout = c.RequestTimeout
	sc.Admin.Timeout = c.RequestTimeout
	// A dead broker should fail fast in an ops tool: sarama's default
	// metadata retry (3 x 250 ms on top of each dial) makes a typo in
	// --brokers look like a hang.
	sc.Metadata.Retry.Max = 1
	sc.Metadata.Retry.Backoff = 100 * time.Millisecond

	if c.TLS.Enable {
		tc, err := c.TLS.build()
		if err != nil {
			return nil, err
		}
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = tc
	}
	if c.SASL.Mechanism != "" {
		pw, err := c.SASL.password()
		if err != nil {
			return nil, err
		}
		sc.Net.SASL.Enable = true
		sc.Net.SASL.Handshake = true
		sc.Net.SASL.User = c.SASL.Username
		sc.Net.SASL.Password = pw
		switch c.SASL.Mechanism {
		case SASLPlain:
			sc.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		case SASLScramSHA256:
			sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA256} }
		case SASLScramSHA512:
			sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA512} }
		}
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("kafka client config: %v", err)
	}
	return sc, nil
}

// Password returns the SASL password from the config or its file (trailing
// newline trimmed, as editors and `echo` add one).
func (s SASLConfig) password() (string, error) {
	if s.Password != "" {
		return s.Password, nil
	}
	if s.PasswordFile == "" {
		return "", errors.New("no SASL password: set INFEROPS_SASL_PASSWORD or --sasl-password-file")
	}
	b, err := os.ReadFile(s.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("--sasl-password-file: %v", err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("--sasl-password-file %s is empty", s.PasswordFile)
	}
	return pw, nil
}

func (t TLSConfig) files() tlsfiles.Client {
	return tlsfiles.Client{Prefix: "--kafka-tls", CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile,
		InsecureSkipVerify: t.InsecureSkipVerify}
}

func (t TLSConfig) build() (*tls.Config, error) { return t.files().Config() }

// scramClient adapts xdg-go/scram to sarama's SCRAMClient interface.
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (s *scramClient) Begin(user, password, authzID string) error {
	c, err := s.hash.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	s.conv = c.NewConversation()
	return nil
}

func (s *scramClient) Step(challenge string) (string, error) { return s.conv.Step(challenge) }
func (s *scramClient) Done() bool                            { return s.conv.Done() }

// Explain turns the errors sarama gives for the usual operator mistakes into
// messages that say what is wrong and which flag fixes it. brokers is what the
// user asked for; the error is returned unchanged when nothing better is known.
func Explain(err error, brokers []string) error {
	return explain(err, Config{Brokers: brokers})
}

// Explain is the package Explain with this config's SASL user in the message.
func (c Config) Explain(err error) error {
	return explain(err, c)
}

func explain(err error, c Config) error {
	brokers, sasl := c.Brokers, c.SASL
	if err == nil {
		return nil
	}
	var already *explainedError
	if errors.As(err, &already) {
		return err
	}
	addrs := strings.Join(brokers, ",")
	if addrs == "" {
		addrs = "(no brokers)"
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		addr := addrs
		if opErr.Addr != nil {
			addr = opErr.Addr.String()
		}
		var dnsErr *net.DNSError
		switch {
		case errors.As(err, &dnsErr):
			return wrapExplained(err, "connect to Kafka at %s: cannot resolve host %q (check --brokers)", addrs, dnsErr.Name)
		case isTimeout(err):
			return wrapExplained(err, "connect to Kafka at %s: timed out (is the broker reachable from here? firewall? check --brokers)", addr)
		case isRefused(err):
			return wrapExplained(err, "connect to Kafka at %s: connection refused (is the broker running? start one with `inferops serve`, or check --brokers)", addr)
		default:
			return wrapExplained(err, "connect to Kafka at %s: %v (check --brokers)", addr, opErr.Err)
		}
	}
	if errors.Is(err, sarama.ErrSASLAuthenticationFailed) || strings.Contains(err.Error(), "SASL Authentication failed") {
		return wrapExplained(err, "Kafka at %s: authentication failed for user %q (check --sasl-mechanism, --sasl-username and INFEROPS_SASL_PASSWORD / --sasl-password-file)", addrs, sasl.Username)
	}
	if errors.Is(err, sarama.ErrUnsupportedSASLMechanism) {
		return wrapExplained(err, "Kafka at %s: the broker does not accept SASL mechanism %s (check --sasl-mechanism)", addrs, sasl.Mechanism)
	}
	// A broker that dislikes our credentials (or our TLS/SASL expectations)
	// just hangs up: sarama reports EOF or a reset.
	if errors.Is(err, sarama.ErrOutOfBrokers) && hangUp(err) {
		if sasl.Mechanism != "" {
			return wrapExplained(err, "Kafka at %s: authentication failed for user %q: the broker closed the connection (check --sasl-username and INFEROPS_SASL_PASSWORD / --sasl-password-file, and that the listener accepts --sasl-mechanism %s)", addrs, sasl.Username, sasl.Mechanism)
		}
		return wrapExplained(err, "Kafka at %s: the broker closed the connection (does it require TLS (--kafka-tls) or SASL (--sasl-mechanism, --sasl-username)?)", addrs)
	}
	if isTimeout(err) {
		// Keep the original text: on a multi-broker cluster it names the
		// broker that stopped answering.
		if c.TLS.Enable {
			// A plaintext broker reads our ClientHello as a huge request
			// and waits for the rest of it.
			return wrapExplained(err, "Kafka at %s: timed out (no TLS handshake: is this port a TLS listener? check the port, or drop --kafka-tls): %v", addrs, err)
		}
		return wrapExplained(err, "Kafka at %s: request timed out (is this a Kafka port? is the broker overloaded? if the listener expects TLS, set --kafka-tls): %v", addrs, err)
	}
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	if errors.As(err, &certErr) || errors.As(err, &unknownAuth) || errors.As(err, &hostErr) {
		return wrapExplained(err, "Kafka at %s: TLS certificate not trusted (set --kafka-tls-ca-file to the CA that signed the broker certificate)", addrs)
	}
	if errors.Is(err, sarama.ErrOutOfBrokers) {
		return wrapExplained(err, "Kafka at %s: no broker answered (check --brokers)", addrs)
	}
	return err
}

func hangUp(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "EOF") || strings.Contains(msg, "connection reset by peer") || strings.Contains(msg, "broken pipe")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isRefused(err error) bool {
	return strings.Contains(err.Error(), "connection refused")
}

// explainedError keeps the original error reachable with errors.Is/As while
// showing the operator-facing message.
type explainedError struct {
	msg string
	err error
}

func (e *explainedError) Error() string { return e.msg }
func (e *explainedError) Unwrap() error { return e.err }

func wrapExplained(err error, format string, args ...any) error {
	return &explainedError{msg: fmt.Sprintf(format, args...), err: err}
}
