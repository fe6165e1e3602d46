package tui

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// Options configures a console Model.
type Options struct {
	Backend Backend
	// Refresh is how often the view-model is re-read; default 1 s.
	Refresh time.Duration
	// NoColor renders without colours (NO_COLOR).
	NoColor bool
	// Logger receives the console's own log lines; never the screen.
	Logger *slog.Logger
	// ActionTimeout bounds one scale/version/perf command; default 60 s.
	ActionTimeout time.Duration
}

// SetDefaults fills zero fields.
func (o *Options) SetDefaults() {
	if o.Refresh <= 0 {
		o.Refresh = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ActionTimeout <= 0 {
		o.ActionTimeout = 60 * time.Second
	}
}

// Validate reports options the console cannot run with.
func (o *Options) Validate() error {
	if o.Backend == nil {
		return fmt.Errorf("console: no backend (the pipeline adapter) was given")
	}
	if o.Refresh < 100*time.Millisecond {
		return fmt.Errorf("console: refresh %s is below 100ms; it would burn CPU and SSH bandwidth", o.Refresh)
	}
	return nil
}

type overlay int

const (
	ovNone overlay = iota
	ovHelp
	ovPicker
	ovPerfMenu
	ovConfirm
	ovReplay // operator.go
	ovReset
	ovMode // rollout.go: switch now or roll out gradually
)

// pending is an action waiting for the y/n of a confirmation.
type pending struct {
	prompt string
	run    func() tea.Msg
}

// Model is the console: a bubbletea v2 model rendering one Data.
type Model struct {
	opt  Options
	keys KeyMap
	st   Styles
	data Data

	w, h   int
	focus  panelID
	act    [numPanels]int // activation sequence: the slot shows its latest
	actSeq int

	// lag table
	sortCol   int
	sortAsc   bool
	filter    string
	filtering bool
	order     []int // indices into data.Kafka.Partitions, filtered and sorted
	owner     func(string) string
	scroll    [numPanels]int

	ov       overlay
	pickIdx  int
	picks    []pick
	mode     pick   // the version the mode menu is for
	rollID   string // the rollout last seen, to bring its panel forward once
	confirm  *pending
	ops      opsState // the open replay or reset overlay
	status   string
	statusLv Level
	statusAt time.Time

	// scaleTo is the worker count the last +/- asked for until the data
	// shows it (-1: none pending), so "+ + +" adds three workers even though
	// the snapshot still shows the old count while the group rebalances.
	scaleTo int
	instTo  instPending // the same for one instance's share (fleet.go)

	cache string
	dirty bool
}

type pick struct{ label, spec string }

type tickMsg time.Time

// RefreshMsg makes the console re-read its backend now, outside the timer
// (tests driving the model without a running program send it).
type RefreshMsg struct{}

// actionMsg reports the outcome of a backend command.
type actionMsg struct {
	what  string
	err   error
	scale bool
}

// New returns a console model.
func New(opt Options) (*Model, error) {
	opt.SetDefaults()
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	m := &Model{opt: opt, keys: DefaultKeyMap(), st: DefaultStyles(opt.NoColor), dirty: true, sortCol: colPartition, sortAsc: true, scaleTo: -1}
	m.setData(opt.Backend.Snapshot())
	return m, nil
}

// NewStatic returns a model that renders fixed data (golden tests,
// screenshots of a given state); its keys still move focus and overlays.
func NewStatic(d Data, noColor bool) *Model {
	m := &Model{opt: Options{}, keys: DefaultKeyMap(), st: DefaultStyles(noColor), dirty: true, sortCol: colPartition, sortAsc: true, scaleTo: -1}
	m.opt.SetDefaults()
	m.setData(d)
	return m
}

// SetSize sets the terminal size (tests; the program sends WindowSizeMsg).
func (m *Model) SetSize(w, h int) { m.w, m.h, m.dirty = w, h, true }

func (m *Model) tick() tea.Cmd {
	return tea.Tick(m.opt.Refresh, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// Init starts the refresh timer.
func (m *Model) Init() tea.Cmd {
	if m.opt.Backend == nil {
		return nil
	}
	return m.tick()
}

func (m *Model) setData(d Data) {
	m.data = d
	// Trim what the owner column shows: members that own nothing (an
	// idle debugging consumer) must not keep the prefix on every row.
	names := make([]string, 0, len(d.Kafka.Partitions))
	for _, p := range d.Kafka.Partitions {
		names = append(names, p.Owner)
	}
	m.owner = ownerTrim(names)
	switch {
	case d.Fleet.Known && d.Fleet.DesiredWorkers == m.scaleTo:
		m.scaleTo = -1
	case !d.Fleet.Known && d.Header.Workers == m.scaleTo:
		m.scaleTo = -1
	}
	if p := m.instTo; p.name != "" {
		for _, i := range d.Fleet.Instances {
			if i.Name == p.name && i.Workers == p.n {
				m.instTo = instPending{}
			}
		}
	}
	switch r := &d.Rollout; {
	case !r.Exists():
		if m.focus == pRollout {
			m.focus = pLag
		}
	case r.ID != m.rollID:
		// A new rollout comes to the front of its slot once; after that
		// the operator's own choice of panel stands.
		m.rollID = r.ID
		m.activate(pRollout)
	}
	m.resort()
	m.dirty = true
}

// Update handles input, refreshes and action results.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.SetSize(msg.Width, msg.Height)
	case RefreshMsg:
		if m.opt.Backend != nil {
			m.setData(m.opt.Backend.Snapshot())
		}
	case tickMsg:
		if m.opt.Backend != nil {
			m.setData(m.opt.Backend.Snapshot())
		}
		if m.status != "" && m.data.Now.Sub(m.statusAt) > 15*time.Second {
			m.status = ""
		}
		return m, m.tick()
	case actionMsg:
		if msg.err != nil && msg.scale {
			m.scaleTo, m.instTo = -1, instPending{}
		}
		if msg.err != nil {
			m.setStatus(Error, msg.what+": "+msg.err.Error())
			m.opt.Logger.Error("console action failed", "action", msg.what, "err", msg.err)
		} else {
			m.setStatus(Info, msg.what)
			m.opt.Logger.Info("console action", "action", msg.what)
		}
		if m.opt.Backend != nil {
			m.setData(m.opt.Backend.Snapshot())
		}
	case replayPlannedMsg, resetPlannedMsg:
		m.onOpsMsg(msg)
	case opsDoneMsg:
		m.onOpsDone(msg)
		return m.Update(actionMsg{what: msg.what, err: msg.err})
	case tea.KeyPressMsg:
		return m, m.key(msg)
	}
	return m, nil
}

func (m *Model) setStatus(l Level, s string) {
	m.status, m.statusLv, m.statusAt, m.dirty = s, l, m.data.Now, true
	if m.statusAt.IsZero() {
		m.statusAt = time.Now()
	}
}

func (m *Model) activate(p panelID) {
	m.actSeq++
	m.act[p] = m.actSeq
}

// key is the one dispatcher for every key press.
func (m *Model) key(k tea.KeyPressMsg) tea.Cmd {
	m.dirty = true
	if k.String() == "ctrl+c" {
		return tea.Quit
	}
	switch m.ov {
	case ovHelp:
		m.ov = ovNone
		return nil
	case ovConfirm:
		switch {
		case key.Matches(k, m.keys.Yes):
			p := m.confirm
			m.ov, m.confirm = ovNone, nil
			return p.run
		case key.Matches(k, m.keys.No):
			m.ov, m.confirm, m.scaleTo, m.instTo = ovNone, nil, -1, instPending{}
			m.setStatus(Info, "cancelled")
		}
		return nil
	case ovPicker, ovPerfMenu:
		return m.menuKey(k)
	case ovReplay, ovReset:
		return m.opsKey(k)
	case ovMode:
		return m.modeKey(k)
	}
	if m.filtering {
		return m.filterKey(k)
	}
	if m.focus == pRollout {
		if cmd, ok := m.rolloutKey(k); ok {
			return cmd
		}
	}
	ks := m.keys
	switch {
	case key.Matches(k, ks.Quit):
		return tea.Quit
	case key.Matches(k, ks.Help):
		m.ov = ovHelp
	case key.Matches(k, ks.Next):
		m.cycle(1)
	case key.Matches(k, ks.Prev):
		m.cycle(numPanels - 1)
	case key.Matches(k, ks.Rollout):
		if !m.rolloutShown() {
			m.setStatus(Warn, "no rollout: start one from the version menu (v, a version, roll out gradually)")
			return nil
		}
		m.focusOn(pRollout)
	case key.Matches(k, ks.Up):
		m.scrollBy(-1)
	case key.Matches(k, ks.Down):
		m.scrollBy(1)
	case key.Matches(k, ks.PageUp):
		m.scrollBy(-10)
	case key.Matches(k, ks.PageDown):
		m.scrollBy(10)
	case key.Matches(k, ks.Top):
		m.scroll[m.focus] = 0
	case key.Matches(k, ks.Bottom):
		m.scrollBy(1 << 30)
	case key.Matches(k, ks.Sort):
		m.sortCol = (m.sortCol + 1) % numCols
		m.sortAsc = m.sortCol == colPartition || m.sortCol == colOwner
		m.resort()
		m.focusOn(pLag)
	case key.Matches(k, ks.Reverse):
		m.sortAsc = !m.sortAsc
		m.resort()
		m.focusOn(pLag)
	case key.Matches(k, ks.Filter):
		m.filtering = true
		m.focusOn(pLag)
	case key.Matches(k, ks.Back):
		if m.filter != "" {
			m.filter = ""
			m.resort()
		}
	case key.Matches(k, ks.ScaleUp):
		return m.scale(+1)
	case key.Matches(k, ks.ScaleDown):
		return m.scale(-1)
	case key.Matches(k, ks.Pause):
		return m.pause()
	case key.Matches(k, ks.Version):
		if m.denied("switch the model version") || m.fleetLoading("switch the model version") {
			return nil
		}
		m.openPicker()
	case key.Matches(k, ks.Perf):
		if m.data.Perf.Running != nil {
			// Cancelling throws the run's figures away: always ask.
			m.focusOn(pPerf)
			m.ov = ovConfirm
			m.confirm = &pending{prompt: "cancel the running perf test (" + m.data.Perf.Running.Scenario + ")?", run: func() tea.Msg {
				return actionMsg{what: "perf test cancelled", err: m.opt.Backend.CancelPerf()}
			}}
			return nil
		}
		if m.denied("run a perf test") {
			return nil
		}
		m.ov, m.pickIdx = ovPerfMenu, 0
	case key.Matches(k, ks.Export):
		return m.export()
	case key.Matches(k, ks.Replay):
		return m.openReplay()
	case key.Matches(k, ks.Reset):
		return m.openReset()
	case key.Matches(k, ks.Slower), key.Matches(k, ks.Faster):
		step := 1
		if key.Matches(k, ks.Slower) {
			step = -1
		}
		if m.data.Mode != "embedded" || m.opt.Backend == nil {
			m.setStatus(Warn, "demo traffic runs only in embedded mode")
			return nil
		}
		r, err := m.opt.Backend.AdjustDemoRate(step)
		if err != nil {
			m.setStatus(Error, "demo traffic: "+err.Error())
		} else {
			m.setStatus(Info, "demo traffic "+num(r)+" msg/s")
		}
	}
	return nil
}

// cycle moves the focus by step panels in tab order, past the rollout
// panel while there is no rollout.
func (m *Model) cycle(step panelID) {
	m.focus = (m.focus + step) % numPanels
	if m.focus == pRollout && !m.rolloutShown() {
		m.focus = (m.focus + step) % numPanels
	}
	m.activate(m.focus)
}

// focusOn moves focus to p and brings its slot to the front.
func (m *Model) focusOn(p panelID) {
	m.focus = p
	m.activate(p)
}

// denied says why an action is not allowed (read-only or no backend).
func (m *Model) denied(what string) bool {
	if m.opt.Backend == nil {
		m.setStatus(Warn, "cannot "+what+": static view")
		return true
	}
	if m.data.ReadOnly != "" {
		m.setStatus(Warn, "cannot "+what+": read-only ("+m.data.ReadOnly+")")
		return true
	}
	return false
}

// ask runs fn now, or after a y/n when the cluster is attached (someone
// else's production) and the action is destructive.
func (m *Model) ask(prompt string, destructive bool, fn func() tea.Msg) tea.Cmd {
	if destructive && m.data.Attached {
		m.ov = ovConfirm
		m.confirm = &pending{prompt: prompt, run: fn}
		return nil
	}
	return fn
}

func (m *Model) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), m.opt.ActionTimeout)
}

