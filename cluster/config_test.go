package cluster

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/inferops/inferops/pipeline"
)

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; "" = valid
	}{
		{"defaults", Config{Brokers: []string{"127.0.0.1:9092"}}, ""},
		{"no brokers", Config{}, "--brokers"},
		{"blank brokers trimmed", Config{Brokers: []string{" ", ""}}, "--brokers"},
		{"missing port", Config{Brokers: []string{"kafka-1"}}, "--brokers"},
		{"bad port", Config{Brokers: []string{"kafka-1:99999"}}, "bad port"},
		{"bad version", Config{Brokers: []string{"k:9092"}, Version: "three"}, "--kafka-version"},
		{"too old", Config{Brokers: []string{"k:9092"}, Version: "0.10.2.0"}, "0.11.0 or newer"},
		{"cert without key", Config{Brokers: []string{"k:9092"}, TLS: TLSConfig{CertFile: pwFile}}, "--kafka-tls-key-file"},
		{"missing CA", Config{Brokers: []string{"k:9092"}, TLS: TLSConfig{CAFile: filepath.Join(dir, "nope.pem")}}, "--kafka-tls-ca-file"},
		{"unknown mechanism", Config{Brokers: []string{"k:9092"}, SASL: SASLConfig{Mechanism: "GSSAPI", Username: "u", Password: "p"}}, "--sasl-mechanism"},
		{"mechanism without user", Config{Brokers: []string{"k:9092"}, SASL: SASLConfig{Mechanism: "PLAIN", Password: "p"}}, "--sasl-username"},
		{"mechanism without password", Config{Brokers: []string{"k:9092"}, SASL: SASLConfig{Mechanism: "PLAIN", Username: "u"}}, "INFEROPS_SASL_PASSWORD"},
		{"user without mechanism", Config{Brokers: []string{"k:9092"}, SASL: SASLConfig{Username: "u"}}, "--sasl-mechanism"},
		{"scram lower case", Config{Brokers: []string{"k:9092"}, SASL: SASLConfig{Mechanism: "scram-sha-512", Username: "u", PasswordFile: pwFile}}, ""},
		{"missing password file", Config{Brokers: []string{"k:9092"}, SASL: SASLConfig{Mechanism: "PLAIN", Username: "u", PasswordFile: filepath.Join(dir, "nope")}}, "--sasl-password-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			c.SetDefaults()
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigSarama(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Config{Brokers: []string{"k:9092"}, SASL: SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "alice", PasswordFile: pwFile}}
	sc, err := c.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	if sc.Version != sarama.V3_5_0_0 {
		t.Errorf("Version = %v, want 3.5.0 (the seed)", sc.Version)
	}
	if sc.ClientID != pipeline.DefaultClientID {
		t.Errorf("ClientID = %q", sc.ClientID)
	}
	if !sc.Net.SASL.Enable || sc.Net.SASL.Mechanism != sarama.SASLTypeSCRAMSHA256 || sc.Net.SASL.User != "alice" {
		t.Errorf("SASL = %+v", sc.Net.SASL)
	}
	if sc.Net.SASL.Password != "from-file" {
		t.Errorf("password = %q, want the file's content without the newline", sc.Net.SASL.Password)
	}
	if sc.Net.SASL.SCRAMClientGeneratorFunc == nil {
		t.Fatal("no SCRAM client")
	}
	// The client must produce a SCRAM client-first message.
	sc2 := sc.Net.SASL.SCRAMClientGeneratorFunc()
	if err := sc2.Begin("alice", "from-file", ""); err != nil {
		t.Fatal(err)
	}
	first, err := sc2.Step("")
	if err != nil || !strings.HasPrefix(first, "n,,n=alice,r=") {
		t.Fatalf("SCRAM client-first = %q, %v", first, err)
	}
	if _, err := (Config{}).Sarama(); err == nil {
		t.Fatal("Sarama() on an empty config succeeded")
	}
}

func TestExplain(t *testing.T) {
	refused := sarama.Wrap(sarama.ErrOutOfBrokers, &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 9092}, Err: errors.New("connect: connection refused")})
	eof := sarama.Wrap(sarama.ErrOutOfBrokers, errors.New("EOF"))
	tests := []struct {
		name string
		err  error
		sasl SASLConfig
		want []string
	}{
		{"refused", refused, SASLConfig{}, []string{"10.0.0.5:9092", "connection refused", "--brokers"}},
		{"eof with sasl", eof, SASLConfig{Mechanism: SASLPlain, Username: "bob"}, []string{"authentication failed", `"bob"`, "INFEROPS_SASL_PASSWORD"}},
		{"eof without sasl", eof, SASLConfig{}, []string{"closed the connection", "--kafka-tls"}},
		{"sasl failed", sarama.ErrSASLAuthenticationFailed, SASLConfig{Mechanism: SASLScramSHA256, Username: "bob"}, []string{"authentication failed", "--sasl-username"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := explain(tt.err, Config{Brokers: []string{"10.0.0.5:9092"}, SASL: tt.sasl})
			for _, w := range tt.want {
				if !strings.Contains(got.Error(), w) {
					t.Errorf("explain = %q, want it to contain %q", got, w)
				}
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("explain lost the original error")
			}
		})
	}
	other := errors.New("something else")
	if got := Explain(other, nil); got != other {
		t.Errorf("Explain(unrelated) = %v, want it unchanged", got)
	}
	if Explain(nil, nil) != nil {
		t.Error("Explain(nil) != nil")
	}
}
