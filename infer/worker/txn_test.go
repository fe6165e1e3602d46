package worker

import (
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/pipeline"
)

// TestPipelineReadsCommittedOnly: `inferops dlq replay` writes to the input
// in transactions, and a replay killed mid-way leaves one open until it is
// aborted. The worker must serve what was committed and never what was
// aborted, and a replayed record that fails again must reach the DLQ still
// carrying its redrive count.
func TestPipelineReadsCommittedOnly(t *testing.T) {
	e := newTestEnv(t)
	sc := mustSarama(t, e.kafka)
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	sc.Producer.Transaction.ID = "worker-test-txn"
	prod, err := sarama.NewSyncProducer(e.kafka.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	in := newInput()
	txn := func(prefix string, commit bool) {
		t.Helper()
		if err := prod.BeginTxn(); err != nil {
			t.Fatal(err)
		}
		var msgs []*sarama.ProducerMessage
		for i := range 24 {
			id := prefix + strconv.Itoa(i)
			v := goodRecord(id, i, e.width)
			var hs []sarama.RecordHeader
			if i == 5 { // a replayed record that is still bad
				v = []byte(`{"id":"` + id + `","features":[1]}`)
				hs = []sarama.RecordHeader{{Key: []byte(pipeline.HeaderRedrives), Value: []byte("2")}}
			}
			if commit {
				in.keys[id] = i == 5
			}
			msgs = append(msgs, &sarama.ProducerMessage{Topic: pipeline.DefaultInput, Partition: int32(i % 3), Key: sarama.StringEncoder(id), Value: sarama.ByteEncoder(v), Headers: hs})
		}
		if err := prod.SendMessages(msgs); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = prod.CommitTxn()
		} else {
			err = prod.AbortTxn()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	txn("aborted-", false)
	txn("committed-", true)
	e.pool(Config{Workers: 2})
	// The committed records sit after the aborted ones on the same
	// partitions: once they are all accounted for, the worker has read past
	// the aborted ones.
	o := e.collect(in, 60*time.Second)
	for k, n := range o.out {
		if len(k) > 8 && k[:8] == "aborted-" {
			t.Errorf("aborted record %s served %d times", k, n)
		}
	}
	for k := range o.dlq {
		if len(k) > 8 && k[:8] == "aborted-" {
			t.Errorf("aborted record %s dead-lettered", k)
		}
	}
	if o.reasons["committed-5"] != pipeline.ReasonWrongWidth {
		t.Errorf("committed-5: DLQ reason %q, want %s", o.reasons["committed-5"], pipeline.ReasonWrongWidth)
	}
	if got := o.redrives["committed-5"]; got != "2" {
		t.Errorf("committed-5's dead letter has %s %q, want the input's 2", pipeline.HeaderRedrives, got)
	}
}