func (m *Model) scale(delta int) tea.Cmd {
	if m.denied("scale workers") || m.fleetLoading("scale workers") {
		return nil
	}
	if fb, ok := m.fleetBackend(); ok {
		return m.scaleFleet(fb, delta)
	}
	if m.data.NoWorker {
		why := ""
		if e := m.data.Fleet.Err; e != "" {
			why = "; the fleet is not readable: " + e
		}
		m.setStatus(Warn, "cannot scale: started with --no-worker"+why)
		return nil
	}
	base := m.data.Header.Workers
	if m.scaleTo >= 0 {
		base = m.scaleTo
	}
	n := base + delta
	if n < 0 {
		m.setStatus(Warn, "already at 0 workers (consumption stopped)")
		return nil
	}
	if np := len(m.data.Kafka.Partitions); delta > 0 && np > 0 && n > np {
		m.setStatus(Warn, fmt.Sprintf("%d workers is the most that can consume %d partitions", np, np))
		return nil
	}
	m.setStatus(Info, fmt.Sprintf("scaling to %d workers…", n))
	m.scaleTo = n
	return m.ask(fmt.Sprintf("scale group %s to %d local workers?", m.data.Group, n), true, func() tea.Msg {
		ctx, cancel := m.ctx()
		defer cancel()
		return actionMsg{fmt.Sprintf("scaled to %d workers", n), m.opt.Backend.ScaleTo(ctx, n), true}
	})
}

