package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/pipeline"
)

// A replay sends dead letters back to the input, exactly once: Kafka's
// consume-transform-produce. One transaction holds a batch of re-produced
// records and the replay's progress, the offsets of its own consumer group
// on the DLQ (ReplayGroupPrefix + the replay's id), so either both count or
// neither does. A replay that is killed mid-way leaves an open transaction,
// which the next replay aborts when it starts (it uses the same
// transactional id) or the broker aborts after ReplayTxnTimeout; the
// workers read committed records only and never see what it aborted. The
// next replay with the same filter resumes at the committed offsets.
//
// Every replay of a DLQ keeps its filter in the commit metadata of its
// group, so a later replay with another filter knows which records an
// earlier one already sent (a record below an earlier replay's offsets
// that its filter selected) and does not send them again either.
const (
	ReplayGroupPrefix = "inferops-dlq-replay-"
	// ReplayTxnTimeout bounds how long a killed replay's open transaction
	// holds the workers back on the partitions it wrote to (read_committed
	// readers stop at it); a batch takes about a second.
	ReplayTxnTimeout = 10 * time.Second
	// replayBatchMax and replayBatchTime bound one transaction.
	replayBatchMax  = 1000
	replayBatchTime = time.Second
	// Kafka's offset.metadata.max.bytes default; the filter must fit.
	replayMetadataMax = 4096
)

// ReplayTxnID is the transactional id of every replay of dlq: two replays
// of one DLQ fence each other instead of both sending.
func ReplayTxnID(dlq string) string { return "inferops-dlq-replay." + dlq }

// ReplaySpec is what a replay sends: which dead letters, where to, and
// how often a record may come back. Two replays with the same spec are the
// same replay: the second resumes the first.
type ReplaySpec struct {
	DLQ string `json:"dlq"`
	To  string `json:"to"` // the topic records are sent to (the input)
	// Reasons selects by the inferops-error header ("unknown" for none);
	// empty selects every reason.
	Reasons []string `json:"reasons,omitempty"`
	// Since and Until select by the dead letter's record time, [Since,
	// Until); zero is unbounded.
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
	// SourcePartitions selects by the input partition in inferops-source;
	// empty selects all (and records without a source).
	SourcePartitions []int32 `json:"source_partitions,omitempty"`
	// MaxRedrives: a record already sent back this often is left in the
	// DLQ and counted.
	MaxRedrives int `json:"max_redrives"`
}

// normalize sorts and dedups the lists and cuts the times to the
// millisecond (record times have no more), so equal filters are equal.
func (s ReplaySpec) normalize() ReplaySpec {
	s.Reasons = slices.Compact(slices.Sorted(slices.Values(s.Reasons)))
	s.SourcePartitions = slices.Compact(slices.Sorted(slices.Values(s.SourcePartitions)))
	if !s.Since.IsZero() {
		s.Since = time.UnixMilli(s.Since.UnixMilli()).UTC()
	}
	if !s.Until.IsZero() {
		s.Until = time.UnixMilli(s.Until.UnixMilli()).UTC()
	}
	if s.MaxRedrives == 0 {
		s.MaxRedrives = pipeline.DefaultMaxRedrives
	}
	return s
}

// Validate reports a spec that cannot run, naming the flag.
func (s ReplaySpec) Validate() error {
	switch {
	case s.DLQ == "":
		return errors.New("no dead-letter topic (set --dlq)")
	case s.To == "":
		return errors.New("no topic to replay to (set --to or --input)")
	case s.To == s.DLQ:
		return fmt.Errorf("--to %s is the dead-letter topic itself", s.To)
	case s.MaxRedrives < 0:
		return fmt.Errorf("--max-redrives %d: want 0 or more", s.MaxRedrives)
	case !s.Since.IsZero() && !s.Until.IsZero() && !s.Until.After(s.Since):
		return fmt.Errorf("--until %s is not after --since %s", s.Until.Format(time.RFC3339), s.Since.Format(time.RFC3339))
	}
	for _, p := range s.SourcePartitions {
		if p < 0 {
			return fmt.Errorf("--source-partition %d: partitions are numbered from 0", p)
		}
	}
	return nil
}

