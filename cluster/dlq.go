package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/pipeline"
)

// DLQTail is the newest dead letters of a dead-letter topic, read from the
// topic itself: right whichever process (this console, a headless worker,
// another tool) wrote them.
type DLQTail struct {
	Time  time.Time
	Topic string
	// Records are the newest dead letters of each partition (at most the
	// perPartition asked for), newest first by record timestamp. A record
	// without an inferops-error header has Reason "unknown"; without an
	// inferops-source header its Topic is "" and Partition and Offset -1.
	Records []pipeline.DeadLetter
	// Reasons counts Records by reason, most frequent first: the reasons
	// of what was read, not of the whole topic.
	Reasons    []pipeline.ReasonCount
	Partitions []DLQPartition // by partition number
	// Total is the records the topic holds: high watermark - log start
	// summed over its partitions (Kafka keeps no cheaper count).
	Total int64
}

// DLQPartition is one partition of the dead-letter topic.
type DLQPartition struct {
	Partition     int32
	LogStart      int64
	HighWatermark int64
	Read          int // of its records in DLQTail.Records
}

// Bounds of one Tail: what a console refreshing every few seconds may
// spend. One Fetch per partition leader per round, each at most
// dlqFetchBytes (dlqPartitionBytes per partition; a broker still returns
// one whole batch larger than that, so message.max.bytes is the true
// bound), and a few rounds for tails that span more batches than one
// round returns. What is kept is perPartition small records per
// partition, whatever the fetches held.
const (
	dlqPartitionBytes = 256 << 10
	dlqFetchBytes     = 1 << 20
	dlqRounds         = 4
	// MaxDLQTail caps perPartition: the records kept are small (a preview
	// of the value), but a tail is for reading, not for exporting a topic.
	MaxDLQTail = 1000
	// Header values from outside are cut to these lengths.
	dlqReasonMax = 64
	dlqDetailMax = 512
)

// DLQReader reads the tail of a dead-letter topic on demand over one
// client kept open between calls (the console calls Tail every few
// seconds; `inferops dlq` once). Tails do not overlap: a call waits for
// the one in flight.
type DLQReader struct {
	cfg    Config
	topic  string
	client sarama.Client
	sem    chan struct{}

	// Guarded by sem.
	lastMeta time.Time
	needMeta bool
}

// NewDLQReader connects to the cluster; an unreachable one fails here,
// explained. A topic that does not exist yet is an error of Tail.
func NewDLQReader(cfg Config, topic string) (*DLQReader, error) {
	cfg.SetDefaults()
	if topic == "" {
		return nil, errors.New("no dead-letter topic to read (set --dlq)")
	}
	sc, err := cfg.Sarama()
	if err != nil {
		return nil, err
	}
	sc.Metadata.Full = false // only the DLQ topic's, when we ask
	sc.Metadata.RefreshFrequency = 0
	client, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		return nil, cfg.Explain(err)
	}
	return &DLQReader{cfg: cfg, topic: topic, client: client, sem: make(chan struct{}, 1), needMeta: true}, nil
}

// Close releases the connections. A Tail in flight finishes first.
func (r *DLQReader) Close() error {
	r.sem <- struct{}{}
	defer func() { <-r.sem }()
	return r.client.Close()
}

