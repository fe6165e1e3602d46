package demo

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/tfpb"
	"github.com/inferops/inferops/pipeline"
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
		{"no schema", func(c *Config) { c.Schema = nil }, false},
		{"rate too high", func(c *Config) { c.Rate = MaxRate + 1 }, false},
		{"ratio", func(c *Config) { c.MalformedRatio = 2 }, false},
	}
	for _, tc := range cases {
		c := Config{Schema: seedSchema(t, 16), Kafka: cluster.Config{Brokers: []string{"127.0.0.1:9092"}}}
		tc.mod(&c)
		c.SetDefaults()
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v", tc.name, err)
		}
	}
}

// seedSchema is my_model's: one DT_FLOAT [-1, width] "features" input.
func seedSchema(t *testing.T, width int) *pipeline.Schema {
	t.Helper()
	s, err := pipeline.NewSchema([]pipeline.TensorSpec{{Name: pipeline.FieldFeatures, DType: tfpb.DataType_DT_FLOAT, Shape: []int64{-1, int64(width)}}}, pipeline.SchemaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRecordsOnTheEmbeddedBroker produces through the real broker over TCP
// and reads everything back: every record sent arrives, valid ones parse
// for the schema, and bad ones are dead-lettered with every reason the
// schema has, each about as often.
func TestRecordsOnTheEmbeddedBroker(t *testing.T) {
	ctx := context.Background()
	b := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{}}).Broker
	schema, err := pipeline.NewSchema([]pipeline.TensorSpec{
		{Name: "user_id", DType: tfpb.DataType_DT_INT64, Shape: []int64{-1}},
		{Name: "context", DType: tfpb.DataType_DT_FLOAT, Shape: []int64{-1, 4}},
		{Name: "query", DType: tfpb.DataType_DT_STRING, Shape: []int64{-1}},
	}, pipeline.SchemaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := Start(ctx, Config{Kafka: b.ClientConfig(), Rate: 2000, MalformedRatio: 0.2, Schema: schema, NoBursts: true, Seed: 7})
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
	reasons := map[string]int{}
	var v pipeline.Values
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
			if rerr := schema.Parse(m.Value, &v); rerr != nil {
				bad++
				reasons[rerr.Reason]++
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
	if frac := float64(bad) / float64(got); frac < 0.12 || frac > 0.28 {
		t.Errorf("malformed share %.3f, configured 0.2", frac)
	}
	for _, r := range []string{pipeline.ReasonInvalidJSON, pipeline.ReasonBadID, pipeline.ReasonMissingInput, pipeline.ReasonWrongType,
		pipeline.ReasonWrongShape, pipeline.ReasonOutOfRange, pipeline.ReasonNonFinite} {
		if reasons[r] < 5 {
			t.Errorf("%d dead letters would be %s (of %v): every kind belongs in the demo", reasons[r], r, reasons)
		}
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
