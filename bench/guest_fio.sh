#!/usr/bin/env bash
# fio inside a kernel-tier guest (QEMU TCG: every figure is TCG-emulated)
# on four disks of ONE guest, measured side by side in one boot:
#   vhost-user-blk served by `daxstore serve vhost-user-blk` (an image)
#   vhost-user-blk served by qemu-storage-daemon (a raw file)
#   NBD served by `daxstore serve nbd` (an image, through nbdkit's plugin)
#   NBD served by nbdkit's file plugin (a raw file)
# All backing files sit in one host folder (default /dev/shm). Per disk and
# round: 4 KiB random writes with an fdatasync after each (O_DIRECT, queue
# depth 1), then 4 KiB random reads (O_DIRECT, queue depth 1). A disk that
# reports no volatile write cache (qemu-storage-daemon's export) is set to
# write back first, so every server gets a flush per write.
#
#   bench/guest_fio.sh [BUILD_DIR] [OUT_DIR] [DIR]
# Writes OUT_DIR/guest_fio.json and .md (default bench/results).
# Env: ROUNDS (3), SECS (fio seconds per figure, 2), KERNEL_CACHE.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd)
out=${2:-$here/results}
dir=${3:-/dev/shm}
rounds=${ROUNDS:-3} secs=${SECS:-2}
cli=$build/tools/daxstore
die() { echo "guest_fio: $*" >&2; exit 1; }
[[ -x $cli ]] || die "$cli is missing; build first (ninja -C $build)"
for t in fio qemu-storage-daemon nbdkit; do
  command -v $t >/dev/null ||
    die "$t is missing: apt-get install fio qemu-system-common nbdkit"
done
mkdir -p "$out"
work=$(mktemp -d "$dir/daxstore-guest-fio.XXXXXX")
gb=''
pids=()
cleanup() {
  local p
  for p in ${pids[@]+"${pids[@]}"}; do kill "$p" 2>/dev/null || true; done
  for p in ${pids[@]+"${pids[@]}"}; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work" "$gb"
}
trap cleanup EXIT
wait_sock() {
  for _ in $(seq 100); do [[ -S $1 ]] && return 0; sleep 0.1; done
  cat "$work"/*.log >&2 || true
  die "no socket $1: the server did not start (its log is above)"
}

# Each disk has its own size, so the guest tells them apart (MiB).
declare -A size=([dax_vhost]=256 [qsd_vhost]=264 [dax_nbd]=272 [nbdkit_file]=280)
"$cli" image create "$work/vhost.img" --size "${size[dax_vhost]}M" >/dev/null
"$cli" image create "$work/nbd.img" --size "${size[dax_nbd]}M" >/dev/null
truncate -s "${size[qsd_vhost]}M" "$work/qsd.raw"
truncate -s "${size[nbdkit_file]}M" "$work/file.raw"

"$cli" serve vhost-user-blk "$work/vhost.img" --socket "$work/dax.vub" \
  --queues 1 >"$work/dax-vhost.log" 2>&1 &
pids+=($!)
qemu-storage-daemon \
  --blockdev "driver=file,node-name=f0,filename=$work/qsd.raw" \
  --export "type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,addr.path=$work/qsd.vub,writable=on" \
  >"$work/qsd.log" 2>&1 &
pids+=($!)
"$cli" serve nbd "$work/nbd.img" --socket "$work/dax.nbd" >"$work/dax-nbd.log" 2>&1 &
pids+=($!)
nbdkit -f -U "$work/file.nbd" file "$work/file.raw" >"$work/nbdkit.log" 2>&1 &
pids+=($!)
for s in dax.vub qsd.vub dax.nbd file.nbd; do wait_sock "$work/$s"; done

# The guest's command lives outside /dev (the guest mounts its own /dev).
gb=$(mktemp -d "${TMPDIR:-/tmp}/daxstore-guest-fio-cmd.XXXXXX")
mkdir -p "$work/res"
# Runs in the guest (busybox sh): find each disk by its size, run fio.
cat >"$gb/guest.sh" <<GUEST
set -e
for name in dax_vhost qsd_vhost dax_nbd nbdkit_file; do
  case \$name in
    dax_vhost) mib=${size[dax_vhost]} ;; qsd_vhost) mib=${size[qsd_vhost]} ;;
    dax_nbd) mib=${size[dax_nbd]} ;; nbdkit_file) mib=${size[nbdkit_file]} ;;
  esac
  for b in /sys/block/vd*; do
    if [ "\$(cat \$b/size)" = \$((mib * 2048)) ]; then
      # A disk that reports no volatile cache gets no flush from fdatasync;
      # ask for write back (virtio's writable cache_type) so every server
      # sees the same flush per write. What the guest ends up with is
      # recorded and reported.
      if [ "\$(cat \$b/queue/write_cache)" != "write back" ] && [ -w \$b/cache_type ]; then
        echo "write back" >\$b/cache_type 2>/dev/null || true
      fi
      echo "\$name \${b##*/} \$(cat \$b/queue/write_cache)"
    fi
  done
