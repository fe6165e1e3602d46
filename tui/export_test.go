package tui

import (
	"errors"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
)

// exportBackend is nopBackend whose export succeeds or fails as told.
type exportBackend struct {
	nopBackend
	err   error
	calls *int
}

func (b exportBackend) ExportReport() (string, string, error) {
	*b.calls++
	if b.err != nil {
		return "", "", b.err
	}
	return "/state/reports/r.md", "/state/reports/r.json", nil
}

// TestExportKey: e exports in every mode, read-only included (it writes
// only a local file), runs as a command off the UI goroutine, and the
// status line says where the report went or why it failed.
func TestExportKey(t *testing.T) {
	tests := []struct {
		name string
		data Data
		err  error
		want string
	}{
		{"embedded", fixture(12), nil, "report written to /state/reports/r.md (JSON twin /state/reports/r.json)"},
		{"attached read-only", attachedReadOnly(fixture(12)), nil, "report written to /state/reports/r.md"},
		{"write fails", fixture(12), errors.New("create report directory /x: permission denied"), "export triage report: create report directory /x: permission denied"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			m := NewStatic(tc.data, true)
			m.opt.Backend = exportBackend{nopBackend{tc.data}, tc.err, &calls}
			m.SetSize(120, 40)
			_, cmd := m.Update(tea.KeyPressMsg{Code: 'e', Text: "e"})
			if cmd == nil || calls != 0 {
				t.Fatalf("e must return a command and not export on the UI goroutine (cmd=%v calls=%d)", cmd != nil, calls)
			}
			m.Update(cmd())
			if calls != 1 {
				t.Fatalf("ExportReport called %d times", calls)
			}
			if !strings.Contains(m.View().Content, tc.want) {
				t.Errorf("screen lacks %q:\n%s", tc.want, m.View().Content)
			}
		})
	}
	t.Run("static view", func(t *testing.T) {
		m := NewStatic(fixture(12), true)
		m.SetSize(120, 40)
		if _, cmd := m.Update(tea.KeyPressMsg{Code: 'e', Text: "e"}); cmd != nil || !strings.Contains(m.View().Content, "cannot export a report: static view") {
			t.Errorf("static view: cmd=%v\n%s", cmd != nil, m.View().Content)
		}
	})
}
