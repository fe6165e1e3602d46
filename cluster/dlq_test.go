package cluster

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/pipeline"
)

// TestDLQTail reads dead letters written by three kinds of writer (the
// worker's headers, a tool that sets none, one that sets garbage) from the
// topic itself, with part of it already trimmed by retention.
func TestDLQTail(t *testing.T) {
	b := startTestBroker(t, func(c *BrokerConfig) { c.Ephemeral = true })
	cfg := b.ClientConfig()
	sc, _ := cfg.Sarama()
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	sc.Producer.Compression = sarama.CompressionZSTD // as the worker writes them
	prod, err := sarama.NewSyncProducer(cfg.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	n := 0
	send := func(p int32, value string, hs []pipeline.Header) {
		t.Helper()
		m := &sarama.ProducerMessage{Topic: pipeline.DefaultDLQ, Partition: p, Value: sarama.StringEncoder(value), Timestamp: base.Add(time.Duration(n) * time.Second)}
		for _, h := range hs {
			m.Headers = append(m.Headers, sarama.RecordHeader{Key: h.Key, Value: h.Value})
		}
		n++
		if _, _, err := prod.SendMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	invalid := &pipeline.RecordError{Reason: pipeline.ReasonInvalidJSON, Detail: "offset 3: unexpected end"}
	width := &pipeline.RecordError{Reason: pipeline.ReasonWrongWidth, Detail: "7 features, model wants 16"}
	// Partition 0: 8 of the worker's, the first 4 trimmed away below.
	for i := 0; i < 8; i++ {
		send(0, `{"id":"a`, pipeline.DeadLetterHeaders(invalid, pipeline.DefaultInput, 3, int64(100+i), 8, nil))
	}
	// Partition 1: 2 from a tool without headers, 1 of the worker's.
	send(1, "no headers at all", nil)
	send(1, strings.Repeat("x", 1000), nil)
	send(1, `{"features":[1,2,3,4,5,6,7]}`, pipeline.DeadLetterHeaders(width, "ai_input/with/slashes", 7, 90312, 30, nil))
	// Partition 2: a hostile writer: escape codes, invalid UTF-8, a huge
	// reason, a source that does not parse.
	send(2, "\x1b[31mred", []pipeline.Header{
		{Key: []byte(pipeline.HeaderError), Value: append([]byte("bad\x1b[2J\xff"), strings.Repeat("r", 500)...)},
		{Key: []byte(pipeline.HeaderSource), Value: []byte("ai_input/notanumber/5")},
		{Key: []byte(pipeline.HeaderErrorDetail), Value: []byte(strings.Repeat("d", 5000))},
	})
	if err := b.Cluster().DeleteRecords(pipeline.DefaultDLQ, 0, 4); err != nil {
		t.Fatal(err)
	}

	r, err := NewDLQReader(cfg, pipeline.DefaultDLQ)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tail, err := r.Tail(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if tail.Total != 4+3+1 {
		t.Errorf("total %d, want 8 (4 left in p0 after trimming, 3 in p1, 1 in p2)", tail.Total)
	}
	wantParts := []DLQPartition{{0, 4, 8, 3}, {1, 0, 3, 3}, {2, 0, 1, 1}}
	if len(tail.Partitions) != 3 {
		t.Fatalf("partitions %+v", tail.Partitions)
	}
	for i, w := range wantParts {
		if tail.Partitions[i] != w {
			t.Errorf("partition %+v, want %+v", tail.Partitions[i], w)
		}
	}
	if len(tail.Records) != 7 {
		t.Fatalf("%d records, want 3+3+1", len(tail.Records))
	}
	for i := 1; i < len(tail.Records); i++ {
		if tail.Records[i].Time.After(tail.Records[i-1].Time) {
			t.Errorf("records not newest first: %v after %v", tail.Records[i].Time, tail.Records[i-1].Time)
		}
	}
	// The newest is the hostile one: bounded, printable, unknown source.
	h := tail.Records[0]
	if len(h.Reason) > dlqReasonMax || strings.ContainsAny(h.Reason, "\x1b\xff") || !utf8.ValidString(h.Reason) || !strings.HasPrefix(h.Reason, "bad?[2J?") {
		t.Errorf("hostile reason %q: want it cut to %d bytes, escapes and invalid bytes replaced", h.Reason, dlqReasonMax)
	}
	if len(h.Detail) != dlqDetailMax || h.Topic != "" || h.Partition != -1 || h.Offset != -1 || string(h.Preview) != "\x1b[31mred" {
		t.Errorf("hostile record = %+v", h)
	}
	w := tail.Records[1]
	if w.Reason != pipeline.ReasonWrongWidth || w.Detail != width.Detail || w.Topic != "ai_input/with/slashes" || w.Partition != 7 || w.Offset != 90312 {
		t.Errorf("worker's dead letter = %+v", w)
	}
	if !w.Time.Equal(base.Add(10 * time.Second)) {
		t.Errorf("time %v, want the record's timestamp %v", w.Time, base.Add(10*time.Second))
	}
	if u := tail.Records[2]; u.Reason != pipeline.ReasonUnknown || len(u.Preview) != pipeline.PreviewBytes {
		t.Errorf("headerless dead letter = reason %q preview %d bytes, want unknown and %d", u.Reason, len(u.Preview), pipeline.PreviewBytes)
	}
	for _, d := range tail.Records[4:] {
		if d.Reason != pipeline.ReasonInvalidJSON || d.Topic != pipeline.DefaultInput || d.Partition != 3 || d.Offset < 105 {
			t.Errorf("p0 tail record %+v, want the newest three of offsets 100-107", d)
		}
	}
	wantReasons := []pipeline.ReasonCount{{Reason: pipeline.ReasonInvalidJSON, Count: 3}, {Reason: pipeline.ReasonUnknown, Count: 2}, {Reason: h.Reason, Count: 1}, {Reason: pipeline.ReasonWrongWidth, Count: 1}}
	if len(tail.Reasons) != len(wantReasons) {
		t.Fatalf("reasons %+v, want %+v", tail.Reasons, wantReasons)
	}
	for i := range wantReasons {
		if tail.Reasons[i] != wantReasons[i] {
			t.Errorf("reasons %+v, want %+v", tail.Reasons, wantReasons)
			break
		}
	}

	// A larger tail than the topic holds reads it all; requests stay per
	// leader (one broker: 2 ListOffsets + 1 Fetch, rounds only when needed).
	all, err := r.Tail(context.Background(), 100)
	if err != nil || len(all.Records) != 8 {
		t.Fatalf("tail of 100: %d records, %v; want all 8", len(all.Records), err)
	}
}

func TestDLQTailEmptyAndMissing(t *testing.T) {
	b := startTestBroker(t, func(c *BrokerConfig) { c.Ephemeral = true })
	r, err := NewDLQReader(b.ClientConfig(), pipeline.DefaultDLQ)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tail, err := r.Tail(context.Background(), 20)
	if err != nil {
		t.Fatal(err)
	}
	if tail.Total != 0 || len(tail.Records) != 0 || len(tail.Partitions) != 3 || tail.Records == nil || tail.Reasons == nil {
		t.Errorf("empty DLQ: %+v", tail)
	}
	missing, err := NewDLQReader(b.ClientConfig(), "no_such.dlq")
	if err != nil {
		t.Fatal(err)
	}
	defer missing.Close()
	if _, err := missing.Tail(context.Background(), 20); err == nil || !strings.Contains(err.Error(), `"no_such.dlq" does not exist`) || !strings.Contains(err.Error(), "--dlq") {
		t.Errorf("missing topic: %v, want it named with the --dlq fix", err)
	}
}

// FuzzDeadLetterOf: whatever another writer put in a dead letter's value
// and headers, reading it never panics, and what comes out is bounded and
// safe to draw on a terminal.
func FuzzDeadLetterOf(f *testing.F) {
	f.Add([]byte(`{"id":"a`), []byte(pipeline.ReasonInvalidJSON), []byte("offset 3"), []byte("ai_input/3/100"))
	f.Add([]byte{}, []byte{}, []byte{}, []byte{})
	f.Add([]byte("\x1b[2J"), []byte("\xff\xfe\x1b[31m"), []byte(strings.Repeat("d", 600)), []byte("a/b/c/-1/x"))
	f.Add([]byte("x"), []byte("  "), []byte("\n"), []byte("t//"))
	f.Fuzz(func(t *testing.T, value, reason, detail, source []byte) {
		hs := []*sarama.RecordHeader{
			{Key: []byte(pipeline.HeaderError), Value: reason},
			{Key: []byte(pipeline.HeaderErrorDetail), Value: detail},
			{Key: []byte(pipeline.HeaderSource), Value: source},
			nil,
		}
		d := deadLetterOf(time.Unix(0, 0), value, hs)
		for name, s := range map[string]string{"reason": d.Reason, "detail": d.Detail, "topic": d.Topic} {
			if !utf8.ValidString(s) || strings.ContainsAny(s, "\x00\x1b\n\r\x7f") {
				t.Fatalf("%s %q is not printable UTF-8", name, s)
			}
		}
		if d.Reason == "" || len(d.Reason) > dlqReasonMax*3 || len(d.Detail) > dlqDetailMax*3 || len(d.Preview) > pipeline.PreviewBytes {
			t.Fatalf("unbounded: reason %d detail %d preview %d bytes", len(d.Reason), len(d.Detail), len(d.Preview))
		}
		if (d.Partition < 0) != (d.Offset < 0) {
			t.Fatalf("half a source: partition %d offset %d", d.Partition, d.Offset)
		}
	})
}

// BenchmarkDLQTail is the console's DLQ refresh: the newest 20 dead letters
// of each of the 3 partitions of a DLQ holding 30,000 (2 KB each).
func BenchmarkDLQTail(b *testing.B) {
	br := startTestBroker(b, func(c *BrokerConfig) { c.Ephemeral = true })
	cfg := br.ClientConfig()
	sc, _ := cfg.Sarama()
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer(cfg.Brokers, sc)
	if err != nil {
		b.Fatal(err)
	}
	hs := pipeline.DeadLetterHeaders(&pipeline.RecordError{Reason: pipeline.ReasonInvalidJSON}, pipeline.DefaultInput, 1, 2, 3, nil)
	var msgs []*sarama.ProducerMessage
	for i := 0; i < 30000; i++ {
		m := &sarama.ProducerMessage{Topic: pipeline.DefaultDLQ, Partition: int32(i % 3), Value: sarama.StringEncoder(strings.Repeat("v", 2048))}
		for _, h := range hs {
			m.Headers = append(m.Headers, sarama.RecordHeader{Key: h.Key, Value: h.Value})
		}
		msgs = append(msgs, m)
	}
	if err := prod.SendMessages(msgs); err != nil {
		b.Fatal(err)
	}
	prod.Close()
	r, err := NewDLQReader(cfg, pipeline.DefaultDLQ)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tail, err := r.Tail(context.Background(), 20)
		if err != nil || len(tail.Records) != 60 || tail.Total != 30000 {
			b.Fatalf("tail: %d records of %d, %v: %+v", len(tail.Records), tail.Total, err, tail.Partitions)
		}
	}
}
