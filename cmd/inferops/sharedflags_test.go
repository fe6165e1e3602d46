package main

import (
	"strings"
	"testing"

	"github.com/inferops/inferops/cluster"
)

func TestAddKafkaFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want func(c cluster.Config) string // "" = as expected, else what is wrong
	}{
		{"defaults", nil, nil, func(c cluster.Config) string {
			if len(c.Brokers) != 0 || c.Version != "3.5.0" || c.ClientID != "inferops" || c.TLS.Enable || c.SASL.Mechanism != "" {
				return "not the DESIGN.md defaults"
			}
			return ""
		}},
		{"comma list and repeats", []string{"--brokers", "a:1, b:2", "--brokers", "c:3"}, nil, func(c cluster.Config) string {
			if strings.Join(c.Brokers, ",") != "a:1,b:2,c:3" {
				return "brokers " + strings.Join(c.Brokers, ",")
			}
			return ""
		}},
		{"env brokers", nil, map[string]string{"INFEROPS_BROKERS": "k1:9092,k2:9092"}, func(c cluster.Config) string {
			if strings.Join(c.Brokers, ",") != "k1:9092,k2:9092" {
				return "brokers " + strings.Join(c.Brokers, ",")
			}
			return ""
		}},
		{"flag beats env", []string{"--brokers", "x:1"}, map[string]string{"INFEROPS_BROKERS": "k1:9092"}, func(c cluster.Config) string {
			if strings.Join(c.Brokers, ",") != "x:1" {
				return "brokers " + strings.Join(c.Brokers, ",")
			}
			return ""
		}},
		{"tls and sasl", []string{"--kafka-tls-ca-file", "/ca.pem", "--kafka-tls-insecure-skip-verify", "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "svc", "--kafka-version", "2.8.0", "--client-id", "ops"},
			map[string]string{"INFEROPS_SASL_PASSWORD": "pw"}, func(c cluster.Config) string {
				if c.TLS.CAFile != "/ca.pem" || !c.TLS.InsecureSkipVerify || c.SASL.Mechanism != "SCRAM-SHA-512" || c.SASL.Username != "svc" || c.SASL.Password != "pw" || c.Version != "2.8.0" || c.ClientID != "ops" {
					return "fields not filled"
				}
				return ""
			}},
		{"password file", []string{"--sasl-password-file", "/run/secrets/kafka"}, nil, func(c cluster.Config) string {
			if c.SASL.PasswordFile != "/run/secrets/kafka" || c.SASL.Password != "" {
				return "password file not set"
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("INFEROPS_BROKERS", "")
			t.Setenv("INFEROPS_SASL_PASSWORD", "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			fs := newFlags("t", "t", "")
			c := addKafkaFlags(fs)
			if err := fs.parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if msg := tt.want(*c); msg != "" {
				t.Errorf("%s: %+v", msg, *c)
			}
		})
	}
	// No password flag exists: it must never be on a command line.
	fs := newFlags("t", "t", "")
	addKafkaFlags(fs)
	if fs.Lookup("sasl-password") != nil {
		t.Error("--sasl-password exists; the password belongs in INFEROPS_SASL_PASSWORD or a file")
	}
}
