#!/usr/bin/env bash
# RBD diff streams between a daxstore image and a single-node Ceph cluster
# (tests/e2e/ceph_cluster.sh: one mon, one OSD on memstore, so the OSD's
# data is in its memory), for an image of SIZE_MIB (1024) written whole,
# then 10% of it changed (64 KiB writes at random distinct offsets over
# NBD) between snapshots s1 and s2. Measured, each ROUNDS (3) times, the
# median printed with the range:
#   - daxstore image export-diff: s1 in full and s1-to-s2, offline and
#     through a running server's control socket; the stream's size and
#     throughput (stream bytes / wall time), against a full `image export`;
#   - the apply time of each stream with `rbd import-diff` and `daxstore
#     image import-diff` (the s1-to-s2 one applied again after deleting s2
#     on both sides);
#   - both piped together, as the README does it;
#   - rbd's own export-diff of the same change, its full export and an RBD
#     snapshot alone, for comparison.
# Then `rbd export @s2` is compared with the daxstore snapshot, byte for
# byte.
#
#   bench/rbd_diff.sh [BUILD_DIR] [OUT_FILE]
#
# The two daxstore images go to a fresh directory under IMAGE_DIR (default
# /dev/shm, DRAM: an image there, declared nothing, is memory-only), the
# streams, raw files and the cluster's files under WORK_DIR (default
# /var/tmp); the markdown table goes to stdout and, with OUT_FILE, into it.
# Env: SIZE_MIB, ROUNDS, IMAGE_DIR, WORK_DIR. Needs root or a user who may
# run Ceph's daemons, about 5 x SIZE_MIB of memory (the images and the
# OSD's), 4 x SIZE_MIB in WORK_DIR, and the test packages of
# scripts/setup.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd)
out=${2:-}
size_mib=${SIZE_MIB:-1024}
rounds=${ROUNDS:-3}
D=$build/tools/daxstore
die() { echo "rbd_diff: $*" >&2; exit 1; }
[[ -x $D ]] || die "$D is missing; build first (cmake --build $build)"
for t in qemu-io nbdinfo jq; do
  command -v $t >/dev/null || die "$t is missing: scripts/setup.sh installs it"
done
source "$here/../tests/e2e/ceph_cluster.sh"
work=$(mktemp -d "${WORK_DIR:-/var/tmp}/daxstore-rbd-bench.XXXXXX")
images=$(mktemp -d "${IMAGE_DIR:-/dev/shm}/daxstore-rbd-bench.XXXXXX")
server=
stop_server() {
  [[ -n $server ]] || return 0
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=
}
cleanup() {
  stop_server
  ceph_cluster_stop
  rm -rf "$work" "$images"
}
trap cleanup EXIT
cd "$work"
export XDG_RUNTIME_DIR=$work/run
mkdir -p run
rc=0
ceph_cluster_start "$work" $(((4 * size_mib + 512) << 20)) || rc=$?
((rc == 0)) || die "the Ceph cluster did not start (see above)"
# Ceph's default: the monitor commits map changes (an RBD snapshot's id
# among them) once a second; the tests' cluster does it every 0.1 s.
ceph tell mon.a config set paxos_propose_interval 1 >/dev/null

