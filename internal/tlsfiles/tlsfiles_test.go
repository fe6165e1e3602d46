package tlsfiles

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every failure names the flag the operator has to fix.
func TestErrorsNameTheFlag(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name string
		c    Client
		want string
	}{
		{"missing CA", Client{Prefix: "--kafka-tls", CAFile: missing}, "--kafka-tls-ca-file: open " + missing},
		{"CA without PEM", Client{Prefix: "--kafka-tls", CAFile: notPEM}, "--kafka-tls-ca-file " + notPEM + ": no PEM certificate in it"},
		{"missing client cert", Client{Prefix: "--tfserving-tls", CertFile: missing, KeyFile: missing}, "--tfserving-tls-cert-file/--tfserving-tls-key-file: open " + missing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.Config()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want it to contain %q", err, tt.want)
			}
		})
	}
	tc, err := Client{Prefix: "--kafka-tls", ServerName: "kafka-1", InsecureSkipVerify: true}.Config()
	if err != nil || tc.ServerName != "kafka-1" || !tc.InsecureSkipVerify || tc.RootCAs != nil || tc.MinVersion == 0 {
		t.Fatalf("plain client: %+v %v", tc, err)
	}
}
