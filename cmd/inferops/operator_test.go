package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/cluster/clustertest"
	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// The operator actions end to end: `dlq` and `offsets` against the
// embedded stack, with `inferops worker` processes serving the input.

// operatorEnv is a stack, its Kafka config and a producer to the input.
type operatorEnv struct {
	t   *testing.T
	bin string
	st  *stack.Stack
	kc  cluster.Config
	sc  *sarama.Config
}

func newOperatorEnv(t *testing.T, models bool) *operatorEnv {
	cfg := stack.Config{Broker: &cluster.BrokerConfig{}}
	if models {
		cfg.Models = &modelserver.Config{RESTAddr: "-"}
	}
	st := stacktest.Start(t, cfg)
	kc := st.Kafka()
	sc, err := kc.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	return &operatorEnv{t: t, bin: inferopsBinary(t), st: st, kc: kc, sc: sc}
}

// produce writes records to topic, each value `{"id":ID,...}` keyed by ID.
func (e *operatorEnv) produce(topic string, recs map[string]string, headers ...sarama.RecordHeader) {
	e.t.Helper()
	sc := *e.sc
	sc.Producer.Return.Successes = true
	prod, err := sarama.NewSyncProducer(e.kc.Brokers, &sc)
	if err != nil {
		e.t.Fatal(err)
	}
	defer prod.Close()
	var msgs []*sarama.ProducerMessage
	for id, v := range recs {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(id), Value: sarama.StringEncoder(v), Headers: headers})
	}
	if err := prod.SendMessages(msgs); err != nil {
		e.t.Fatal(err)
	}
}

// run runs the binary with args against the stack and returns stdout,
// stderr and the exit status.
func (e *operatorEnv) run(args ...string) (string, string, int) {
	e.t.Helper()
	cmd := e.command(args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

func (e *operatorEnv) command(args ...string) *exec.Cmd {
	cmd := serveProcess(e.t, e.bin) // its isolated environment
	cmd.Args = append([]string{e.bin}, args...)
	cmd.Args = append(cmd.Args, "--brokers", e.st.Addrs.Kafka)
	return cmd
}

// worker starts `inferops worker` on the stack; stop sends SIGTERM and
// waits for it to leave.
func (e *operatorEnv) worker(group string) (stop func()) {
	return e.workerAs(group, "w1", 2)
}

// workerAs is a worker process with its own --instance and --workers.
func (e *operatorEnv) workerAs(group, instance string, workers int) (stop func()) {
	e.t.Helper()
	cmd := serveProcess(e.t, e.bin)
	cmd.Args = []string{e.bin, "worker", "--brokers", e.st.Addrs.Kafka, "--tfserving", e.st.Addrs.GRPC, "--workers", strconv.Itoa(workers), "--group", group,
		"--instance", instance, "--log-level", "warn", "--config="}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			e.t.Error("worker did not exit within 20 s of SIGTERM")
		}
	}
	e.t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	return stop
}

