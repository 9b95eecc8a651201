# shellcheck shell=bash
# A single-node Ceph cluster for tests and benchmarks, from Debian's
# ceph-mon, ceph-osd and ceph-common: one monitor and one OSD on memstore
# (the data lives in the OSD's memory), auth off, pools of size 1, bound to
# 127.0.0.1 only. All its state is under one directory.
#
# Source this file, then:
#   ceph_cluster_start DIR [OSD_BYTES]
#       starts the cluster in DIR/ceph (OSD_BYTES: the memstore's capacity,
#       default 2 GiB), creates the pool `rbd` initialised for RBD, exports
#       CEPH_CONF so that rbd, ceph, rados and QEMU's rbd driver reach it,
#       and prints "ceph: cluster up in N.NN s". Returns 77 after printing
#       "SKIP: ..." when Ceph is not installed or does not start (the
#       daemons' logs are printed), unless DAXSTORE_CEPH_REQUIRED=1, when it
#       returns 1 instead.
#   ceph_cluster_stop
#       stops the daemons, the OSD first (SIGTERM, then SIGKILL after 10 s
#       each); the caller removes DIR.
# The daemons run in the foreground (-f) as children of the sourcing shell,
# so a test killed by its timeout takes them with it.

ceph_pids=()
ceph_dir=

# ceph_cluster_give_up MESSAGE: 77 (skip) or 1 (DAXSTORE_CEPH_REQUIRED=1).
ceph_cluster_give_up() {
  if [[ ${DAXSTORE_CEPH_REQUIRED:-0} == 1 ]]; then
    echo "FAIL: $1 (DAXSTORE_CEPH_REQUIRED=1)" >&2
    return 1
  fi
  echo "SKIP: $1"
  return 77
}

ceph_cluster_logs() {
  local f
  for f in "$ceph_dir"/log/*.log; do
    [[ -e $f ]] || continue
    echo "--- $f (last lines)" >&2
    tail -n 20 "$f" >&2
  done
}

# The OSD first: it tells the monitor it stops, and waits 5 s for an answer
# from a monitor that is gone.
ceph_cluster_stop() {
  local _ k
  for ((k = ${#ceph_pids[@]} - 1; k >= 0; k--)); do
    kill "${ceph_pids[k]}" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "${ceph_pids[k]}" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "${ceph_pids[k]}" 2>/dev/null || true
    wait "${ceph_pids[k]}" 2>/dev/null || true
  done
  ceph_pids=()
}

# ceph_cluster_free_port: a TCP port nothing listens on, from 20000-39999.
ceph_cluster_free_port() {
  local port _
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 20000))
    ss -Hltn "sport = :$port" 2>/dev/null | grep -q . || {
      echo "$port"
      return 0
    }
  done
  return 1
}

ceph_cluster_start() {
  local dir=$1 bytes=${2:-$((2 << 30))}
  local t0 fsid port uuid id tool
  t0=$(date +%s.%N)
  for tool in ceph-mon ceph-osd ceph monmaptool rbd; do
    command -v "$tool" >/dev/null || {
      ceph_cluster_give_up "$tool is not installed (Debian: apt-get install ceph-mon ceph-osd ceph-common)"
      return
    }
  done
  command -v ss >/dev/null || {
    ceph_cluster_give_up "ss is not installed (iproute2)"
    return
  }
  ceph_dir=$dir/ceph
  mkdir -p "$ceph_dir"/{run,log,mon.a,osd.0}
  fsid=$(cat /proc/sys/kernel/random/uuid)
  port=$(ceph_cluster_free_port) || {
    ceph_cluster_give_up "no free TCP port for the monitor"
    return
  }
  # msgr2 only, on the loopback address; no keys (auth none).
  cat >"$ceph_dir/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$port
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
keyring = /dev/null
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 1
mon data avail crit = 0
osd crush chooseleaf type = 0
# One monitor: commit map changes every 0.1 s rather than every second.
paxos propose interval = 0.1
osd objectstore = memstore
memstore device bytes = $bytes
run dir = $ceph_dir/run
admin socket = $ceph_dir/run/\$name.asok
log file = $ceph_dir/log/\$name.log
crash dir = $ceph_dir/crash
mon cluster log file = $ceph_dir/log/cluster.log
mon data = $ceph_dir/\$name
osd data = $ceph_dir/\$name
EOF
  export CEPH_CONF=$ceph_dir/ceph.conf
  if ! monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" \
    "$ceph_dir/monmap" >"$ceph_dir/log/setup.log" 2>&1 ||
    ! ceph-mon --mkfs -i a --monmap "$ceph_dir/monmap" \
      >>"$ceph_dir/log/setup.log" 2>&1; then
    cat "$ceph_dir/log/setup.log" >&2
    ceph_cluster_give_up "ceph-mon --mkfs failed"
    return
  fi
  ceph-mon -f -i a >>"$ceph_dir/log/setup.log" 2>&1 &
  ceph_pids+=($!)
  # The first command waits for the monitor (at most 30 s). The pool is
  # made before the OSD boots; `rbd pool init` waits until its placement
  # groups are active on the OSD (at most 60 s).
  uuid=$(cat /proc/sys/kernel/random/uuid)
  if ! id=$(ceph --connect-timeout 30 osd new "$uuid" 2>>"$ceph_dir/log/setup.log") ||
    ! ceph osd pool create rbd 8 >>"$ceph_dir/log/setup.log" 2>&1 ||
    ! ceph-osd -i "$id" --mkfs --osd-uuid "$uuid" \
      >>"$ceph_dir/log/setup.log" 2>&1; then
    ceph_cluster_logs
    ceph_cluster_stop
    ceph_cluster_give_up "the Ceph monitor, the pool or the OSD's mkfs failed"
    return
  fi
  ceph-osd -f -i "$id" >>"$ceph_dir/log/setup.log" 2>&1 &
  ceph_pids+=($!)
  if ! timeout 60 rbd pool init rbd >>"$ceph_dir/log/setup.log" 2>&1; then
    ceph_cluster_logs
    ceph_cluster_stop
    ceph_cluster_give_up "the Ceph OSD did not come up within 60 s"
    return
  fi
  echo "ceph: cluster up in $(awk -v a="$t0" -v b="$(date +%s.%N)" \
    'BEGIN { printf "%.2f", b - a }') s (one mon, one memstore OSD, ${CEPH_CONF})"
}