func (m *Model) pause() tea.Cmd {
	if m.denied("pause consumption") || m.fleetLoading("pause consumption") {
		return nil
	}
	if fb, ok := m.fleetBackend(); ok {
		return m.pauseFleet(fb)
	}
	p := !m.data.Header.Paused
	what := "consumption resumed"
	if p {
		what = "consumption paused"
	}
	return m.ask(strings.TrimSuffix(what, "d")+"?", p, func() tea.Msg {
		ctx, cancel := m.ctx()
		defer cancel()
		return actionMsg{what: what, err: m.opt.Backend.SetPaused(ctx, p)}
	})
}

// export writes the triage report off the UI goroutine (it reads the
// backend's held state and writes two files). Not gated by read-only: it
// changes nothing but a local file.
func (m *Model) export() tea.Cmd {
	if m.opt.Backend == nil {
		m.setStatus(Warn, "cannot export a report: static view")
		return nil
	}
	m.setStatus(Info, "writing the triage report…")
	b := m.opt.Backend
	return func() tea.Msg {
		md, js, err := b.ExportReport()
		if err != nil {
			return actionMsg{what: "export triage report", err: err}
		}
		return actionMsg{what: "report written to " + md + " (JSON twin " + js + ")"}
	}
}

func (m *Model) openPicker() {
	m.picks = m.picks[:0]
	m.picks = append(m.picks, pick{"latest (highest AVAILABLE)", "latest"})
	labels := map[string]bool{}
	for _, v := range m.data.Models.Versions {
		m.picks = append(m.picks, pick{fmt.Sprintf("version %d  %s", v.Version, v.State), strconv.FormatInt(v.Version, 10)})
		for _, l := range v.Labels {
			labels[l] = true
		}
	}
	ls := make([]string, 0, len(labels))
	for l := range labels {
		ls = append(ls, l)
	}
	sort.Strings(ls)
	for _, l := range ls {
		m.picks = append(m.picks, pick{"label " + l, "label:" + l})
	}
	m.ov, m.pickIdx = ovPicker, 0
}

