package cluster

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/cluster/clustertest"
	"github.com/inferops/inferops/pipeline"
)

// dlqFixture writes dead letters the way the worker does (key, value,
// DeadLetterHeaders), each with a record time, an id in its value, and
// remembers them.
type dlqFixture struct {
	t     *testing.T
	b     *Broker
	cfg   Config
	prod  sarama.SyncProducer
	base  time.Time
	n     int
	byID  map[string]dlqWritten
	order []string
}

type dlqWritten struct {
	reason    string
	source    int32 // input partition
	redrives  string
	truncated bool
	time      time.Time
}

func newDLQFixture(t *testing.T) *dlqFixture {
	b := startTestBroker(t, func(c *BrokerConfig) { c.Ephemeral = true })
	cfg := b.ClientConfig()
	sc, _ := cfg.Sarama()
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer(cfg.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prod.Close() })
	return &dlqFixture{t: t, b: b, cfg: cfg, prod: prod, base: time.Now().Add(-time.Hour).Truncate(time.Millisecond), byID: map[string]dlqWritten{}}
}

// add writes one dead letter of reason for input partition src; redrives
// "" is a record never replayed.
func (f *dlqFixture) add(reason string, src int32, redrives string, truncated bool) string {
	f.t.Helper()
	id := fmt.Sprintf("r%03d", f.n)
	ts := f.base.Add(time.Duration(f.n) * time.Second)
	f.n++
	size := 20
	if truncated {
		size = pipeline.DLQMaxValue + 1
		reason = pipeline.ReasonOversized
	}
	var rd []byte
	if redrives != "" {
		rd = []byte(redrives)
	}
	hs := pipeline.DeadLetterHeaders(&pipeline.RecordError{Reason: reason, Detail: "test"}, pipeline.DefaultInput, src, int64(1000+f.n), size, rd)
	if reason == pipeline.ReasonUnknown {
		hs = nil // written by a tool that sets no headers
	}
	m := &sarama.ProducerMessage{Topic: pipeline.DefaultDLQ, Partition: int32(f.n % 3), Key: sarama.StringEncoder("key-" + id),
		Value: sarama.StringEncoder(`{"id":"` + id + `","features":[1]}`), Timestamp: ts}
	for _, h := range hs {
		m.Headers = append(m.Headers, sarama.RecordHeader{Key: h.Key, Value: h.Value})
	}
	if _, _, err := f.prod.SendMessage(m); err != nil {
		f.t.Fatal(err)
	}
	if reason == pipeline.ReasonUnknown {
		src = -1
	}
	f.byID[id] = dlqWritten{reason: reason, source: src, redrives: redrives, truncated: truncated, time: ts}
	f.order = append(f.order, id)
	return id
}

// sent is one record a replay wrote to the input.
type sent struct {
	id, key, redrives string
	partition         int32
}

// readInput reads the whole input topic as the worker does, by id.
func readInput(t *testing.T, cfg Config, topic string) map[string][]sent {
	t.Helper()
	sc, _ := cfg.Sarama()
	out := map[string][]sent{}
	for _, m := range clustertest.ReadCommitted(t, cfg.Brokers, sc, topic, time.Second) {
		id := strings.TrimSuffix(strings.TrimPrefix(string(m.Value), `{"id":"`), `","features":[1]}`)
		out[id] = append(out[id], sent{id: id, key: string(m.Key), partition: m.Partition, redrives: clustertest.Header(m, pipeline.HeaderRedrives)})
	}
	return out
}

