package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// fleetRec is a backend that steers a fleet and records each call.
type fleetRec struct {
	nopBackend
	calls []string
	err   error
}

func (b *fleetRec) Snapshot() Data { return b.d }
func (b *fleetRec) ScaleFleet(_ context.Context, n int) (string, error) {
	return b.rec(fmt.Sprintf("fleet %d", n), fmt.Sprintf("4/4 instances applied scale to %d workers in 0.2 s", n))
}
func (b *fleetRec) ScaleInstance(_ context.Context, name string, n int) (string, error) {
	return b.rec(fmt.Sprintf("instance %s %d", name, n), "4/4 instances applied scale "+name)
}
func (b *fleetRec) TargetFleet(_ context.Context, spec string) (string, error) {
	return b.rec("target "+spec, "4/4 instances applied target "+spec)
}
func (b *fleetRec) PauseFleet(_ context.Context, p bool) (string, error) {
	return b.rec(fmt.Sprintf("pause %v", p), "4/4 instances applied pause")
}
func (b *fleetRec) ScaleTo(context.Context, int) error {
	b.calls = append(b.calls, "local")
	return nil
}
func (b *fleetRec) rec(call, ack string) (string, error) {
	b.calls = append(b.calls, call)
	return ack, b.err
}

// TestFleetKeys: with the fleet known, + and - change the fleet's total
// (from its desired state) after y on an attached cluster, or the share of
// the instance under the workers panel's cursor; a pinned or lost
// instance is refused with why; v and space go to the fleet; the status
// line shows the acknowledgement or the error; and before the fleet's
// first view nothing happens at all.
func TestFleetKeys(t *testing.T) {
	d := withWorkerFleet(fixture(12), 6, 2) // attached, --no-worker, desired total 10
	drive := func(b *fleetRec, keys ...string) *Model {
		m := NewStatic(d, true)
		b.d = d
		m.opt.Backend = b
		m.SetSize(120, 40)
		for _, k := range keys {
			var msg tea.KeyPressMsg
			switch k {
			case "tab":
				msg = tea.KeyPressMsg{Code: tea.KeyTab}
			case "down":
				msg = tea.KeyPressMsg{Code: tea.KeyDown}
			case "enter":
				msg = tea.KeyPressMsg{Code: tea.KeyEnter}
			case "space":
				msg = tea.KeyPressMsg{Code: tea.KeySpace, Text: " "}
			default:
				msg = tea.KeyPressMsg{Code: []rune(k)[0], Text: k}
			}
			_, cmd := m.Update(msg)
			for cmd != nil {
				out := cmd()
				if out == nil {
					break
				}
				_, cmd = m.Update(out)
			}
		}
		return m
	}
	screen := func(m *Model) string { return ansi.Strip(m.View().Content) }
	tab4 := []string{"tab", "tab", "tab", "tab"}
	cases := []struct {
		name  string
		keys  []string
		calls string
		shows string
	}{
		{"+ asks first", []string{"+"}, "", "scale the fleet (group tf_serving_group) to 11 workers over 4 instances?"},
		{"+ y", []string{"+", "y"}, "fleet 11", "4/4 instances applied scale to 11 workers"},
		{"+ n", []string{"+", "n"}, "", "cancelled"},
		{"+ + y counts both", []string{"+", "y", "+", "y"}, "fleet 11,fleet 12", ""},
		{"- y", []string{"-", "y"}, "fleet 9", ""},
		{"instance share", append(tab4, "down", "+", "y"), "instance web-02 3", "4/4 instances applied scale web-02"},
		{"pinned refused", append(tab4, "down", "down", "down", "down", "+"), "", "web-05 runs with --control=ignore (pinned)"},
		{"lost refused", append(tab4, "down", "down", "down", "down", "down", "-"), "", "web-06 is lost"},
		{"v picks a version", []string{"v", "down", "enter", "y"}, "target 1", "4/4 instances applied target 1"},
		{"space pauses", []string{"space", "y"}, "pause true", "4/4 instances applied pause"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := &fleetRec{}
			m := drive(b, tc.keys...)
			if got := strings.Join(b.calls, ","); got != tc.calls {
				t.Errorf("calls %q, want %q", got, tc.calls)
			}
			if scr := screen(m); tc.shows != "" && !strings.Contains(scr, tc.shows) {
				t.Errorf("screen lacks %q:\n%s", tc.shows, scr)
			}
		})
	}
	t.Run("a failed change says what was asked", func(t *testing.T) {
		b := &fleetRec{err: errors.New("read-only (cannot write the fleet's topics: TOPIC_AUTHORIZATION_FAILED)")}
		m := drive(b, "+", "y")
		if scr := screen(m); !strings.Contains(scr, "scale the fleet to 11 workers: read-only (cannot write") {
			t.Errorf("screen:\n%s", scr)
		}
	})
	t.Run("nothing before the fleet's first view", func(t *testing.T) {
		loading := d
		loading.Fleet = FleetData{}
		b := &fleetRec{}
		m := NewStatic(loading, true)
		b.d = loading
		m.opt.Backend = b
		m.SetSize(120, 40)
		for _, k := range []string{"+", "space", "v"} {
			press(m, k)
			if len(b.calls) != 0 || m.ov != ovNone || !strings.Contains(screen(m), "the fleet is still being read") {
				t.Fatalf("%s before the fleet was read: calls %v, overlay %d\n%s", k, b.calls, m.ov, screen(m))
			}
		}
	})
}
