package tui

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// fakeOperator is a backend with operator actions that records what the
// console asked.
type fakeOperator struct {
	nopBackend
	replayPlans []string  // reasons planned
	started     []float64 // rates
	resetPlans  [][2]string
	applied     int
	applyErr    error
}

func (f *fakeOperator) PlanReplay(_ context.Context, reason string) (*ReplayPlan, error) {
	f.replayPlans = append(f.replayPlans, reason)
	return &ReplayPlan{Reason: reason, Filter: "ai_input.dlq -> ai_input (reason " + reason + ")", Group: "inferops-dlq-replay-0123456789ab",
		Send: 2, AlreadySent: 5, OverLimit: 1, MaxRedrives: 3, Earlier: []string{"reason invalid JSON by sre@host1 at 2024-05-01T10:00:00Z"}}, nil
}

func (f *fakeOperator) StartReplay(rate float64) error {
	f.started = append(f.started, rate)
	return nil
}

func (f *fakeOperator) PlanReset(_ context.Context, parts, to string) (*ResetPlan, error) {
	f.resetPlans = append(f.resetPlans, [2]string{parts, to})
	if to == "bogus" {
		return nil, errors.New(`--to "bogus": want earliest, latest, a time, an offset, or -N`)
	}
	return &ResetPlan{Group: "tf_serving_group", Topic: "ai_input", To: to, LagBefore: 4700, LagAfter: 0, Skipped: 4700,
		Rows:    []ResetRow{{Partition: 1, Current: 9000, New: 9310, LagBefore: 310, Skipped: 310}, {Partition: 10, Current: -1, New: 4390, LagBefore: 4390, Skipped: 4390}},
		Members: []string{"inferops-host-console-w1", "inferops-host-console-w2"}, Local: true}, nil
}

func (f *fakeOperator) ApplyReset(context.Context) (string, error) {
	f.applied++
	return "offsets of tf_serving_group moved on 2 partitions", f.applyErr
}

// drive presses keys and runs the commands they return, feeding each
// result back, as a running program would.
func drive(m *Model, keys ...string) {
	for _, k := range keys {
		var msg tea.Msg
		switch k {
		case "tab":
			msg = tea.KeyPressMsg{Code: tea.KeyTab}
		case "shift+tab":
			msg = tea.KeyPressMsg{Code: tea.KeyTab, Mod: tea.ModShift}
		case "enter":
			msg = tea.KeyPressMsg{Code: tea.KeyEnter}
		case "esc":
			msg = tea.KeyPressMsg{Code: tea.KeyEscape}
		case "down":
			msg = tea.KeyPressMsg{Code: tea.KeyDown}
		case "backspace":
			msg = tea.KeyPressMsg{Code: tea.KeyBackspace}
		default:
			msg = tea.KeyPressMsg{Code: []rune(k)[0], Text: k}
		}
		for i := 0; msg != nil && i < 4; i++ {
			_, cmd := m.Update(msg)
			msg = nil
			if cmd != nil {
				msg = cmd()
			}
		}
	}
}

