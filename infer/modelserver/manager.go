package modelserver

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/tfpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// State is a version's lifecycle state, TF's ModelVersionStatus.State.
type State = tfpb.ModelVersionStatus_State

// version is one version of one model as the manager tracks it.
type version struct {
	num   int64
	state State
	err   *status.Status // load failure, shown with state END
	ld    *loaded        // set while AVAILABLE
	// loadedFrom identifies the file that failed to load (size+mtime), so
	// a broken version is retried only when its file changes.
	loadedFrom string
}

// servable is what a request runs against: immutable once published.
type servable struct {
	name    string
	version int64
	ld      *loaded
}

// routing is the lock-free lookup table of one model, rebuilt on every
// lifecycle change and swapped atomically, so Predict never takes a lock.
type routing struct {
	byVersion map[int64]*servable
	latest    *servable
	labels    map[string]int64
}

// managedModel is one entry of the model config list.
type managedModel struct {
	name string

	mu       sync.Mutex // guards cfg, versions, labels, removed
	cfg      *tfpb.ModelConfig
	versions map[int64]*version
	labels   map[string]int64
	removed  bool // dropped by a reload: versions stay listed as END

	route atomic.Pointer[routing]

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

// manager owns every model's lifecycle.
type manager struct {
	log      *slog.Logger
	pollWait time.Duration
	metrics  *metrics
	allowNew bool // AllowVersionLabelsForUnavailableModels

	reloadMu sync.Mutex // serialises reloads
	mu       sync.RWMutex
	models   map[string]*managedModel
}

func newManager(log *slog.Logger, pollWait time.Duration, m *metrics, allowNew bool) *manager {
	return &manager{log: log, pollWait: pollWait, metrics: m, allowNew: allowNew, models: map[string]*managedModel{}}
}

func (m *manager) get(name string) *managedModel {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.models[name]
}

// lookup resolves a ModelSpec to a servable with TF Serving's codes and
// messages.
func (m *manager) lookup(spec *tfpb.ModelSpec) (*servable, error) {
	if spec == nil {
		return nil, status.Error(codes.InvalidArgument, "Missing ModelSpec")
	}
	if spec.Name == "" {
		return nil, status.Error(codes.InvalidArgument, "ModelSpec has no name specified.")
	}
	mm := m.get(spec.Name)
	var r *routing
	if mm != nil {
		r = mm.route.Load()
	}
	switch vc := spec.VersionChoice.(type) {
	case *tfpb.ModelSpec_VersionLabel:
		if r == nil {
			return nil, status.Errorf(codes.InvalidArgument, "Unrecognized servable version label: %s", vc.VersionLabel)
		}
		v, ok := r.labels[vc.VersionLabel]
		if !ok {
			return nil, status.Errorf(codes.InvalidArgument, "Unrecognized servable version label: %s", vc.VersionLabel)
		}
		if s := r.byVersion[v]; s != nil {
			return s, nil
		}
		return nil, status.Errorf(codes.NotFound, "Servable not found for request: Specific(%s, %d)", spec.Name, v)
	case *tfpb.ModelSpec_Version:
		v := vc.Version.GetValue()
		if r != nil {
			if s := r.byVersion[v]; s != nil {
				return s, nil
			}
		}
		return nil, status.Errorf(codes.NotFound, "Servable not found for request: Specific(%s, %d)", spec.Name, v)
	}
	if r == nil || r.latest == nil {
		return nil, status.Errorf(codes.NotFound, "Servable not found for request: Latest(%s)", spec.Name)
	}
	return r.latest, nil
}

// VersionStatus is one row of a model's status.
type VersionStatus struct {
	Version int64
	State   State
	Code    codes.Code
	Message string
}

// status lists a model's versions, highest first like TF.
func (m *manager) status(name string, ver int64, hasVer bool) ([]VersionStatus, error) {
	mm := m.get(name)
	if mm == nil {
		return nil, status.Errorf(codes.NotFound, "Could not find any versions of model %s", name)
	}
	mm.mu.Lock()
	defer mm.mu.Unlock()
	var out []VersionStatus
	for _, v := range mm.versions {
		if hasVer && v.num != ver {
			continue
		}
		vs := VersionStatus{Version: v.num, State: v.state, Code: codes.OK}
		if v.err != nil {
			vs.Code, vs.Message = v.err.Code(), v.err.Message()
		}
		out = append(out, vs)
	}
	if len(out) == 0 {
		if hasVer {
			return nil, status.Errorf(codes.NotFound, "Could not find version %d of model %s", ver, name)
		}
		return nil, status.Errorf(codes.NotFound, "Could not find any versions of model %s", name)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version > out[j].Version })
	return out, nil
}

