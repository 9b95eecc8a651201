#!/usr/bin/env bash
# image mirror of a served volume to a second image served over NBD on TCP
# (the destination host), while an NBD client (the guest) writes to the
# source all the while. Env: DAXSTORE; $1, the case:
#   sync         mirror until ready, stop the writer (the guest's pause),
#                mirror-complete: the source is fenced, and the source's
#                and the destination's exports are equal byte for byte;
#                the destination allocates what the source does (holes
#                stay holes) and image check finds it clean. Also: a
#                destination of another size, or one holding data, is
#                refused.
#   dest-killed  the destination's server killed (kill -9) while the ready
#                mirror follows the writes: the mirror fails, the writer
#                goes on, and every write it saw acknowledged reads back
#                from the source.
#   cancel       mirror-cancel while ready: the writer goes on; a new
#                mirror to a fresh destination then completes, equal byte
#                for byte.
#   net-drop     the mirror goes through a TCP proxy, killed while the
#                mirror runs: as dest-killed.
#   stall        the destination's server stopped (SIGSTOP) with
#                --io-timeout 2: the mirror fails saying the destination
#                did not answer; as dest-killed.
#   tls          the destination requires TLS with a pre-shared key
#                (serve nbd --tls-psk); a mirror without the key is
#                refused, one with --tls-psk-file completes as sync.
#   tls-x509     the same with X.509 certificates an openssl CA made here
#                (serve nbd --tls-certificates, image mirror
#                --tls-certificates): a mirror without TLS, or with a
#                client trusting another CA, is refused.
set -euo pipefail
case_=${1:?the case: sync, dest-killed, cancel, net-drop, stall, tls or tls-x509}
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }
say() { echo "[${SECONDS}s] $*"; }
command -v nbdcopy >/dev/null || { echo "SKIP: nbdcopy is not installed"; exit 77; }
$py -c 'import nbd' 2>/dev/null ||
  { echo "SKIP: python3-libnbd is not installed"; exit 77; }
