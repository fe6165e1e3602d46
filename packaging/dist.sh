#!/bin/sh
# dist.sh BIN VERSION ARCH OUTDIR: the release tarball (make dist). Run from
# the repository root. The tarball holds one directory with the static
# binary, the README, the default config, the unit, the sysconfig example,
# the sysusers file and the LICENSE when the repository has one.
set -eu
bin=$1 version=$2 arch=$3 out=$4
name="inferops-${version}-linux-${arch}"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
dir="$stage/$name"
mkdir -p "$dir"
install -m 0755 "$bin" "$dir/inferops"
install -m 0644 README.md packaging/inferops.yaml packaging/inferops-worker@.service "$dir/"
install -m 0644 packaging/sysconfig.inferops "$dir/sysconfig.inferops"
install -m 0644 packaging/sysusers.conf "$dir/inferops.sysusers.conf"
if [ -f LICENSE ]; then install -m 0644 LICENSE "$dir/"; fi
mkdir -p "$out"
# Reproducible-ish: fixed owner, sorted names, mtime of the last commit.
mtime=$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
tar -C "$stage" --owner=0 --group=0 --numeric-owner --sort=name --mtime="$mtime" -czf "$out/$name.tar.gz" "$name"
(cd "$out" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
echo "$out/$name.tar.gz"