// labelsOf returns a copy of a model's labels (for status displays).
func (m *manager) labelsOf(name string) map[string]int64 {
	mm := m.get(name)
	if mm == nil {
		return nil
	}
	mm.mu.Lock()
	defer mm.mu.Unlock()
	return maps.Clone(mm.labels)
}

// apply validates and installs a config list (startup and reload). TF's
// rules: the list replaces the old one, names are unique, platforms do not
// change, base paths are absolute, labels point at AVAILABLE versions; it
// returns once newly added models have loaded.
func (m *manager) apply(ctx context.Context, cfg *tfpb.ModelServerConfig, first bool) error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	// Own a copy: in-process callers (Server.Reload) may reuse theirs.
	cfg = proto.Clone(cfg).(*tfpb.ModelServerConfig)
	list := cfg.GetModelConfigList()
	if list == nil {
		return status.Error(codes.InvalidArgument, "ServerCore::HandleReloadConfigRequest only supports model_config_list")
	}
	seen := map[string]bool{}
	for _, mc := range list.GetConfig() {
		switch {
		case mc.GetName() == "":
			return status.Error(codes.InvalidArgument, "Model name must not be empty")
		case seen[mc.GetName()]:
			return status.Errorf(codes.InvalidArgument, "Illegal to list model %s multiple times in config list", mc.GetName())
		case !filepath.IsAbs(mc.GetBasePath()):
			return status.Errorf(codes.InvalidArgument, "Expected model %s to have an absolute path or URI; got base_path()=%s", mc.GetName(), mc.GetBasePath())
		}
		switch mc.GetModelPlatform() {
		case "", "tensorflow", "inferops":
		default:
			return status.Errorf(codes.InvalidArgument, "Model %s: platform %q is not served here (use tensorflow or inferops)", mc.GetName(), mc.GetModelPlatform())
		}
		if sp := mc.GetModelVersionPolicy().GetSpecific(); sp != nil && len(sp.GetVersions()) == 0 {
			return status.Errorf(codes.InvalidArgument, "Model %s: specific version policy lists no versions", mc.GetName())
		}
		seen[mc.GetName()] = true
		old := m.get(mc.GetName())
		if old != nil && !old.removed {
			if platform(old.cfg) != platform(mc) {
				return status.Errorf(codes.InvalidArgument, "Cannot transition model %s from platform %s to %s", mc.GetName(), platform(old.cfg), platform(mc))
			}
		}
		if err := m.checkLabels(mc, old, first); err != nil {
			return err
		}
	}

	// Install: stop removed models, update kept ones, start new ones.
	m.mu.Lock()
	var added, kept []*managedModel
	for name, mm := range m.models {
		if !seen[name] && !mm.removed {
			mm.remove(m)
		}
	}
	for _, mc := range list.GetConfig() {
		mm := m.models[mc.GetName()]
		if mm == nil || mm.removed {
			if mm == nil {
				mm = &managedModel{name: mc.GetName(), versions: map[int64]*version{}}
				m.models[mc.GetName()] = mm
			}
			mm.mu.Lock()
			mm.cfg, mm.removed = mc, false
			mm.labels = map[string]int64{}
			mm.mu.Unlock()
			added = append(added, mm)
			continue
		}
		mm.mu.Lock()
		mm.cfg = mc
		mm.mu.Unlock()
		kept = append(kept, mm)
	}
	m.mu.Unlock()

	// Labels of kept models change now (they were checked against what
	// is AVAILABLE); their versions follow on the next poll.
	for _, mm := range kept {
		mm.mu.Lock()
		mm.labels = maps.Clone(mm.cfg.GetVersionLabels())
		mm.publish()
		mm.mu.Unlock()
		mm.poke()
	}
	// New models load synchronously, so a reload (and Start) returns with
	// them AVAILABLE, as TF Serving does.
	for _, mm := range added {
		mm.poll(m)
		mm.mu.Lock()
		mm.labels = maps.Clone(mm.cfg.GetVersionLabels())
		mm.publish()
		mm.mu.Unlock()
		mm.start(m)
	}
	return nil
}

