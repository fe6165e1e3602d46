package demo

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

func TestStepLadder(t *testing.T) {
	cases := []struct {
		from float64
		dir  int
		want float64
	}{
		{500, +1, 1000}, {500, -1, 200}, {700, +1, 1000}, {700, -1, 500},
		{0, -1, 0}, {0, +1, 10}, {50000, +1, 50000}, {10, -1, 0},
	}
	for _, tc := range cases {
		g := &Generator{}
		g.SetRate(tc.from)
		if got := g.Step(tc.dir); got != tc.want {
			t.Errorf("Step(%v) from %v = %v, want %v", tc.dir, tc.from, got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"good", func(c *Config) {}, true},
		{"no width", func(c *Config) { c.FeatureWidth = 0 }, false},
		{"rate too high", func(c *Config) { c.Rate = MaxRate + 1 }, false},
		{"ratio", func(c *Config) { c.MalformedRatio = 2 }, false},
	}
	for _, tc := range cases {
		c := Config{FeatureWidth: 16, Kafka: cluster.Config{Brokers: []string{"127.0.0.1:9092"}}}
		tc.mod(&c)
		c.SetDefaults()
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v", tc.name, err)
		}
	}
}

// TestRecordsOnTheEmbeddedBroker produces through the real broker over TCP
// and reads everything back: every record sent arrives, valid ones parse as
// the seed's shape with the right width, and bad ones are each a kind the
// worker must dead-letter.
func TestRecordsOnTheEmbeddedBroker(t *testing.T) {
	ctx := context.Background()
	b := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{}}).Broker
	const width = 16
	g, err := Start(ctx, Config{Kafka: b.ClientConfig(), Rate: 2000, MalformedRatio: 0.1, FeatureWidth: width, NoBursts: true, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	st := g.Stats()
	if st.Sent < 1500 || st.Sent > 4000 {
		t.Fatalf("sent %d records in 1.5 s at 2000/s", st.Sent)
	}
	if st.Errors != 0 {
		t.Fatalf("%d produce errors", st.Errors)
	}

	sc, _ := b.ClientConfig().Sarama()
	// Partitions are read one after the other: do not wait the default
	// 500 ms for more data at the end of each.
	sc.Consumer.MaxWaitTime = 20 * time.Millisecond
	client, err := sarama.NewClient(b.Addrs(), sc)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	parts, _ := client.Partitions("ai_input")
	var got, bad int64
	perPart := map[int32]int64{}
	for _, p := range parts {
		hw, _ := client.GetOffset("ai_input", p, sarama.OffsetNewest)
		if hw == 0 {
			continue
		}
		pc, err := cons.ConsumePartition("ai_input", p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for m := range pc.Messages() {
			got++
			perPart[p]++
			var r struct {
				ID       string    `json:"id"`
				Features []float64 `json:"features"`
			}
			if json.Unmarshal(m.Value, &r) != nil || len(r.Features) != width {
				bad++
			}
			if m.Offset == hw-1 {
				break
			}
		}
		pc.Close()
	}
	if got != st.Sent {
		t.Errorf("read %d records, generator sent %d", got, st.Sent)
	}
	if bad != st.Malformed {
		t.Errorf("%d records are not valid model input, generator made %d malformed", bad, st.Malformed)
	}
	if frac := float64(bad) / float64(got); frac < 0.05 || frac > 0.15 {
		t.Errorf("malformed share %.3f, configured 0.1", frac)
	}
	// The hot key makes one partition clearly busier than the average.
	var maxP int64
	for _, n := range perPart {
		maxP = max(maxP, n)
	}
	if avg := float64(got) / float64(len(parts)); float64(maxP) < 1.5*avg {
		t.Errorf("hottest partition has %d records, average %.0f: no visible skew", maxP, avg)
	}
}

func TestMalformedIsNeverValid(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, w := range []int{1, 2, 16, 101} {
		for i := 0; i < 200; i++ {
			v := malformed(rng, "x", w)
			var r struct {
				Features []float64 `json:"features"`
			}
			if json.Unmarshal(v, &r) == nil && len(r.Features) == w {
				t.Fatalf("width %d: malformed record %q is valid input", w, v)
			}
		}
	}
}