func (m *Model) menuKey(k tea.KeyPressMsg) tea.Cmd {
	n := len(m.picks)
	if m.ov == ovPerfMenu {
		n = len(m.data.Perf.Scenarios)
	}
	switch {
	case key.Matches(k, m.keys.Back), key.Matches(k, m.keys.Quit):
		m.ov = ovNone
	case key.Matches(k, m.keys.Up):
		if m.pickIdx > 0 {
			m.pickIdx--
		}
	case key.Matches(k, m.keys.Down):
		if m.pickIdx < n-1 {
			m.pickIdx++
		}
	case key.Matches(k, m.keys.Select):
		if n == 0 {
			m.ov = ovNone
			return nil
		}
		if m.ov == ovPicker {
			p := m.picks[m.pickIdx]
			m.ov = ovNone
			if _, ok := m.roller(); ok && m.data.Fleet.Known {
				m.openMode(p)
				return nil
			}
			return m.ask(m.targetPrompt(p.label), true, m.targetCmd(p.spec))
		}
		sc := m.data.Perf.Scenarios[m.pickIdx]
		m.ov = ovNone
		m.focusOn(pPerf)
		return m.ask(fmt.Sprintf("run perf scenario %s (%s msg/s) against this cluster?", sc.Name, num(sc.TargetRate)), true, func() tea.Msg {
			ctx, cancel := m.ctx()
			defer cancel()
			return actionMsg{what: "perf test " + sc.Name + " started", err: m.opt.Backend.StartPerf(ctx, sc.Name)}
		})
	}
	return nil
}