# now: seconds since the epoch, to the nanosecond.
now() { date +%s.%N; }
# timed NAME COMMAND...: runs it ROUNDS times (prep NAME runs before each
# round when defined), keeps every wall time in times[NAME].
declare -A times
timed() {
  local name=$1 r t0 t1
  shift
  times[$name]=
  for ((r = 0; r < rounds; r++)); do
    if declare -F "prep_$name" >/dev/null; then "prep_$name"; fi
    t0=$(now)
    "$@"
    t1=$(now)
    times[$name]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') "
  done
}
# stat3 NAME: "median (min-max)" seconds.
stat3() {
  tr ' ' '\n' <<<"${times[$1]}" | grep . | sort -g |
    awk '{ v[NR] = $1 } END { printf "%.2f s (%.2f-%.2f)", v[int((NR + 1) / 2)], v[1], v[NR] }'
}
median() {
  tr ' ' '\n' <<<"${times[$1]}" | grep . | sort -g |
    awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
# mibs BYTES NAME: MiB/s at NAME's median time.
mibs() { awk -v b="$1" -v t="$(median "$2")" 'BEGIN { printf "%.0f MiB/s", b / 1048576 / t }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

size=$((size_mib << 20))
echo "rbd_diff: a ${size_mib} MiB image, 10% changed, ${rounds} rounds, in $work" >&2
a=$images/a.img
b=$images/b.img
"$D" image create "$a" -s "${size_mib}M" --max-volumes 3 >/dev/null
head -c "$size" /dev/urandom >full.raw
"$D" image import full.raw "$a" --force >/dev/null
rm full.raw
"$D" image snapshot "$a" s1 >/dev/null
sock=$work/a.nbd
"$D" serve nbd "$a" --socket "$sock" 2>serve.log &
server=$!
for _ in $(seq 100); do
  nbdinfo "nbd+unix:///?socket=$sock" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || die "server: $(cat serve.log)"
  sleep 0.1
done
# 10%: distinct 64 KiB chunks at random offsets.
chunks=$((size / 65536))
nchanged=$((chunks / 10))
shuf -i 0-$((chunks - 1)) -n "$nchanged" --random-source=<(yes) |
  awk '{ printf "write -P %d %d 64k\n", NR % 255 + 1, $1 * 65536 }' >changes
qemu-io -f raw "nbd+unix:///?socket=$sock" <changes >/dev/null
"$D" image snapshot "$a" s2 >/dev/null

# Through the server's control socket (the server writes the file).
# quiet COMMAND...: without its standard output.
quiet() { "$@" >/dev/null; }
timed served_inc quiet "$D" image export-diff "$a" served-inc.diff \
  --from-snap s1 --to-snap s2 --force
stop_server
timed full_diff quiet "$D" image export-diff "$a" full.diff --to-snap s1 --force
timed inc_diff quiet "$D" image export-diff "$a" inc.diff --from-snap s1 --to-snap s2 --force
timed export "$D" image export "$a" s2.raw --volume s2 --force -q
full_bytes=$(stat -c %s full.diff)
inc_bytes=$(stat -c %s inc.diff)
raw_bytes=$(stat -c %s s2.raw)
raw_alloc=$(($(stat -c %b s2.raw) * 512))
cmp inc.diff served-inc.diff || die "the served export-diff differs from the offline one"
rm -f served-inc.diff

# rbd import-diff: the full stream into a new RBD image each round, the
# incremental one into the image at s1 each round (s2 deleted before).
prep_rbd_full() {
  rbd snap purge --no-progress rbd/img >/dev/null 2>&1 || true
  rbd rm --no-progress rbd/img >/dev/null 2>&1 || true
  rbd create rbd/img --size "${size_mib}M"; }
timed rbd_full rbd import-diff --no-progress full.diff rbd/img
prep_rbd_inc() { rbd snap rm --no-progress rbd/img@s2 >/dev/null 2>&1 || true; }
timed rbd_inc rbd import-diff --no-progress inc.diff rbd/img
# The README's form: export-diff piped into rbd import-diff, no file.
pipe_full() { "$D" image export-diff "$a" --to-snap s1 | rbd import-diff --no-progress - rbd/img; }
pipe_inc() { "$D" image export-diff "$a" --from-snap s1 --to-snap s2 | rbd import-diff --no-progress - rbd/img; }
prep_pipe_full() { prep_rbd_full; }
prep_pipe_inc() { prep_rbd_inc; }
timed pipe_full pipe_full
timed pipe_inc pipe_inc
rbd export --no-progress rbd/img@s2 rbd-s2.raw
cmp s2.raw rbd-s2.raw || die "rbd export @s2 differs from daxstore image export --volume s2"
rm -f rbd-s2.raw
# A snapshot alone: rbd import-diff ends by taking one.
prep_rbd_snap() { rbd snap rm --no-progress rbd/img@x >/dev/null 2>&1 || true; }
timed rbd_snap rbd snap create --no-progress rbd/img@x
prep_rbd_export_inc() { rm -f rbd-inc.diff; }
timed rbd_export_inc rbd export-diff --no-progress --from-snap s1 rbd/img@s2 rbd-inc.diff
rbd_inc_bytes=$(stat -c %s rbd-inc.diff)
timed rbd_export rbd export --no-progress rbd/img@s2 - >/dev/null

# daxstore import-diff, the same way.
prep_dax_full() { rm -f "$b"; "$D" image create "$b" -s "${size_mib}M" --max-volumes 4 >/dev/null; }
timed dax_full "$D" image import-diff full.diff "$b" >/dev/null
prep_dax_inc() { "$D" image delete "$b" s2 >/dev/null 2>&1 || true; }
timed dax_inc "$D" image import-diff inc.diff "$b" >/dev/null
"$D" image export "$b" b-s2.raw --volume s2 -q
cmp s2.raw b-s2.raw || die "the imported s2 differs"

report() {
  echo "| ${size_mib} MiB image, 10% changed in 64 KiB writes | size | time (median of $rounds, range) | throughput |"
  echo "| --- | --- | --- | --- |"
  echo "| \`daxstore image export-diff\`, s1 in full | $(mib "$full_bytes") | $(stat3 full_diff) | $(mibs "$full_bytes" full_diff) |"
  echo "| \`daxstore image export-diff\`, s1 to s2 | $(mib "$inc_bytes") | $(stat3 inc_diff) | $(mibs "$inc_bytes" inc_diff) |"
  echo "| the same through a running server's control socket | $(mib "$inc_bytes") | $(stat3 served_inc) | $(mibs "$inc_bytes" served_inc) |"
  echo "| \`daxstore image export --volume s2\` (raw) | $(mib "$raw_bytes") ($(mib "$raw_alloc") allocated) | $(stat3 export) | $(mibs "$raw_bytes" export) |"
  echo "| \`rbd import-diff\`, s1 in full | | $(stat3 rbd_full) | $(mibs "$full_bytes" rbd_full) |"
  echo "| \`rbd import-diff\`, s1 to s2 | | $(stat3 rbd_inc) | $(mibs "$inc_bytes" rbd_inc) |"
  echo "| \`export-diff\` piped into \`rbd import-diff\`, s1 in full | | $(stat3 pipe_full) | $(mibs "$full_bytes" pipe_full) |"
  echo "| \`export-diff\` piped into \`rbd import-diff\`, s1 to s2 | | $(stat3 pipe_inc) | $(mibs "$inc_bytes" pipe_inc) |"
  echo "| \`daxstore image import-diff\`, s1 in full | | $(stat3 dax_full) | $(mibs "$full_bytes" dax_full) |"
  echo "| \`daxstore image import-diff\`, s1 to s2 | | $(stat3 dax_inc) | $(mibs "$inc_bytes" dax_inc) |"
  echo "| \`rbd export-diff\`, s1 to s2 (for comparison) | $(mib "$rbd_inc_bytes") | $(stat3 rbd_export_inc) | $(mibs "$rbd_inc_bytes" rbd_export_inc) |"
  echo "| \`rbd snap create\` (for comparison) | | $(stat3 rbd_snap) | |"
  echo "| \`rbd export @s2\` (for comparison) | $(mib "$raw_bytes") | $(stat3 rbd_export) | $(mibs "$raw_bytes" rbd_export) |"
  echo
  echo "The s1-to-s2 stream is $(awk -v a="$inc_bytes" -v b="$raw_bytes" 'BEGIN { printf "%.1f%%", 100 * a / b }') of a full export."
  echo "Measured by bench/rbd_diff.sh on $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(ceph --version | awk '{ print $1, $2, $3 }'), images in ${IMAGE_DIR:-/dev/shm}, streams in ${WORK_DIR:-/var/tmp}, $(date -u +%Y-%m-%d)."
}
if [[ -n $out ]]; then
  report | tee "$out"
else
  report
fi