done >\$DAXSTORE_RESULTS_DIR/disks
cat \$DAXSTORE_RESULTS_DIR/disks
r=1
while [ \$r -le $rounds ]; do
  mkdir -p \$DAXSTORE_RESULTS_DIR/round\$r
  while read -r name dev cache; do
    for rw in randwrite randread; do
      sync_opt=''
      if [ \$rw = randwrite ]; then sync_opt=--fdatasync=1; fi
      fio --name=\$name --filename=/dev/\$dev --ioengine=psync --direct=1 \
        --rw=\$rw --bs=4k --size=64M \$sync_opt --time_based \
        --runtime=$secs --output-format=json \
        >\$DAXSTORE_RESULTS_DIR/round\$r/\$name-\$rw.json
    done
  done <\$DAXSTORE_RESULTS_DIR/disks
  r=\$((r + 1))
done
GUEST

chmod +x "$gb/guest.sh"  # the harness ships executables only
opts=(--build "$gb" --results "$work/res" --nvdimm 1 --nvdimm-size 64M
  --memory 1G --shared-ram --timeout 900 --add "$(command -v fio)"
  --qemu-arg -chardev --qemu-arg "socket,id=vd,path=$work/dax.vub"
  --qemu-arg -device --qemu-arg "vhost-user-blk-pci,chardev=vd,num-queues=1"
  --qemu-arg -chardev --qemu-arg "socket,id=vq,path=$work/qsd.vub"
  --qemu-arg -device --qemu-arg "vhost-user-blk-pci,chardev=vq,num-queues=1"
  --qemu-arg -drive
  --qemu-arg "file=nbd+unix:///?socket=$work/dax.nbd,format=raw,if=virtio,cache=none"
  --qemu-arg -drive
  --qemu-arg "file=nbd+unix:///?socket=$work/file.nbd,format=raw,if=virtio,cache=none")
[[ -n ${KERNEL_CACHE:-} ]] && opts+=(--cache "$KERNEL_CACHE")
"$here/../emulation/kernel/run-in-guest" "${opts[@]}" -- sh "$gb/guest.sh" ||
  die "the guest run failed (exit $?)"

python3 - "$work/res" "$out/guest_fio" "$dir" "$secs" <<'PY'
import json, statistics, sys
from pathlib import Path
res, prefix, where, secs = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
NAMES = {
    "dax_vhost": ("vhost-user-blk", "daxstore serve vhost-user-blk (image)"),
    "qsd_vhost": ("vhost-user-blk", "qemu-storage-daemon (raw file)"),
    "dax_nbd": ("NBD", "daxstore serve nbd (image)"),
    "nbdkit_file": ("NBD", "nbdkit file plugin (raw file)"),
}
PAIR = {"qsd_vhost": "dax_vhost", "nbdkit_file": "dax_nbd",
        "dax_vhost": "dax_vhost", "dax_nbd": "dax_nbd"}
disks = {}
for line in (res / "disks").read_text().split("\n"):
    if line.strip():
        name, dev, *cache = line.split()
        disks[name] = (dev, " ".join(cache))
missing = set(NAMES) - set(disks)
if missing:
    sys.exit(f"guest_fio: the guest did not see the disks {sorted(missing)}")
rounds = sorted(res.glob("round*"), key=lambda p: int(p.name[5:]))
if not rounds:
    sys.exit("guest_fio: no rounds came back from the guest")
def iops(f, op):
    text = f.read_text()
    return json.loads(text[text.index("{"):])["jobs"][0][op]["iops"]
data = {n: {"write": [], "read": []} for n in NAMES}
for r in rounds:
    for n in NAMES:
        data[n]["write"].append(iops(r / f"{n}-randwrite.json", "write"))
        data[n]["read"].append(iops(r / f"{n}-randread.json", "read"))
def fmt(vals, f):
    m = statistics.median(vals)
    return f(m) if len(vals) == 1 else f"{f(m)} ({f(min(vals))}-{f(max(vals))})"
result = {"tcg_emulated": True, "host_dir": where, "fio_seconds": int(secs),
          "rounds": len(rounds),
          "disks": {n: {"guest_dev": disks[n][0], "write_cache": disks[n][1],
                        "randwrite_fdatasync_iops": data[n]["write"],
                        "randread_iops": data[n]["read"]} for n in NAMES}}
Path(prefix + ".json").write_text(json.dumps(result, indent=2) + "\n")
lines = [f"TCG-emulated guest (QEMU TCG, 1 vCPU), fio in the guest, psync, "
         f"O_DIRECT, 4 KiB, queue depth 1, {secs} s per figure, "
         f"{len(rounds)} rounds side by side in one boot; backing files on "
         f"the host's {where}. Median (min-max).", "",
         "| protocol | server | guest write cache | randwrite + fdatasync IOPS "
         "| daxstore is | randread IOPS | daxstore is |",
         "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
for n, (proto, server) in NAMES.items():
    d = PAIR[n]
    cells = []
    for op in ("write", "read"):
        ratio = [a / b for a, b in zip(data[d][op], data[n][op])]
        cells += [fmt(data[n][op], lambda v: f"{v:,.0f}"),
                  fmt(ratio, lambda v: f"{v:.2f}x")]
    lines.append(f"| {proto} | {server} | {disks[n][1]} | " + " | ".join(cells) + " |")
Path(prefix + ".md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
