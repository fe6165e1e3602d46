package packaging

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/inferops/inferops/internal/config"
)

// The binary is built once for every test here, the way the Makefile
// builds it (CGO_ENABLED=0, -trimpath, version stamped).
var (
	binPath  string
	buildErr error
	repoRoot string
)

const testVersion = "v9.8.7-test"

func TestMain(m *testing.M) {
	wd, _ := os.Getwd()
	repoRoot = filepath.Dir(wd)
	dir, err := os.MkdirTemp("", "inferops-pkg-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "inferops")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+testVersion, "-o", binPath, "./cmd/inferops")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		buildErr = fmt.Errorf("go build: %v\n%s", err, out)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func needBinary(t *testing.T) {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

// needTool skips when a host tool is missing, except in CI where a missing
// tool means .ci/run forgot to install it.
func needTool(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not installed (apt-get install %s); CI=true so this is a failure", name, pkg)
		}
		t.Skipf("%s not installed (apt-get install %s)", name, pkg)
	}
}

// RHEL 8 ships glibc 2.28; a static binary runs there whatever glibc the
// build host had.
func TestBinaryIsStatic(t *testing.T) {
	needBinary(t)
	f, err := elf.Open(binPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has PT_INTERP (a dynamic loader): build with CGO_ENABLED=0")
		}
		if p.Type == elf.PT_DYNAMIC {
			t.Error("binary has a PT_DYNAMIC segment")
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) != 0 {
		t.Errorf("binary needs shared libraries (DT_NEEDED): %v", libs)
	}
	if f.Machine != elf.EM_X86_64 && runtime.GOARCH == "amd64" {
		t.Errorf("machine %v", f.Machine)
	}
}

func TestBinaryRunsVersion(t *testing.T) {
	needBinary(t)
	cmd := exec.Command(binPath, "version")
	cmd.Env = append(os.Environ(), "INFEROPS_CONFIG=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("inferops version: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "inferops "+testVersion+" ") {
		t.Errorf("version output %q, want the stamped %s", out, testVersion)
	}
}

func TestDefaultConfigIsValid(t *testing.T) {
	f, err := config.Load(filepath.Join(repoRoot, "packaging", "inferops.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := f.Get("pipeline.group"); v.Text != "tf_serving_group" {
		t.Errorf("pipeline.group = %q, want the seed's tf_serving_group", v.Text)
	}
	if _, set := f.Get("kafka.sasl.password"); set {
		t.Error("the shipped config must not carry a password")
	}
}

// The unit's hardening is the contract with the security review; a
// directive silently dropped in an edit fails here.
func TestUnitHardening(t *testing.T) {
	unit := readUnit(t)
	want := map[string]string{
		"User": "inferops", "DynamicUser": "no", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
		"ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes",
		"ProtectKernelModules": "yes", "ProtectControlGroups": "yes",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "StateDirectory": "inferops",
		"EnvironmentFile": "-/etc/sysconfig/inferops", "LimitNOFILE": "1048576", "Restart": "on-failure",
		"TimeoutStopSec": "15", "ExecStart": "/usr/bin/inferops worker --config /etc/inferops/inferops.yaml --instance %i",
		"CapabilityBoundingSet": "", "WantedBy": "multi-user.target",
	}
	for k, v := range want {
		got, ok := unit[k]
		if !ok {
			t.Errorf("unit lacks %s=%s", k, v)
			continue
		}
		if !contains(got, v) {
			t.Errorf("unit %s=%v, want %s", k, got, v)
		}
	}
	// A template: each instance's own settings, its name as --instance.
	if !contains(unit["EnvironmentFile"], "-/etc/sysconfig/inferops-%i") {
		t.Errorf("unit lacks EnvironmentFile=-/etc/sysconfig/inferops-%%i (one instance's own settings)")
	}
	// systemd 239 (RHEL 8) logs "Unknown lvalue" for newer directives.
	for _, newer := range []string{"ProtectClock", "ProtectHostname", "ProtectKernelLogs", "RestrictSUIDSGID", "ProtectProc", "ProcSubset"} {
		if _, ok := unit[newer]; ok {
			t.Errorf("unit uses %s, which RHEL 8's systemd 239 does not know", newer)
		}
	}
}

func readUnit(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "packaging", "inferops-worker@.service"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	unit := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("unit line %q is not key=value", line)
		}
		unit[k] = append(unit[k], v)
	}
	return unit
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// TestUnitVerifies runs systemd-analyze verify with the unit installed in
// a scratch root next to the real binary.
func TestUnitVerifies(t *testing.T) {
	needBinary(t)
	// Optional even in CI: the unit's directives are also checked above.
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed (apt-get install systemd); TestUnitHardening still checks the unit")
	}
	root := t.TempDir()
	unitDir := filepath.Join(root, "usr/lib/systemd/system")
	// A template verifies as one of its instances.
	copyFile(t, filepath.Join(repoRoot, "packaging", "inferops-worker@.service"), filepath.Join(unitDir, "inferops-worker@web-1.service"), 0o644)
	copyFile(t, binPath, filepath.Join(root, "usr/bin/inferops"), 0o755)
	out, _ := exec.Command("systemd-analyze", "verify", "--root="+root, "/usr/lib/systemd/system/inferops-worker@web-1.service").CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		// A scratch root has no sysinit.target and no inferops user; only
		// complaints about the unit file itself count.
		if strings.Contains(line, "inferops-worker@web-1.service:") && strings.Contains(line, ".service:") &&
			(strings.Contains(line, "Unknown") || strings.Contains(line, "Failed to parse") || strings.Contains(line, "not executable")) {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}

