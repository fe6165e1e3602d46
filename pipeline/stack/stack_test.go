package stack_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// free returns a loopback address nothing listens on.
func free(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// listenable reports whether addr can be bound again: whoever had it let go.
func listenable(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func topics(t *testing.T, kc cluster.Config) []string {
	t.Helper()
	sc, err := kc.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	c, err := sarama.NewClient(kc.Brokers, sc)
	if err != nil {
		t.Fatal(kc.Explain(err))
	}
	defer c.Close()
	ts, err := c.Topics()
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestStartBothPartsUnderDataDir(t *testing.T) {
	dir := t.TempDir()
	extra := pipeline.TopicSpec{Name: "ai_input.extra", Partitions: 2}
	s, err := stack.Start(context.Background(), stack.Config{
		Broker:      &cluster.BrokerConfig{Addr: "127.0.0.1:0"},
		Models:      &modelserver.Config{GRPCAddr: "127.0.0.1:0", RESTAddr: "127.0.0.1:0"},
		DataDir:     dir,
		ExtraTopics: []pipeline.TopicSpec{extra},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Addrs.Kafka == "" || s.Addrs.GRPC == "" || s.Addrs.REST == "" || s.Addrs.Kafka != s.Broker.Addr() || s.Addrs.GRPC != s.Models.GRPCAddr() {
		t.Fatalf("addrs %+v do not match the running parts", s.Addrs)
	}
	if kc := s.Kafka(); !slices.Equal(kc.Brokers, []string{s.Addrs.Kafka}) {
		t.Errorf("Kafka() brokers %v, want [%s]", kc.Brokers, s.Addrs.Kafka)
	}
	ts := topics(t, s.Kafka())
	for _, want := range []string{pipeline.DefaultInput, pipeline.DefaultOutput, pipeline.DefaultDLQ, extra.Name} {
		if !slices.Contains(ts, want) {
			t.Errorf("topics %v lack %s (the pipeline's plus ExtraTopics)", ts, want)
		}
	}
	for _, sub := range []string{"kafka", filepath.Join("models", "my_model", "1")} {
		if _, err := os.Stat(filepath.Join(dir, sub)); err != nil {
			t.Errorf("state not under <DataDir>/%s: %v", sub, err)
		}
	}
	vs, labels, err := s.Models.ModelVersions(pipeline.DefaultModel)
	if err != nil || len(vs) != 2 || labels["stable"] != 1 || labels["canary"] != 2 {
		t.Errorf("model versions %v labels %v (%v), want the shipped my_model 1 and 2, labelled", vs, labels, err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{s.Addrs.Kafka, s.Addrs.GRPC, s.Addrs.REST} {
		if !listenable(a) {
			t.Errorf("%s still taken after Close", a)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// Broker.Topics replaces the pipeline's topics; ExtraTopics still join them.
func TestExtraTopicsJoinExplicitTopics(t *testing.T) {
	own := pipeline.TopicSpec{Name: "only_this", Partitions: 1}
	extra := pipeline.TopicSpec{Name: "and_this", Partitions: 1}
	s := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{Topics: []pipeline.TopicSpec{own}}, ExtraTopics: []pipeline.TopicSpec{extra}})
	ts := topics(t, s.Kafka())
	if !slices.Contains(ts, own.Name) || !slices.Contains(ts, extra.Name) || slices.Contains(ts, pipeline.DefaultInput) {
		t.Errorf("topics %v, want exactly %s and %s", ts, own.Name, extra.Name)
	}
	if s.Models != nil || s.Addrs.GRPC != "" || s.Addrs.REST != "" {
		t.Errorf("a model server runs without Models: %+v", s.Addrs)
	}
}

func TestEphemeralWritesNothing(t *testing.T) {
	dir := t.TempDir()
	s := stacktest.Start(t, stack.Config{
		Broker:    &cluster.BrokerConfig{},
		Models:    &modelserver.Config{RESTAddr: "-"},
		DataDir:   dir,
		Ephemeral: true,
	})
	if s.Addrs.REST != "" {
		t.Errorf("REST %q with RESTAddr -", s.Addrs.REST)
	}
	if s.Broker == nil || s.Models == nil {
		t.Fatal("a part did not start")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("ephemeral stack wrote %v into DataDir", entries)
	}
}

// A part that cannot start leaves nothing running, and the error names the
// part and the flag.
func TestStartErrors(t *testing.T) {
	if _, err := stack.Start(context.Background(), stack.Config{}); err == nil || !strings.Contains(err.Error(), "nothing to start") {
		t.Errorf("empty config: %v", err)
	}

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	kafka := free(t)
	_, err = stack.Start(context.Background(), stack.Config{
		Broker:    &cluster.BrokerConfig{Addr: kafka},
		Models:    &modelserver.Config{GRPCAddr: taken.Addr().String(), RESTAddr: "-"},
		Ephemeral: true,
	})
	if err == nil || !strings.Contains(err.Error(), "start model server") || !strings.Contains(err.Error(), "--grpc-addr") {
		t.Fatalf("model server on a taken port: %v, want an error naming the model server and --grpc-addr", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !listenable(kafka) {
		if time.Now().After(deadline) {
			t.Fatalf("the broker at %s is still running after the model server failed", kafka)
		}
		time.Sleep(50 * time.Millisecond)
	}

	_, err = stack.Start(context.Background(), stack.Config{Broker: &cluster.BrokerConfig{Addr: taken.Addr().String()}, Ephemeral: true})
	if err == nil || !strings.Contains(err.Error(), "start broker") || !strings.Contains(err.Error(), "--kafka-addr") {
		t.Errorf("broker on a taken port: %v, want an error naming the broker and --kafka-addr", err)
	}
	_, err = stack.Start(context.Background(), stack.Config{Broker: &cluster.BrokerConfig{Addr: "127.0.0.1:0"}})
	if err == nil || !strings.Contains(err.Error(), "--data-dir") {
		t.Errorf("broker with no DataDir and not Ephemeral: %v, want an error naming --data-dir", err)
	}
}