work=$(mktemp -d /var/tmp/daxstore-mirror.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do
    kill -CONT "$p" 2>/dev/null || true
    kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
export XDG_RUNTIME_DIR=$work/run
mkdir -m 700 run
D=$DAXSTORE
size=$((16 << 20))

free_port() {
  $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# serve NAME ARGS...: serves NAME.img in the background; sets $pid.
serve() {
  local name=$1
  shift
  "$D" serve nbd "$name.img" "$@" 2>"$name.log" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do
    grep -q "daxstore: serving" "$name.log" && return 0
    kill -0 "$pid" 2>/dev/null || fail "serve $name: $(cat "$name.log")"
    sleep 0.1
  done
  fail "serve $name: not ready: $(cat "$name.log")"
}
# status FIELD: the source mirror's FIELD.
status() {
  "$D" image mirror-status src.img --volume base |
    $py -c "import json,sys; j=json.load(sys.stdin); print(j[0].get('$1','') if j else '')"
}
# wait_state STATE: until the mirror's state is STATE (30 s at most).
wait_state() {
  for _ in $(seq 300); do
    [[ $(status state) == "$1" ]] && return 0
    sleep 0.1
  done
  fail "the mirror is $(status state), not $1: $("$D" image mirror-status src.img)"
}
# new_dest NAME: a fresh destination image, served on TCP; sets $port.
new_dest() {
  "$D" image create "$1.img" -s "$size" >/dev/null
  port=$(free_port)
  serve "$1" --tcp "127.0.0.1:$port" "${@:2}"
  eval "${1}_pid=$pid"
}
start_writer() {
  rm -f stop
  $py "$here/mirror_writer.py" "nbd+unix:///?socket=$work/src.nbd" stop writer.log \
    >writer.out 2>&1 &
  writer=$!
  pids+=("$writer")
  sleep 0.5
}
stop_writer() {
  touch stop
  wait "$writer" || fail "the writer failed: $(cat writer.out)"
  say "$(cat writer.out)"
}
# The source's content checked against what the writer saw acknowledged.
verify_source() {
  nbdcopy "nbd+unix:///?socket=$work/src.nbd" src.raw
  $py "$here/mirror_verify.py" src.raw writer.log || fail "the source lost writes"
}
# The source's and the destination's exports, byte for byte.
compare() {
  nbdcopy "nbd+unix:///?socket=$work/src.nbd" src.raw
  nbdcopy "$1" dst.raw "${@:2}"
  cmp src.raw dst.raw || fail "the destination differs from the source"
  $py "$here/mirror_verify.py" dst.raw writer.log || fail "the destination lost writes"
}
# After mirror-complete: a write to the source is refused (fenced).
check_fenced() {
  if $py -c "
import nbd
h = nbd.NBD(); h.connect_uri('nbd+unix:///?socket=$work/src.nbd')
h.pwrite(b'x' * 4096, 0)" 2>fence.err; then
    fail "a write to the source after mirror-complete succeeded"
  fi
  # nbdkit sends EROFS as NBD_EPERM.
  grep -Eq "EPERM|EROFS" fence.err || fail "the fenced write: $(cat fence.err)"
}
# The destination stopped, then checked offline; allocated_blocks equal.
check_dest() {
  local src_alloc dst_alloc
  src_alloc=$("$D" image info src.img | $py -c 'import json,sys; print(json.load(sys.stdin)["allocated_blocks"])')
  kill "$1" && wait "$1" || true
  say "destination stopped"
  "$D" image check "$2.img" >check.json || fail "image check: $(cat check.json)"
  dst_alloc=$("$D" image info "$2.img" | $py -c 'import json,sys; print(json.load(sys.stdin)["allocated_blocks"])')
  [[ $src_alloc == "$dst_alloc" ]] ||
    fail "the destination allocates $dst_alloc blocks, the source $src_alloc"
}

# The source: 16 MiB, a third of its blocks data, the rest holes.
"$D" image create src.img -s "$size" >/dev/null
serve src --socket "$work/src.nbd"
$py - "nbd+unix:///?socket=$work/src.nbd" <<'PY'
import os, sys
import nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
for i in range(0, h.get_size() // 4096, 3):
    h.pwrite(os.urandom(4096), i * 4096)
h.flush()
PY
say "source served and seeded"

case $case_ in
sync)
  # Refused: another size, a destination holding data.
  "$D" image create small.img -s 8M >/dev/null
  port=$(free_port)
  serve small --tcp "127.0.0.1:$port"
  if "$D" image mirror src.img --to "nbd://127.0.0.1:$port/" 2>err; then
    fail "a mirror to an 8 MiB destination started"
  fi
  grep -q "exactly as large" err || fail "wrong size: $(cat err)"
  new_dest used
  $py -c "
import nbd
h = nbd.NBD(); h.connect_uri('nbd://127.0.0.1:$port/'); h.pwrite(b'x' * 4096, 8192)"
  if "$D" image mirror src.img --to "nbd://127.0.0.1:$port/" 2>err; then
    fail "a mirror to a destination holding data started"
  fi
  grep -q "holds data" err || fail "destination with data: $(cat err)"
  new_dest dst
  start_writer
  "$D" image mirror src.img --to "nbd://127.0.0.1:$port/" --wait >start.json ||
    fail "mirror: $(cat start.json)"
  grep -q '"state": "ready"' start.json || fail "not ready: $(cat start.json)"
  sleep 1  # the mirror follows the writes for a while
  stop_writer
  "$D" image mirror-complete src.img >done.json || fail "complete: $(cat done.json)"
  grep -q '"state": "completed"' done.json || fail "$(cat done.json)"
  say "completed"
  check_fenced
  compare "nbd://127.0.0.1:$port/"
  check_dest "$dst_pid" dst
  ;;
dest-killed | net-drop | stall)
  new_dest dst
  to="nbd://127.0.0.1:$port/"
  extra=()
  if [[ $case_ == net-drop ]]; then
    $py "$here/tcp_proxy.py" proxy.port 127.0.0.1 "$port" &
    proxy=$!
    pids+=("$proxy")
    for _ in $(seq 50); do [[ -s proxy.port ]] && break; sleep 0.1; done
    to="nbd://127.0.0.1:$(cat proxy.port)/"
  fi
  [[ $case_ == stall ]] && extra=(--io-timeout 2)
  start_writer
  "$D" image mirror src.img --to "$to" "${extra[@]}" --wait >start.json ||
    fail "mirror: $(cat start.json)"
  case $case_ in
  dest-killed) kill -9 "$dst_pid" ;;
  net-drop) kill -9 "$proxy" ;;
  stall) kill -STOP "$dst_pid" ;;
  esac
  wait_state failed
  say "failed"
  err=$(status error)
  echo "the mirror failed: $err"
  [[ -n $err ]] || fail "a failed mirror without an error"
  [[ $case_ != stall ]] || [[ $err == *"no answer for 2 s"* ]] || fail "stall: $err"
  if "$D" image mirror-complete src.img 2>err; then
    fail "mirror-complete of a failed mirror succeeded"
  fi
  sleep 0.5  # the writer goes on writing to the source
  stop_writer
  verify_source
  ;;
