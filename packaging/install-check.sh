#!/bin/bash
# install-check.sh RPM: follow the README's "Install on RHEL 8" section in a
# scratch root instead of / (make install-check). Needs rpm (Debian's rpm
# package is enough); uses systemd-analyze when present.
set -euo pipefail
rpm_file=${1:?usage: install-check.sh inferops-VERSION.x86_64.rpm}
root=$(mktemp -d "${TMPDIR:-/tmp}/inferops-root.XXXXXX")
trap 'rm -rf "$root"' EXIT
fail() { echo "install-check: FAIL: $*" >&2; exit 1; }
step() { echo "install-check: $*"; }

# 1. "sudo dnf install ./inferops-<version>.x86_64.rpm": install the package
#    into the scratch root. Scripts are skipped (they would create a user on
#    this host); the preinstall script is checked below instead.
step "install $rpm_file into $root"
if [ "$(id -u)" = 0 ]; then
	rpm --root "$root" --initdb
	# Debian's rpm warns about itself and the scratch root has no inferops
	# group yet (preinstall creates it on a real host): drop that noise.
	rpm --root "$root" -i --nodeps --noscripts --nosignature --nodigest "$rpm_file" 2>&1 |
		grep -v -e 'does not exist - using root' -e 'use Alien instead' -e 'assuming you know what you are doing' || true
	rpm --root "$root" -q inferops >/dev/null || fail "rpm -q inferops in the scratch root"
else
	# Not root: rpm --root needs chroot; unpack the payload instead.
	rpm2archive - <"$rpm_file" | tar -C "$root" -xzf -
fi

for f in /usr/bin/inferops /usr/lib/systemd/system/inferops-worker@.service \
	/etc/inferops/inferops.yaml /etc/sysconfig/inferops /usr/lib/sysusers.d/inferops.conf \
	/usr/share/doc/inferops/README.md; do
	[ -e "$root$f" ] || fail "$f is not installed"
done
[ -x "$root/usr/bin/inferops" ] || fail "/usr/bin/inferops is not executable"
rpm -qp --scripts "$rpm_file" 2>/dev/null | grep -q 'useradd -r -g inferops' || fail "preinstall does not create the inferops user"
rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILEMODES:perms} %{FILENAMES}\n]' "$rpm_file" 2>/dev/null |
	grep -q '^cn -rw-r----- /etc/inferops/inferops.yaml$' || fail "/etc/inferops/inferops.yaml is not config(noreplace) 0640"
step "files, modes and scripts ok"

# 2. The unit: systemd-analyze verify against the scratch root when possible.
unit="$root/usr/lib/systemd/system/inferops-worker@.service"
for d in User=inferops NoNewPrivileges=yes ProtectSystem=strict StateDirectory=inferops \
	EnvironmentFile=-/etc/sysconfig/inferops LimitNOFILE=1048576 Restart=on-failure TimeoutStopSec=15 \
	'ExecStart=/usr/bin/inferops worker --config /etc/inferops/inferops.yaml --instance %i'; do
	grep -q "^$d" "$unit" || fail "unit lacks $d"
done
if command -v systemd-analyze >/dev/null; then
	# --root makes ExecStart resolve inside the scratch root. Only errors
	# about the unit file itself fail the check: this host has no inferops
	# user and may not run systemd.
	# A template verifies as one of its instances.
	cp "$unit" "$root/usr/lib/systemd/system/inferops-worker@check.service"
	out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --root="$root" /usr/lib/systemd/system/inferops-worker@check.service 2>&1 || true)
	rm -f "$root/usr/lib/systemd/system/inferops-worker@check.service"
	if echo "$out" | grep -E 'inferops-worker@[a-z]*.service:[0-9]+:|Unknown (lvalue|key|section)|Failed to parse|is not executable|Command .* not found' >/dev/null; then
		echo "$out" >&2
		fail "systemd-analyze verify"
	fi
	step "systemd-analyze verify ok"
else
	step "systemd-analyze not installed: unit checked by grep only"
fi

# 3. "inferops version" and "inferops config print" on the installed config.
bin="$root/usr/bin/inferops"
"$bin" version | grep -q '^inferops ' || fail "inferops version"
conf="$root/etc/inferops/inferops.yaml"
INFEROPS_CONFIG= "$bin" config print --config "$conf" >/dev/null || fail "config print on the shipped config"

# 4. "Edit /etc/inferops/inferops.yaml": set the brokers as the README says.
sed -i 's|^  # brokers: \[.*|  brokers: [broker1:9092, broker2:9092]|' "$conf"
"$bin" config print --config "$conf" --json | tr -d ' \n' | grep -q '"key":"kafka.brokers","flag":"--brokers","env":"INFEROPS_BROKERS","value":\["broker1:9092","broker2:9092"\],"source":"file"' ||
	fail "the edited kafka.brokers is not read from the file"

# 5. "Secrets in /etc/sysconfig/inferops": systemd would export them.
planted="install-check-planted-$$"
echo "INFEROPS_SASL_PASSWORD=$planted" >>"$root/etc/sysconfig/inferops"
out=$(set -a; . "$root/etc/sysconfig/inferops"; set +a; "$bin" config print --config "$conf" 2>&1)
echo "$out" | grep -q '^kafka.sasl.password  *\*\*\*  *env INFEROPS_SASL_PASSWORD' || fail "the password from /etc/sysconfig/inferops is not shown as *** from env"
if echo "$out" | grep -q "$planted"; then fail "config print leaked the password"; fi
step "version, config print, edited brokers and the sysconfig secret ok"
echo "install-check: PASS"