func golden(t *testing.T, m *Model, name string, w, h int) {
	t.Helper()
	got := m.View().Content
	checkShape(t, got, w, h)
	got = ansi.Strip(got)
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./tui -run TestOperator -update)", err)
	}
	if got != string(want) {
		t.Errorf("screen differs from %s (rerun with -update if intended):\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

func operatorModel(d Data, w, h int) (*Model, *fakeOperator) {
	f := &fakeOperator{nopBackend: nopBackend{d}}
	m := NewStatic(d, true)
	m.opt.Backend = f
	m.SetSize(w, h)
	return m, f
}

// TestOperatorReplay: r on the DLQ panel's selected reason group shows the
// dry run's count first, then sends at the rate typed; esc sends nothing.
func TestOperatorReplay(t *testing.T) {
	d := fixture(12)
	m, f := operatorModel(d, 80, 24)
	drive(m, "shift+tab", "shift+tab", "down") // the DLQ panel, second reason
	drive(m, "r")
	if len(f.replayPlans) != 1 || f.replayPlans[0] != "wrong width: 7 features, model wants 16" {
		t.Fatalf("planned %v, want the selected group's reason", f.replayPlans)
	}
	golden(t, m, "replay_plan_80x24", 80, 24)
	drive(m, "esc")
	if len(f.started) != 0 || !strings.Contains(m.status, "nothing changed") {
		t.Fatalf("esc: started %v, status %q", f.started, m.status)
	}
	drive(m, "r", "backspace", "backspace", "backspace", "2", "5", "enter")
	if len(f.started) != 1 || f.started[0] != 25 {
		t.Fatalf("started %v, want one replay at 25/s", f.started)
	}
	// The running replay shows in the panel.
	d.Ops.Replay = &ReplayRun{Reason: "invalid JSON", Sent: 120, Total: 400, Rate: 25, ETA: 11 * time.Second}
	m.setData(d)
	if v := ansi.Strip(m.View().Content); !strings.Contains(v, "replaying invalid JSON 120/400 · 25/s · ETA 11s") {
		t.Errorf("panel does not show the replay's progress:\n%s", v)
	}
	drive(m, "r")
	if len(f.replayPlans) != 2 || !strings.Contains(m.status, "still running") {
		t.Errorf("a second replay while one runs: plans %v, status %q", f.replayPlans, m.status)
	}
}

// TestOperatorReset: o takes the lag filter's partitions, plans (changing
// nothing), and applies only on y; a bad target stays in the fields with
// the error; a refusal keeps the plan on screen with why.
func TestOperatorReset(t *testing.T) {
	m, f := operatorModel(fixture(12), 120, 40)
	drive(m, "/", "1", "enter", "o")
	golden(t, m, "reset_fields_120x40", 120, 40)
	for range len("latest") {
		drive(m, "backspace")
	}
	drive(m, "b", "o", "g", "u", "s", "enter")
	if v := ansi.Strip(m.View().Content); !strings.Contains(v, `--to "bogus"`) || m.ops.phase != opsEditing {
		t.Fatalf("a bad target: phase %v\n%s", m.ops.phase, v)
	}
	for range len("bogus") {
		drive(m, "backspace")
	}
	drive(m, "l", "a", "t", "e", "s", "t", "enter")
	if got := f.resetPlans[len(f.resetPlans)-1]; got != [2]string{"1,6,10,11", "latest"} {
		t.Fatalf("planned %v, want the filter's rows (1, 10, 11 and 6, owned by inferops-w1) to latest", got)
	}
	golden(t, m, "reset_plan_120x40", 120, 40)
	if f.applied != 0 {
		t.Fatal("applied before y")
	}
	f.applyErr = errors.New("the group has members: group tf_serving_group has 1 member(s) (other-host-w1)")
	drive(m, "y")
	if f.applied != 1 || m.ov != ovReset || !strings.Contains(ansi.Strip(m.View().Content), "has 1 member") {
		t.Fatalf("a refused reset: applied %d, overlay %v", f.applied, m.ov)
	}
	f.applyErr = nil
	drive(m, "y")
	if f.applied != 2 || m.ov != ovNone || !strings.Contains(m.status, "moved on 2 partitions") {
		t.Fatalf("reset: applied %d, overlay %v, status %q", f.applied, m.ov, m.status)
	}
}

// TestOperatorReadOnly: --read-only refuses both actions and says so.
func TestOperatorReadOnly(t *testing.T) {
	d := attachedReadOnly(fixture(12))
	m, f := operatorModel(d, 80, 24)
	drive(m, "r")
	if len(f.replayPlans) != 0 || !strings.Contains(m.status, "read-only") {
		t.Errorf("read-only replay: plans %v, status %q", f.replayPlans, m.status)
	}
	drive(m, "o")
	if m.ov != ovNone || !strings.Contains(m.status, "cannot reset offsets: read-only (--read-only)") {
		t.Errorf("read-only reset: overlay %v, status %q", m.ov, m.status)
	}
	// A backend without operator actions says so too.
	s := NewStatic(fixture(12), true)
	s.opt.Backend = nopBackend{fixture(12)}
	drive(s, "r")
	if !strings.Contains(s.status, "no Kafka access") {
		t.Errorf("no operator backend: status %q", s.status)
	}
}