cancel)
  new_dest dst
  start_writer
  "$D" image mirror src.img --to "nbd://127.0.0.1:$port/" --wait >/dev/null
  say "ready; cancelling"
  "$D" image mirror-cancel src.img >cancel.json || fail "cancel: $(cat cancel.json)"
  grep -q '"state": "cancelled"' cancel.json || fail "$(cat cancel.json)"
  sleep 0.5
  # A new mirror, to a fresh destination, completes.
  say "cancelled"
  new_dest dst2
  "$D" image mirror src.img --to "nbd://127.0.0.1:$port/" --wait >/dev/null ||
    fail "the second mirror"
  say "the second mirror is ready"
  stop_writer
  "$D" image mirror-complete src.img >done.json || fail "complete: $(cat done.json)"
  check_fenced
  compare "nbd://127.0.0.1:$port/"
  check_dest "$dst2_pid" dst2
  ;;
tls)
  nbdkit --dump-config 2>/dev/null | grep -q '^tls=yes' ||
    { echo "SKIP: this nbdkit has no TLS"; exit 77; }
  # A PSK file as psktool writes it: USER:HEXKEY.
  printf 'mirror:%s\n' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" >keys.psk
  chmod 600 keys.psk
  new_dest dst --tls-psk "$work/keys.psk"
  if "$D" image mirror src.img --to "nbd://127.0.0.1:$port/" 2>err; then
    fail "a mirror without TLS to a TLS-only destination started"
  fi
  echo "without the key: $(cat err)"
  start_writer
  "$D" image mirror src.img --to "nbd://127.0.0.1:$port/" \
    --tls-psk-file "$work/keys.psk" --tls-username mirror --wait >start.json ||
    fail "mirror: $(cat start.json)"
  stop_writer
  "$D" image mirror-complete src.img >done.json || fail "complete: $(cat done.json)"
  check_fenced
  compare "nbds://mirror@127.0.0.1:$port/?tls-psk-file=$work/keys.psk"
  check_dest "$dst_pid" dst
  ;;
tls-x509)
  nbdkit --dump-config 2>/dev/null | grep -q '^tls=yes' ||
    { echo "SKIP: this nbdkit has no TLS"; exit 77; }
  command -v openssl >/dev/null || { echo "SKIP: openssl is not installed"; exit 77; }
  # ca NAME: a CA key and self-signed certificate in NAME-ca-{key,cert}.pem.
  ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout "$1-ca-key.pem" -out "$1-ca-cert.pem" -days 2 \
      -subj "/CN=daxstore test $1 CA" 2>/dev/null
  }
  # cert CA DIR ROLE USAGE: DIR/ROLE-{key,cert}.pem signed by CA, naming
  # 127.0.0.1, and the CA's certificate as DIR/ca-cert.pem.
  cert() {
    mkdir -p -m 700 "$2"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout "$2/$3-key.pem" -out "$2/$3.csr" -subj "/CN=127.0.0.1" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=%s\n' "$4" >"$2/ext"
    openssl x509 -req -in "$2/$3.csr" -CA "$1-ca-cert.pem" -CAkey "$1-ca-key.pem" \
      -CAcreateserial -out "$2/$3-cert.pem" -days 2 -extfile "$2/ext" 2>/dev/null
    cp "$1-ca-cert.pem" "$2/ca-cert.pem"
    rm -f "$2/$3.csr" "$2/ext"
  }
  ca good
  ca other
  cert good server.d server serverAuth
  cert good client.d client clientAuth
  cert other stranger.d client clientAuth
  new_dest dst --tls-certificates "$work/server.d"
  if "$D" image mirror src.img --to "nbd://127.0.0.1:$port/" 2>err; then
    fail "a mirror without TLS to a TLS-only destination started"
  fi
  echo "without TLS: $(cat err)"
  if "$D" image mirror src.img --to "nbd://127.0.0.1:$port/" \
    --tls-certificates "$work/stranger.d" 2>err; then
    fail "a mirror trusting another CA started"
  fi
  echo "trusting another CA: $(cat err)"
  start_writer
  "$D" image mirror src.img --to "nbd://127.0.0.1:$port/" \
    --tls-certificates "$work/client.d" --wait >start.json ||
    fail "mirror: $(cat start.json)"
  stop_writer
  "$D" image mirror-complete src.img >done.json || fail "complete: $(cat done.json)"
  check_fenced
  compare "nbds://127.0.0.1:$port/?tls-certificates=$work/client.d"
  check_dest "$dst_pid" dst
  ;;
*) fail "unknown case $case_" ;;
esac
echo "mirror $case_: ok"