func (m *Model) filterKey(k tea.KeyPressMsg) tea.Cmd {
	switch k.String() {
	case "enter":
		m.filtering = false
	case "esc":
		m.filtering, m.filter = false, ""
	case "backspace":
		if m.filter != "" {
			r := []rune(m.filter)
			m.filter = string(r[:len(r)-1])
		}
	default:
		if k.Text != "" && len(m.filter) < 32 {
			m.filter += k.Text
		}
	}
	m.scroll[pLag] = 0
	m.resort()
	return nil
}

func (m *Model) scrollBy(d int) {
	p := m.focus
	n := m.rows(p)
	s := m.scroll[p] + d
	if s > n-1 {
		s = n - 1
	}
	if s < 0 {
		s = 0
	}
	m.scroll[p] = s
}

// rows is how many scrollable rows a panel has.
func (m *Model) rows(p panelID) int {
	switch p {
	case pLag:
		return len(m.order)
	case pEvents:
		return len(m.data.Events.Items)
	case pDLQ:
		return len(m.dlqGroups()) // the selection moves by reason group
	case pWorkers:
		if m.data.Fleet.Known {
			return len(m.data.Fleet.Instances) // the cursor moves by instance
		}
		return len(m.data.Workers.Members)
	case pModels:
		return len(m.data.Models.Versions)
	}
	return 0
}

// View renders the screen; it reuses the last frame when neither data nor
// input changed, so an idle console costs nothing between refreshes.
func (m *Model) View() tea.View {
	if m.dirty {
		m.cache = m.Render()
		m.dirty = false
	}
	v := tea.NewView(m.cache)
	v.AltScreen = true
	v.WindowTitle = "inferops"
	return v
}
