#!/usr/bin/env bash
# package.install: installs the packages package.build made into a fresh
# Debian 12 root and runs an admin's steps there (in_root.sh). The root is
# `debootstrap --variant=minbase bookworm` from the Debian mirror apt uses
# on this machine (kept as a tarball in CACHE_DIR, made again after 30
# days); apt in the root fetches the packages' dependencies from the same
# mirror. Needs root (debootstrap, chroot, mounts in a private mount
# namespace) and the mirror: without either it fails and says why.
#
#   install_debs.sh DEBS_DIR WORK_DIR CACHE_DIR
set -euo pipefail
debs=$1
work=$2
cache=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

fail() {
  echo "package install: FAIL: $*" >&2
  exit 1
}
[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, chroot, mount)"
for tool in debootstrap unshare chroot python3; do
  command -v "$tool" >/dev/null ||
    fail "$tool is missing: scripts/setup.sh test installs it"
done
compgen -G "$debs/*.deb" >/dev/null ||
  fail "no .debs in $debs: package.build makes them (ctest -R package)"

sources=$(python3 "$here/apt_mirrors.py")
mirror=$(awk '$2 == "bookworm" {print $1; exit}' <<<"$sources")
[ -n "$mirror" ] ||
  fail "apt has no Debian 12 (bookworm) source in /etc/apt/sources.list*"

rm -rf "$work"
mkdir -p "$work" "$cache"
base=$cache/bookworm-minbase.tar
if [ -z "$(find "$base" -mtime -30 2>/dev/null)" ]; then
  tmp=$(mktemp -d "$cache/bootstrap.XXXXXX")
  echo "debootstrap --variant=minbase bookworm from $mirror (log: $work/debootstrap.log)"
  start=$(date +%s)
  if ! debootstrap --variant=minbase bookworm "$tmp/root" "$mirror" \
    >"$work/debootstrap.log" 2>&1; then
    tail -n 20 "$work/debootstrap.log" >&2
    rm -rf "$tmp"
    fail "debootstrap from $mirror failed (above): is the mirror reachable?"
  fi
  tar -C "$tmp/root" -cf "$tmp/base.tar" .
  mv "$tmp/base.tar" "$base"  # atomic: a parallel run sees old or new
  rm -rf "$tmp"
  echo "debootstrap took $(($(date +%s) - start)) s"
fi

root=$work/root
mkdir -p "$root"
tar -C "$root" -xf "$base"
awk '{print "deb " $1 " " $2 " main"}' <<<"$sources" >"$root/etc/apt/sources.list"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
mkdir -p "$root/debs"
cp "$debs"/*.deb "$root/debs/"
cp "$here/in_root.sh" "$root/in_root.sh"

# Mounts live only in the private mount namespace: when it ends they are
# gone, so nothing of the host's /dev, /proc or /sys is under $root after.
start=$(date +%s)
unshare --mount --propagation private -- bash -c '
  set -e
  mount -t proc proc "$1/proc"
  mount -t sysfs sysfs "$1/sys"
  mount --rbind /dev "$1/dev"
  mount -t tmpfs tmpfs "$1/run"
  mount -t tmpfs tmpfs "$1/tmp"
  exec chroot "$1" /bin/bash /in_root.sh' _ "$root" ||
  fail "the steps in the installed root failed (above)"
echo "install and steps took $(($(date +%s) - start)) s"
rm -rf "$root"  # kept only when a step failed, to look into
echo "package install: ok"
