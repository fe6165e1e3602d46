// Package stack starts the embedded pipeline in this process: the
// Kafka-protocol broker with the pipeline's topics, then the
// TF-Serving-compatible model server, both over loopback TCP exactly as a
// real cluster is reached. `inferops serve`, the console, perf and the tests
// (through stacktest) all start it here, so they agree on where each part
// keeps its state, which topics exist and in which order things stop.
//
// It sits one layer above package pipeline: it needs cluster and
// infer/modelserver, which themselves import pipeline.
package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/pipeline"
)

// Config says which parts run and where they keep their state.
type Config struct {
	// Broker runs the embedded Kafka broker with these options; nil runs
	// none (the pipeline uses a real cluster).
	Broker *cluster.BrokerConfig
	// Models runs the embedded model server with these options; nil runs
	// none (the workers call a real TF Serving).
	Models *modelserver.Config
	// DataDir is the root of the stack's state: the broker's log in
	// <DataDir>/kafka, the shipped model in <DataDir>/models. A part whose
	// own DataDir is set keeps it.
	DataDir string
	// Ephemeral keeps the broker in memory and the shipped model in a
	// temporary directory removed on Close; nothing goes to DataDir.
	Ephemeral bool
	// ExtraTopics are created on the broker next to Broker.Topics (nil
	// there means the pipeline's own): perf's topics beside production's.
	ExtraTopics []pipeline.TopicSpec
	// Logger receives every part's log, each line with a "part" attribute;
	// nil discards it. A part's own Logger wins.
	Logger *slog.Logger
}

// Addrs are where the running parts listen, as clients dial them. A part
// that does not run has an empty address, and so has REST when the model
// server runs with RESTAddr "-".
type Addrs struct {
	Kafka string // the (first) broker: what clients bootstrap from
	GRPC  string // TF Serving's --port: Predict, GetModelStatus, GetModelMetadata
	REST  string // TF Serving's --rest_api_port, and Prometheus /monitoring
}

// Stack is a running embedded stack.
type Stack struct {
	Addrs Addrs
	// Broker and Models are the running parts (nil when not configured), for
	// callers that read them directly (the console's model versions) and
	// tests that inject faults (Broker.Cluster(), Models.Close()).
	Broker *cluster.Broker
	Models *modelserver.Server
}

// Start starts the broker, then the model server, and returns once
// clients can use both. On an error nothing is left running; the error
// names the part and, from the part, the flag to fix.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	if cfg.Broker == nil && cfg.Models == nil {
		return nil, errors.New("embedded stack: neither the broker nor the model server is configured: nothing to start")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Stack{}
	if cfg.Broker != nil {
		b, err := cluster.StartBroker(ctx, cfg.brokerConfig(log))
		if err != nil {
			return nil, fmt.Errorf("start broker: %w", err)
		}
		s.Broker, s.Addrs.Kafka = b, b.Addr()
	}
	if cfg.Models != nil {
		m, err := modelserver.Start(ctx, cfg.modelsConfig(log))
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("start model server: %w", err)
		}
		s.Models, s.Addrs.GRPC, s.Addrs.REST = m, m.GRPCAddr(), m.RESTAddr()
	}
	return s, nil
}

func (c Config) brokerConfig(log *slog.Logger) cluster.BrokerConfig {
	b := *c.Broker
	b.Ephemeral = b.Ephemeral || c.Ephemeral
	if b.DataDir == "" && !b.Ephemeral && c.DataDir != "" {
		b.DataDir = filepath.Join(c.DataDir, "kafka")
	}
	if b.Logger == nil {
		b.Logger = log.With("part", "broker")
	}
	if len(c.ExtraTopics) > 0 {
		b.SetDefaults() // Topics nil -> the pipeline's, with b's retention
		b.Topics = slices.Concat(b.Topics, c.ExtraTopics)
	}
	return b
}

func (c Config) modelsConfig(log *slog.Logger) modelserver.Config {
	m := *c.Models
	if m.DataDir == "" && !c.Ephemeral {
		m.DataDir = c.DataDir // the server adds models/ itself
	}
	if m.Logger == nil {
		m.Logger = log.With("part", "models")
	}
	return m
}

// Kafka is a client config that reaches the embedded broker (as the first
// SASL user when the broker requires SASL), or the zero Config when the
// stack runs no broker.
func (s *Stack) Kafka() cluster.Config {
	if s.Broker == nil {
		return cluster.Config{}
	}
	return s.Broker.ClientConfig()
}

// Close stops the parts in reverse order: the model server, then the
// broker, which flushes its state to DataDir. It is safe to call twice.
func (s *Stack) Close() error {
	var errs []error
	if s.Models != nil {
		if err := s.Models.Close(); err != nil {
			errs = append(errs, fmt.Errorf("stop model server: %w", err))
		}
	}
	if s.Broker != nil {
		if err := s.Broker.Close(); err != nil {
			errs = append(errs, fmt.Errorf("stop broker: %w", err))
		}
	}
	return errors.Join(errs...)
}