// ID names the replay: the same filter and target give the same id, and
// so the same consumer group.
func (s ReplaySpec) ID() string {
	b, _ := json.Marshal(s.normalize())
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// Group is the consumer group that holds the replay's progress.
func (s ReplaySpec) Group() string { return ReplayGroupPrefix + s.ID() }

// String is the filter in the words of the command line.
func (s ReplaySpec) String() string {
	s = s.normalize()
	var parts []string
	if len(s.Reasons) > 0 {
		parts = append(parts, "reason "+strings.Join(s.Reasons, ","))
	} else {
		parts = append(parts, "every reason")
	}
	if !s.Since.IsZero() {
		parts = append(parts, "since "+s.Since.Format(time.RFC3339))
	}
	if !s.Until.IsZero() {
		parts = append(parts, "until "+s.Until.Format(time.RFC3339))
	}
	if len(s.SourcePartitions) > 0 {
		ps := make([]string, len(s.SourcePartitions))
		for i, p := range s.SourcePartitions {
			ps[i] = strconv.Itoa(int(p))
		}
		parts = append(parts, "source partition "+strings.Join(ps, ","))
	}
	return fmt.Sprintf("%s -> %s (%s)", s.DLQ, s.To, strings.Join(parts, ", "))
}

// selects reports whether the filter picks rec (before the redrive limit).
func (s ReplaySpec) selects(rec DLQRecord) bool {
	if len(s.Reasons) > 0 && !slices.Contains(s.Reasons, rec.Letter.Reason) {
		return false
	}
	t := rec.Letter.Time
	if !s.Since.IsZero() && t.Before(s.Since) {
		return false
	}
	if !s.Until.IsZero() && !t.Before(s.Until) {
		return false
	}
	if len(s.SourcePartitions) > 0 && (rec.Letter.Partition < 0 || !slices.Contains(s.SourcePartitions, rec.Letter.Partition)) {
		return false
	}
	return true
}

// skip is why a selected record is not sent, "" when it is: the same
// answer for every replay with this spec, which is what lets a later
// replay tell what an earlier one sent.
func (s ReplaySpec) skip(rec DLQRecord) string {
	switch {
	case rec.Truncated:
		return skipTruncated
	case rec.Redrives < 0:
		return skipBadCount
	case rec.Redrives >= s.MaxRedrives:
		return skipOverLimit
	}
	return ""
}

const (
	skipTruncated = "truncated"
	skipBadCount  = "bad_redrive_header"
	skipOverLimit = "over_limit"
	skipSent      = "already_sent"
)

// ReplayCounts is what a replay did, or in a plan what it would do.
type ReplayCounts struct {
	Selected int64 `json:"selected"` // records the filter picks
	Send     int64 `json:"send"`     // sent (a plan: to send)
	// AlreadySent were sent by an earlier replay to the same topic (this
	// one before it was interrupted, or one with another filter).
	AlreadySent int64 `json:"already_sent"`
	OverLimit   int64 `json:"over_limit"`         // redriven --max-redrives times already
	BadCount    int64 `json:"bad_redrive_header"` // an inferops-redrives header that does not parse
	Truncated   int64 `json:"truncated"`          // only a cut copy of the record is in the DLQ
	// ByReason counts Send by reason.
	ByReason map[string]int64 `json:"by_reason"`
}

func (c *ReplayCounts) add(skip, reason string) {
	c.Selected++
	switch skip {
	case "":
		c.Send++
		if c.ByReason == nil {
			c.ByReason = map[string]int64{}
		}
		c.ByReason[reason]++
	case skipSent:
		c.AlreadySent++
	case skipOverLimit:
		c.OverLimit++
	case skipBadCount:
		c.BadCount++
	case skipTruncated:
		c.Truncated++
	}
}

// ReplayRange is one DLQ partition of a replay: the offsets it reads.
type ReplayRange struct {
	Partition int32 `json:"partition"`
	From      int64 `json:"from"`
	To        int64 `json:"to"`
	// Resumed: From is where an interrupted run of this replay stopped.
	Resumed bool `json:"resumed"`
}

// ReplayPlan is what a replay will read and send, as of Time: the dry run,
// and what Run carries out (the same ranges, so the count confirmed is the
// count sent unless another replay sends some meanwhile).
type ReplayPlan struct {
	Spec       ReplaySpec    `json:"spec"`
	ID         string        `json:"id"`
	Group      string        `json:"group"`
	Filter     string        `json:"filter"`
	Partitions []ReplayRange `json:"partitions"`
	Counts     ReplayCounts  `json:"counts"`
	// Earlier are the other replays of this DLQ to the same topic whose
	// sends this one leaves out.
	Earlier  []ReplayJob `json:"earlier"`
	Warnings []string    `json:"warnings"`
	Time     time.Time   `json:"time"`
}

// ReplayItem is one record a replay sends (or, dry, would send).
type ReplayItem struct {
	Record    DLQRecord
	Topic     string
	Partition int32 // of Topic
	Redrives  int   // the count the sent record carries
}

// ReplayProgress is reported after every committed transaction.
type ReplayProgress struct {
	Sent    int64         `json:"sent"`
	Total   int64         `json:"total"` // the plan's Send
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Rate is the records per second sent so far.
func (p ReplayProgress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Sent) / p.Elapsed.Seconds()
}

// ETA is the time left at the rate so far; -1 while unknown.
func (p ReplayProgress) ETA() time.Duration {
	r := p.Rate()
	if r <= 0 {
		return -1
	}
	return time.Duration(float64(max(p.Total-p.Sent, 0)) / r * float64(time.Second))
}

// ReplayResult is what Run did.
type ReplayResult struct {
	Plan        *ReplayPlan   `json:"plan"`
	Counts      ReplayCounts  `json:"counts"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	Interrupted bool          `json:"interrupted"`
}

// ReplayJob is one replay of a DLQ as its group's commit metadata keeps it.
type ReplayJob struct {
	Spec  ReplaySpec `json:"spec"`
	By    string     `json:"by"` // user@host
	At    time.Time  `json:"at"` // when the run that committed last started
	Group string     `json:"group"`
	// Cursor is, per DLQ partition, the offset the replay has read up to.
	Cursor map[int32]int64 `json:"cursor"`
}

// sent reports whether this job sent rec.
func (j ReplayJob) sent(rec DLQRecord) bool {
	c, ok := j.Cursor[rec.Partition]
	return ok && rec.Offset < c && j.Spec.selects(rec) && j.Spec.skip(rec) == ""
}

type replayMeta struct {
	V    int        `json:"v"`
	Spec ReplaySpec `json:"spec"`
	By   string     `json:"by"`
	At   time.Time  `json:"at"`
}

// Replayer plans and runs replays of one spec.
type Replayer struct {
	cfg    Config
	spec   ReplaySpec
	by     string
	reader *DLQReader
	admin  *Admin
}

// NewReplayer connects for spec; by is who asks (user@host), kept with
// the replay's progress and shown to the next operator.
func NewReplayer(ctx context.Context, cfg Config, spec ReplaySpec, by string) (*Replayer, error) {
	spec = spec.normalize()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	cfg.SetDefaults()
	meta, _ := json.Marshal(replayMeta{V: 1, Spec: spec, By: by, At: time.Now().UTC()})
	if len(meta) > replayMetadataMax-64 {
		return nil, fmt.Errorf("the replay's filter is %d bytes, more than Kafka keeps with an offset (%d): give fewer --reason or --source-partition values", len(meta), replayMetadataMax)
	}
	reader, err := NewDLQReader(cfg, spec.DLQ)
	if err != nil {
		return nil, err
	}
	admin, err := NewAdmin(ctx, cfg)
	if err != nil {
		reader.Close()
		return nil, err
	}
	return &Replayer{cfg: cfg, spec: spec, by: by, reader: reader, admin: admin}, nil
}

// Close releases the connections.
func (r *Replayer) Close() error {
	return errors.Join(r.reader.Close(), r.admin.Close())
}

// jobs reads every replay of this DLQ from the groups' commit metadata.
// Groups of another DLQ, or whose metadata is not ours, are left out.
func (r *Replayer) jobs(parts []int32) ([]ReplayJob, []string, error) {
	gs, err := r.admin.Groups()
	if err != nil {
		return nil, nil, err
	}
	var (
		out      []ReplayJob
		warnings []string
	)
	for _, g := range gs {
		if !strings.HasPrefix(g, ReplayGroupPrefix) {
			continue
		}
		resp, err := r.admin.admin.ListConsumerGroupOffsets(g, map[string][]int32{r.spec.DLQ: parts})
		if err != nil {
			return nil, nil, r.cfg.Explain(fmt.Errorf("offsets of replay group %s: %w", g, err))
		}
		if err := offsetFetchErr(resp); err != nil {
			return nil, nil, r.cfg.Explain(fmt.Errorf("offsets of replay group %s: %w", g, err))
		}
		job := ReplayJob{Group: g, Cursor: map[int32]int64{}}
		var meta string
		for _, p := range parts {
			blk := resp.GetBlock(r.spec.DLQ, p)
			if blk == nil || !errors.Is(blk.Err, sarama.ErrNoError) || blk.Offset < 0 {
				continue
			}
			job.Cursor[p] = blk.Offset
			meta = blk.Metadata
		}
		if len(job.Cursor) == 0 {
			continue // a replay of another DLQ
		}
		var m replayMeta
		if err := json.Unmarshal([]byte(meta), &m); err != nil || m.V != 1 || m.Spec.DLQ != r.spec.DLQ {
			warnings = append(warnings, fmt.Sprintf("group %s has offsets on %s but no replay filter in their metadata: its records are not counted as sent", g, r.spec.DLQ))
			continue
		}
		job.Spec, job.By, job.At = m.Spec.normalize(), m.By, m.At
		out = append(out, job)
	}
	return out, warnings, nil
}

// Plan reads the DLQ and counts what a run would send now, calling each
// (when not nil) with every record it would send, in DLQ order per
// partition.
func (r *Replayer) Plan(ctx context.Context, each func(ReplayItem)) (*ReplayPlan, error) {
	if err := r.reader.lock(ctx); err != nil {
		return nil, err
	}
	defer r.reader.unlock()
	bs, err := r.reader.bounds(ctx)
	if err != nil {
		return nil, err
	}
	parts := sortedPartitions(bs)
	jobs, warnings, err := r.jobs(parts)
	if err != nil {
		return nil, err
	}
	plan := &ReplayPlan{Spec: r.spec, ID: r.spec.ID(), Group: r.spec.Group(), Filter: r.spec.String(), Earlier: []ReplayJob{}, Warnings: warnings, Time: time.Now()}
	own, earlier, stale := splitJobs(jobs, r.spec, bs)
	plan.Earlier = earlier
	plan.Warnings = append(plan.Warnings, stale...)
	router, err := r.router()
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		b := bs[p]
		rg := ReplayRange{Partition: p, From: b.LogStart, To: b.End}
		if !r.spec.Since.IsZero() {
			// The time index answers the earliest offset at or after
			// Since; every record before it is older, so the filter
			// would leave it anyway.
			off, _, err := r.reader.listOffset(p, r.spec.Since.UnixMilli())
			if err != nil {
				return nil, err
			}
			if off < 0 {
				off = b.End
			}
			rg.From = max(rg.From, min(off, b.End))
		}
		if c, ok := own.Cursor[p]; ok && c > rg.From {
			rg.From, rg.Resumed = min(c, b.End), true
		}
		plan.Partitions = append(plan.Partitions, rg)
		_, err := r.reader.scan(ctx, p, rg.From, rg.To, func(rec DLQRecord) error {
			skip, ok := r.classify(rec, earlier)
			if !ok {
				return nil
			}
			plan.Counts.add(skip, rec.Letter.Reason)
			if skip == "" && each != nil {
				each(router.item(rec, r.spec))
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// classify is what the replay does with rec: ok false when the filter does
// not pick it, else why it is skipped ("" to send).
func (r *Replayer) classify(rec DLQRecord, earlier []ReplayJob) (string, bool) {
	if !r.spec.selects(rec) {
		return "", false
	}
	if s := r.spec.skip(rec); s != "" {
		return s, true
	}
	for _, j := range earlier {
		if j.sent(rec) {
			return skipSent, true
		}
	}
	return "", true
}

// splitJobs separates this replay's own job from the earlier replays to
// the same topic, and drops jobs whose offsets are past a partition's end
// (the DLQ was deleted and created again: their offsets mean nothing now).
func splitJobs(jobs []ReplayJob, spec ReplaySpec, bs map[int32]dlqBounds) (own ReplayJob, earlier []ReplayJob, warnings []string) {
	earlier = []ReplayJob{}
	own.Cursor = map[int32]int64{}
	for _, j := range jobs {
		stale := false
		for p, c := range j.Cursor {
			if b, ok := bs[p]; !ok || c > b.End {
				stale = true
			}
		}
		if stale {
			warnings = append(warnings, fmt.Sprintf("replay group %s has offsets past the end of %s (the topic was recreated?): ignored", j.Group, spec.DLQ))
			continue
		}
		switch {
		case j.Group == spec.Group():
			own = j
		case j.Spec.To == spec.To:
			earlier = append(earlier, j)
		}
	}
	sort.Slice(earlier, func(i, k int) bool { return earlier[i].At.Before(earlier[k].At) })
	return own, earlier, warnings
}

// router picks each record's target partition.
type router struct {
	topic string
	n     int32
	hash  sarama.Partitioner
	next  int32
}

func (r *Replayer) router() (*router, error) {
	if err := r.admin.client.RefreshMetadata(r.spec.To); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return nil, r.cfg.Explain(fmt.Errorf("metadata for topic %s: %w", r.spec.To, err))
	}
	ps, err := r.admin.client.Partitions(r.spec.To)
	if errors.Is(err, sarama.ErrUnknownTopicOrPartition) || (err == nil && len(ps) == 0) {
		return nil, fmt.Errorf("topic %q does not exist on %s (check --to, or --input for the default; `inferops status` lists the pipeline's topics)", r.spec.To, joinAddrs(r.cfg.Brokers))
	}
	if err != nil {
		return nil, r.cfg.Explain(fmt.Errorf("partitions of %s: %w", r.spec.To, err))
	}
	return &router{topic: r.spec.To, n: int32(len(ps)), hash: sarama.NewHashPartitioner(r.spec.To)}, nil
}

// item is where rec goes: back to the partition it came from when it
// goes back to its own topic (keeping its place among its key's records),
// else by key hash, and records without a key round robin.
func (rt *router) item(rec DLQRecord, spec ReplaySpec) ReplayItem {
	it := ReplayItem{Record: rec, Topic: rt.topic, Redrives: rec.Redrives + 1}
	switch {
	case rec.Letter.Topic == rt.topic && rec.Letter.Partition >= 0 && rec.Letter.Partition < rt.n:
		it.Partition = rec.Letter.Partition
	case rec.Key != nil:
		p, _ := rt.hash.Partition(&sarama.ProducerMessage{Topic: rt.topic, Key: sarama.ByteEncoder(rec.Key)}, rt.n)
		it.Partition = p
	default:
		it.Partition = rt.next % rt.n
		rt.next++
	}
	return it
}

// Run carries out plan: it reads the same ranges (from where an
// interrupted run stopped, when it stopped after the plan was made) and
// sends what the filter picks, at most rate records a second (0: as fast
// as the cluster takes them), in transactions that also commit the
// progress. progress (when not nil) hears after every transaction. When ctx
// ends it commits what it has and returns with Interrupted set.
func (r *Replayer) Run(ctx context.Context, plan *ReplayPlan, rate float64, progress func(ReplayProgress)) (*ReplayResult, error) {
	if plan.ID != r.spec.ID() {
		return nil, errors.New("the plan is for another replay")
	}
	router, err := r.router()
	if err != nil {
		return nil, err
	}
	prod, err := r.producer()
	if err != nil {
		return nil, err
	}
	defer prod.Close()
	if err := r.reader.lock(ctx); err != nil {
		return nil, err
	}
	defer r.reader.unlock()
	// Only now, with the producer initialised (which aborted any
	// transaction a killed replay left open), are the committed offsets
	// final.
	bs, err := r.reader.bounds(ctx)
	if err != nil {
		return nil, err
	}
	jobs, _, err := r.jobs(sortedPartitions(bs))
	if err != nil {
		return nil, err
	}
	own, earlier, _ := splitJobs(jobs, r.spec, bs)
	meta, _ := json.Marshal(replayMeta{V: 1, Spec: r.spec, By: r.by, At: time.Now().UTC()})
	tx := &replayTxn{r: r, prod: prod, meta: string(meta), cursor: map[int32]int64{}, start: time.Now(), rate: rate, total: plan.Counts.Send, progress: progress}
	res := &ReplayResult{Plan: plan}
	for _, rg := range plan.Partitions {
		from := rg.From
		if c, ok := own.Cursor[rg.Partition]; ok && c > from {
			from = min(c, rg.To)
		}
		tx.setCursor(rg.Partition, from)
		_, err := r.reader.scan(ctx, rg.Partition, from, rg.To, func(rec DLQRecord) error {
			skip, ok := r.classify(rec, earlier)
			if ok && skip == "" {
				if err := tx.wait(ctx); err != nil {
					return err // an interrupted run ends before this record
				}
				tx.add(router.item(rec, r.spec))
			}
			if ok {
				res.Counts.add(skip, rec.Letter.Reason)
			}
			tx.setCursor(rec.Partition, rec.Offset+1)
			if tx.due() {
				return tx.commit()
			}
			return nil
		})
		if err == nil {
			tx.setCursor(rg.Partition, rg.To) // past trailing markers and aborted batches
		}
		if ctx.Err() != nil {
			res.Interrupted = true
			break
		}
		if err != nil {
			tx.abort()
			return nil, err
		}
	}
	// An interrupted run still commits what it has: the records and the
	// offsets they were read up to, together.
	if err := tx.commit(); err != nil {
		return nil, err
	}
	res.Elapsed = time.Since(tx.start)
	return res, nil
}

// producer is the replay's transactional producer. Creating it
// initialises the transactional id, which fences any other replay of this
// DLQ and aborts a transaction a killed one left open.
func (r *Replayer) producer() (sarama.SyncProducer, error) {
	sc, err := r.cfg.Sarama()
	if err != nil {
		return nil, err
	}
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	sc.Producer.Transaction.ID = ReplayTxnID(r.spec.DLQ)
	sc.Producer.Transaction.Timeout = ReplayTxnTimeout
	sc.Producer.MaxMessageBytes = pipeline.DLQMaxMessageBytes
	sc.Producer.Retry.Max = 10
	sc.Producer.Retry.Backoff = 100 * time.Millisecond
	p, err := sarama.NewSyncProducer(r.cfg.Brokers, sc)
	if err != nil {
		return nil, r.cfg.Explain(fmt.Errorf("start the replay's transactional producer (transactional.id %s): %w", sc.Producer.Transaction.ID, err))
	}
	return p, nil
}

// replayTxn is the transaction being filled.
type replayTxn struct {
	r        *Replayer
	prod     sarama.SyncProducer
	meta     string
	batch    []*sarama.ProducerMessage
	cursor   map[int32]int64 // DLQ offsets read up to, to commit
	moved    bool            // cursor changed since the last commit
	opened   time.Time       // when the current batch began
	start    time.Time
	rate     float64
	sent     int64
	total    int64
	progress func(ReplayProgress)
}

// wait holds a record back until --rate allows it.
func (t *replayTxn) wait(ctx context.Context) error {
	if t.rate <= 0 {
		return nil
	}
	at := t.start.Add(time.Duration(float64(t.sent+int64(len(t.batch))) / t.rate * float64(time.Second)))
	d := time.Until(at)
	if d <= 0 {
		return nil
	}
	if len(t.batch) > 0 && time.Since(t.opened)+d > replayBatchTime {
		// Do not hold a transaction open while waiting.
		if err := t.commit(); err != nil {
			return err
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// setCursor records that partition p was read up to off.
func (t *replayTxn) setCursor(p int32, off int64) {
	if c, ok := t.cursor[p]; !ok || c != off {
		t.cursor[p] = off
		t.moved = true
	}
}

func (t *replayTxn) add(it ReplayItem) {
	if len(t.batch) == 0 {
		t.opened = time.Now()
	}
	m := &sarama.ProducerMessage{Topic: it.Topic, Partition: it.Partition, Value: sarama.ByteEncoder(it.Record.Value),
		Headers: []sarama.RecordHeader{{Key: []byte(pipeline.HeaderRedrives), Value: strconv.AppendInt(nil, int64(it.Redrives), 10)}}}
	if it.Record.Key != nil {
		m.Key = sarama.ByteEncoder(it.Record.Key)
	}
	t.batch = append(t.batch, m)
}

// due reports whether the transaction should be committed now.
func (t *replayTxn) due() bool {
	if len(t.batch) >= replayBatchMax {
		return true
	}
	if len(t.batch) == 0 {
		// Only offsets moved (records the filter left): commit them now
		// and then, so a resumed run need not read them again.
		if t.opened.IsZero() {
			t.opened = time.Now()
		}
	}
	return time.Since(t.opened) >= replayBatchTime
}

// commit sends the batch and the offsets in one transaction.
func (t *replayTxn) commit() error {
	if len(t.batch) == 0 && !t.moved {
		return nil
	}
	if err := t.prod.BeginTxn(); err != nil {
		return t.explain(err)
	}
	if len(t.batch) > 0 {
		if err := t.prod.SendMessages(t.batch); err != nil {
			t.abort()
			return t.explain(err)
		}
	}
	offs := make([]*sarama.PartitionOffsetMetadata, 0, len(t.cursor))
	for _, p := range sortedPartitions(t.cursor) {
		offs = append(offs, &sarama.PartitionOffsetMetadata{Partition: p, Offset: t.cursor[p], Metadata: &t.meta, LeaderEpoch: -1})
	}
	if err := t.prod.AddOffsetsToTxn(map[string][]*sarama.PartitionOffsetMetadata{t.r.spec.DLQ: offs}, t.r.spec.Group()); err != nil {
		t.abort()
		return t.explain(err)
	}
	if err := t.prod.CommitTxn(); err != nil {
		t.abort()
		return t.explain(err)
	}
	t.sent += int64(len(t.batch))
	t.batch, t.moved, t.opened = t.batch[:0], false, time.Time{}
	if t.progress != nil {
		t.progress(ReplayProgress{Sent: t.sent, Total: t.total, Elapsed: time.Since(t.start)})
	}
	return nil
}

// abort drops the open transaction, if the producer still can.
func (t *replayTxn) abort() {
	if t.prod.TxnStatus()&sarama.ProducerTxnFlagInTransaction != 0 {
		_ = t.prod.AbortTxn()
	}
	t.batch = t.batch[:0]
}

func (t *replayTxn) explain(err error) error {
	if errors.Is(err, sarama.ErrProducerFenced) || errors.Is(err, sarama.ErrInvalidProducerEpoch) || errors.Is(err, sarama.ErrInvalidTxnState) {
		return fmt.Errorf("another replay of %s started (transactional id %s) and took over: this one stopped after %d records, each sent once; run it again when the other has finished: %w", t.r.spec.DLQ, ReplayTxnID(t.r.spec.DLQ), t.sent, err)
	}
	return t.r.cfg.Explain(fmt.Errorf("replay to %s: %w (the records of this transaction were not sent; %d were before it)", t.r.spec.To, err, t.sent))
}
