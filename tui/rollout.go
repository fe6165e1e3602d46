// Gradual rollouts from the console: the version menu offers "roll out
// gradually" next to "switch now" when the backend implements Roller, the
// rollout panel (panel_rollout.go) shows the plan, the gates and the
// comparison, and while it has the focus P, A and C promote, abort and
// resume the rollout, each after a y/n.

package tui

import (
	"context"
	"fmt"
	"time"

	tea "charm.land/bubbletea/v2"
)

// Roller is what a backend that runs gradual rollouts adds to Backend
// (tui/live does, over the fleet's controller and the rollout engine). A
// rollout lives in the group's desired state, so any process can promote,
// abort or resume it; the string each call returns is what the status line
// and the event log say.
type Roller interface {
	// StartRollout starts moving the fleet to `to` ("2", "label:NAME") on
	// the default plan (RolloutData.DefaultPlan) and returns once the
	// rollout is in the desired state; the backend drives it from then on
	// and its progress shows in Data.Rollout.
	StartRollout(ctx context.Context, to string) (string, error)
	// PromoteRollout sends every record to the candidate now, skipping
	// the remaining steps.
	PromoteRollout(ctx context.Context) (string, error)
	// AbortRollout sends every record back to the baseline.
	AbortRollout(ctx context.Context) (string, error)
	// ResumeRollout drives a rollout whose driver was lost from here,
	// from the step it holds.
	ResumeRollout(ctx context.Context) (string, error)
}

// Rollout states as RolloutData carries them.
const (
	RolloutNone       = "" // also "none"
	RolloutWarming    = "warming"
	RolloutCanary     = "canary"
	RolloutHolding    = "holding" // active, its driver lost: the step holds
	RolloutPromoted   = "promoted"
	RolloutRolledBack = "rolled_back"
	RolloutAborted    = "aborted"
)

// Gate states.
const (
	GatePass   = "pass"
	GateWait   = "wait"
	GateBreach = "breach"
)

// RolloutData is the group's rollout as the rollout engine's status says
// it (the last one, once ended, until another starts).
type RolloutData struct {
	At  time.Time
	Err string
	// DefaultPlan is the plan "roll out gradually" starts, in one line
	// ("steps 1,10,50,100% · hold 5m · gates ..."); "" = the backend has
	// no defaults to show.
	DefaultPlan string

	State               string // RolloutNone ... RolloutAborted
	ID                  string
	Baseline, Candidate string // target spellings: "1", "label:canary"
	Summary             string // one line
	Steps               []float64
	Step                int     // index into Steps; -1 before the first
	Share, Shadow       float64 // percent
	StepElapsed, Hold   time.Duration
	PassingFor          time.Duration // every gate passing, in a row, this step
	Message             string        // what the driver is doing
	Warmup              string        // the warm-up's result, in words
	Driver              string        // "user@host pid N"
	DriverAlive         bool
	DriverAge           time.Duration // since its last heartbeat
	Instances           int           // live instances at the step
	Pending             []string      // live instances not (yet) at it
	Reason              string        // why it ended
	Gates               []RolloutGate
	GatesBy             string             // "driver" or "this process"
	Comparison          *RolloutComparison // nil: none (the rollout ended)
	Advice              string
}

// RolloutComparison is baseline and candidate side by side, and the
// shadow when the rollout mirrors records.
type RolloutComparison struct {
	Baseline, Candidate RolloutSide
	Shadow              *RolloutSide
}

// RolloutGate is one check of the candidate against its limit.
type RolloutGate struct {
	Name, State, Value, Limit, Detail string
}

// RolloutSide is one side of the comparison over the fleet's last 10 s.
type RolloutSide struct {
	Target    string
	Version   int64
	RowRate   float64 // rows/s
	Predict   Percentiles
	E2EP99    time.Duration
	ErrorRate float64 // failed Predicts; -1 unknown (no Predicts)
	DLQRate   float64 // rejected rows; -1 unknown
	Outputs   []RolloutOutput
}

// RolloutOutput is one numeric output's distribution on a side.
type RolloutOutput struct {
	Name                string
	N                   uint64
	Mean, P50, P90, P99 float64
	PSI                 float64 // against the baseline; -1 none
	MaxDiff, MeanDiff   float64 // shadow: |candidate - baseline|; -1 none
}

// Exists reports whether there is a rollout to show.
func (r *RolloutData) Exists() bool { return r.State != RolloutNone && r.State != "none" }

// Active reports whether instances split traffic for it.
func (r *RolloutData) Active() bool {
	return r.State == RolloutWarming || r.State == RolloutCanary || r.State == RolloutHolding
}

