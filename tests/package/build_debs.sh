#!/usr/bin/env bash
# package.build: builds the Debian packages (debian/) with
# `dpkg-buildpackage -b -us -uc` from a copy of the source tree, then checks
# each .deb's files, dependencies and maintainer scripts, and that the
# extracted files work together: the CLI runs the quick start, nbdkit loads
# the packaged plugin and serves an image through it, and systemd-analyze
# accepts the unit. Leaves the .debs in WORK_DIR/debs for package.install.
#
#   build_debs.sh SOURCE_DIR WORK_DIR
set -euo pipefail
src=$1
work=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

fail() {
  echo "package build: FAIL: $*" >&2
  exit 1
}
for tool in dpkg-buildpackage dpkg-checkbuilddeps dh dpkg-deb readelf \
  systemd-analyze nbdkit nbdinfo; do
  command -v "$tool" >/dev/null ||
    fail "$tool is missing: scripts/setup.sh test installs it"
done

rm -rf "$work"
mkdir -p "$work/src" "$work/debs"

# The copy: the tracked and new files of a git checkout (what a developer
# is testing), else the tree without build directories.
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$src" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    tar --null -cf - -T -) | tar -xf - -C "$work/src"
else
  tar -C "$src" --exclude='./build*' --exclude=./.git -cf - . |
    tar -xf - -C "$work/src"
fi
[ -f "$work/src/debian/control" ] || fail "no debian/control in the copy"
(cd "$work/src" && dpkg-checkbuilddeps) ||
  fail "build dependencies missing (above): apt-get build-dep $src"

# ccache, when there, through CMake's launcher variables; debhelper points
# HOME elsewhere, so name the cache itself.
if command -v ccache >/dev/null; then
  export CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache
  CCACHE_DIR=$(ccache -k cache_dir)
  export CCACHE_DIR
fi
echo "building the packages (log: $work/build.log)"
start=$(date +%s)
if ! (cd "$work/src" &&
  DEB_BUILD_OPTIONS="noddebs parallel=$(nproc)" \
    dpkg-buildpackage -b -us -uc) >"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log" >&2
  fail "dpkg-buildpackage failed (log: $work/build.log)"