func replay(t *testing.T, cfg Config, spec ReplaySpec) (*ReplayPlan, *ReplayResult) {
	t.Helper()
	ctx := context.Background()
	r, err := NewReplayer(ctx, cfg, spec, "tester@host")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	plan, err := r.Plan(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Run(ctx, plan, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	return plan, res
}

func ids(m map[string][]sent) []string {
	var out []string
	for id := range m {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// TestReplayByReason: a replay by reason sends exactly that reason's
// records (by id), to the partition they came from, with the redrive
// count one up, and leaves over-limit, unparseable and truncated ones
// counted. Running it again sends nothing; a replay of every reason then
// sends the rest and not what the first already sent.
func TestReplayByReason(t *testing.T) {
	f := newDLQFixture(t)
	var width, other []string
	for i := range 12 {
		width = append(width, f.add(pipeline.ReasonWrongWidth, int32(i%12), "", false))
		other = append(other, f.add(pipeline.ReasonInvalidJSON, int32(i%5), "", false))
	}
	once := f.add(pipeline.ReasonWrongWidth, 7, "1", false)
	width = append(width, once)
	over := f.add(pipeline.ReasonWrongWidth, 7, "3", false)
	garbled := f.add(pipeline.ReasonWrongWidth, 7, "x3", false)
	unknown := f.add(pipeline.ReasonUnknown, 0, "", false)
	other = append(other, unknown)
	cut := f.add("", 2, "", true)

	plan, res := replay(t, f.cfg, ReplaySpec{DLQ: pipeline.DefaultDLQ, To: pipeline.DefaultInput, Reasons: []string{pipeline.ReasonWrongWidth}})
	if plan.Counts.Send != int64(len(width)) || res.Counts.Send != int64(len(width)) {
		t.Fatalf("plan %+v, run %+v: want %d to send", plan.Counts, res.Counts, len(width))
	}
	if res.Counts.OverLimit != 1 || res.Counts.BadCount != 1 || res.Counts.Truncated != 0 || res.Counts.AlreadySent != 0 {
		t.Errorf("counts %+v: want 1 over the limit, 1 bad header", res.Counts)
	}
	got := readInput(t, f.cfg, pipeline.DefaultInput)
	if want := append([]string(nil), width...); !equalSorted(ids(got), want) {
		t.Fatalf("input holds %v, want exactly the wrong_width records %v", ids(got), want)
	}
	for id, ss := range got {
		w := f.byID[id]
		wantRedrives := "1"
		if id == once {
			wantRedrives = "2"
		}
		if len(ss) != 1 || ss[0].key != "key-"+id || ss[0].partition != w.source || ss[0].redrives != wantRedrives {
			t.Errorf("%s sent as %+v, want once, key key-%s, partition %d, redrives %s", id, ss, id, w.source, wantRedrives)
		}
	}
	for _, id := range []string{over, garbled} {
		if _, ok := got[id]; ok {
			t.Errorf("%s (redrives %q) was sent", id, f.byID[id].redrives)
		}
	}

	// The same replay again: nothing new, nothing twice.
	plan, res = replay(t, f.cfg, ReplaySpec{DLQ: pipeline.DefaultDLQ, To: pipeline.DefaultInput, Reasons: []string{pipeline.ReasonWrongWidth}})
	if res.Counts.Send != 0 || plan.Counts.Send != 0 {
		t.Fatalf("second run sent %+v, want nothing", res.Counts)
	}
	for _, rg := range plan.Partitions {
		if !rg.Resumed || rg.From != rg.To {
			t.Errorf("second run reads %+v, want it to resume at the end", rg)
		}
	}
	// New dead letters of the reason arrive: a rerun sends only those.
	late := f.add(pipeline.ReasonWrongWidth, 3, "", false)
	_, res = replay(t, f.cfg, ReplaySpec{DLQ: pipeline.DefaultDLQ, To: pipeline.DefaultInput, Reasons: []string{pipeline.ReasonWrongWidth}})
	if res.Counts.Send != 1 {
		t.Fatalf("rerun after a new dead letter sent %+v, want 1", res.Counts)
	}
	width = append(width, late)

	// Every reason: the rest, none of what the first replay sent.
	plan, res = replay(t, f.cfg, ReplaySpec{DLQ: pipeline.DefaultDLQ, To: pipeline.DefaultInput})
	if len(plan.Earlier) != 1 || plan.Earlier[0].By != "tester@host" {
		t.Errorf("earlier replays %+v, want the wrong_width one, by tester@host", plan.Earlier)
	}
	if res.Counts.Send != int64(len(other)) || res.Counts.AlreadySent != int64(len(width)) || res.Counts.Truncated != 1 || res.Counts.OverLimit != 1 {
		t.Errorf("every reason: %+v, want %d sent, %d already sent, 1 truncated, 1 over the limit", res.Counts, len(other), len(width))
	}
	got = readInput(t, f.cfg, pipeline.DefaultInput)
	if want := append(append([]string(nil), width...), other...); !equalSorted(ids(got), want) {
		t.Fatalf("input holds %v, want %v", ids(got), want)
	}
	for id, ss := range got {
		if len(ss) != 1 {
			t.Errorf("%s sent %d times", id, len(ss))
		}
	}
	if _, ok := got[cut]; ok {
		t.Errorf("the truncated copy %s was sent", cut)
	}
	// A record without a source goes by key hash, still once.
	if ss := got[unknown]; len(ss) != 1 || ss[0].redrives != "1" {
		t.Errorf("headerless dead letter sent as %+v", ss)
	}
}

func equalSorted(a, b []string) bool {
	a, b = append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(a)
	sort.Strings(b)
	return strings.Join(a, ",") == strings.Join(b, ",")
}

// TestReplayDryRunChangesNothing: a plan reads and counts, lists each
// record it would send, and writes nothing: no record, no group.
func TestReplayDryRunChangesNothing(t *testing.T) {
	f := newDLQFixture(t)
	for i := range 9 {
		f.add(pipeline.ReasonNonFinite, int32(i), "", false)
	}
	f.add(pipeline.ReasonNonFinite, 1, "3", false)
	ctx := context.Background()
	spec := ReplaySpec{DLQ: pipeline.DefaultDLQ, To: pipeline.DefaultInput, SourcePartitions: []int32{1, 2, 3}, Since: f.base.Add(2 * time.Second)}
	r, err := NewReplayer(ctx, f.cfg, spec, "tester@host")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var items []ReplayItem
	plan, err := r.Plan(ctx, func(it ReplayItem) { items = append(items, it) })
	if err != nil {
		t.Fatal(err)
	}
	// Source partitions 1, 2, 3 from the third record on: r002, r003; r001
	// is before --since, r009 over the limit.
	if plan.Counts.Send != 2 || len(items) != 2 || plan.Counts.OverLimit != 1 {
		t.Fatalf("plan %+v, items %d", plan.Counts, len(items))
	}
	for _, it := range items {
		if it.Topic != pipeline.DefaultInput || it.Partition != it.Record.Letter.Partition || it.Redrives != 1 {
			t.Errorf("item %+v", it)
		}
	}
	if got := readInput(t, f.cfg, pipeline.DefaultInput); len(got) != 0 {
		t.Errorf("a plan wrote %v to the input", ids(got))
	}
	gs, err := r.admin.Groups()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gs {
		if strings.HasPrefix(g, ReplayGroupPrefix) {
			t.Errorf("a plan created group %s", g)
		}
	}
}

// TestReplayResumes: a run interrupted mid-way (its context ends) commits
// what it sent with its progress; a run killed with a transaction open
// leaves records nobody reading committed sees, and the next run aborts
// them. Either way the next run sends the rest, every record once.
func TestReplayResumes(t *testing.T) {
	f := newDLQFixture(t)
	var all []string
	for i := range 60 {
		all = append(all, f.add(pipeline.ReasonMissingFeatures, int32(i%12), "", false))
	}
	spec := ReplaySpec{DLQ: pipeline.DefaultDLQ, To: pipeline.DefaultInput}
	ctx, cancel := context.WithCancel(context.Background())
	r, err := NewReplayer(ctx, f.cfg, spec, "tester@host")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := r.Plan(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var progress []ReplayProgress
	res, err := r.Run(ctx, plan, 20, func(p ReplayProgress) {
		progress = append(progress, p)
		if p.Sent >= 15 {
			cancel()
		}
	})
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Counts.Send >= 60 || res.Counts.Send < 15 {
		t.Fatalf("interrupted run: %+v interrupted=%v", res.Counts, res.Interrupted)
	}
	if p := progress[len(progress)-1]; p.Total != 60 || p.Rate() <= 0 || p.ETA() <= 0 {
		t.Errorf("progress %+v rate %.1f eta %v", p, p.Rate(), p.ETA())
	}
	first := res.Counts.Send
	if got := readInput(t, f.cfg, pipeline.DefaultInput); int64(len(got)) != first {
		t.Fatalf("input holds %d records after the interrupted run, which reported %d", len(got), first)
	}

	// A killed run: a transaction of this DLQ's replays left open with
	// records in it.
	sc, _ := f.cfg.Sarama()
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	sc.Producer.Transaction.ID = ReplayTxnID(pipeline.DefaultDLQ)
	zombie, err := sarama.NewSyncProducer(f.cfg.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer zombie.Close()
	if err := zombie.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	for _, id := range all[50:] {
		if _, _, err := zombie.SendMessage(&sarama.ProducerMessage{Topic: pipeline.DefaultInput, Partition: 0, Value: sarama.StringEncoder(`{"id":"` + id + `","features":[1]}`)}); err != nil {
			t.Fatal(err)
		}
	}

	_, res = replay(t, f.cfg, spec)
	if res.Counts.Send != 60-first {
		t.Errorf("resumed run sent %d, want the %d left", res.Counts.Send, 60-first)
	}
	got := readInput(t, f.cfg, pipeline.DefaultInput)
	if !equalSorted(ids(got), all) {
		t.Fatalf("input holds %v, want all 60", ids(got))
	}
	for id, ss := range got {
		if len(ss) != 1 {
			t.Errorf("%s read %d times: %+v", id, len(ss), ss)
		}
	}
	// The zombie was fenced: it cannot commit its records now.
	if err := zombie.CommitTxn(); err == nil {
		t.Error("the killed run's producer committed after the next run started")
	}
}

// TestReplayErrorsNameTheFix: a target topic or a DLQ that does not exist.
func TestReplayErrorsNameTheFix(t *testing.T) {
	f := newDLQFixture(t)
	f.add(pipeline.ReasonBadID, 0, "", false)
	ctx := context.Background()
	r, err := NewReplayer(ctx, f.cfg, ReplaySpec{DLQ: pipeline.DefaultDLQ, To: "ai_inptu"}, "t@h")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Plan(ctx, nil); err == nil || !strings.Contains(err.Error(), `"ai_inptu" does not exist`) || !strings.Contains(err.Error(), "--to") {
		t.Errorf("unknown target: %v", err)
	}
	r2, err := NewReplayer(ctx, f.cfg, ReplaySpec{DLQ: "no.dlq", To: pipeline.DefaultInput}, "t@h")
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if _, err := r2.Plan(ctx, nil); err == nil || !strings.Contains(err.Error(), "--dlq") {
		t.Errorf("unknown DLQ: %v", err)
	}
	if _, err := NewReplayer(ctx, f.cfg, ReplaySpec{DLQ: pipeline.DefaultDLQ, To: pipeline.DefaultDLQ}, "t@h"); err == nil {
		t.Error("a replay into the DLQ itself was accepted")
	}
}

// TestDLQStatsAndRecords: list's groups and show's records over the
// whole topic.
func TestDLQStatsAndRecords(t *testing.T) {
	f := newDLQFixture(t)
	for i := range 5 {
		f.add(pipeline.ReasonWrongWidth, int32(i), "", false)
	}
	f.add(pipeline.ReasonWrongWidth, 9, "3", false)
	f.add(pipeline.ReasonInvalidJSON, 4, "1", false)
	f.add(pipeline.ReasonUnknown, 0, "", false)
	r, err := NewDLQReader(f.cfg, pipeline.DefaultDLQ)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st, err := r.Stats(context.Background(), pipeline.DefaultMaxRedrives)
	if err != nil {
		t.Fatal(err)
	}
	if st.Total != 8 || len(st.Reasons) != 3 {
		t.Fatalf("stats %+v", st)
	}
	w := st.Reasons[0]
	if w.Reason != pipeline.ReasonWrongWidth || w.Count != 6 || w.OverLimit != 1 || w.Redriven != 1 ||
		fmt.Sprint(w.SourcePartitions) != "[0 1 2 3 4 9]" || !w.First.Equal(f.base) || !w.Last.Equal(f.base.Add(5*time.Second)) {
		t.Errorf("wrong_width %+v", w)
	}
	if u := st.Reasons[2]; u.Reason != pipeline.ReasonUnknown || u.NoSource != 1 || len(u.SourcePartitions) != 0 {
		t.Errorf("unknown %+v", u)
	}
	recs, err := r.Records(context.Background(), func(rec DLQRecord) bool { return rec.Letter.Reason == pipeline.ReasonWrongWidth }, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("%d records, want the newest 3", len(recs))
	}
	for i, want := range []string{"r005", "r004", "r003"} {
		if !strings.Contains(string(recs[i].Value), want) || string(recs[i].Key) != "key-"+want {
			t.Errorf("record %d: %s %s, want %s", i, recs[i].Key, recs[i].Value, want)
		}
	}
	if recs[0].Redrives != 3 || len(recs[0].Headers) < 3 {
		t.Errorf("newest %+v", recs[0])
	}
}

// BenchmarkReplay is one replay of 20,000 dead letters of 200 B to the
// input, as fast as the broker takes them: transactions of up to 1000
// records with their offsets.
func BenchmarkReplay(b *testing.B) {
	br := startTestBroker(b, func(c *BrokerConfig) { c.Ephemeral = true })
	cfg := br.ClientConfig()
	sc, _ := cfg.Sarama()
	sc.Producer.Return.Successes = true
	prod, err := sarama.NewSyncProducer(cfg.Brokers, sc)
	if err != nil {
		b.Fatal(err)
	}
	const n = 20000
	hs := pipeline.DeadLetterHeaders(&pipeline.RecordError{Reason: pipeline.ReasonWrongWidth}, pipeline.DefaultInput, 1, 2, 3, nil)
	var msgs []*sarama.ProducerMessage
	for i := range n {
		m := &sarama.ProducerMessage{Topic: pipeline.DefaultDLQ, Key: sarama.StringEncoder(fmt.Sprint("k", i)), Value: sarama.StringEncoder(strings.Repeat("v", 200))}
		for _, h := range hs {
			m.Headers = append(m.Headers, sarama.RecordHeader{Key: h.Key, Value: h.Value})
		}
		msgs = append(msgs, m)
	}
	if err := prod.SendMessages(msgs); err != nil {
		b.Fatal(err)
	}
	prod.Close()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// A new target each round: an earlier replay's records count as
		// sent only to the topic it sent them to.
		to := fmt.Sprint("bench_in_", i)
		if err := br.Cluster().CreateTopic(to, pipeline.InputPartitions, nil); err != nil {
			b.Fatal(err)
		}
		spec := ReplaySpec{DLQ: pipeline.DefaultDLQ, To: to}
		r, err := NewReplayer(ctx, cfg, spec, "bench@host")
		if err != nil {
			b.Fatal(err)
		}
		plan, err := r.Plan(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		res, err := r.Run(ctx, plan, 0, nil)
		r.Close()
		if err != nil || res.Counts.Send != n {
			b.Fatalf("%+v %v", res.Counts, err)
		}
		b.ReportMetric(float64(res.Counts.Send)/res.Elapsed.Seconds(), "records/s")
	}
}
