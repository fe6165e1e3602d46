package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/inferops/inferops/pipeline"
	"github.com/twmb/franz-go/pkg/kfake"
)

// BrokerConfig configures the embedded Kafka-protocol broker (franz-go's
// kfake) that `inferops serve` runs when no --brokers is given.
type BrokerConfig struct {
	// Addr is where the (first) broker listens and, unless AdvertisedAddr
	// is set, what it advertises to clients, so then it must be an address
	// clients can dial: --kafka-addr.
	Addr string
	// AdvertisedAddr is the address the broker tells clients to dial in
	// its metadata, when that is not Addr (--kafka-advertised-addr): a NAT
	// or port forward, a proxy in front of the broker, or Addr 0.0.0.0:9092
	// with the host's own name advertised. Kafka clients bootstrap from any
	// address but then dial only what the broker advertises, so a proxy
	// sees the traffic only if it is advertised.
	AdvertisedAddr string
	// DataDir holds the log segments and committed offsets. Required unless
	// Ephemeral: without it kfake keeps everything in memory, unbounded.
	DataDir   string
	Ephemeral bool
	// Nodes is the number of brokers in the embedded cluster. One is what
	// serve runs; tests use more to check per-broker request batching.
	// Extra brokers listen on random ports of Addr's host.
	Nodes int
	SASL  BrokerSASL
	TLS   BrokerTLS
	// Topics are created when missing; nil means pipeline.Topics(Retention).
	Topics    []pipeline.TopicSpec
	Retention pipeline.Retention
	// RetentionInterval is how often expired segments are freed
	// (log.cleaner.backoff.ms); kfake's default of an hour lets a busy demo
	// fill the disk first.
	RetentionInterval time.Duration
	// MessageMaxBytes is the broker's message.max.bytes (the seed: 2,000,000).
	MessageMaxBytes int
	Logger          *slog.Logger
}

// BrokerSASL turns on SASL for every client connection.
type BrokerSASL struct {
	Mechanism string            // PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty = off
	Users     map[string]string // user -> password
}

// BrokerTLS makes the broker listen with TLS (PEM files).
type BrokerTLS struct {
	CertFile string
	KeyFile  string
}