// dlqCount waits until the DLQ holds n records of reason with redrives
// at least r, and returns the stats.
func (e *operatorEnv) waitDLQ(what string, timeout time.Duration, ok func(*cluster.DLQStats) bool) *cluster.DLQStats {
	e.t.Helper()
	r, err := cluster.NewDLQReader(e.kc, pipeline.DefaultDLQ)
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Close()
	deadline := time.Now().Add(timeout)
	for {
		st, err := r.Stats(context.Background(), pipeline.DefaultMaxRedrives)
		if err != nil {
			e.t.Fatal(err)
		}
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %v waiting for %s; DLQ: %+v", timeout, what, st.Reasons)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func reasonCount(st *cluster.DLQStats, reason string) int64 {
	for _, r := range st.Reasons {
		if r.Reason == reason {
			return r.Count
		}
	}
	return 0
}

// replayed is the input topic's records that a replay sent, by id, with
// their redrive counts.
func (e *operatorEnv) replayed() map[string][]string {
	e.t.Helper()
	out := map[string][]string{}
	for _, m := range clustertest.ReadCommitted(e.t, e.kc.Brokers, e.sc, pipeline.DefaultInput, time.Second) {
		if rd := clustertest.Header(m, pipeline.HeaderRedrives); rd != "" {
			out[string(m.Key)] = append(out[string(m.Key)], rd)
		}
	}
	return out
}

func features(n int) string {
	return "[" + strings.TrimSuffix(strings.Repeat("0.5,", n), ",") + "]"
}

// TestDLQReplayThroughWorker: a replay by reason moves exactly that
// reason's records (checked by id) and nothing else; a dry run changes
// nothing; a record that fails every time comes back with its count one
// up each replay and stops at --max-redrives, counted.
func TestDLQReplayThroughWorker(t *testing.T) {
	e := newOperatorEnv(t, true)
	in := map[string]string{}
	var width, broken []string
	for i := range 150 {
		id := "ok" + strconv.Itoa(i)
		in[id] = `{"id":"` + id + `","features":` + features(32) + `}`
	}
	for i := range 20 {
		id := "width" + strconv.Itoa(i)
		width = append(width, id)
		in[id] = `{"id":"` + id + `","features":[1,2]}`
	}
	for i := range 10 {
		id := "json" + strconv.Itoa(i)
		broken = append(broken, id)
		in[id] = `{"id":"` + id + `","features":[1,2`
	}
	e.produce(pipeline.DefaultInput, in)
	stop := e.worker("replay_group")
	defer stop()
	e.waitDLQ("the first dead letters", 60*time.Second, func(st *cluster.DLQStats) bool {
		return reasonCount(st, pipeline.ReasonWrongWidth) == 20 && reasonCount(st, pipeline.ReasonInvalidJSON) == 10
	})

	out, errOut, code := e.run("dlq", "list", "--json")
	var st cluster.DLQStats
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Total != 30 {
		t.Fatalf("dlq list: exit %d, %s %s", code, out, errOut)
	}
	out, _, code = e.run("dlq", "list")
	if code != 0 || !strings.Contains(out, pipeline.ReasonWrongWidth) || !strings.Contains(out, "AT LIMIT (3)") {
		t.Errorf("dlq list text: exit %d\n%s", code, out)
	}
	out, _, code = e.run("dlq", "show", "--reason", pipeline.ReasonInvalidJSON, "--limit", "3", "--json")
	var shown []shownRecord
	if code != 0 || json.Unmarshal([]byte(out), &shown) != nil || len(shown) != 3 || shown[0].Reason != pipeline.ReasonInvalidJSON || !strings.HasPrefix(shown[0].Source, pipeline.DefaultInput+"/") {
		t.Fatalf("dlq show: exit %d, %s", code, out)
	}

	// Dry run: what it would send, and nothing sent.
	before := e.inputEnd()
	out, errOut, code = e.run("dlq", "replay", "--reason", pipeline.ReasonWrongWidth, "--dry-run", "--json")
	var dry replaySummary
	if code != 0 || json.Unmarshal([]byte(out), &dry) != nil {
		t.Fatalf("dry run: exit %d, %s %s", code, out, errOut)
	}
	if !dry.DryRun || dry.Counts.Send != 20 || len(dry.Records) != 20 {
		t.Errorf("dry run: %+v", dry.Counts)
	}
	if after := e.inputEnd(); after != before {
		t.Errorf("a dry run wrote to %s: end %d -> %d", pipeline.DefaultInput, before, after)
	}
	if gs := e.replayGroups(); len(gs) != 0 {
		t.Errorf("a dry run made groups %v", gs)
	}
	// --read-only refuses, and says so.
	_, errOut, code = e.run("dlq", "replay", "--reason", pipeline.ReasonWrongWidth, "--read-only")
	if code == 0 || !strings.Contains(errOut, "--read-only") || !strings.Contains(errOut, "--dry-run") {
		t.Errorf("read-only replay: exit %d, %s", code, errOut)
	}

	// Three replays: each sends the 20 back, the worker fails them again.
	for round := 1; round <= pipeline.DefaultMaxRedrives; round++ {
		out, errOut, code = e.run("dlq", "replay", "--reason", pipeline.ReasonWrongWidth, "--json")
		var sum replaySummary
		if code != 0 || json.Unmarshal([]byte(out), &sum) != nil {
			t.Fatalf("replay %d: exit %d, %s %s", round, code, out, errOut)
		}
		if sum.Counts.Send != 20 || sum.By == "" {
			t.Fatalf("replay %d sent %+v", round, sum.Counts)
		}
		e.waitDLQ("the replayed records to fail again", 60*time.Second, func(st *cluster.DLQStats) bool {
			return reasonCount(st, pipeline.ReasonWrongWidth) == int64(20*(round+1))
		})
		got := e.replayed()
		if len(got) != 20 {
			t.Fatalf("after replay %d the input holds replayed records of %d ids, want the 20 wrong_width ones: %v", round, len(got), got)
		}
		for _, id := range width {
			want := make([]string, round)
			for i := range want {
				want[i] = strconv.Itoa(i + 1)
			}
			if strings.Join(got[id], ",") != strings.Join(want, ",") {
				t.Errorf("after replay %d, %s came back with counts %v, want %v", round, id, got[id], want)
			}
		}
		for _, id := range broken {
			if _, ok := got[id]; ok {
				t.Errorf("invalid_json record %s was replayed by a wrong_width replay", id)
			}
		}
	}
	// The fourth: every one is at the limit, so none is sent.
	out, _, code = e.run("dlq", "replay", "--reason", pipeline.ReasonWrongWidth, "--json")
	var last replaySummary
	if code != 0 || json.Unmarshal([]byte(out), &last) != nil || last.Counts.Send != 0 || last.Counts.OverLimit != 20 {
		t.Fatalf("replay past the limit: exit %d, %+v", code, last.Counts)
	}
	out, _, _ = e.run("dlq", "replay", "--reason", pipeline.ReasonWrongWidth)
	if !strings.Contains(out, "20 replayed 3 times already (--max-redrives)") {
		t.Errorf("text summary does not count the records at the limit:\n%s", out)
	}
	// Each replay that sent is a fleet event: who, what, how many (the two
	// with nothing left to send are not).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctl, err := fleet.Open(ctx, fleet.ControllerConfig{Kafka: e.kc, ReadOnly: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	var replays []string
	for _, ev := range ctl.View().Events {
		if ev.Kind == pipeline.KindReplay {
			replays = append(replays, ev.Message)
		}
	}
	if len(replays) != 3 || !strings.Contains(replays[0], "@") || !strings.Contains(replays[0], "replayed ai_input.dlq -> ai_input (reason wrong_width): 20 sent") {
		t.Errorf("fleet events of the replays: %q", replays)
	}
}

// inputEnd is the sum of the input's high watermarks.
func (e *operatorEnv) inputEnd() int64 {
	e.t.Helper()
	c, err := cluster.NewCollector(e.kc, pipeline.DefaultInput, "nobody")
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	s, err := c.Refresh(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	var n int64
	for _, p := range s.Partitions {
		n += p.HighWatermark
	}
	return n
}

func (e *operatorEnv) replayGroups() []string {
	e.t.Helper()
	a, err := cluster.NewAdmin(context.Background(), e.kc)
	if err != nil {
		e.t.Fatal(err)
	}
	defer a.Close()
	gs, err := a.Groups()
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, g := range gs {
		if strings.HasPrefix(g, cluster.ReplayGroupPrefix) {
			out = append(out, g)
		}
	}
	return out
}

// TestDLQReplayResumesAfterSIGKILL: a replay process killed mid-way
// (SIGKILL, a transaction open) leaves nothing a worker would read twice;
// the same command again sends the rest, and every record is in the input
// exactly once.
func TestDLQReplayResumesAfterSIGKILL(t *testing.T) {
	e := newOperatorEnv(t, false)
	const n = 3000
	recs := map[string]string{}
	for i := range n {
		id := "d" + strconv.Itoa(i)
		recs[id] = `{"id":"` + id + `","features":[1]}`
	}
	e.produce(pipeline.DefaultDLQ, recs, sarama.RecordHeader{Key: []byte(pipeline.HeaderError), Value: []byte(pipeline.ReasonWrongWidth)})

	cmd := e.command("dlq", "replay", "--rate", "600", "--json")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := *e.sc
	admin, err := sarama.NewClusterAdmin(e.kc.Brokers, &sc)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	group := cluster.ReplaySpec{DLQ: pipeline.DefaultDLQ, To: pipeline.DefaultInput}.Group()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var done int64
		if offs, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{pipeline.DefaultDLQ: {0, 1, 2}}); err == nil {
			for p := int32(0); p < 3; p++ {
				if b := offs.GetBlock(pipeline.DefaultDLQ, p); b != nil && b.Offset > 0 {
					done += b.Offset
				}
			}
		}
		if done >= 800 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replay did not get going: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Mid-way, most likely inside a transaction.
	time.Sleep(300 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	first := e.replayed()
	if len(first) == 0 || len(first) >= n {
		t.Fatalf("after the kill the input holds %d records, want some of %d", len(first), n)
	}
	for id, rs := range first {
		if len(rs) != 1 {
			t.Errorf("%s read %d times after the kill", id, len(rs))
		}
	}

	stdout, errOut, code := e.run("dlq", "replay", "--json")
	var sum replaySummary
	if code != 0 || json.Unmarshal([]byte(stdout), &sum) != nil {
		t.Fatalf("resumed replay: exit %d, %s %s", code, stdout, errOut)
	}
	resumed := false
	for _, rg := range sum.Plan.Partitions {
		resumed = resumed || rg.Resumed
	}
	if !resumed || sum.Counts.Send != int64(n-len(first)) {
		t.Errorf("resumed replay: %+v, partitions %+v; want it to resume and send the %d left", sum.Counts, sum.Plan.Partitions, n-len(first))
	}
	all := e.replayed()
	if len(all) != n {
		t.Fatalf("the input holds %d of the %d records", len(all), n)
	}
	for id, rs := range all {
		if len(rs) != 1 || rs[0] != "1" {
			t.Errorf("%s in the input %d times (%v)", id, len(rs), rs)
		}
	}
	t.Logf("killed after %d of %d; the rerun sent %d in %.1fs", len(first), n, sum.Counts.Send, sum.Seconds)
}

// TestOffsetsResetCommand: the plan first, a group with members refused
// with the fix, --read-only refused, a dry run changing nothing, a reset
// applied and read back; errors for an unknown topic and a time before
// the log start.
func TestOffsetsResetCommand(t *testing.T) {
	e := newOperatorEnv(t, true)
	in := map[string]string{}
	for i := range 240 {
		id := "r" + strconv.Itoa(i)
		in[id] = `{"id":"` + id + `","features":` + features(32) + `}`
	}
	produced := time.Now()
	e.produce(pipeline.DefaultInput, in)
	const group = "reset_cmd_group"
	stop := e.worker(group)
	col, err := cluster.NewCollector(e.kc, pipeline.DefaultInput, group)
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	waitLag := func(what string, ok func(*cluster.Snapshot) bool) *cluster.Snapshot {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			s, err := col.Refresh(context.Background())
			if err == nil && ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: %+v %v", what, s, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitLag("the worker to read everything", func(s *cluster.Snapshot) bool { return s.TotalLag == 0 && s.CommittedLag == 0 && len(s.Members) == 2 })

	out, errOut, code := e.run("offsets", "reset", "--group", group, "--to", "earliest", "--yes")
	if code != 1 || !strings.Contains(errOut, "has 2 member") || !strings.Contains(errOut, "--stop-fleet") || !strings.Contains(errOut, "systemctl stop inferops-worker") || !strings.Contains(out, "PARTITION") {
		t.Errorf("reset with members: exit %d\n%s\n%s", code, out, errOut)
	}
	_, errOut, code = e.run("offsets", "reset", "--group", group, "--to", "earliest", "--read-only")
	if code == 0 || !strings.Contains(errOut, "--read-only") {
		t.Errorf("read-only reset: exit %d, %s", code, errOut)
	}
	out, _, code = e.run("offsets", "reset", "--group", group, "--to", "earliest", "--dry-run", "--json")
	var rep resetReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Applied || rep.Plan.Reread != 240 || len(rep.Plan.Members) != 2 {
		t.Fatalf("dry run: exit %d, %s", code, out)
	}
	stop()
	waitLag("the members to leave", func(s *cluster.Snapshot) bool { return len(s.Members) == 0 })

	out, errOut, code = e.run("offsets", "reset", "--group", group, "--to", "-5", "--partitions", "0-3", "--json")
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || !rep.Applied {
		t.Fatalf("reset: exit %d, %s %s", code, out, errOut)
	}
	s := waitLag("the new offsets", func(*cluster.Snapshot) bool { return true })
	for _, p := range s.Partitions {
		want := p.HighWatermark
		if p.Partition <= 3 {
			want = max(p.HighWatermark-5, 0)
		}
		if p.Committed != want {
			t.Errorf("partition %d committed %d after --to -5 on 0-3, want %d", p.Partition, p.Committed, want)
		}
	}
	out, _, code = e.run("offsets", "reset", "--group", group, "--to", "latest")
	if code != 0 || !strings.Contains(out, "WARNING: this skips") || !strings.Contains(out, "done:") {
		t.Errorf("reset to latest: exit %d\n%s", code, out)
	}

	_, errOut, code = e.run("offsets", "reset", "--group", group, "--input", "ai_inptu", "--to", "latest")
	if code == 0 || !strings.Contains(errOut, `"ai_inptu" does not exist`) || !strings.Contains(errOut, "--input") {
		t.Errorf("unknown topic: exit %d, %s", code, errOut)
	}
	// Retention took the oldest records of partition 0.
	if err := e.st.Broker.Cluster().DeleteRecords(pipeline.DefaultInput, 0, 3); err != nil {
		t.Fatal(err)
	}
	at := produced.Add(-time.Minute).UTC().Format(time.RFC3339)
	_, errOut, code = e.run("offsets", "reset", "--group", group, "--to", at)
	if code == 0 || !strings.Contains(errOut, "before the log start") || !strings.Contains(errOut, "--to earliest") {
		t.Errorf("time before the log start: exit %d, %s", code, errOut)
	}
	_, errOut, code = e.run("offsets", "reset", "--group", group, "--to", "yesterday")
	if code != 2 || !strings.Contains(errOut, "now-1h") {
		t.Errorf("bad --to: exit %d, %s", code, errOut)
	}
}

// TestOffsetsResetStopFleet: under traffic, with two worker processes
// following a desired state of 3 workers, --stop-fleet scales the fleet to
// 0, resets once the group is empty, and writes the desired state back
// exactly; the workers come back and every record produced before, during
// and after reaches the output (the reset goes back, so some twice; none
// lost). The reset is a fleet event.
func TestOffsetsResetStopFleet(t *testing.T) {
	e := newOperatorEnv(t, true)
	defer e.workerAs(pipeline.DefaultGroup, "fa", 1)()
	defer e.workerAs(pipeline.DefaultGroup, "fb", 1)()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var ctl *fleet.Controller
	var err error
	for { // the first worker creates the fleet topics
		if ctl, err = fleet.Open(ctx, fleet.ControllerConfig{Kafka: e.kc, Who: "tester@fleet"}); err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	waitView(t, ctl, "2 live instances", 60*time.Second, func(v fleet.View) bool { return v.Totals.Live == 2 })
	ch, err := ctl.Scale(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctl.Wait(ctx, ch, nil); err != nil {
		t.Fatal(err)
	}
	before := *ctl.View().Desired

	// Traffic all along: a batch every 100 ms.
	produced := map[string]bool{}
	stopTraffic := make(chan struct{})
	trafficDone := make(chan struct{})
	go func() {
		defer close(trafficDone)
		for b := 0; ; b++ {
			batch := map[string]string{}
			for i := range 20 {
				id := "t" + strconv.Itoa(b) + "-" + strconv.Itoa(i)
				batch[id] = `{"id":"` + id + `","features":` + features(32) + `}`
				produced[id] = true
			}
			e.produce(pipeline.DefaultInput, batch)
			select {
			case <-stopTraffic:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	time.Sleep(2 * time.Second)

	out, errOut, code := e.run("offsets", "reset", "--to", "-50", "--stop-fleet", "--yes", "--json", "--timeout", "90s")
	var rep resetReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("reset --stop-fleet: exit %d\n%s\n%s", code, out, errOut)
	}
	if !rep.Applied || !rep.StoppedFleet || !rep.Restored || len(rep.Plan.Members) != 0 {
		t.Errorf("report %+v, want applied with the fleet stopped and restored, planned with no members", rep)
	}
	after := ctl.View().Desired
	if after.Workers == nil || *after.Workers != *before.Workers || len(after.Shares) != len(before.Shares) || after.Target != before.Target || after.Paused != before.Paused || after.Seq <= before.Seq {
		t.Errorf("desired state after: %s (seq %d), want %s back (seq %d)", after.Summary(), after.Seq, before.Summary(), before.Seq)
	}
	waitView(t, ctl, "3 workers again", 60*time.Second, func(v fleet.View) bool { return v.Totals.Workers == 3 })
	close(stopTraffic)
	<-trafficDone

	// Nothing lost: every id in the output.
	deadline := time.Now().Add(90 * time.Second)
	for {
		seen := map[string]bool{}
		for _, m := range clustertest.ReadCommitted(t, e.kc.Brokers, e.sc, pipeline.DefaultOutput, time.Second) {
			seen[string(m.Key)] = true
		}
		var missing []string
		for id := range produced {
			if !seen[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records never reached %s, e.g. %v", len(missing), len(produced), pipeline.DefaultOutput, missing[:min(len(missing), 5)])
		}
		time.Sleep(time.Second)
	}
	found := false
	for _, ev := range ctl.View().Events {
		found = found || (ev.Kind == pipeline.KindOffsets && strings.Contains(ev.Message, "reset the offsets of "+pipeline.DefaultGroup))
	}
	if !found {
		t.Errorf("no fleet event for the reset: %+v", ctl.View().Events)
	}
	t.Logf("%d records produced under traffic, all served; desired state %s restored", len(produced), after.Summary())
}
