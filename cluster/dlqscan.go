package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/pipeline"
)

// DLQRecord is one record of the dead-letter topic read whole: where it
// sits in the DLQ, its key and value as the worker copied them, its
// headers, and the dead letter they describe. `inferops dlq` lists, shows
// and replays these.
type DLQRecord struct {
	Partition int32 // of the DLQ
	Offset    int64 // of the DLQ
	Key       []byte
	Value     []byte
	Headers   []pipeline.Header
	// Letter is the record as every reader sees it: the reason, detail and
	// source from its headers (bounded and printable), its time.
	Letter pipeline.DeadLetter
	// Redrives is how often the record was already sent back from the DLQ
	// (its inferops-redrives header, 0 without one), -1 when the header is
	// there but does not parse.
	Redrives int
	// Truncated is set when the value is a cut copy (inferops-truncated):
	// replaying it would send a record that is not the original.
	Truncated bool
}

// dlqRecordOf reads one DLQ record. Anyone may write to the topic, so
// every header is optional and bounded (deadLetterOf).
func dlqRecordOf(partition int32, offset int64, ts time.Time, key, value []byte, headers []*sarama.RecordHeader) DLQRecord {
	r := DLQRecord{Partition: partition, Offset: offset, Key: key, Value: value, Letter: deadLetterOf(ts, value, headers)}
	for _, h := range headers {
		if h == nil {
			continue
		}
		r.Headers = append(r.Headers, pipeline.Header{Key: h.Key, Value: h.Value})
		switch string(h.Key) {
		case pipeline.HeaderRedrives:
			if n, ok := pipeline.ParseRedrives(h.Value); ok {
				r.Redrives = n
			} else {
				r.Redrives = -1
			}
		case pipeline.HeaderTruncated:
			r.Truncated = true
		}
	}
	return r
}

// clone copies what rec keeps of the fetch buffer it was decoded from,
// the value cut to valueBytes, so keeping it does not keep the buffer.
func (rec DLQRecord) clone(valueBytes int) DLQRecord {
	rec.Key = append([]byte(nil), rec.Key...)
	rec.Value = append([]byte(nil), rec.Value[:min(len(rec.Value), valueBytes)]...)
	hs := make([]pipeline.Header, len(rec.Headers))
	for i, h := range rec.Headers {
		hs[i] = pipeline.Header{Key: append([]byte(nil), h.Key...), Value: append([]byte(nil), h.Value...)}
	}
	rec.Headers = hs
	return rec
}

// dlqBounds is one DLQ partition's readable range: from the log start to
// the last stable offset (what a read_committed reader may read; the high
// watermark where no transaction is open).
type dlqBounds struct {
	LogStart, End int64
}

// bounds lists every partition of the DLQ with its readable range.
func (r *DLQReader) bounds(ctx context.Context) (map[int32]dlqBounds, error) {
	if err := r.client.RefreshMetadata(r.topic); err != nil {
		return nil, r.topicErr(err)
	}
	parts, err := r.client.Partitions(r.topic)
	if err != nil {
		return nil, r.topicErr(err)
	}
	out := make(map[int32]dlqBounds, len(parts))
	for _, p := range parts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start, _, err := r.listOffset(p, sarama.OffsetOldest)
		if err != nil {
			return nil, err
		}
		end, _, err := r.listOffset(p, sarama.OffsetNewest)
		if err != nil {
			return nil, err
		}
		out[p] = dlqBounds{LogStart: start, End: end}
	}
	return out, nil
}

// listOffset is ListOffsets for one partition under read_committed: at
// OffsetOldest the log start, at OffsetNewest the last stable offset, at
// a time (Unix ms) the earliest offset whose record time is at or after
// it (-1 when there is none) and that record's time.
func (r *DLQReader) listOffset(p int32, at int64) (int64, int64, error) {
	return listOffset(r.client, r.cfg, r.topic, p, at)
}

