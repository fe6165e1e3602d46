package tui

import "charm.land/bubbles/v2/key"

// KeyMap is every key the console answers to, in one place: the help
// overlay, the footer and Update all read it. No ctrl+a/b/d: tmux and
// screen own them.
type KeyMap struct {
	ScaleUp, ScaleDown key.Binding
	Version, Perf      key.Binding
	Pause, Export      key.Binding
	Replay, Reset      key.Binding
	Rollout            key.Binding // focus the rollout panel
	Promote, Abort     key.Binding // while the rollout panel has the focus
	Resume             key.Binding
	Next, Prev         key.Binding
	Up, Down           key.Binding
	PageUp, PageDown   key.Binding
	Top, Bottom        key.Binding
	Sort, Reverse      key.Binding
	Filter             key.Binding
	Slower, Faster     key.Binding
	Help               key.Binding
	Quit               key.Binding
	Select, Back       key.Binding
	Yes, No            key.Binding
}

// DefaultKeyMap returns the console's keys (k9s conventions where SREs
// already know one).
func DefaultKeyMap() KeyMap {
	b := func(help, desc string, keys ...string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
	}
	return KeyMap{
		ScaleUp:   b("+", "add a fleet worker", "+", "="),
		ScaleDown: b("-", "remove a fleet worker", "-", "_"),
		Version:   b("v", "pick model version", "v"),
		Perf:      b("p", "perf test", "p"),
		Pause:     b("space", "pause/resume", "space"),
		Export:    b("e", "export triage report", "e"),
		Replay:    b("r", "replay DLQ reason group", "r"),
		Reset:     b("o", "reset offsets of lag rows", "o"),
		Rollout:   b("R", "rollout panel", "R"),
		Promote:   b("P", "rollout: promote now", "P"),
		Abort:     b("A", "rollout: abort", "A"),
		Resume:    b("C", "rollout: resume if held", "C"),
		Next:      b("tab", "next panel", "tab"),
		Prev:      b("shift+tab", "previous panel", "shift+tab"),
		Up:        b("↑/k", "scroll up", "up", "k"),
		Down:      b("↓/j", "scroll down", "down", "j"),
		PageUp:    b("pgup", "page up", "pgup"),
		PageDown:  b("pgdn", "page down", "pgdown"),
		Top:       b("g/G", "top/bottom", "g", "home"),
		Bottom:    b("G", "bottom", "G", "end"),
		Sort:      b("s", "sort by next column", "s"),
		Reverse:   b("S", "reverse sort", "S"),
		Filter:    b("/", "filter partitions", "/"),
		Slower:    b("[", "demo traffic slower", "["),
		Faster:    b("]", "demo traffic faster", "]"),
		Help:      b("?", "help", "?"),
		Quit:      b("q", "quit (drains the worker)", "q", "ctrl+c"),
		Select:    b("enter", "choose", "enter"),
		Back:      b("esc", "close", "esc"),
		Yes:       b("y", "confirm", "y", "Y"),
		No:        b("n", "cancel", "n", "N", "esc"),
	}
}

// ShortHelp is the footer.
func (k KeyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.ScaleUp, k.ScaleDown, k.Version, k.Perf, k.Pause, k.Next, k.Filter, k.Help, k.Quit}
}

// FullHelp is the help overlay, one column per group.
func (k KeyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.ScaleUp, k.ScaleDown, k.Pause, k.Version, k.Perf, k.Export, k.Replay, k.Reset, k.Slower, k.Faster},
		{k.Rollout, k.Promote, k.Abort, k.Resume},
		{k.Next, k.Prev, k.Up, k.Down, k.PageUp, k.PageDown, k.Top},
		{k.Sort, k.Reverse, k.Filter, k.Select, k.Back, k.Help, k.Quit},
	}
}
