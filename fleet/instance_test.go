package fleet

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/infer/worker"
)

// fakeProcess publishes snapshots under a name as another process would,
// every interval until stop.
func (e *env) fakeProcess(id Identity, interval time.Duration) (stop func()) {
	e.t.Helper()
	if err := (Topics{}).withDefaults().Ensure(context.Background(), e.kafka); err != nil {
		e.t.Fatal(err)
	}
	sc, err := e.kafka.Sarama()
	if err != nil {
		e.t.Fatal(err)
	}
	sc.Producer.Return.Successes = true
	prod, err := sarama.NewSyncProducer(e.kafka.Brokers, sc)
	if err != nil {
		e.t.Fatal(err)
	}
	send := func() {
		s := &Snapshot{Schema: 1, Instance: id.Instance, Host: id.Host, PID: id.PID, PIDSpace: id.PIDSpace, Started: id.Started,
			Time: time.Now().UTC(), IntervalMs: interval.Milliseconds(), Group: "tf_serving_group", Control: Control{Mode: ModeFollow, Offset: -1, Share: -1}}
		b, _ := json.Marshal(s)
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "inferops.fleet", Key: sarama.StringEncoder(id.Instance), Value: sarama.ByteEncoder(b)}); err != nil {
			e.t.Error(err)
		}
	}
	send()
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				send()
			}
		}
	}()
	return func() { close(done); <-finished; _ = prod.Close() }
}

func (t Topics) withDefaults() Topics { t.SetDefaults(); return t }

// prepare runs an agent's Prepare under name as the given process.
func (e *env) prepare(name string, id Identity) error {
	a, err := NewAgent(AgentConfig{Kafka: e.kafka, Worker: worker.Config{Instance: name}, Version: "test", Logger: testLog()})
	if err != nil {
		e.t.Fatal(err)
	}
	id.Instance = name
	a.id = id
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = a.Prepare(ctx)
	_ = a.Close(ctx)
	return err
}

// deadPID is the pid of a process that has exited.
func deadPID(t *testing.T) int {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestSecondProcessUnderOneNameIsRefused: a live process on this host, or
// one on another host that keeps publishing, blocks the name; a crashed
// process here (its pid gone), a silent one elsewhere or a clean exit
// (tombstone) do not.
func TestSecondProcessUnderOneNameIsRefused(t *testing.T) {
	e := newEnv(t)
	me := Self("x", "test")
	other := me
	other.PID, other.Started = 999_999_999, time.Now().UTC().Truncate(time.Millisecond)

	t.Run("live here", func(t *testing.T) {
		e.instance("busy", 1, false) // this very process, alive
		c := e.controller("fleet status only reads")
		waitFor(t, "busy's first snapshot", 10*time.Second, func() bool { _, ok := c.View().Instance("busy"); return ok })
		err := e.prepare("busy", Identity{Instance: "busy", Host: me.Host, PID: other.PID, PIDSpace: me.PIDSpace, Started: other.Started})
		if !IsDuplicate(err) || !strings.Contains(err.Error(), "--instance") {
			t.Fatalf("second process: %v, want a refusal naming --instance", err)
		}
		t.Logf("refused: %v", err)
	})
	t.Run("crashed here", func(t *testing.T) {
		dead := Identity{Instance: "crashed", Host: me.Host, PID: deadPID(t), PIDSpace: me.PIDSpace, Started: time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)}
		stop := e.fakeProcess(dead, time.Second)
		stop() // SIGKILL: no tombstone, a fresh snapshot left behind
		start := time.Now()
		if err := e.prepare("crashed", Identity{Instance: "crashed", Host: me.Host, PID: me.PID, PIDSpace: me.PIDSpace, Started: me.Started}); err != nil {
			t.Fatalf("restart after a crash: %v", err)
		}
		if d := time.Since(start); d > 2500*time.Millisecond {
			t.Errorf("the restart waited %v: the dead pid is visible here, no wait is needed", d)
		}
	})
	t.Run("live elsewhere", func(t *testing.T) {
		stop := e.fakeProcess(Identity{Instance: "remote", Host: "elsewhere", PID: 77, Started: other.Started}, 500*time.Millisecond)
		defer stop()
		err := e.prepare("remote", me)
		if !IsDuplicate(err) || !strings.Contains(err.Error(), "elsewhere") {
			t.Fatalf("name live on another host: %v", err)
		}
	})
	t.Run("silent elsewhere", func(t *testing.T) {
		stop := e.fakeProcess(Identity{Instance: "gone", Host: "elsewhere", PID: 78, Started: other.Started}, 500*time.Millisecond)
		stop()
		start := time.Now()
		if err := e.prepare("gone", me); err != nil {
			t.Fatalf("name of a silent process elsewhere: %v", err)
		}
		if d := time.Since(start); d < 1200*time.Millisecond {
			t.Errorf("took over a name from another host after %v: it must wait out three of its intervals (1.5 s)", d)
		}
	})
	t.Run("clean exit", func(t *testing.T) {
		in := e.instance("clean", 1, false)
		in.stop()
		if err := e.prepare("clean", Identity{Instance: "clean", Host: "elsewhere", PID: 5, Started: other.Started}); err != nil {
			t.Fatalf("after a clean exit: %v", err)
		}
	})
}