// listOffset asks the leader of topic/p for one ListOffsets answer under
// read_committed (see DLQReader.listOffset).
func listOffset(client sarama.Client, cfg Config, topic string, p int32, at int64) (offset, timestamp int64, err error) {
	b, err := client.Leader(topic, p)
	if err != nil {
		return 0, 0, cfg.Explain(fmt.Errorf("leader of %s/%d: %w", topic, p, err))
	}
	req := sarama.NewOffsetRequest(client.Config().Version)
	if req.Version >= 2 {
		req.IsolationLevel = sarama.ReadCommitted
	}
	req.AddBlock(topic, p, at, 1)
	resp, err := b.GetAvailableOffsets(req)
	if err != nil {
		_ = b.Close()
		return 0, 0, cfg.Explain(fmt.Errorf("list offsets of %s/%d from broker %d (%s): %w", topic, p, b.ID(), b.Addr(), err))
	}
	blk := resp.GetBlock(topic, p)
	if blk == nil {
		return 0, 0, fmt.Errorf("list offsets of %s/%d: %w", topic, p, sarama.ErrIncompleteResponse)
	}
	if !errors.Is(blk.Err, sarama.ErrNoError) {
		return 0, 0, fmt.Errorf("list offsets of %s/%d: %w", topic, p, blk.Err)
	}
	if req.Version == 0 {
		if len(blk.Offsets) == 0 {
			return -1, -1, nil
		}
		return blk.Offsets[0], -1, nil
	}
	return blk.Offset, blk.Timestamp, nil
}

