package worker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/inferops/inferops/pipeline"
)

// crash stops every member the way SIGKILL would, as far as the group can
// tell: nothing more is committed and nobody leaves the group. The pool's
// Close then only shuts its producer (it has no members left to remove).
func crash(t *testing.T, p *Pool) {
	t.Helper()
	p.mu.Lock()
	ms := p.members
	p.members = nil
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, m := range ms {
		m.stop(ctx, false)
	}
	if err := p.Close(ctx); err != nil {
		t.Logf("close after crash: %v", err)
	}
}

func (e *testEnv) group() *kfake.GroupInfo {
	return e.broker.Cluster().GroupInfo(pipeline.DefaultGroup)
}

// members is the instance ids of the group's members, sorted.
func memberNames(g *kfake.GroupInfo) []string {
	var out []string
	if g == nil {
		return nil
	}
	for _, m := range g.Members {
		if m.InstanceID == nil {
			out = append(out, "(dynamic)"+m.ClientID)
			continue
		}
		out = append(out, *m.InstanceID)
	}
	return out
}

func TestMembersAreNamedAfterTheInstance(t *testing.T) {
	e := newTestEnv(t)
	p := e.pool(Config{Workers: 2, Instance: "web-3"})
	waitFor(t, "both members in the group", 20*time.Second, func() bool {
		g := e.group()
		return g != nil && g.State == "Stable" && len(g.Members) == 2 && g.NumAssigned() == 12
	})
	got := strings.Join(memberNames(e.group()), ",")
	if got != "inferops-web-3-w1,inferops-web-3-w2" {
		t.Fatalf("group members %s, want the static members inferops-web-3-w1,inferops-web-3-w2", got)
	}
	for _, m := range e.group().Members {
		if m.ClientID != *m.InstanceID {
			t.Errorf("member %s has client id %q, want it equal to its instance id", *m.InstanceID, m.ClientID)
		}
	}
	if s := p.Stats(); s.Instance != "web-3" || s.Members[0].ClientID != "inferops-web-3-w1" {
		t.Fatalf("stats: instance %q, first member %q", s.Instance, s.Members[0].ClientID)
	}
}

// A restart under the same instance replaces the dead members instead of
// waiting for their session to expire: the group never holds the dead and
// the new members side by side, and every partition is owned again long
// before the session timeout.
func TestRestartReplacesDeadStaticMembers(t *testing.T) {
	e := newTestEnv(t)
	in := newInput()
	a := e.pool(Config{Workers: 2, Instance: "node-a"})
	e.produce(0, 2000, 0, in)
	waitFor(t, "the first pool to work", 20*time.Second, func() bool { return a.Stats().Produced > 200 })
	crash(t, a)
	if n := len(e.group().Members); n != 2 {
		t.Fatalf("after the crash the group has %d members, want the 2 dead static members still there", n)
	}
	restarted := time.Now()
	b := e.pool(Config{Workers: 2, Instance: "node-a"})
	var seen []string
	waitFor(t, "the restarted pool to own every partition", 20*time.Second, func() bool {
		g := e.group()
		if g == nil {
			return false
		}
		if len(g.Members) > 2 {
			seen = memberNames(g)
		}
		st := b.Stats()
		owned := 0
		for _, m := range st.Members {
			owned += len(m.Partitions)
		}
		return g.State == "Stable" && owned == 12
	})
	took := time.Since(restarted)
	if seen != nil {
		t.Fatalf("the group held %v at once: the dead members were not replaced", seen)
	}
	session := b.consumerCfg.Consumer.Group.Session.Timeout
	t.Logf("restart to every partition owned: %v (session timeout %v)", took, session)
	if took >= session {
		t.Fatalf("took %v, not less than the %v session timeout a dynamic member waits for", took, session)
	}
	e.produce(2000, 1000, 0, in)
	o := e.collect(in, 60*time.Second)
	t.Logf("records=%d duplicates=%d", len(in.keys), o.duplicates())
}

// A static member does not send LeaveGroup when it closes, so a scale-down
// and a clean shutdown remove the members explicitly: their partitions move
// at once, not after the session timeout.
func TestScaleDownAndCloseRemoveStaticMembers(t *testing.T) {
	e := newTestEnv(t)
	p := e.pool(Config{Workers: 3, Instance: "node-b"})
	waitFor(t, "three members", 20*time.Second, func() bool {
		g := e.group()
		return g != nil && g.State == "Stable" && len(g.Members) == 3 && g.NumAssigned() == 12
	})
	if err := p.ScaleTo(1); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(memberNames(e.group()), ","); got != "inferops-node-b-w1" {
		t.Fatalf("right after ScaleTo(1) the group has %s, want only inferops-node-b-w1", got)
	}
	waitFor(t, "w1 to own every partition", 8*time.Second, func() bool {
		st := p.Stats()
		return len(st.Members) == 1 && len(st.Members[0].Partitions) == 12
	})
	// Scaling up reuses the slot, and so the name, of the removed member.
	if err := p.ScaleTo(2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "w2 back", 20*time.Second, func() bool {
		return strings.Join(memberNames(e.group()), ",") == "inferops-node-b-w1,inferops-node-b-w2" && e.group().NumAssigned() == 12
	})
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if g := e.group(); g != nil && len(g.Members) != 0 {
		t.Fatalf("after Close the group still has %v", memberNames(g))
	}
}

// Two processes under one instance name would take the partitions from
// each other forever; the one that is fenced stops and says why.
func TestSameInstanceTwiceIsFenced(t *testing.T) {
	e := newTestEnv(t)
	a := e.pool(Config{Workers: 1, Instance: "twin"})
	waitFor(t, "a to own every partition", 20*time.Second, func() bool {
		st := a.Stats()
		return len(st.Members) == 1 && len(st.Members[0].Partitions) == 12
	})
	b := e.pool(Config{Workers: 1, Instance: "twin"})
	waitFor(t, "one of them to say it was fenced", 30*time.Second, func() bool {
		for _, p := range []*Pool{a, b} {
			for _, ev := range p.Events() {
				if strings.Contains(ev.Message, "with this instance id") && strings.Contains(ev.Message, "--instance") {
					return true
				}
			}
		}
		return false
	})
}

func TestValidInstance(t *testing.T) {
	for _, ok := range []string{"web-3", "host.example.com", "a_b", strings.Repeat("x", maxInstance)} {
		if err := ValidInstance(ok); err != nil {
			t.Errorf("ValidInstance(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "has space", "a/b", "é", strings.Repeat("x", maxInstance+1)} {
		err := ValidInstance(bad)
		if err == nil || !strings.Contains(err.Error(), "--instance") {
			t.Errorf("ValidInstance(%q) = %v, want an error naming --instance", bad, err)
		}
	}
	if got := MemberName("web-3", 2); got != "inferops-web-3-w2" {
		t.Fatalf("MemberName = %q", got)
	}
}