fi
echo "dpkg-buildpackage took $(($(date +%s) - start)) s"
mv "$work"/*.deb "$work/debs/"
# The build tree goes: the CLI would otherwise find the plugin it was built
# next to before the packaged one.
rm -rf "$work/src"

arch=$(dpkg-architecture -qDEB_HOST_ARCH)
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
version=$(dpkg-deb -f "$work"/debs/daxstore_*_"$arch".deb Version)
plugindir=$(pkg-config --variable=plugindir nbdkit)
[ "$plugindir" = "/usr/lib/$ma/nbdkit/plugins" ] ||
  fail "nbdkit's plugin directory is $plugindir, not /usr/lib/$ma/nbdkit/plugins"

deb() { echo "$work/debs/${1}_${version}_$arch.deb"; }
# has PACKAGE PATH...: the package holds every PATH.
has() {
  local pkg=$1 list
  shift
  [ -f "$(deb "$pkg")" ] || fail "no package $pkg was built"
  list=$(dpkg-deb -c "$(deb "$pkg")" | awk '{print $6}')
  for p in "$@"; do
    grep -qxF "./$p" <<<"$list" || fail "$pkg does not hold /$p"
  done
}
# field PACKAGE FIELD TEXT...: the control field holds every TEXT.
field() {
  local pkg=$1 name=$2 value
  shift 2
  value=$(dpkg-deb -f "$(deb "$pkg")" "$name")
  for t in "$@"; do
    grep -qF -- "$t" <<<"$value" || fail "$pkg's $name lacks '$t': $value"
  done
}

has libdaxstore0 "usr/lib/$ma/libdaxstore.so.0" "usr/lib/$ma/libdaxstore.so.$version"
has libdaxstore-dev usr/include/daxstore/daxstore.h usr/include/daxstore/image.h \
  "usr/lib/$ma/libdaxstore.so" "usr/lib/$ma/pkgconfig/daxstore.pc" \
  "usr/lib/$ma/cmake/daxstore/daxstoreConfig.cmake"
has daxstore usr/bin/daxstore lib/systemd/system/daxstore-serve@.service \
  usr/lib/sysusers.d/daxstore.conf usr/lib/tmpfiles.d/daxstore.conf \
  etc/daxstore/serve.conf.example usr/share/bash-completion/completions/daxstore
has nbdkit-plugin-daxstore "${plugindir#/}/nbdkit-daxstore-plugin.so" \
  usr/share/man/man1/nbdkit-daxstore-plugin.1.gz
# The man pages: one per verb (docs/man/), a ".so" page for each verb that
# shares another's, libdaxstore(3) with the headers.
for page in daxstore daxstore-list daxstore-create-namespace daxstore-emulate \
  daxstore-map daxstore-image daxstore-serve daxstore-vm-args daxstore-bench \
  daxstore-destroy-namespace daxstore-enable-namespace daxstore-disable-namespace \
  daxstore-reconfigure-device daxstore-enable-region daxstore-disable-region \
  daxstore-init-labels; do
  has daxstore "usr/share/man/man1/$page.1.gz"
done
has libdaxstore-dev usr/share/man/man3/libdaxstore.3.gz

field libdaxstore0 Depends libpmem2 libndctl6 libdaxctl1
field libdaxstore-dev Depends "libdaxstore0 (= $version)" libpmem2-dev libndctl-dev
field daxstore Depends "libdaxstore0 (= $version)" systemd-sysusers
field daxstore Recommends nbdkit
field nbdkit-plugin-daxstore Depends nbdkit, "libdaxstore0 (= $version)"
dpkg-deb -I "$(deb libdaxstore0)" shlibs | grep -qxF "libdaxstore 0 libdaxstore0 (= $version)" ||
  fail "libdaxstore0's shlibs file: $(dpkg-deb -I "$(deb libdaxstore0)" shlibs)"
dpkg-deb -I "$(deb daxstore)" postinst | grep -q 'systemd-sysusers.*daxstore.conf' ||
  fail "daxstore's postinst does not create the daxstore user"
dpkg-deb -I "$(deb daxstore)" postinst | grep -q 'systemd-tmpfiles.*--create daxstore.conf' ||
  fail "daxstore's postinst does not create /var/lib/daxstore"
dpkg-deb -I "$(deb daxstore)" conffiles | grep -qxF /etc/daxstore/serve.conf.example ||
  fail "/etc/daxstore/serve.conf.example is not a conffile"

# The files, extracted, working together.
root=$work/root
mkdir -p "$root"
for d in "$work"/debs/*.deb; do dpkg -x "$d" "$root"; done
soname=$(readelf -d "$root/usr/lib/$ma/libdaxstore.so.$version" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = libdaxstore.so.0 ] || fail "SONAME is '$soname', not libdaxstore.so.0"
pcdir=$(PKG_CONFIG_PATH=$root/usr/lib/$ma/pkgconfig \
  pkg-config --variable=includedir daxstore)
[ "$(realpath -m "$pcdir")" = "$root/usr/include" ] ||
  fail "daxstore.pc's includedir is $pcdir, not $root/usr/include"

# man finds the packaged pages, follows a redirect, and the completion
# script offers the verbs.
if command -v man >/dev/null; then
  MANWIDTH=80 man -M "$root/usr/share/man" daxstore-destroy-namespace 2>&1 |
    grep -q "^NAME" || fail "man does not show daxstore-destroy-namespace(1) from the package"
  MANWIDTH=80 man -M "$root/usr/share/man" daxstore-destroy-namespace 2>&1 |
    grep -q "daxstore-create-namespace, daxstore-destroy-namespace" ||
    fail "daxstore-destroy-namespace(1) does not lead to daxstore-create-namespace(1)"
fi
verbs=$(bash -c 'source "$1"; COMP_WORDS=(daxstore ima); COMP_CWORD=1; _daxstore
  echo "${COMPREPLY[*]}"' _ "$root/usr/share/bash-completion/completions/daxstore")
[ "$verbs" = image ] || fail "the packaged completion offers '$verbs' for 'daxstore ima'"

export LD_LIBRARY_PATH=$root/usr/lib/$ma
export DAXSTORE_NBDKIT_PLUGIN=$root$plugindir/nbdkit-daxstore-plugin.so
export DAXSTORE_EMULATED_DIR=$work/bus
cli=$root/usr/bin/daxstore
[ "$(ldd "$cli" | awk '/libdaxstore/ {print $3}')" = "$root/usr/lib/$ma/libdaxstore.so.0" ] ||
  fail "the CLI does not load the packaged library: $(ldd "$cli" | grep libdaxstore)"
"$cli" emulate create --size 1G >/dev/null
"$cli" create-namespace --bus emulated -m devdax -s 512M -n vm1 >/dev/null
"$cli" image create vm1 --bus emulated -s 64M >/dev/null
"$cli" image info vm1 --bus emulated | grep -q '"virtual_size": 67108864' ||
  fail "image info vm1: $("$cli" image info vm1 --bus emulated)"
nbdkit --dump-plugin "$DAXSTORE_NBDKIT_PLUGIN" | grep -qx 'name=daxstore' ||
  fail "nbdkit does not load the packaged plugin"
img=$work/disk.img
"$cli" image create "$img" -s 16M >/dev/null
size=$(nbdkit -U - "$DAXSTORE_NBDKIT_PLUGIN" image="$img" --run 'nbdinfo --size "$uri"')
[ "$size" = 16777216 ] || fail "nbdinfo through the packaged plugin: size '$size'"

# The unit as installed, with ExecStart pointing at the extracted CLI
# (systemd-analyze checks that it exists); any warning fails.
mkdir -p "$work/unit"
sed "s#/usr/bin/daxstore #$cli #" "$root/lib/systemd/system/daxstore-serve@.service" \
  >"$work/unit/daxstore-serve@.service"
grep -q "^ExecStart=$cli serve nbd " "$work/unit/daxstore-serve@.service" ||
  fail "the unit's ExecStart is not /usr/bin/daxstore serve nbd"
out=$(systemd-analyze verify "$work/unit/daxstore-serve@.service" 2>&1) ||
  fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"

# The unit's own command line and environment (paths under /run/daxstore
# moved into WORK_DIR), run as systemd would run it: READY=1 must come from
# the main PID (Type=notify, NotifyAccess=main), then the NBD export serves
# the namespace's image and SIGTERM stops it cleanly.
run=$work/run
mkdir -p "$run"
unit_line() {
  sed -n "s/^$1=//p" "$work/unit/daxstore-serve@.service" |
    sed -e "s#/run/daxstore#$run#g" -e 's/%i/vm1/g'
}
exec_start=$(unit_line ExecStart)
unit_env=$(unit_line Environment)
# The EnvironmentFile, /etc/daxstore/vm1.conf (read after Environment=).
printf '%s\n' IMAGE=vm1 'ARGS="--bus emulated"' "DAXSTORE_EMULATED_DIR=$work/bus" \
  >"$work/vm1.conf"
python3 "$here/notify_ready.py" 60 \
  "nbdinfo --size 'nbd+unix:///?socket=$run/vm1.nbd' | grep -qx 67108864 &&
   '$cli' image info vm1 --bus emulated --control '$run/vm1.ctl' | grep -q '\"virtual_size\": 67108864'" -- \
  env -u DAXSTORE_EMULATED_DIR bash -c \
    "set -a; $unit_env; . '$work/vm1.conf'; set +a; exec $exec_start" ||
  fail "the unit's ExecStart did not serve vm1 as a Type=notify service"

echo "package build: ok ($(cd "$work/debs" && echo *.deb))"