func platform(mc *tfpb.ModelConfig) string {
	if p := mc.GetModelPlatform(); p != "" {
		return p
	}
	return "tensorflow"
}

// checkLabels applies TF's label rule: a label may only point at a version
// that is AVAILABLE when the config is applied. At startup (first) the
// models are not loaded yet, so the rule is checked after the first load.
func (m *manager) checkLabels(mc *tfpb.ModelConfig, old *managedModel, first bool) error {
	for label, v := range mc.GetVersionLabels() {
		if err := checkLabelName(label); err != nil {
			return status.Errorf(codes.InvalidArgument, "Model %s: %v", mc.GetName(), err)
		}
		if first {
			continue
		}
		available := false
		existing := false
		if old != nil && !old.removed {
			old.mu.Lock()
			if ver := old.versions[v]; ver != nil && ver.state == tfpb.ModelVersionStatus_AVAILABLE {
				available = true
			}
			prev, had := old.labels[label]
			existing = had && prev != v
			if had && prev == v {
				available = true // an unchanged label is never re-checked
			}
			old.mu.Unlock()
		}
		if available || (m.allowNew && !existing) {
			continue
		}
		return status.Errorf(codes.FailedPrecondition, "Request to assign label to version %d of model %s, which is not currently available for inference", v, mc.GetName())
	}
	return nil
}

func checkLabelName(l string) error {
	if l == "" {
		return fmt.Errorf("empty version label")
	}
	for _, r := range l {
		if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("version label %q: labels are [a-zA-Z0-9_]+", l)
		}
	}
	return nil
}

// checkStartupLabels enforces the label rule once the first load is done.
func (m *manager) checkStartupLabels() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, mm := range m.models {
		mm.mu.Lock()
		for label, v := range mm.labels {
			if ver := mm.versions[v]; (ver == nil || ver.state != tfpb.ModelVersionStatus_AVAILABLE) && !m.allowNew {
				mm.mu.Unlock()
				return fmt.Errorf("model %s: label %s points at version %d, which is not available (%s/%d missing or failed to load)", mm.name, label, v, mm.cfg.GetBasePath(), v)
			}
		}
		mm.mu.Unlock()
	}
	return nil
}

// close stops every poller.
func (m *manager) close() {
	m.reloadMu.Lock() // no reload may start a poller after this
	defer m.reloadMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mm := range m.models {
		mm.halt()
	}
}

func (mm *managedModel) start(m *manager) {
	mm.kick = make(chan struct{}, 1)
	mm.stop = make(chan struct{})
	mm.done = make(chan struct{})
	go mm.loop(m)
}

func (mm *managedModel) halt() {
	if mm.stop != nil {
		close(mm.stop)
		<-mm.done
		mm.stop = nil
	}
}

func (mm *managedModel) poke() {
	select {
	case mm.kick <- struct{}{}:
	default:
	}
}

// remove unloads every version of a model dropped from the config; its
// versions stay in GetModelStatus as END, like TF's state monitor.
func (mm *managedModel) remove(m *manager) {
	mm.halt()
	mm.mu.Lock()
	defer mm.mu.Unlock()
	mm.removed = true
	for _, v := range mm.versions {
		if v.state != tfpb.ModelVersionStatus_END {
			mm.unload(m, v)
		}
	}
	mm.labels = map[string]int64{}
	mm.publish()
}

