#!/bin/bash
# Runs as root inside the fresh Debian 12 root (install_debs.sh): installs
# the packages with apt, then does what docs/install.md and the README's
# quick start tell an admin, with the installed files only.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
unset DAXSTORE_EMULATED_DIR XDG_RUNTIME_DIR
step() { echo "== $*"; }
fail() {
  echo "in the installed root: $*" >&2
  exit 1
}

step "apt-get install the packages (their Depends only)"
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends /debs/*.deb libnbd-bin pkgconf \
  >/tmp/apt.log || { tail -n 30 /tmp/apt.log; fail "apt-get install failed"; }
dpkg -s daxstore libdaxstore0 libdaxstore-dev nbdkit-plugin-daxstore nbdkit |
  grep -c '^Status: install ok installed' | grep -qx 5 ||
  fail "not every package is installed"
getent passwd daxstore | grep -q ':/var/lib/daxstore:' ||
  fail "no system user daxstore with home /var/lib/daxstore: $(getent passwd daxstore)"
getent group daxstore >/dev/null || fail "no group daxstore"
[ "$(stat -c %U:%G /var/lib/daxstore)" = daxstore:daxstore ] ||
  fail "/var/lib/daxstore is not daxstore's"
[ "$(realpath -m "$(pkg-config --variable=includedir daxstore)")" = /usr/include ] ||
  fail "pkg-config daxstore: includedir $(pkg-config --variable=includedir daxstore)"
pkg-config --exists --print-errors daxstore || fail "pkg-config daxstore"

step "the README's quick start, from /usr/bin"
daxstore emulate create --size 1G >/dev/null
daxstore create-namespace -m devdax -s 512M -n vm1 >/dev/null
daxstore image create vm1 --size 64M >/dev/null
daxstore image info vm1 | grep -q '"virtual_size": 67108864' ||
  fail "image info vm1: $(daxstore image info vm1)"
daxstore vm-args vm1 --nbd --socket /run/daxstore/vm1.nbd | grep -q 'driver=nbd' ||
  fail "vm-args vm1 --nbd"

step "nbdkit finds the plugin in its own directory"
nbdkit daxstore --dump-plugin | grep -qx 'name=daxstore' ||
  fail "nbdkit daxstore --dump-plugin: $(nbdkit daxstore --dump-plugin 2>&1)"
size=$(nbdkit -U - daxstore image=vm1 --run 'nbdinfo --size "$uri"')
[ "$size" = 67108864 ] || fail "nbdkit daxstore image=vm1: size '$size'"

step "systemd-analyze verify the unit"
unit=/lib/systemd/system/daxstore-serve@.service
out=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"

step "serve vm1 as daxstore-serve@vm1 does (its user, environment, command)"
# What docs/install.md says to do: the service's files belong to daxstore.
chown -R daxstore:daxstore /var/lib/daxstore
printf 'IMAGE=vm1\n' >/etc/daxstore/vm1.conf
install -d -o daxstore -g daxstore /run/daxstore  # RuntimeDirectory=
unit_line() { sed -n "s/^$1=//p" "$unit" | sed 's/%i/vm1/g'; }
[ "$(unit_line User)" = daxstore ] || fail "the unit's User= is not daxstore"
(
  umask 077
  exec env -i PATH="$PATH" HOME=/var/lib/daxstore USER=daxstore \
    setpriv --reuid=daxstore --regid=daxstore --init-groups --no-new-privs \
    bash -c "set -a; $(unit_line Environment); . /etc/daxstore/vm1.conf; set +a
             exec $(unit_line ExecStart)"
) >/tmp/serve.log 2>&1 &
server=$!
uri='nbd+unix:///?socket=/run/daxstore/vm1.nbd'
for _ in $(seq 120); do
  nbdinfo --size "$uri" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat /tmp/serve.log; fail "the server exited"; }
  sleep 0.5
done
[ "$(nbdinfo --size "$uri")" = 67108864 ] || { cat /tmp/serve.log; fail "nbdinfo $uri"; }
[ "$(stat -c %U /proc/$server)" = daxstore ] || fail "the server does not run as daxstore"
head -c 1M /dev/urandom >/tmp/pattern
nbdcopy /tmp/pattern "$uri" || fail "nbdcopy into $uri"
daxstore image info vm1 --control /run/daxstore/vm1.ctl | grep -q '"allocated_bytes": 1048576' ||
  fail "image info through /run/daxstore/vm1.ctl: $(daxstore image info vm1 --control /run/daxstore/vm1.ctl 2>&1)"
kill -TERM "$server"
wait "$server" || { cat /tmp/serve.log; fail "the server did not stop cleanly on SIGTERM"; }
daxstore image export vm1 /tmp/vm1.raw >/dev/null
cmp -n 1048576 /tmp/pattern /tmp/vm1.raw || fail "the data written over NBD is not in the image"

step "apt-get purge: the programs go, the images stay"
apt-get purge -y -q daxstore nbdkit-plugin-daxstore libdaxstore-dev libdaxstore0 \
  >/tmp/apt.log || { tail -n 30 /tmp/apt.log; fail "apt-get purge failed"; }
[ ! -e /usr/bin/daxstore ] || fail "/usr/bin/daxstore is still there"
[ ! -e /lib/systemd/system/daxstore-serve@.service ] || fail "the unit is still there"
[ -d /var/lib/daxstore/emulated/region0 ] || fail "purge removed the emulated bus"
echo "in the installed root: every step passed"
