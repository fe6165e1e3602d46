package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/worker"
)

// ControlSchema is the desired-state format this inferops writes and the
// newest it can apply.
const ControlSchema = RolloutSchema

// maxWorkers bounds a desired total: far above any partition count a
// group can use, low enough that a typo is refused.
const maxWorkers = 10000

// Desired is a group's desired state: one record per group on the control
// topic (key = group, compacted), written by consoles and `inferops fleet`,
// followed by every instance of the group that does not run with
// --control=ignore.
//
// Extending it: a later inferops adds fields (a rollout plan, the state an
// operator action saved) and bumps V; readers ignore fields they do not
// know, so an old worker still follows workers, target and pause. When an
// old reader would do the wrong thing by ignoring a field (say, a canary
// split it cannot perform), the writer sets Compat to the lowest V that can
// apply the record, and older readers apply nothing and report why.
type Desired struct {
	V      int    `json:"v"`
	Compat int    `json:"compat,omitempty"`
	Group  string `json:"group"`
	Seq    uint64 `json:"seq"` // one more than the record it replaced: for people; acks compare offsets

	// Workers is the total of consumer-group members over the following
	// instances, spread by Assign; nil leaves each instance at its own
	// --workers. Shares fixes some instances' counts inside the total.
	Workers *int           `json:"workers,omitempty"`
	Shares  map[string]int `json:"shares,omitempty"`
	// Target is the model version every instance sends batches to
	// (tfserving.Target's spelling: latest, 2, label:stable); empty leaves
	// each at its own --target-version.
	Target string `json:"target,omitempty"`
	Paused bool   `json:"paused,omitempty"`

	By     string    `json:"by"`               // user@host
	At     time.Time `json:"at"`               // when it was written
	Change string    `json:"change,omitempty"` // what this record changed, e.g. "target 2"

	// Saved is the state an operator action stopped the fleet from
	// (Controller.Stop), kept in the record until Restore writes it back:
	// an action killed in between leaves it here for the next to restore.
	Saved *Desired `json:"saved,omitempty"`

	// Rollout is a gradual rollout of a new target (schema 2), nil when
	// none was ever started; an ended one stays for `rollout status`
	// until the next starts.
	Rollout *Rollout `json:"rollout,omitempty"`
}

// DecodeDesired reads a control record's value. A record a newer inferops
// wrote is read as far as this one understands it; Applicable says whether
// it may be applied.
func DecodeDesired(b []byte) (*Desired, error) {
	if len(b) > MaxRecordBytes {
		return nil, fmt.Errorf("desired state of %d bytes is over the %d limit", len(b), MaxRecordBytes)
	}
	var d Desired
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("desired state: %w", err)
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return &d, nil
}