func (m *Model) roller() (Roller, bool) {
	if m.opt.Backend == nil {
		return nil, false
	}
	r, ok := m.opt.Backend.(Roller)
	return r, ok
}

// rolloutShown: the rollout panel is in the layout and the tab order.
func (m *Model) rolloutShown() bool { return m.data.Rollout.Exists() }

// openMode shows "switch now" and "roll out gradually" for a chosen pick.
func (m *Model) openMode(p pick) {
	m.mode = p
	m.ov, m.pickIdx = ovMode, 0
}

// modeLines are the mode menu's two choices, the plan the second starts
// under it, wrapped to the overlay.
func (m *Model) modeLines(w int) []string {
	lines := []string{m.pickLine(0, "switch now: every instance at once"), m.pickLine(1, "roll out gradually, gated, with automatic rollback")}
	plan := m.data.Rollout.DefaultPlan
	if plan == "" {
		return lines
	}
	for _, l := range wrapWords(plan, max(w-12, 30)) {
		lines = append(lines, m.st.Dim.Render("    "+l))
	}
	return lines
}

func (m *Model) modeKey(k tea.KeyPressMsg) tea.Cmd {
	switch {
	case k.String() == "esc" || k.String() == "q":
		m.ov = ovNone
	case k.String() == "up" || k.String() == "k":
		m.pickIdx = 0
	case k.String() == "down" || k.String() == "j":
		m.pickIdx = 1
	case k.String() == "enter":
		p := m.mode
		m.ov = ovNone
		if m.pickIdx == 0 {
			return m.ask(m.targetPrompt(p.label), true, m.targetCmd(p.spec))
		}
		return m.startRollout(p)
	}
	return nil
}

// startRollout asks, always: a rollout runs for the whole plan.
func (m *Model) startRollout(p pick) tea.Cmd {
	r, ok := m.roller()
	if !ok {
		m.setStatus(Warn, "cannot roll out: this console does not run rollouts")
		return nil
	}
	if cur := &m.data.Rollout; cur.Active() {
		m.setStatus(Warn, "rollout "+cur.ID+" to "+cur.Candidate+" is still active: promote or abort it first (R, then P or A)")
		return nil
	}
	plan := m.data.Rollout.DefaultPlan
	if plan != "" {
		plan = " (" + plan + ")"
	}
	m.ov = ovConfirm
	m.confirm = &pending{prompt: fmt.Sprintf("roll %s of group %s out gradually to %s%s?", m.data.Model, m.data.Group, p.label, plan), run: func() tea.Msg {
		ctx, cancel := m.ctx()
		defer cancel()
		ack, err := r.StartRollout(ctx, p.spec)
		return fleetDone("roll out "+p.spec, ack, err, false)
	}}
	return nil
}

// rolloutKey handles P, A and C while the rollout panel has the focus;
// false: not a rollout key.
func (m *Model) rolloutKey(k tea.KeyPressMsg) (tea.Cmd, bool) {
	var verb, prompt string
	var call func(Roller, context.Context) (string, error)
	r := &m.data.Rollout
	switch {
	case k.String() == m.keys.Promote.Keys()[0]:
		verb = "promote the rollout"
		prompt = fmt.Sprintf("promote %s now: every record to %s, skipping the remaining steps?", r.Candidate, r.Candidate)
		call = Roller.PromoteRollout
	case k.String() == m.keys.Abort.Keys()[0]:
		verb = "abort the rollout"
		prompt = fmt.Sprintf("abort rollout %s: every record back to %s?", r.ID, r.Baseline)
		call = Roller.AbortRollout
	case k.String() == m.keys.Resume.Keys()[0]:
		verb = "resume the rollout"
		prompt = fmt.Sprintf("resume rollout %s from %.4g%% and drive it from this console?", r.ID, r.Share)
		call = Roller.ResumeRollout
	default:
		return nil, false
	}
	if m.denied(verb) {
		return nil, true
	}
	ro, ok := m.roller()
	switch {
	case !ok:
		m.setStatus(Warn, "cannot "+verb+": this console does not run rollouts")
		return nil, true
	case !r.Active():
		m.setStatus(Warn, "cannot "+verb+": no rollout is active ("+orDash(r.Summary)+")")
		return nil, true
	}
	if k.String() == m.keys.Resume.Keys()[0] && r.DriverAlive {
		m.setStatus(Warn, "cannot resume: rollout "+r.ID+" is driven by "+r.Driver+", which is alive")
		return nil, true
	}
	m.ov = ovConfirm
	m.confirm = &pending{prompt: prompt, run: func() tea.Msg {
		ctx, cancel := m.ctx()
		defer cancel()
		ack, err := call(ro, ctx)
		return fleetDone(verb, ack, err, false)
	}}
	return nil, true
}