// scan reads DLQ partition p from offset from up to (not including) to,
// calling fn with each record in offset order, under read_committed:
// records of aborted transactions and control records are passed over.
// fn returning an error stops the scan with it. It returns the offset
// after the last one it read (to, unless fn stopped it).
func (r *DLQReader) scan(ctx context.Context, p int32, from, to int64, fn func(DLQRecord) error) (int64, error) {
	next := from
	empty := 0
	for next < to {
		if err := ctx.Err(); err != nil {
			return next, err
		}
		b, err := r.client.Leader(r.topic, p)
		if err != nil {
			return next, r.cfg.Explain(fmt.Errorf("leader of %s/%d: %w", r.topic, p, err))
		}
		req := &sarama.FetchRequest{Version: fetchVersion(r.client.Config().Version), MaxWaitTime: 100, MinBytes: 1, MaxBytes: dlqFetchBytes, Isolation: sarama.ReadCommitted}
		req.AddBlock(r.topic, p, next, dlqFetchBytes, -1)
		resp, err := b.Fetch(req)
		if err != nil {
			_ = b.Close()
			return next, r.cfg.Explain(fmt.Errorf("fetch %s/%d at %d from broker %d (%s): %w", r.topic, p, next, b.ID(), b.Addr(), err))
		}
		blk := resp.GetBlock(r.topic, p)
		if blk == nil {
			return next, fmt.Errorf("fetch %s/%d: %w", r.topic, p, sarama.ErrIncompleteResponse)
		}
		if errors.Is(blk.Err, sarama.ErrOffsetOutOfRange) {
			return next, fmt.Errorf("%s/%d: offset %d was deleted by retention while it was being read (run again: the scan starts at the new log start)", r.topic, p, next)
		}
		if !errors.Is(blk.Err, sarama.ErrNoError) {
			return next, r.cfg.Explain(fmt.Errorf("fetch %s/%d at %d: %w", r.topic, p, next, blk.Err))
		}
		moved, err := eachRecord(blk, p, next, to, func(rec DLQRecord) error {
			if err := fn(rec); err != nil {
				return err
			}
			next = rec.Offset + 1
			return nil
		})
		if err != nil {
			return next, err
		}
		if moved > next {
			next = moved
			empty = 0
			continue
		}
		// Nothing at next yet below to: a broker may answer an empty fetch
		// now and then; a partition that stays empty is a gap (records
		// compacted away), which we cannot see past by fetching again.
		if empty++; empty >= 5 {
			return next, fmt.Errorf("%s/%d: no record at offset %d though the partition ends at %d", r.topic, p, next, to)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return next, nil
}

// eachRecord calls fn for the data records of blk at offsets [from, to)
// that a read_committed consumer sees, and returns the offset after the
// last record or control batch it passed (aborted batches included), so
// the caller moves on past them.
func eachRecord(blk *sarama.FetchResponseBlock, p int32, from, to int64, fn func(DLQRecord) error) (int64, error) {
	next := from
	// As the Java consumer and sarama do: a transactional batch is aborted
	// when its producer has an aborted transaction starting at or before
	// it, until that producer's abort marker.
	aborted := append([]*sarama.AbortedTransaction(nil), blk.AbortedTransactions...)
	sort.Slice(aborted, func(i, j int) bool { return aborted[i].FirstOffset < aborted[j].FirstOffset })
	abortedPIDs := map[int64]bool{}
	for _, rs := range blk.RecordsSet {
		if rs == nil {
			continue
		}
		if rs.MsgSet != nil {
			// Format v0/v1 (no headers): read as dead letters without
			// a reason.
			for _, mb := range rs.MsgSet.Messages {
				if mb == nil || mb.Msg == nil || mb.Offset < next || mb.Offset >= to {
					continue
				}
				if err := fn(dlqRecordOf(p, mb.Offset, mb.Msg.Timestamp, mb.Msg.Key, mb.Msg.Value, nil)); err != nil {
					return next, err
				}
				next = mb.Offset + 1
			}
			continue
		}
		rb := rs.RecordBatch
		if rb == nil {
			continue
		}
		last := rb.FirstOffset + int64(rb.LastOffsetDelta)
		for len(aborted) > 0 && aborted[0].FirstOffset <= last {
			abortedPIDs[aborted[0].ProducerID] = true
			aborted = aborted[1:]
		}
		if rb.Control {
			if len(rb.Records) > 0 && isAbortMarker(rb.Records[0].Key) {
				delete(abortedPIDs, rb.ProducerID)
			}
			next = max(next, min(last+1, to))
			continue
		}
		if rb.IsTransactional && abortedPIDs[rb.ProducerID] {
			next = max(next, min(last+1, to))
			continue
		}
		for _, rec := range rb.Records {
			off := rb.FirstOffset + rec.OffsetDelta
			if off < next || off >= to {
				continue
			}
			ts := batchRecordTime(rb, rec)
			if err := fn(dlqRecordOf(p, off, ts, rec.Key, rec.Value, rec.Headers)); err != nil {
				return next, err
			}
			next = off + 1
		}
		// Records compacted out of a batch leave its last offset behind.
		next = max(next, min(last+1, to))
	}
	return next, nil
}

// isAbortMarker reads a control record's key: version (int16), type
// (int16; 0 abort, 1 commit).
func isAbortMarker(key []byte) bool {
	return len(key) >= 4 && binary.BigEndian.Uint16(key[2:4]) == 0
}

// DLQReasonStats is one reason of `inferops dlq list`: how many dead
// letters the topic holds for it, their time span and where they came from.
type DLQReasonStats struct {
	Reason string    `json:"reason"`
	Count  int64     `json:"count"`
	First  time.Time `json:"first"`
	Last   time.Time `json:"last"`
	// SourcePartitions are the input partitions the records came from
	// (their inferops-source), sorted; records without a source are
	// counted in NoSource.
	SourcePartitions []int32 `json:"source_partitions"`
	NoSource         int64   `json:"no_source"`
	// Redriven counts records already sent back at least once (and dead
	// again); OverLimit those at --max-redrives or more, which a replay
	// leaves where they are.
	Redriven  int64 `json:"redriven"`
	OverLimit int64 `json:"over_limit"`
	Truncated int64 `json:"truncated"`
}

// DLQStats is the whole dead-letter topic read once, by reason.
type DLQStats struct {
	Topic      string           `json:"topic"`
	Time       time.Time        `json:"time"`
	Total      int64            `json:"total"` // records read
	Reasons    []DLQReasonStats `json:"reasons"`
	Partitions []DLQPartition   `json:"partitions"`
}

// Stats reads the whole topic and groups it by reason. maxRedrives says
// which records count as over the limit (pipeline.DefaultMaxRedrives for
// the replay's default).
func (r *DLQReader) Stats(ctx context.Context, maxRedrives int) (*DLQStats, error) {
	if err := r.lock(ctx); err != nil {
		return nil, err
	}
	defer r.unlock()
	bs, err := r.bounds(ctx)
	if err != nil {
		return nil, err
	}
	type agg struct {
		DLQReasonStats
		src map[int32]bool
	}
	by := map[string]*agg{}
	out := &DLQStats{Topic: r.topic, Reasons: []DLQReasonStats{}, Partitions: []DLQPartition{}}
	for _, p := range sortedPartitions(bs) {
		b := bs[p]
		read := 0
		_, err := r.scan(ctx, p, b.LogStart, b.End, func(rec DLQRecord) error {
			read++
			a := by[rec.Letter.Reason]
			if a == nil {
				a = &agg{DLQReasonStats: DLQReasonStats{Reason: rec.Letter.Reason, First: rec.Letter.Time, Last: rec.Letter.Time}, src: map[int32]bool{}}
				by[rec.Letter.Reason] = a
			}
			a.Count++
			if rec.Letter.Time.Before(a.First) {
				a.First = rec.Letter.Time
			}
			if rec.Letter.Time.After(a.Last) {
				a.Last = rec.Letter.Time
			}
			if rec.Letter.Partition >= 0 {
				a.src[rec.Letter.Partition] = true
			} else {
				a.NoSource++
			}
			if rec.Redrives != 0 {
				a.Redriven++
			}
			if rec.Redrives < 0 || rec.Redrives >= maxRedrives {
				a.OverLimit++
			}
			if rec.Truncated {
				a.Truncated++
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		out.Partitions = append(out.Partitions, DLQPartition{Partition: p, LogStart: b.LogStart, HighWatermark: b.End, Read: read})
		out.Total += int64(read)
	}
	for _, a := range by {
		s := a.DLQReasonStats
		s.SourcePartitions = make([]int32, 0, len(a.src))
		for p := range a.src {
			s.SourcePartitions = append(s.SourcePartitions, p)
		}
		sort.Slice(s.SourcePartitions, func(i, j int) bool { return s.SourcePartitions[i] < s.SourcePartitions[j] })
		out.Reasons = append(out.Reasons, s)
	}
	sort.Slice(out.Reasons, func(i, j int) bool {
		if out.Reasons[i].Count != out.Reasons[j].Count {
			return out.Reasons[i].Count > out.Reasons[j].Count
		}
		return out.Reasons[i].Reason < out.Reasons[j].Reason
	})
	out.Time = time.Now()
	return out, nil
}

// Records reads the whole topic and returns the newest limit records that
// match (nil matches all), newest first by DLQ time. Values are cut to
// valueBytes (0: pipeline.PreviewBytes); the records are for reading.
func (r *DLQReader) Records(ctx context.Context, match func(DLQRecord) bool, limit, valueBytes int) ([]DLQRecord, error) {
	if valueBytes <= 0 {
		valueBytes = pipeline.PreviewBytes
	}
	limit = min(max(limit, 1), MaxDLQTail)
	if err := r.lock(ctx); err != nil {
		return nil, err
	}
	defer r.unlock()
	bs, err := r.bounds(ctx)
	if err != nil {
		return nil, err
	}
	var kept []DLQRecord // a ring of the newest per partition is not enough: limit over all
	for _, p := range sortedPartitions(bs) {
		b := bs[p]
		var ring []DLQRecord
		_, err := r.scan(ctx, p, b.LogStart, b.End, func(rec DLQRecord) error {
			if match != nil && !match(rec) {
				return nil
			}
			ring = append(ring, rec.clone(valueBytes))
			if len(ring) > 2*limit {
				ring = append(ring[:0], ring[len(ring)-limit:]...)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(ring) > limit {
			ring = ring[len(ring)-limit:]
		}
		kept = append(kept, ring...)
	}
	sort.SliceStable(kept, func(i, j int) bool { return kept[i].Letter.Time.After(kept[j].Letter.Time) })
	if len(kept) > limit {
		kept = kept[:limit]
	}
	return kept, nil
}

func sortedPartitions[T any](m map[int32]T) []int32 {
	out := make([]int32, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
