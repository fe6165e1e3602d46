// Package tlsfiles loads the PEM files operators name on the command line
// into crypto/tls configs, with errors that name the flag to fix. The Kafka
// client, the TF Serving client and the embedded model server all use it.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// CertPool reads a PEM bundle of CA certificates; flag names the setting in
// errors (e.g. "--kafka-tls-ca-file").
func CertPool(flag, path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", flag, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s %s: no PEM certificate in it", flag, path)
	}
	return pool, nil
}

// KeyPair reads a certificate and its key; flags names both settings in
// errors (e.g. "--kafka-tls-cert-file/--kafka-tls-key-file").
func KeyPair(flags, certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: %v", flags, err)
	}
	return cert, nil
}

// Client is a TLS client's side: the CA that signed the server (empty: the
// system pool) and an optional client certificate for mutual TLS.
type Client struct {
	Prefix             string // flag prefix for errors: "--kafka-tls" or "--tfserving-tls"
	CAFile             string
	CertFile, KeyFile  string
	ServerName         string
	InsecureSkipVerify bool
}

// Validate checks the files before anything dials: a certificate and its key
// come together, and every named file exists.
func (c Client) Validate() error {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return fmt.Errorf("%s-cert-file and %s-key-file go together: set both for a client certificate, or neither", c.Prefix, c.Prefix)
	}
	for _, f := range []struct{ suffix, path string }{
		{"-ca-file", c.CAFile}, {"-cert-file", c.CertFile}, {"-key-file", c.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("%s%s %s: %v", c.Prefix, f.suffix, f.path, errors.Unwrap(err))
		}
	}
	return nil
}

// Config builds the client's *tls.Config (TLS 1.2 or newer).
func (c Client) Config() (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // the operator asked for it with <prefix>-insecure-skip-verify
	}
	if c.CAFile != "" {
		pool, err := CertPool(c.Prefix+"-ca-file", c.CAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := KeyPair(c.Prefix+"-cert-file/"+c.Prefix+"-key-file", c.CertFile, c.KeyFile)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