// loop polls the base path every pollWait (once when it is negative).
func (mm *managedModel) loop(m *manager) {
	defer close(mm.done)
	var tick <-chan time.Time
	if m.pollWait > 0 {
		t := time.NewTicker(m.pollWait)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-mm.stop:
			return
		case <-tick:
		case <-mm.kick:
		}
		mm.poll(m)
	}
}

// diskVersions lists numeric children of the base path. A name counts only
// if all of it parses as an int64 (so 00000123 is version 123); other
// entries are ignored, as TF does.
func diskVersions(base string) (map[int64]string, error) {
	entries, err := os.ReadDir(base)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, status.Errorf(codes.InvalidArgument, "Could not find base path %s", base)
		}
		return nil, status.Errorf(codes.Unavailable, "read base path %s: %v", base, err)
	}
	out := map[int64]string{}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() {
			// A symlink to a directory counts, as in TF.
			if e.Type()&os.ModeSymlink == 0 {
				continue
			}
			if fi, err := os.Stat(filepath.Join(base, name)); err != nil || !fi.IsDir() {
				continue
			}
		}
		if name == "" || name[0] < '0' || name[0] > '9' {
			continue
		}
		v, err := strconv.ParseInt(name, 10, 64)
		if err != nil || v < 0 {
			continue
		}
		out[v] = filepath.Join(base, name)
	}
	return out, nil
}

// aspired applies the version policy to what is on disk.
func aspired(policy *tfpb.FileSystemStoragePathSourceConfig_ServableVersionPolicy, onDisk map[int64]string) []int64 {
	all := slices.Sorted(maps.Keys(onDisk))
	switch p := policy.GetPolicyChoice().(type) {
	case *tfpb.FileSystemStoragePathSourceConfig_ServableVersionPolicy_All_:
		return all
	case *tfpb.FileSystemStoragePathSourceConfig_ServableVersionPolicy_Specific_:
		var out []int64
		for _, v := range p.Specific.GetVersions() {
			if _, ok := onDisk[v]; ok {
				out = append(out, v)
			}
		}
		slices.Sort(out)
		return slices.Compact(out)
	case *tfpb.FileSystemStoragePathSourceConfig_ServableVersionPolicy_Latest_:
		n := max(int(p.Latest.GetNumVersions()), 1)
		return all[max(0, len(all)-n):]
	}
	return all[max(0, len(all)-1):]
}

