package main

import (
	"flag"
	"strings"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/pipeline"
)

// addKafkaFlags registers the Kafka client flags from DESIGN.md on fs and
// returns the config they fill. Every command that talks to Kafka uses this,
// so the flag names and the env variables stay the same everywhere. The SASL
// password is read from INFEROPS_SASL_PASSWORD (or --sasl-password-file),
// never from a flag that ps(1) would show. Defaults are applied by the
// cluster package (Config.SetDefaults), not here.
func addKafkaFlags(fs *flag.FlagSet) *cluster.Config {
	c := &cluster.Config{Version: pipeline.DefaultKafkaVersion, ClientID: pipeline.DefaultClientID}
	fs.Var((*commaList)(&c.Brokers), "brokers", "Kafka bootstrap brokers, comma separated host:port list; empty = the embedded broker at "+pipeline.DefaultKafkaAddr)
	fs.StringVar(&c.Version, "kafka-version", c.Version, "Kafka protocol version the cluster runs")
	fs.StringVar(&c.ClientID, "client-id", c.ClientID, "client id sent to Kafka (shows in broker logs and quotas)")
	fs.BoolVar(&c.TLS.Enable, "kafka-tls", false, "connect to Kafka over TLS (implied by any --kafka-tls-* file)")
	fs.StringVar(&c.TLS.CAFile, "kafka-tls-ca-file", "", "PEM CA bundle that signed the broker certificates")
	fs.StringVar(&c.TLS.CertFile, "kafka-tls-cert-file", "", "PEM client certificate for mutual TLS")
	fs.StringVar(&c.TLS.KeyFile, "kafka-tls-key-file", "", "PEM client key for mutual TLS")
	fs.BoolVar(&c.TLS.InsecureSkipVerify, "kafka-tls-insecure-skip-verify", false, "do not verify the broker certificate (testing only)")
	fs.StringVar(&c.SASL.Mechanism, "sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty = no SASL")
	fs.StringVar(&c.SASL.Username, "sasl-username", "", "SASL user name")
	fs.StringVar(&c.SASL.PasswordFile, "sasl-password-file", "", "file holding the SASL password (or set INFEROPS_SASL_PASSWORD)")
	secretVar(fs, &c.SASL.Password, "kafka.sasl.password") // INFEROPS_SASL_PASSWORD, else the config file
	return c
}

// commaList is a flag.Value for host lists: "a:1,b:2", or the flag repeated
// (values accumulate).
type commaList []string

func (l *commaList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *commaList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}