// Tail reads up to perPartition of the newest records of every partition
// (at most MaxDLQTail) and the topic's size. ctx bounds the call; without
// a deadline it gets the config's dial + request timeout.
func (r *DLQReader) Tail(ctx context.Context, perPartition int) (*DLQTail, error) {
	perPartition = min(max(perPartition, 1), MaxDLQTail)
	if err := r.lock(ctx); err != nil {
		return nil, err
	}
	defer r.unlock()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.cfg.DialTimeout+r.cfg.RequestTimeout)
		defer cancel()
	}
	if r.needMeta || time.Since(r.lastMeta) >= 30*time.Second {
		if err := r.client.RefreshMetadata(r.topic); err != nil {
			return nil, r.topicErr(err)
		}
		r.lastMeta, r.needMeta = time.Now(), false
	}
	parts, err := r.client.Partitions(r.topic)
	if err != nil {
		return nil, r.topicErr(err)
	}
	byLeader := map[int32][]int32{}
	leaders := map[int32]*sarama.Broker{}
	for _, p := range parts {
		b, err := r.client.Leader(r.topic, p)
		if err != nil {
			r.needMeta = true
			return nil, r.cfg.Explain(fmt.Errorf("leader of %s/%d: %w", r.topic, p, err))
		}
		byLeader[b.ID()] = append(byLeader[b.ID()], p)
		leaders[b.ID()] = b
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
		out  = &DLQTail{Topic: r.topic, Partitions: make([]DLQPartition, 0, len(parts)), Records: []pipeline.DeadLetter{}, Reasons: []pipeline.ReasonCount{}}
	)
	for id, ps := range byLeader {
		b := leaders[id]
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, recs, err := r.tailLeader(ctx, b, ps, perPartition)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			out.Partitions = append(out.Partitions, got...)
			out.Records = append(out.Records, recs...)
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		r.needMeta = true
		return nil, r.cfg.Explain(joinErrs(errs))
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read the tail of %s: %w", r.topic, err)
	}
	out.Time = time.Now()
	sort.Slice(out.Partitions, func(i, j int) bool { return out.Partitions[i].Partition < out.Partitions[j].Partition })
	for _, p := range out.Partitions {
		out.Total += max(p.HighWatermark-p.LogStart, 0)
	}
	sort.SliceStable(out.Records, func(i, j int) bool { return out.Records[i].Time.After(out.Records[j].Time) })
	out.Reasons = countReasons(out.Records)
	return out, nil
}

// lock waits for the call in flight (or ctx); unlock ends ours.
func (r *DLQReader) lock(ctx context.Context) error {
	select {
	case r.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *DLQReader) unlock() { <-r.sem }

func (r *DLQReader) topicErr(err error) error {
	if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return fmt.Errorf("dead-letter topic %q does not exist on %s (check --dlq; the worker creates it with the pipeline's topics)", r.topic, joinAddrs(r.cfg.Brokers))
	}
	return r.cfg.Explain(fmt.Errorf("metadata for topic %s: %w", r.topic, err))
}

// tailLeader reads the offsets and the tails of the partitions b leads.
func (r *DLQReader) tailLeader(ctx context.Context, b *sarama.Broker, ps []int32, perPartition int) ([]DLQPartition, []pipeline.DeadLetter, error) {
	offsets := func(at int64) (map[int32]int64, error) {
		req := sarama.NewOffsetRequest(r.client.Config().Version)
		for _, p := range ps {
			req.AddBlock(r.topic, p, at, 1)
		}
		resp, err := b.GetAvailableOffsets(req)
		if err != nil {
			_ = b.Close()
			return nil, fmt.Errorf("list offsets of %s from broker %d (%s): %w", r.topic, b.ID(), b.Addr(), err)
		}
		out := make(map[int32]int64, len(ps))
		for _, p := range ps {
			blk := resp.GetBlock(r.topic, p)
			if blk == nil || !errors.Is(blk.Err, sarama.ErrNoError) {
				err := sarama.ErrIncompleteResponse
				if blk != nil {
					err = blk.Err
				}
				return nil, fmt.Errorf("offsets of %s/%d: %w", r.topic, p, err)
			}
			off := blk.Offset
			if req.Version == 0 && len(blk.Offsets) > 0 {
				off = blk.Offsets[0]
			}
			out[p] = off
		}
		return out, nil
	}
	newest, err := offsets(sarama.OffsetNewest)
	if err != nil {
		return nil, nil, err
	}
	oldest, err := offsets(sarama.OffsetOldest)
	if err != nil {
		return nil, nil, err
	}
	next := map[int32]int64{}
	parts := make([]DLQPartition, 0, len(ps))
	for _, p := range ps {
		parts = append(parts, DLQPartition{Partition: p, LogStart: oldest[p], HighWatermark: newest[p]})
		if start := max(oldest[p], newest[p]-int64(perPartition)); start < newest[p] {
			next[p] = start
		}
	}
	var recs []pipeline.DeadLetter
	read := map[int32]int{}
	// A broker returns a batch larger than the per-partition limit only
	// for the first non-empty partition of a response, and stops filling
	// a response at its size limit, so with large batches each round may
	// move only one partition on: allow a round per partition on top, and
	// stop when a whole round moved nowhere (a gap in the offsets, or
	// only a truncated batch to be had).
	for round := 0; round < dlqRounds+len(ps) && len(next) > 0 && ctx.Err() == nil; round++ {
		req := &sarama.FetchRequest{Version: fetchVersion(r.client.Config().Version), MaxWaitTime: 0, MinBytes: 1, MaxBytes: dlqFetchBytes, Isolation: sarama.ReadUncommitted}
		for p, o := range next {
			req.AddBlock(r.topic, p, o, dlqPartitionBytes, -1)
		}
		resp, err := b.Fetch(req)
		if err != nil {
			_ = b.Close()
			return nil, nil, fmt.Errorf("fetch the tail of %s from broker %d (%s): %w", r.topic, b.ID(), b.Addr(), err)
		}
		moved := false
		for p, from := range next {
			got, to := deadLettersIn(resp.GetBlock(r.topic, p), from, newest[p])
			recs = append(recs, got...)
			read[p] += len(got)
			moved = moved || to > from
			if to >= newest[p] {
				delete(next, p)
			} else {
				next[p] = to
			}
		}
		if !moved {
			break
		}
	}
	for i := range parts {
		parts[i].Read = read[parts[i].Partition]
	}
	return parts, recs, nil
}