// poll reconciles loaded versions with the policy, availability first:
// aspired versions load before unwanted ones unload, and the last available
// version stays while a replacement is pending.
func (mm *managedModel) poll(m *manager) {
	mm.mu.Lock()
	if mm.removed {
		mm.mu.Unlock()
		return
	}
	cfg := mm.cfg
	mm.mu.Unlock()

	onDisk, err := diskVersions(cfg.GetBasePath())
	if err != nil {
		// Like TF's source: a failed poll changes nothing, so a base path
		// that is briefly unreadable (remount, permissions) does not
		// unload every version.
		m.log.Warn("model base path poll failed", "model", mm.name, "err", status.Convert(err).Message())
		return
	} else if len(onDisk) == 0 {
		m.log.Warn("no versions of model found under base path", "model", mm.name, "base_path", cfg.GetBasePath())
	}
	want := aspired(cfg.GetModelVersionPolicy(), onDisk)
	if p := cfg.GetModelVersionPolicy().GetSpecific(); p != nil {
		for _, v := range p.GetVersions() {
			if _, ok := onDisk[v]; !ok {
				m.log.Warn("version in specific policy not found on disk", "model", mm.name, "version", v)
			}
		}
	}

	// Load what is aspired and not yet loaded, outside the lock: loads read
	// files and must not block status calls.
	for _, v := range want {
		mm.mu.Lock()
		ver := mm.versions[v]
		path := onDisk[v]
		stamp := fileStamp(path)
		skip := ver != nil && (ver.state == tfpb.ModelVersionStatus_AVAILABLE ||
			(ver.err != nil && ver.loadedFrom == stamp))
		if skip {
			mm.mu.Unlock()
			continue
		}
		ver = &version{num: v, state: tfpb.ModelVersionStatus_START}
		mm.versions[v] = ver
		ver.state = tfpb.ModelVersionStatus_LOADING
		mm.mu.Unlock()

		start := time.Now()
		ld, lerr := loadVersion(path)
		m.metrics.loaded(path, lerr == nil, time.Since(start))

		mm.mu.Lock()
		if lerr != nil {
			ver.state, ver.loadedFrom = tfpb.ModelVersionStatus_END, stamp
			code := codes.InvalidArgument
			if os.IsNotExist(lerr) {
				code = codes.NotFound
			}
			ver.err = status.Newf(code, "load %s version %d from %s: %v", mm.name, v, path, lerr)
			m.log.Error("model version failed to load", "model", mm.name, "version", v, "err", lerr)
		} else {
			ver.state, ver.ld = tfpb.ModelVersionStatus_AVAILABLE, ld
			m.log.Info("model version available", "model", mm.name, "version", v, "params", ld.params(), "stand_in", ld.stand != nil)
		}
		mm.publish()
		mm.mu.Unlock()
	}

	// Unload what is no longer aspired, smallest first, keeping one
	// available version unless nothing is aspired at all.
	mm.mu.Lock()
	defer mm.mu.Unlock()
	wanted := map[int64]bool{}
	for _, v := range want {
		wanted[v] = true
	}
	nums := slices.Sorted(maps.Keys(mm.versions))
	for _, n := range nums {
		v := mm.versions[n]
		if wanted[n] || v.state != tfpb.ModelVersionStatus_AVAILABLE {
			continue
		}
		others := 0
		for _, o := range mm.versions {
			if o != v && o.state == tfpb.ModelVersionStatus_AVAILABLE {
				others++
			}
		}
		if others == 0 && len(want) > 0 {
			continue // availability preserving: wait for a replacement
		}
		mm.unload(m, v)
	}
	mm.publish()
}

// unload takes a version through UNLOADING to END. In-flight requests keep
// their *loaded, so nothing they use is freed under them.
func (mm *managedModel) unload(m *manager, v *version) {
	v.state = tfpb.ModelVersionStatus_UNLOADING
	v.ld = nil
	v.state = tfpb.ModelVersionStatus_END
	v.err = nil
	m.log.Info("model version unloaded", "model", mm.name, "version", v.num)
}

// publish rebuilds the routing table; mm.mu must be held.
func (mm *managedModel) publish() {
	r := &routing{byVersion: map[int64]*servable{}, labels: maps.Clone(mm.labels)}
	if mm.removed {
		r.labels = nil
	}
	for n, v := range mm.versions {
		if v.state != tfpb.ModelVersionStatus_AVAILABLE || mm.removed {
			continue
		}
		s := &servable{name: mm.name, version: n, ld: v.ld}
		r.byVersion[n] = s
		if r.latest == nil || n > r.latest.version {
			r.latest = s
		}
	}
	mm.route.Store(r)
}

// fileStamp identifies a version's file content cheaply (size and mtime).
func fileStamp(dir string) string {
	for _, f := range []string{model.FileName, StandInFile} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return fmt.Sprintf("%s:%d@%d", f, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return "missing"
}

// loadVersion reads a version directory: a network (model.iom) or, when
// there is none, a stand-in (StandInFile, a model's metadata JSON).
func loadVersion(dir string) (*loaded, error) {
	m, err := model.Load(dir)
	if err == nil {
		return loadedNet(m), nil
	}
	if !os.IsNotExist(err) {
		return nil, err
	}
	p := filepath.Join(dir, StandInFile)
	b, serr := os.ReadFile(p)
	if serr != nil {
		if os.IsNotExist(serr) {
			return nil, err // neither file: report the model file, as before
		}
		return nil, serr
	}
	st, serr := parseStandIn(b)
	if serr != nil {
		return nil, fmt.Errorf("%s: %w", p, serr)
	}
	return st.loaded(), nil
}
