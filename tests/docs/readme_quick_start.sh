#!/usr/bin/env bash
# Runs every `$ ` command of README.md's "Quick start 2" as written, in a
# fresh directory holding a small golden.raw, with `daxstore` on PATH, and
# checks each output the README shows. The guest is a stand-in:
# `qemu-system-x86_64` here opens the disk its -blockdev names with
# qemu-io, as QEMU would, and writes 1 MiB of 0x5a at 1 MiB. Then the
# snapshot taken live holds the golden disk plus that write, and the
# volumes share the golden blocks.
# Args: README DAXSTORE_BINARY.
set -euo pipefail
readme=$(realpath "$1")
daxstore=$(realpath "$2")
dir=$(mktemp -d /var/tmp/daxstore-readme.XXXXXX)
jobs_=()
cleanup() {
  for p in "${jobs_[@]}"; do kill "$p" 2>/dev/null || true; done
  wait || true
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$dir"
mkdir bin run
ln -s "$daxstore" bin/daxstore
cat >bin/qemu-system-x86_64 <<'STUB'
#!/usr/bin/env bash
set -euo pipefail
bd=
while (($#)); do
  [[ $1 == -blockdev ]] && { bd=$2; shift; }
  shift
done
[[ -n $bd ]] || { echo "qemu stand-in: no -blockdev" >&2; exit 1; }
qemu-io --image-opts -c 'write -P 0x5a 1M 1M' "$bd"
STUB
chmod +x bin/qemu-system-x86_64
export PATH=$dir/bin:$PATH
# The server's control socket: a directory of this test's own. The
# README sets DAXSTORE_EMULATED_DIR; until then, a bus of this test's own.
export XDG_RUNTIME_DIR=$dir/run DAXSTORE_EMULATED_DIR=$dir/no-bus
head -c 4M /dev/urandom >golden.raw
truncate -s 64M golden.raw

section=$(awk '/^## Quick start 2/ {on = 1; next} /^## / {on = 0} on' "$readme")
block=$(sed -n '/^```console$/,/^```$/p' <<<"$section" | sed '1d;$d')
[[ -n $block ]] || fail "no console block in README's Quick start 2"
cmds=()
outs=()
while IFS= read -r line; do
  if [[ $line == '$ '* ]]; then
    cmds+=("${line#\$ }")
    outs+=("")
  else
    ((${#cmds[@]})) || fail "output before any command: $line"
    outs[-1]+="$line"$'\n'
  fi
done <<<"$block"
((${#cmds[@]} >= 10)) || fail "only ${#cmds[@]} commands found"

# live SOCKET: the server behind it answers.
live() {
  for _ in $(seq 100); do
    nbdinfo "nbd+unix:///?socket=$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "no server on $1"
}
for i in "${!cmds[@]}"; do
  cmd=${cmds[$i]}
  echo "\$ $cmd"
  if [[ $cmd == *'&' ]]; then
    eval "$cmd"
    jobs_+=($!)
    if [[ $cmd == qemu-system* ]]; then
      # The stand-in guest writes and exits.
      wait "$!" || fail "the guest's disk: $cmd"
    elif [[ $cmd =~ --socket\ ([^ ]+) ]]; then
      live "${BASH_REMATCH[1]}"
    fi
    continue
  fi
  # In this shell, not a subshell: the README's `export` must hold.
  eval "$cmd" >"$dir/out" || fail "exit $?: $cmd"
  out=$(<"$dir/out")
  [[ -n $out ]] && echo "$out"
  if [[ -n ${outs[$i]} && $out != "${outs[$i]%$'\n'}" ]]; then
    fail "the README shows
${outs[$i]}but the command printed
$out"
  fi
done

echo "== checks"
want=$dir/want.raw
cp golden.raw "$want"
head -c 1M /dev/zero | tr '\0' '\132' |
  dd of="$want" bs=1M seek=1 conv=notrunc status=none
cmp "$want" vm1-backup.raw || fail "vm1-backup.raw is not the golden disk plus vm1's write"
# The golden 1024 blocks and vm1's 256, stored once; the six volumes map
# 1024 each (vm1 wrote inside the golden content).
stored=$(daxstore image info vms 2>/dev/null | jq .allocated_blocks)
mapped=$(daxstore image list vms 2>/dev/null | jq '[.[].mapped_blocks] | add')
[[ $stored == 1280 && $mapped == 6144 ]] ||
  fail "the image stores $stored blocks for $mapped mapped: wanted 1280, 6144"
echo "readme quick start: ok"