// deadLettersIn decodes the records of blk at offsets [from, until) and
// returns them with the offset after the last one it saw (records and
// control batches both move it on).
func deadLettersIn(blk *sarama.FetchResponseBlock, from, until int64) ([]pipeline.DeadLetter, int64) {
	next := from
	if blk == nil || !errors.Is(blk.Err, sarama.ErrNoError) {
		return nil, next
	}
	var out []pipeline.DeadLetter
	for _, rs := range blk.RecordsSet {
		// Message sets of format v0/v1 carry no headers; a DLQ written by
		// a Kafka >= 0.11 client has none of them, so they are skipped.
		if rs == nil || rs.RecordBatch == nil {
			continue
		}
		rb := rs.RecordBatch
		if rb.Control {
			next = max(next, rb.FirstOffset+int64(rb.LastOffsetDelta)+1)
			continue
		}
		for _, rec := range rb.Records {
			off := rb.FirstOffset + rec.OffsetDelta
			if off < from || off >= until {
				continue
			}
			ts := batchRecordTime(rb, rec)
			out = append(out, deadLetterOf(ts, rec.Value, rec.Headers))
			next = max(next, off+1)
		}
	}
	return out, next
}

// deadLetterOf reads one dead-letter record. Anyone may write to the topic,
// so every header is optional, bounded and made printable UTF-8.
func deadLetterOf(ts time.Time, value []byte, headers []*sarama.RecordHeader) pipeline.DeadLetter {
	d := pipeline.DeadLetter{Time: ts, Reason: pipeline.ReasonUnknown, Partition: -1, Offset: -1}
	for _, h := range headers {
		if h == nil {
			continue
		}
		switch string(h.Key) {
		case pipeline.HeaderError:
			if v := headerText(h.Value, dlqReasonMax); v != "" {
				d.Reason = v
			}
		case pipeline.HeaderErrorDetail:
			d.Detail = headerText(h.Value, dlqDetailMax)
		case pipeline.HeaderSource:
			if topic, p, o, ok := pipeline.ParseSource(h.Value); ok {
				d.Topic, d.Partition, d.Offset = headerText([]byte(topic), 249), p, o // 249: Kafka's longest topic name
			}
		}
	}
	d.Preview = append([]byte(nil), value[:min(len(value), pipeline.PreviewBytes)]...)
	return d
}

// headerText is a header value as one line of valid UTF-8, cut to at most
// n bytes (a rune cut in two becomes "?"), control characters replaced (they would move a terminal's
// cursor), surrounding space trimmed.
func headerText(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// countReasons is the reason counts over recs, most frequent first, then by
// name.
func countReasons(recs []pipeline.DeadLetter) []pipeline.ReasonCount {
	n := map[string]int64{}
	for _, d := range recs {
		n[d.Reason]++
	}
	out := make([]pipeline.ReasonCount, 0, len(n))
	for r, c := range n {
		out = append(out, pipeline.ReasonCount{Reason: r, Count: c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Reason < out[j].Reason
	})
	return out
}
