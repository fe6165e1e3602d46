package tfserving

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Kinds of version skew.
const (
	SkewVersions = "versions"      // hosts serve different sets of AVAILABLE versions
	SkewLabel    = "label"         // a label points at different versions on different hosts
	SkewLabelGap = "label-missing" // a label resolves on some hosts only
	SkewTarget   = "target"        // the target version or label is missing on some hosts
)

// HostVersions is what one host serves of a model, as FindSkew compares it.
type HostVersions struct {
	Addr      string
	Err       string           // the host did not answer: left out of the comparison
	Available []int64          // AVAILABLE versions, ascending
	Labels    map[string]int64 // label -> version, for the labels that resolve here
}

// Skew is one way the hosts disagree, naming the hosts that differ from
// the majority.
type Skew struct {
	Kind    string
	Hosts   []string
	Message string
	Short   string // for a header: "v2 missing on 10.0.0.3:8500"
}

// FindSkew compares the hosts that answered. The console header, status,
// the report and doctor all use it, so they flag the same thing in the same
// words.
func FindSkew(model string, target Target, hosts []HostVersions) []Skew {
	var ok []HostVersions
	for _, h := range hosts {
		if h.Err == "" {
			ok = append(ok, h)
		}
	}
	if len(ok) < 2 {
		return nil
	}
	var out []Skew
	// A target missing somewhere is what costs traffic: say it first.
	if !target.IsLatest() {
		var has, lacks []string
		for _, h := range ok {
			if servesTarget(h, target) {
				has = append(has, h.Addr)
			} else {
				lacks = append(lacks, h.Addr)
			}
		}
		if len(has) > 0 && len(lacks) > 0 {
			what := targetName(target)
			out = append(out, Skew{Kind: SkewTarget, Hosts: lacks, Message: fmt.Sprintf("%s %s missing on %s: %s no %s traffic",
				model, what, strings.Join(lacks, ", "), plural(len(lacks), "it gets", "they get"), what),
				Short: what + " missing on " + strings.Join(lacks, ",")})
		}
	}
	groups := groupBy(ok, func(h HostVersions) string { return versionsString(h.Available) })
	if len(groups) > 1 {
		m := minority(groups)
		out = append(out, Skew{Kind: SkewVersions, Hosts: m, Message: fmt.Sprintf("%s versions differ across hosts: %s",
			model, describeGroups(groups, func(k string) string { return "AVAILABLE " + k })),
			Short: "versions differ on " + strings.Join(m, ",")})
	}
	var labels []string
	for _, h := range ok {
		for l := range h.Labels {
			if !slices.Contains(labels, l) {
				labels = append(labels, l)
			}
		}
	}
	sort.Strings(labels)
	for _, l := range labels {
		groups := groupBy(ok, func(h HostVersions) string {
			if v, ok := h.Labels[l]; ok {
				return fmt.Sprintf("v%d", v)
			}
			return "missing"
		})
		if len(groups) < 2 {
			continue
		}
		if !twoVersions(groups) {
			// One version where it resolves, missing elsewhere.
			if target.Label == l {
				continue // the target skew above says it
			}
			var missing []string
			where := ""
			for _, g := range groups {
				if g.key == "missing" {
					missing = g.hosts
				} else {
					where = g.key
				}
			}
			out = append(out, Skew{Kind: SkewLabelGap, Hosts: missing, Message: fmt.Sprintf("%s label %s missing on %s (%s on the others)",
				model, l, strings.Join(missing, ", "), where), Short: "label " + l + " missing on " + strings.Join(missing, ",")})
			continue
		}
		m := minority(groups)
		out = append(out, Skew{Kind: SkewLabel, Hosts: m, Message: fmt.Sprintf("%s label %s points at different versions: %s",
			model, l, describeGroups(groups, func(k string) string { return k })),
			Short: "label " + l + " differs on " + strings.Join(m, ",")})
	}
	return out
}

func twoVersions(gs []hostGroup) bool {
	n := 0
	for _, g := range gs {
		if g.key != "missing" {
			n++
		}
	}
	return n > 1
}

func servesTarget(h HostVersions, t Target) bool {
	if t.Label != "" {
		_, ok := h.Labels[t.Label]
		return ok
	}
	return slices.Contains(h.Available, t.Version)
}

func targetName(t Target) string {
	if t.Label != "" {
		return "label " + t.Label
	}
	return fmt.Sprintf("v%d", t.Version)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

type hostGroup struct {
	key   string
	hosts []string
}

// groupBy groups hosts by key, largest group first (ties: by key).
func groupBy(hs []HostVersions, key func(HostVersions) string) []hostGroup {
	var gs []hostGroup
	for _, h := range hs {
		k := key(h)
		i := slices.IndexFunc(gs, func(g hostGroup) bool { return g.key == k })
		if i < 0 {
			gs = append(gs, hostGroup{key: k})
			i = len(gs) - 1
		}
		gs[i].hosts = append(gs[i].hosts, h.Addr)
	}
	sort.SliceStable(gs, func(i, j int) bool {
		if len(gs[i].hosts) != len(gs[j].hosts) {
			return len(gs[i].hosts) > len(gs[j].hosts)
		}
		return gs[i].key < gs[j].key
	})
	return gs
}

// minority is every host outside the largest group.
func minority(gs []hostGroup) []string {
	var out []string
	for _, g := range gs[1:] {
		out = append(out, g.hosts...)
	}
	sort.Strings(out)
	return out
}

func describeGroups(gs []hostGroup, name func(string) string) string {
	parts := make([]string, len(gs))
	for i, g := range gs {
		parts[i] = name(g.key) + " on " + strings.Join(g.hosts, ", ")
	}
	return strings.Join(parts, "; ")
}