// Validate checks a desired state before it is written or applied.
func (d *Desired) Validate() error {
	var errs []error
	if d.V < 1 {
		errs = append(errs, errors.New("desired state has no version"))
	}
	if d.Group == "" {
		errs = append(errs, errors.New("desired state has no group"))
	}
	if d.Workers != nil && (*d.Workers < 0 || *d.Workers > maxWorkers) {
		errs = append(errs, fmt.Errorf("workers %d: want 0..%d", *d.Workers, maxWorkers))
	}
	for inst, n := range d.Shares {
		if err := worker.ValidInstance(inst); err != nil {
			errs = append(errs, fmt.Errorf("share: %w", err))
		}
		if n < 0 || n > maxWorkers {
			errs = append(errs, fmt.Errorf("share of %s: %d workers, want 0..%d", inst, n, maxWorkers))
		}
	}
	if d.Target != "" {
		if _, err := tfserving.ParseTarget(d.Target); err != nil {
			errs = append(errs, err)
		}
	}
	if d.Rollout != nil {
		if err := d.Rollout.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Applicable says whether this inferops may apply d, and if not, why.
func (d *Desired) Applicable() error {
	if d.Compat > ControlSchema {
		return fmt.Errorf("the desired state (seq %d, by %s) needs a newer inferops (control schema %d, this one knows %d): upgrade this instance or run it with --control=ignore", d.Seq, d.By, d.Compat, ControlSchema)
	}
	return nil
}

// Summary says what d asks for, e.g. "workers 9, target 2, running".
func (d *Desired) Summary() string {
	if d == nil {
		return "none (every instance runs on its own flags)"
	}
	w := "own --workers"
	if d.Workers != nil {
		w = fmt.Sprintf("workers %d", *d.Workers)
	}
	for _, inst := range slices.Sorted(maps.Keys(d.Shares)) {
		w += fmt.Sprintf(" (%s: %d)", inst, d.Shares[inst])
	}
	t := "own --target-version"
	if d.Target != "" {
		t = "target " + d.Target
	}
	p := "running"
	if d.Paused {
		p = "paused"
	}
	if d.Saved != nil {
		p += "; stopped by an operator action, to be restored to: " + d.Saved.Summary()
	}
	if r := d.Rollout; r.Active() {
		t += fmt.Sprintf(" (rollout %s: %.4g%% to %s", r.ID, r.Share, r.Candidate)
		if r.Shadow > 0 {
			t += fmt.Sprintf(", shadow %.4g%%", r.Shadow)
		}
		t += ")"
	}
	return w + ", " + t + ", " + p
}

// clone copies d so a writer can change it.
func (d *Desired) clone() *Desired {
	c := *d
	if d.Workers != nil {
		n := *d.Workers
		c.Workers = &n
	}
	c.Shares = maps.Clone(d.Shares)
	if d.Saved != nil {
		c.Saved = d.Saved.clone()
	}
	c.Rollout = d.Rollout.clone()
	return &c
}

// Assignment is how a desired total is spread over the live instances.
type Assignment struct {
	Workers map[string]int `json:"workers,omitempty"` // by instance; nil when the desired state sets no total
	Total   int            `json:"total"`             // what is placed
	// Note explains a total that could not be placed as asked: clamped to
	// the partition count, or fixed shares that leave nothing to spread.
	Note string `json:"note,omitempty"`
}

// Assign spreads d's total over the live instances (the roster)
// deterministically, so every instance computes the same answer on its
// own: instances sorted by name, a fixed share first where d names one,
// then floor(rest/k) each for the other k and one more for the first
// rest%k. The total never exceeds partitions (members beyond it would get
// no partition); 0 partitions means unknown (no clamp).
func Assign(d *Desired, roster []string, input string, partitions int) Assignment {
	if d == nil || d.Workers == nil {
		return Assignment{}
	}
	names := slices.Clone(roster)
	sort.Strings(names)
	names = slices.Compact(names)
	asked := *d.Workers
	total := asked
	var notes []string
	if partitions > 0 && total > partitions {
		total = partitions
		notes = append(notes, fmt.Sprintf("%d workers asked, but %s has %d partitions: running %d", asked, input, partitions, partitions))
	}
	a := Assignment{Workers: make(map[string]int, len(names))}
	left := total
	var free []string
	for _, n := range names {
		if s, ok := d.Shares[n]; ok {
			s = min(s, left)
			a.Workers[n] = s
			left -= s
			continue
		}
		free = append(free, n)
	}
	if len(free) > 0 {
		base, extra := left/len(free), left%len(free)
		for i, n := range free {
			a.Workers[n] = base
			if i < extra {
				a.Workers[n]++
			}
		}
		left = 0
	}
	for _, n := range a.Workers {
		a.Total += n
	}
	switch {
	case len(names) == 0 && total > 0:
		notes = append(notes, "no live instance follows control")
	case left > 0:
		notes = append(notes, fmt.Sprintf("%d of %d workers not placed: every live instance has a fixed share", left, total))
	}
	a.Note = strings.Join(notes, "; ")
	return a
}