// TestRPM builds the RPM with nfpm from packaging/nfpm.yaml (the binary
// swapped for the test build) and checks its file list with rpm -qpl, the
// modes and config flags, and that preinstall creates the user.
func TestRPM(t *testing.T) {
	needBinary(t)
	needTool(t, "rpm", "rpm")
	if testing.Short() {
		t.Skip("-short: building the RPM runs nfpm through go run")
	}
	dir := t.TempDir()
	conf, err := os.ReadFile(filepath.Join(repoRoot, "packaging", "nfpm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const binSrc = "src: dist/build/inferops"
	if !strings.Contains(string(conf), binSrc) {
		t.Fatalf("packaging/nfpm.yaml no longer has %q (the Makefile builds the binary there)", binSrc)
	}
	confPath := filepath.Join(dir, "nfpm.yaml")
	if err := os.WriteFile(confPath, []byte(strings.Replace(string(conf), binSrc, "src: "+binPath, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	rpmPath := filepath.Join(dir, "inferops-1.2.3-1.x86_64.rpm")
	cmd := exec.Command("go", "run", "github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2", "pkg", "--packager", "rpm", "--config", confPath, "--target", rpmPath)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "PKG_VERSION=1.2.3", "PKG_RELEASE=1", "PKG_ARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("nfpm: %v\n%s", err, out)
		}
		t.Skipf("nfpm could not run (no Go module proxy?): %v\n%s", err, out)
	}

	out, err := exec.Command("rpm", "-qpl", rpmPath).Output()
	if err != nil {
		t.Fatalf("rpm -qpl: %v", err)
	}
	got := strings.Fields(string(out))
	sort.Strings(got)
	want := []string{
		"/etc/inferops",
		"/etc/inferops/inferops.yaml",
		"/etc/sysconfig/inferops",
		"/usr/bin/inferops",
		"/usr/lib/systemd/system/inferops-worker@.service",
		"/usr/lib/sysusers.d/inferops.conf",
		"/usr/share/doc/inferops/README.md",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rpm -qpl:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	out, err = exec.Command("rpm", "-qp", "--qf", "[%{FILEFLAGS:fflags}|%{FILEMODES:perms}|%{FILEUSERNAME}:%{FILEGROUPNAME}|%{FILENAMES}\n]", rpmPath).Output()
	if err != nil {
		t.Fatal(err)
	}
	attrs := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.Split(line, "|")
		if len(parts) == 4 {
			attrs[parts[3]] = strings.Join(parts[:3], "|")
		}
	}
	for path, want := range map[string]string{
		"/etc/inferops/inferops.yaml": "cn|-rw-r-----|root:inferops",
		"/etc/sysconfig/inferops":     "cn|-rw-------|root:root",
		"/usr/bin/inferops":           "|-rwxr-xr-x|root:root",
		"/etc/inferops":               "|drwxr-x---|root:inferops",
	} {
		if attrs[path] != want {
			t.Errorf("%s: flags|mode|owner = %q, want %q", path, attrs[path], want)
		}
	}

	out, err = exec.Command("rpm", "-qp", "--scripts", rpmPath).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"preinstall scriptlet", "useradd -r -g inferops", "preuninstall scriptlet", "'inferops-worker@*.service'", "disable --now \"$u\""} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rpm --scripts lacks %q:\n%s", want, out)
		}
	}
	out, _ = exec.Command("rpm", "-qp", "--qf", "%{NAME} %{VERSION} %{RELEASE} %{ARCH}", rpmPath).Output()
	if string(out) != "inferops 1.2.3 1 x86_64" {
		t.Errorf("rpm header %q", out)
	}

	// The README's install section, as make install-check runs it.
	t.Run("install-check", func(t *testing.T) {
		cmd := exec.Command("packaging/install-check.sh", rpmPath)
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "install-check: PASS") {
			t.Errorf("install-check.sh: %v\n%s", err, out)
		}
	})
}

// TestDist runs packaging/dist.sh (what make dist runs) and lists the tarball.
func TestDist(t *testing.T) {
	needBinary(t)
	needTool(t, "sha256sum", "coreutils")
	out := t.TempDir()
	cmd := exec.Command("packaging/dist.sh", binPath, "1.2.3", "amd64", out)
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dist.sh: %v\n%s", err, b)
	}
	f, err := os.Open(filepath.Join(out, "inferops-1.2.3-linux-amd64.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	modes := map[string]int64{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		modes[h.Name] = h.Mode
	}
	for name, mode := range map[string]int64{
		"inferops-1.2.3-linux-amd64/inferops":                 0o755,
		"inferops-1.2.3-linux-amd64/README.md":                0o644,
		"inferops-1.2.3-linux-amd64/inferops.yaml":            0o644,
		"inferops-1.2.3-linux-amd64/inferops-worker@.service": 0o644,
		"inferops-1.2.3-linux-amd64/sysconfig.inferops":       0o644,
		"inferops-1.2.3-linux-amd64/inferops.sysusers.conf":   0o644,
	} {
		if m, ok := modes[name]; !ok || m&0o777 != mode {
			t.Errorf("%s: mode %o (present %v), want %o", name, m, ok, mode)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "inferops-1.2.3-linux-amd64.tar.gz.sha256")); err != nil {
		t.Error(err)
	}
}
