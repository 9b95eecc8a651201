#!/usr/bin/env bash
# Sharing between VM root disks nobody here wrote: three Debian 12
# (bookworm) minbase roots from the mirror apt uses, one plain, one with a
# web server (nginx-light), one with a compiler (gcc), each made a 1 GiB
# raw ext4 disk (mkfs.ext4 -d) and put in its own volume of one image.
# Prints `image sharing` for them, cross-checks its counts with
# bench/dedup_count.py (SHA-256 over the raw files), then dedups them
# (volume scope, then the three in one group) and prints what each freed.
#
#   bench/dedup_debootstrap.sh DAXSTORE [WORKDIR]
#
# Needs root (debootstrap) and the mirror; exits 77 saying why without
# them. Downloads are cached in /var/cache/daxstore-dedup-debs.
set -euo pipefail
cli=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=${2:-$(mktemp -d /var/tmp/daxstore-dedup-deb.XXXXXX)}
cache=/var/cache/daxstore-dedup-debs
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || skip "needs root (debootstrap)"
for tool in debootstrap mkfs.ext4 python3 curl; do
  command -v "$tool" >/dev/null || skip "$tool is missing (scripts/setup.sh test installs it)"
done
mirror=$(python3 "$here/../tests/package/apt_mirrors.py" |
  awk '$2 == "bookworm" {print $1; exit}')
[ -n "$mirror" ] || skip "apt has no Debian 12 (bookworm) source"
curl -fsI --max-time 10 "$mirror/dists/bookworm/Release" >/dev/null ||
  skip "the Debian mirror $mirror cannot be reached"
mkdir -p "$work" "$cache"
cd "$work"
em="--emulate memory_controller"

declare -A include=([plain]="" [web]="--include=nginx-light" [compiler]="--include=gcc")
for v in plain web compiler; do
  if [ ! -s "$v.raw" ]; then
    rm -rf "$v"
    echo "debootstrap --variant=minbase ${include[$v]} bookworm ($v)"
    # shellcheck disable=SC2086
    debootstrap --variant=minbase --cache-dir="$cache" ${include[$v]} \
      bookworm "$v" "$mirror" >"$v.log" 2>&1 ||
      { tail -n 20 "$v.log" >&2; fail "debootstrap of $v failed (above)"; }
    mkfs.ext4 -q -F -b 4096 -d "$v" "$v.raw" 1G
    rm -rf "$v"
  fi
done

rm -f d.img t.img
$cli image create d.img --size 1G --max-volumes 8 $em >/dev/null
$cli image snapshot d.img empty $em >/dev/null
$cli image import plain.raw d.img --force $em >/dev/null
for v in web compiler; do
  $cli image clone d.img empty "$v" $em >/dev/null
  # Into the volume through an RBD diff stream from an image of its own.
  $cli image import "$v.raw" t.img --max-volumes 2 $em >/dev/null
  $cli image snapshot t.img s $em >/dev/null
  $cli image export-diff t.img "$v.diff" --to-snap s --force $em >/dev/null
  $cli image import-diff "$v.diff" d.img --volume "$v" $em >/dev/null
  $cli image delete d.img s $em >/dev/null
  rm -f t.img "$v.diff"
done
$cli image delete d.img empty $em >/dev/null
vols=(--volume base --volume web --volume compiler)
$cli image sharing d.img "${vols[@]}" $em >sharing.json
$cli image sharing d.img "${vols[@]}" --output=human $em
for v in base web compiler; do $cli image export d.img "x-$v.raw" --volume "$v" --force $em >/dev/null; done
python3 "$here/dedup_count.py" x-base.raw x-web.raw x-compiler.raw \
  --check sharing.json base web compiler
rm -f x-*.raw
before=$($cli image info d.img $em | python3 -c 'import json,sys; print(json.load(sys.stdin)["allocated_bytes"])')
echo "allocated before dedup: $before bytes"
echo "dedup --scope volume:"
$cli image dedup d.img $em
for v in base web compiler; do $cli image set-group d.img "$v" debian $em >/dev/null; done
echo "dedup --scope group (the three in one group):"
$cli image dedup d.img --scope group $em
after=$($cli image info d.img $em | python3 -c 'import json,sys; print(json.load(sys.stdin)["allocated_bytes"])')
echo "allocated after dedup: $after bytes"
$cli image check d.img $em >/dev/null || fail "image check after dedup"
echo "dedup debootstrap: ok"
