package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
)

// kafkaClient is how the test's own clients reach the broker: directly,
// even when the broker advertises a proxy the worker goes through
// (redirect maps the advertised address to the listener).
type kafkaClient struct {
	bootstrap string
	redirect  map[string]string
}

func (k kafkaClient) sarama(t testing.TB) *sarama.Config {
	t.Helper()
	sc, err := cluster.Config{Brokers: []string{k.bootstrap}}.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	if len(k.redirect) > 0 {
		sc.Net.Proxy.Enable = true
		sc.Net.Proxy.Dialer = redirectDialer(k.redirect)
	}
	return sc
}

type redirectDialer map[string]string

func (r redirectDialer) Dial(network, addr string) (net.Conn, error) {
	if to, ok := r[addr]; ok {
		addr = to
	}
	return net.DialTimeout(network, addr, 5*time.Second)
}

// signature asks the model server for my_model's serving signature.
func signature(t testing.TB, grpcAddr string) tfserving.Signature {
	t.Helper()
	c, err := tfserving.Dial(tfserving.Config{Address: grpcAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	md, err := c.Metadata(ctx, pipeline.DefaultModel, tfserving.Target{})
	if err != nil {
		t.Fatalf("model metadata: %v", err)
	}
	sig, err := md.ServingDefault()
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// featureWidth is my_model's one input's width: records are
// {"id": ..., "features": [width floats]}.
func featureWidth(t testing.TB, grpcAddr string) int {
	t.Helper()
	in := signature(t, grpcAddr).InputSpecs()
	if len(in) != 1 || in[0].Name != pipeline.FieldFeatures || len(in[0].Shape) != 2 || in[0].Shape[1] <= 0 {
		t.Fatalf("my_model's signature %+v: want one [-1, D] %q input", in, pipeline.FieldFeatures)
	}
	return int(in[0].Shape[1])
}

// malformed are the ways the 1% of bad input is bad; each keeps its id in
// the key so the DLQ entry can be matched to it.
var malformed = []func(id string) string{
	func(id string) string { return `{"id":"` + id + `","features":[1,2` },
	func(id string) string { return `{"id":"` + id + `"}` },
	func(id string) string { return `{"id":"` + id + `","features":[1,NaN]}` },
	func(id string) string { return `{"id":"` + id + `","features":[1]}` },
	func(id string) string { return `not json at all ` + id },
	func(id string) string { return `{"id":"` + id + `","features":["x"]}` },
}

// isBad is whether record n of a feed is one of the malformed 1%.
func isBad(n int) bool { return n%100 == 99 }

// feeder produces records "<prefix>-<n>" to ai_input: first a backlog, then
// a steady rate until stopped. A record counts as sent only once Kafka acked
// it; a send that fails (the broker is down) is retried until it is acked
// or the feeder stops.
type feeder struct {
	t      testing.TB
	prefix string
	width  int
	prod   sarama.SyncProducer
	next   int
	sent   atomic.Int64
	failed atomic.Int64
	stopCh chan struct{}
	done   chan struct{}
}

func newFeeder(t testing.TB, k kafkaClient, prefix string, width int) *feeder {
	t.Helper()
	sc := k.sarama(t)
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Retry.Max = 3
	sc.Producer.Flush.Frequency = 2 * time.Millisecond
	sc.Metadata.Retry.Max = 2
	var prod sarama.SyncProducer
	var err error
	for i := 0; i < 50; i++ {
		if prod, err = sarama.NewSyncProducer([]string{k.bootstrap}, sc); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("test producer: %v", err)
	}
	f := &feeder{t: t, prefix: prefix, width: width, prod: prod, stopCh: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() { f.stop(); _ = prod.Close() })
	return f
}

// value is record n: about 2 KB like the seed's medium records (a pad
// field the worker skips), or one of the malformed kinds.
func (f *feeder) value(n int) (id string, v []byte) {
	id = f.prefix + "-" + strconv.Itoa(n)
	if isBad(n) {
		return id, []byte(malformed[(n/100)%len(malformed)](id))
	}
	b := make([]byte, 0, 2100)
	b = append(b, `{"id":"`...)
	b = append(b, id...)
	b = append(b, `","features":[`...)
	x := uint32(n*2654435761 + 7)
	for j := 0; j < f.width; j++ {
		if j > 0 {
			b = append(b, ',')
		}
		x = x*1664525 + 1013904223
		b = strconv.AppendFloat(b, float64(x>>8)/float64(1<<24), 'f', 5, 32)
	}
	b = append(b, `],"pad":"`...)
	for len(b) < 2040 {
		b = append(b, 'x')
	}
	return id, append(b, `"}`...)
}

// send produces records next..next+n-1, retrying what fails, and returns
// false if the feeder was stopped first.
func (f *feeder) send(n int) bool {
	msgs := make([]*sarama.ProducerMessage, 0, n)
	for i := 0; i < n; i++ {
		id, v := f.value(f.next)
		f.next++
		msgs = append(msgs, &sarama.ProducerMessage{Topic: pipeline.DefaultInput, Key: sarama.StringEncoder(id), Value: sarama.ByteEncoder(v)})
	}
	for len(msgs) > 0 {
		err := f.prod.SendMessages(msgs)
		if err == nil {
			f.sent.Add(int64(len(msgs)))
			return true
		}
		var perrs sarama.ProducerErrors
		if errors.As(err, &perrs) {
			f.sent.Add(int64(len(msgs) - len(perrs)))
			msgs = msgs[:0]
			for _, pe := range perrs {
				msgs = append(msgs, &sarama.ProducerMessage{Topic: pe.Msg.Topic, Key: pe.Msg.Key, Value: pe.Msg.Value})
			}
		}
		f.failed.Add(1)
		select {
		case <-f.stopCh:
			return false
		case <-time.After(200 * time.Millisecond):
		}
	}
	return true
}

// backlog sends n records before anything else happens.
func (f *feeder) backlog(n int) {
	for n > 0 {
		k := min(n, 500)
		f.send(k)
		n -= k
	}
}

// run produces rate records/s in the background until stop.
func (f *feeder) run(rate int) {
	go func() {
		defer close(f.done)
		const tick = 50 * time.Millisecond
		per := max(1, rate*int(tick)/int(time.Second))
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-f.stopCh:
				return
			case <-t.C:
				if !f.send(per) {
					return
				}
			}
		}
	}()
}

func (f *feeder) stop() {
	select {
	case <-f.stopCh:
	default:
		close(f.stopCh)
	}
	select {
	case <-f.done:
	case <-time.After(30 * time.Second):
	}
}

// tally is what the three topics hold for one feed, by id.
type tally struct {
	input   map[string]int // times each id is in ai_input
	results map[string]int
	dead    map[string]int
	bad     map[string]bool // the id's input is malformed
	outTS   []int64         // ai_output record timestamps (unix ms), sorted
	reasons map[string]int  // DLQ reason -> count
	wrong   []string        // results whose body does not match their key
}

// lost is every input id with neither a result nor a dead letter.
func (tl *tally) lost() []string {
	var out []string
	for id := range tl.input {
		if tl.results[id] == 0 && tl.dead[id] == 0 {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// duplicates counts answers beyond one per input record.
func (tl *tally) duplicates() int {
	n := 0
	for id, in := range tl.input {
		if got := tl.results[id] + tl.dead[id]; got > in {
			n += got - in
		}
	}
	return n
}

// firstResultAfter is how long after at the first result was written, or
// -1 when none was.
func (tl *tally) firstResultAfter(at time.Time) time.Duration {
	ms := at.UnixMilli()
	i := sort.Search(len(tl.outTS), func(i int) bool { return tl.outTS[i] > ms })
	if i == len(tl.outTS) {
		return -1
	}
	return time.Duration(tl.outTS[i]-ms) * time.Millisecond
}

// readAll reads ai_input, ai_output and the DLQ from the start, again and
// again, until every input id with prefix is answered or the deadline
// passes. It checks what it reads: results carry the id of their key, a
// malformed input is never answered with a result, a good one never with a
// dead letter.
func readAll(t testing.TB, k kafkaClient, prefix string, wantIn int64, timeout time.Duration) *tally {
	t.Helper()
	sc := k.sarama(t)
	sc.Consumer.Return.Errors = false
	var client sarama.Client
	var err error
	for i := 0; i < 50; i++ {
		if client, err = sarama.NewClient([]string{k.bootstrap}, sc); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("reader: %v", err)
	}
	defer client.Close()
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	tl := &tally{input: map[string]int{}, results: map[string]int{}, dead: map[string]int{}, bad: map[string]bool{}, reasons: map[string]int{}}
	next := map[string]map[int32]int64{}
	deadline := time.Now().Add(timeout)
	pre := prefix + "-"
	for {
		for _, topic := range []string{pipeline.DefaultInput, pipeline.DefaultOutput, pipeline.DefaultDLQ} {
			if next[topic] == nil {
				next[topic] = map[int32]int64{}
			}
			if err := readTopic(client, cons, topic, next[topic], func(m *sarama.ConsumerMessage) {
				id := string(m.Key)
				if !strings.HasPrefix(id, pre) {
					return
				}
				switch topic {
				case pipeline.DefaultInput:
					tl.input[id]++
					if n, err := strconv.Atoi(strings.TrimPrefix(id, pre)); err == nil && isBad(n) {
						tl.bad[id] = true
					}
				case pipeline.DefaultOutput:
					tl.results[id]++
					tl.outTS = append(tl.outTS, m.Timestamp.UnixMilli())
					var r struct {
						ID string `json:"id"`
					}
					if json.Unmarshal(m.Value, &r) != nil || r.ID != id {
						tl.wrong = append(tl.wrong, fmt.Sprintf("%s: %.80s", id, m.Value))
					}
				default:
					tl.dead[id]++
					for _, h := range m.Headers {
						if string(h.Key) == pipeline.HeaderError {
							tl.reasons[string(h.Value)]++
						}
					}
				}
			}); err != nil {
				t.Logf("read %s: %v (retrying)", topic, err)
			}
		}
		if int64(len(tl.input)) >= wantIn && len(tl.lost()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	sort.Slice(tl.outTS, func(i, j int) bool { return tl.outTS[i] < tl.outTS[j] })
	return tl
}

// readTopic reads every partition of topic from next[p] to its current end.
func readTopic(client sarama.Client, cons sarama.Consumer, topic string, next map[int32]int64, fn func(*sarama.ConsumerMessage)) error {
	if err := client.RefreshMetadata(topic); err != nil {
		return err
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		return err
	}
	for _, p := range parts {
		hw, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return err
		}
		from, ok := next[p]
		if !ok {
			if from, err = client.GetOffset(topic, p, sarama.OffsetOldest); err != nil {
				return err
			}
		}
		if from >= hw {
			next[p] = from
			continue
		}
		pc, err := cons.ConsumePartition(topic, p, from)
		if err != nil {
			return err
		}
		timeout := time.After(30 * time.Second)
	read:
		for from < hw {
			select {
			case m := <-pc.Messages():
				fn(m)
				from = m.Offset + 1
			case <-timeout:
				break read
			}
		}
		pc.Close()
		next[p] = from
	}
	return nil
}

// check is the end of every scenario: nothing lost, every answer of the
// right kind, and the figures for the table.
func check(t *testing.T, tl *tally, f *feeder) figure {
	t.Helper()
	if sent := f.sent.Load(); int64(len(tl.input)) < sent {
		t.Errorf("ai_input holds %d of the %d ids Kafka acked to the test producer", len(tl.input), sent)
	}
	if lost := tl.lost(); len(lost) > 0 {
		t.Errorf("%d of %d inputs have neither a result nor a dead letter, e.g. %v", len(lost), len(tl.input), lost[:min(10, len(lost))])
	}
	if len(tl.wrong) > 0 {
		t.Errorf("%d results do not carry their input's id, e.g. %v", len(tl.wrong), tl.wrong[:min(5, len(tl.wrong))])
	}
	var results, dead, badOK int
	for id := range tl.input {
		switch {
		case tl.bad[id] && tl.results[id] > 0:
			t.Errorf("malformed input %s got a result", id)
		case !tl.bad[id] && tl.dead[id] > 0:
			t.Errorf("good input %s went to the DLQ", id)
		}
		if tl.results[id] > 0 {
			results++
		}
		if tl.dead[id] > 0 {
			dead++
			if tl.bad[id] {
				badOK++
			}
		}
	}
	if len(tl.bad) == 0 || badOK != len(tl.bad) {
		t.Errorf("%d malformed inputs, %d of them in the DLQ", len(tl.bad), badOK)
	}
	return figure{In: len(tl.input), Results: results, DeadLetter: dead, Lost: len(tl.lost()), Duplicates: tl.duplicates()}
}

// watcher follows ai_output from its end while a scenario runs, so the
// scenario can wait for the pipeline to produce again after a fault.
type watcher struct {
	latest atomic.Int64 // newest result timestamp seen, unix ms
	cancel context.CancelFunc
}

func watch(t testing.TB, k kafkaClient) *watcher {
	t.Helper()
	sc := k.sarama(t)
	sc.Consumer.Offsets.Initial = sarama.OffsetNewest
	sc.Consumer.Return.Errors = false
	sc.Metadata.Retry.Max = 5
	var cons sarama.Consumer
	var err error
	for i := 0; i < 50; i++ {
		if cons, err = sarama.NewConsumer([]string{k.bootstrap}, sc); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("watcher: %v", err)
	}
	parts, err := cons.Partitions(pipeline.DefaultOutput)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{cancel: cancel}
	var wg sync.WaitGroup
	for _, p := range parts {
		pc, err := cons.ConsumePartition(pipeline.DefaultOutput, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.Close()
			for {
				select {
				case <-ctx.Done():
					return
				case m, ok := <-pc.Messages():
					if !ok {
						return
					}
					ts := m.Timestamp.UnixMilli()
					for {
						cur := w.latest.Load()
						if ts <= cur || w.latest.CompareAndSwap(cur, ts) {
							break
						}
					}
				}
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait(); cons.Close() })
	return w
}

// waitResult waits for a result written after at and returns how long
// after at that was (from the watcher's clock), failing after timeout.
func (w *watcher) waitResult(t testing.TB, at time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if l := w.latest.Load(); l > at.UnixMilli() {
			return time.Duration(l-at.UnixMilli()) * time.Millisecond
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no result written within %v after %s", timeout, at.Format("15:04:05.000"))
	return 0
}

// totalIn is how many input records (of the feed) ai_input holds.
func (tl *tally) totalIn() int {
	n := 0
	for _, c := range tl.input {
		n += c
	}
	return n
}