// SetDefaults fills the seed's defaults.
func (c *BrokerConfig) SetDefaults() {
	if c.Addr == "" {
		c.Addr = pipeline.DefaultKafkaAddr
	}
	if c.Nodes <= 0 {
		c.Nodes = 1
	}
	if c.Retention == (pipeline.Retention{}) {
		c.Retention = pipeline.DefaultRetention
	}
	if c.RetentionInterval <= 0 {
		c.RetentionInterval = time.Minute
	}
	if c.MessageMaxBytes <= 0 {
		c.MessageMaxBytes = pipeline.MaxMessageBytes
	}
	if c.Topics == nil {
		c.Topics = pipeline.Topics(c.Retention)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.SASL.Mechanism = normalizeMechanism(c.SASL.Mechanism)
}

// Validate names the serve flag behind each bad setting.
func (c BrokerConfig) Validate() error {
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("--kafka-addr %q: want host:port, e.g. 127.0.0.1:9092", c.Addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("--kafka-addr %q: bad port %q", c.Addr, port)
	}
	if c.AdvertisedAddr != "" {
		ah, ap, err := net.SplitHostPort(c.AdvertisedAddr)
		if err != nil {
			return fmt.Errorf("--kafka-advertised-addr %q: want host:port, e.g. kafka-1.example.com:9092", c.AdvertisedAddr)
		}
		if p, err := strconv.Atoi(ap); err != nil || p <= 0 || p > 65535 {
			return fmt.Errorf("--kafka-advertised-addr %q: bad port %q", c.AdvertisedAddr, ap)
		}
		if ip := net.ParseIP(ah); ah == "" || (ip != nil && ip.IsUnspecified()) {
			return fmt.Errorf("--kafka-advertised-addr %q: give the host clients dial, not a wildcard", c.AdvertisedAddr)
		}
	} else if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		// kfake advertises the address it listens on; 0.0.0.0 would send
		// every client to its own loopback.
		return fmt.Errorf("--kafka-addr %q: give the host clients dial (e.g. 127.0.0.1:9092 or this machine's IP), not a wildcard: the broker advertises this address (or set --kafka-advertised-addr)", c.Addr)
	}
	if !c.Ephemeral && c.DataDir == "" {
		return errors.New("no --data-dir for the embedded broker (or pass --ephemeral to keep it in memory)")
	}
	switch c.SASL.Mechanism {
	case "":
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if len(c.SASL.Users) == 0 {
			return fmt.Errorf("--kafka-sasl-mechanism %s needs at least one --kafka-sasl-user user:password", c.SASL.Mechanism)
		}
		for u, p := range c.SASL.Users {
			if u == "" || p == "" {
				return fmt.Errorf("--kafka-sasl-user: user %q has an empty name or password", u)
			}
		}
	default:
		return fmt.Errorf("--kafka-sasl-mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASL.Mechanism)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return errors.New("--kafka-tls-server-cert-file and --kafka-tls-server-key-file go together: set both or neither")
	}
	for _, s := range c.Topics {
		if err := s.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Broker is a running embedded broker.
type Broker struct {
	cfg     BrokerConfig
	cluster *kfake.Cluster
	addrs   []string // as advertised
	listen  string   // where the first broker really listens
	unlock  func()
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// StartBroker starts the embedded broker, creates the pipeline topics that
// are missing and returns once clients can connect.
func StartBroker(ctx context.Context, cfg BrokerConfig) (*Broker, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b := &Broker{cfg: cfg, unlock: func() {}, stop: make(chan struct{}), done: make(chan struct{})}
	opts := []kfake.Opt{
		kfake.NumBrokers(cfg.Nodes),
		kfake.ClusterID("inferops-embedded"),
		kfake.WithLogger(slogKfake{cfg.Logger}),
		kfake.BrokerConfigs(map[string]string{
			"message.max.bytes":      strconv.Itoa(cfg.MessageMaxBytes),
			"log.cleaner.backoff.ms": strconv.FormatInt(cfg.RetentionInterval.Milliseconds(), 10),
		}),
	}
	host, port, _ := net.SplitHostPort(cfg.Addr)
	listens := 0
	opts = append(opts, kfake.ListenFn(func(network, _ string) (net.Listener, error) {
		// kfake asks for 127.0.0.1:<n>; we listen where the operator said.
		// Only the first broker gets the fixed port, and the advertised
		// address.
		addr := net.JoinHostPort(host, "0")
		first := listens == 0
		if first {
			addr = net.JoinHostPort(host, port)
		}
		listens++
		ln, err := net.Listen(network, addr)
		if err != nil || !first {
			return ln, err
		}
		b.listen = ln.Addr().String()
		if cfg.AdvertisedAddr != "" {
			// kfake advertises its listener's Addr() in every metadata,
			// coordinator and produce/fetch answer.
			return advertisedListener{ln, advertisedAddr(cfg.AdvertisedAddr)}, nil
		}
		return ln, nil
	}))
	if !cfg.Ephemeral {
		if err := prepareDataDir(cfg.DataDir); err != nil {
			return nil, err
		}
		unlock, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		b.unlock = unlock
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if cfg.SASL.Mechanism != "" {
		opts = append(opts, kfake.EnableSASL())
		for _, u := range sortedKeys(cfg.SASL.Users) {
			opts = append(opts, kfake.Superuser(cfg.SASL.Mechanism, u, cfg.SASL.Users[u]))
		}
	}
	if cfg.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			b.unlock()
			return nil, fmt.Errorf("--kafka-tls-server-cert-file/--kafka-tls-server-key-file: %v", err)
		}
		opts = append(opts, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	}

	c, err := kfake.NewCluster(opts...)
	if err != nil {
		b.unlock()
		return nil, explainListen(err, cfg)
	}
	b.cluster = c
	b.addrs = c.ListenAddrs()
	if err := b.ensureTopics(); err != nil {
		b.Close()
		return nil, err
	}
	go b.retentionLoop()
	cfg.Logger.Info("embedded kafka ready", "addrs", b.addrs, "data_dir", cfg.DataDir, "ephemeral", cfg.Ephemeral)
	return b, nil
}

// ensureTopics creates the configured topics through kfake directly: it
// needs no client credentials and no network round trip. On a reload from
// disk kfake ignores seeded topics, so this runs on every start.
func (b *Broker) ensureTopics() error {
	for _, s := range b.cfg.Topics {
		if b.cluster.TopicInfo(s.Name) != nil {
			continue
		}
		if err := b.cluster.CreateTopic(s.Name, s.Partitions, s.Configs); err != nil {
			return fmt.Errorf("embedded broker: create topic %s: %v", s.Name, err)
		}
		b.cfg.Logger.Info("created topic", "topic", s.Name, "partitions", s.Partitions)
	}
	return nil
}

// retentionLoop frees expired segments on our own timer: kfake starts its
// retention ticker only when a topic is created or altered in this process,
// so after a restart from disk nothing would ever be trimmed.
func (b *Broker) retentionLoop() {
	defer close(b.done)
	t := time.NewTicker(b.cfg.RetentionInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.cluster.ApplyRetention()
		}
	}
}

// Addr is the address of the first broker as it advertises it: what
// clients bootstrap from.
func (b *Broker) Addr() string { return b.addrs[0] }

// ListenAddr is where the first broker really listens: Addr unless
// AdvertisedAddr is set.
func (b *Broker) ListenAddr() string { return b.listen }

// Addrs lists every broker's address.
func (b *Broker) Addrs() []string { return append([]string(nil), b.addrs...) }

// Cluster exposes kfake for tests: fault injection, topology changes,
// group inspection.
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// ClientConfig is a client Config that reaches this broker, with the first
// SASL user (alphabetically) when SASL is on. TLS is left to the caller, who
// knows which CA signed the server certificate.
func (b *Broker) ClientConfig() Config {
	c := Config{Brokers: b.Addrs()}
	if m := b.cfg.SASL.Mechanism; m != "" {
		u := sortedKeys(b.cfg.SASL.Users)[0]
		c.SASL = SASLConfig{Mechanism: m, Username: u, Password: b.cfg.SASL.Users[u]}
	}
	c.SetDefaults()
	return c
}

// Close stops the broker, flushing its state to the data dir. It is safe to
// call more than once.
func (b *Broker) Close() error {
	b.once.Do(func() {
		if b.cluster != nil {
			close(b.stop)
			<-b.done // no ApplyRetention racing the shutdown
			b.cluster.Close()
		}
		b.unlock()
	})
	return nil
}

func prepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("--data-dir: cannot create %s: %v (pick a writable directory with --data-dir, or use --ephemeral)", dir, errors.Unwrap(err))
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("--data-dir: %s is not writable: %v (pick a writable directory with --data-dir, or use --ephemeral)", dir, errors.Unwrap(err))
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}

func explainListen(err error, cfg BrokerConfig) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("--kafka-addr %s is already in use (another `inferops serve` or a Kafka broker?): stop it, or choose another address with --kafka-addr, e.g. 127.0.0.1:19092", cfg.Addr)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("--kafka-addr %s: permission denied (ports below 1024 need root; choose another with --kafka-addr)", cfg.Addr)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("--kafka-addr %s: that host is not an address of this machine (use 127.0.0.1 or one of its IPs)", cfg.Addr)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Errorf("--kafka-addr %s: cannot resolve %q", cfg.Addr, dnsErr.Name)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "listen" {
		return fmt.Errorf("--kafka-addr %s: %v", cfg.Addr, err)
	}
	if !cfg.Ephemeral {
		return fmt.Errorf("embedded broker with --data-dir %s: %v (if the data is damaged, move the directory aside or run with --ephemeral)", cfg.DataDir, err)
	}
	return fmt.Errorf("embedded broker: %v", err)
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// lockPath is the file whose lock says a broker owns the data dir.
func lockPath(dir string) string { return filepath.Join(dir, ".inferops.lock") }

// advertisedListener is the broker's listener under the address clients
// are told to dial.
type advertisedListener struct {
	net.Listener
	addr net.Addr
}

func (l advertisedListener) Addr() net.Addr { return l.addr }

// advertisedAddr is a host:port that is not necessarily an IP (a DNS name
// is what an operator usually advertises).
type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }

// slogKfake forwards kfake's warnings and errors; its info level logs every
// request, which is noise for an operator.
type slogKfake struct{ l *slog.Logger }

func (s slogKfake) Logf(level kfake.LogLevel, msg string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		s.l.Error("kfake: " + fmt.Sprintf(msg, args...))
	case kfake.LogLevelWarn:
		s.l.Warn("kfake: " + fmt.Sprintf(msg, args...))
	}
}
