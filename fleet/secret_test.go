package fleet

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/internal/config"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// TestSnapshotHasNoSecret runs an instance and a controller against a
// broker that requires SCRAM with a planted password, plants the same
// password in an event, and reads every byte of the fleet and control
// topics: the password is nowhere.
func TestSnapshotHasNoSecret(t *testing.T) {
	const secret = "Planted_Fleet_Secret_3c9e"
	config.RegisterSecret(secret) // what parseFlags does for every password
	st := stacktest.Start(t, stack.Config{
		Broker: &cluster.BrokerConfig{SASL: cluster.BrokerSASL{Mechanism: cluster.SASLScramSHA256, Users: map[string]string{"svc": secret}}},
		Models: &modelserver.Config{RESTAddr: "-"},
	})
	tfs, err := tfserving.Dial(tfserving.Config{Address: st.Addrs.GRPC})
	if err != nil {
		t.Fatal(err)
	}
	defer tfs.Close()
	e := &env{t: t, st: st, kafka: st.Kafka(), tfs: tfs, width: 32}
	if e.kafka.SASL.Password != secret {
		t.Fatal("the client does not use the planted password")
	}
	in := e.instance("secretive", 1, false)
	c := e.controller("")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.SetTarget(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, pipeline.Event{Kind: pipeline.KindDLQ, Message: "replayed with password " + secret}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a snapshot after the change", 15*time.Second, func() bool {
		i, ok := c.View().Instance("secretive")
		return ok && i.Control.Seq == 1
	})
	in.stop()

	sc, err := e.kafka.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	client, err := sarama.NewClient(e.kafka.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var seen int
	for _, topic := range []string{pipeline.DefaultFleetTopic, pipeline.DefaultControlTopic} {
		n := 0
		cons, err := sarama.NewConsumerFromClient(client)
		if err != nil {
			t.Fatal(err)
		}
		tl, err := startTail(ctx, client, cons, topic, time.Time{}, func(r record) {
			n++
			if bytes.Contains(r.Key, []byte(secret)) || bytes.Contains(r.Value, []byte(secret)) {
				t.Errorf("%s offset %d holds the password: %s", topic, r.Offset, r.Value)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := tl.wait(ctx); err != nil {
			t.Fatal(err)
		}
		tl.close()
		_ = cons.Close()
		seen += n
		if n == 0 {
			t.Errorf("nothing on %s", topic)
		}
	}
	if v := c.View(); !strings.Contains(v.Events[len(v.Events)-1].Message, config.Redacted) {
		t.Errorf("the event should show the password redacted: %q", v.Events[len(v.Events)-1].Message)
	}
	t.Logf("%d records read, none with the password", seen)
}
