#!/usr/bin/env bash
# The control socket of a real `daxstore serve nbd`: mode 0600, another
# user cannot connect (EACCES) and `daxstore image list` as that user says
# permission denied; hostile requests sent over the socket (malformed
# JSON, an unknown command, a 1 MiB name) and the CLI's deletes of a volume
# with an open NBD connection or a vhost-user-blk export each get a clear
# error, and `image check` is clean afterwards. Env: DAXSTORE, PLUGIN.
set -euo pipefail
work=$(mktemp -d /var/tmp/daxstore-control.XXXXXX)
server=
holder=
cleanup() {
  [[ -n $holder ]] && kill "$holder" 2>/dev/null || true
  [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
py=/usr/bin/python3
chmod 755 "$work"
img=$work/vms.img
ctl=$work/vms.ctl
sock=$work/vms.nbd
"$DAXSTORE" image create "$img" -s 16M --max-volumes 6 >/dev/null
"$DAXSTORE" image snapshot "$img" golden >/dev/null
for v in vm1 vm2; do "$DAXSTORE" image clone "$img" golden $v >/dev/null; done
chmod 644 "$img"
"$DAXSTORE" serve nbd "$img" --socket "$sock" --control "$ctl" \
  --vhost-user-blk "vm2=$work/vm2.sock" 2>"$work/serve.log" &
server=$!
for _ in $(seq 100); do
  [[ -S $ctl ]] && nbdinfo "nbd+unix:///?socket=$sock" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || fail "server: $(cat "$work/serve.log")"
  sleep 0.1
done

echo "== the control socket is the owner's alone"
mode=$(stat -c %a "$ctl")
[[ $mode == 600 ]] || fail "control socket mode $mode, not 600"
# ask JSON: one request (a line, on stdin, so it may be long) over the
# socket; its reply printed.
ask() {
  printf '%s\n' "$1" | $py -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rwb")
f.readline()  # the greeting
try:
    f.write(sys.stdin.buffer.readline())
    f.flush()
except BrokenPipeError:
    pass  # a line too long: the server replies and closes, unread
print(f.readline().decode().strip())' "$ctl"
}
if [[ $(id -u) == 0 ]]; then
  nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  out=$("${nobody[@]}" $py -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
    print("connected")
except PermissionError as e:
    print("EACCES" if e.errno == 13 else e)
' "$ctl")
  [[ $out == EACCES ]] || fail "another user connecting: $out"
  if out=$("${nobody[@]}" "$DAXSTORE" image list "$img" --control "$ctl" 2>&1); then
    fail "image list as another user succeeded: $out"
  fi
  echo "as nobody: $out"
  grep -qi "permission denied" <<<"$out" || fail "image list as another user: $out"
else
  skipped="another user's view of the socket needs root (setpriv): not checked"
  echo "$skipped"
fi

echo "== vm-args asks the server for its sockets"
# serve nbd --socket is a path of the user's choosing: vm-args finds it
# (and a volume's vhost-user-blk socket) through the control socket.
out=$("$DAXSTORE" vm-args "$img" --volume vm1 --control "$ctl")
[[ $out == *"# served by the running daxstore server on $sock"* &&
  $out == *"server.path=$sock,export=vm1,"* ]] || fail "vm-args nbd: $out"
out=$("$DAXSTORE" vm-args "$img" --volume vm2 --vhost-user --control "$ctl" --guest-ram 256M)
[[ $out == *"path=$work/vm2.sock "* ]] || fail "vm-args vhost-user: $out"
# Without a server to ask, the default socket, and the line to start one.
out=$("$DAXSTORE" vm-args "$img" --volume vm1 --control "$work/none.ctl")
[[ $out == *"# first: daxstore serve nbd"* && $out != *"server.path=$sock,"* ]] ||
  fail "vm-args without a server: $out"

echo "== hostile requests get error replies"
# A 1 MiB name (a line over the 64 KiB limit) and a 60 KiB one (within).
long=$(head -c 1048576 /dev/zero | tr '\0' a)
for req in '{' '[1,2]' '{"execute": "format-everything"}' \
  '{"execute": "snapshot", "arguments": {"name": 5}}' \
  "{\"execute\": \"snapshot\", \"arguments\": {\"name\": \"$long\"}}" \
  "{\"execute\": \"snapshot\", \"arguments\": {\"name\": \"${long:0:61440}\"}}"; do
  reply=$(ask "$req")
  echo "${req:0:50} -> ${reply:0:160}"
  [[ $(jq -r '.error.desc | length > 0' <<<"$reply") == true ]] ||
    fail "no error reply to ${req:0:50}: ${reply:0:200}"
done
# The server still answers after the 1 MiB line.
ask '{"execute": "query-image"}' | jq -e .return >/dev/null ||
  fail "the server stopped answering"

echo "== volumes in use cannot be deleted"
# An open NBD connection to vm1, held while the delete is asked.
$py -c '
import nbd, sys, time
h = nbd.NBD(); h.connect_uri(sys.argv[1]); print("open", flush=True)
time.sleep(60)' "nbd+unix:///vm1?socket=$sock" >"$work/holder.out" &
holder=$!
for _ in $(seq 100); do [[ -s $work/holder.out ]] && break; sleep 0.1; done
[[ -s $work/holder.out ]] || fail "the NBD client did not connect"
if out=$("$DAXSTORE" image delete "$img" vm1 --control "$ctl" 2>&1); then
  fail "deleted vm1 under an open NBD connection"
fi
echo "delete vm1: $out"
grep -q "in use by an NBD client" <<<"$out" || fail "delete vm1: $out"
kill "$holder"
wait "$holder" 2>/dev/null || true
holder=
if out=$("$DAXSTORE" image delete "$img" vm2 --control "$ctl" 2>&1); then
  fail "deleted vm2 under its vhost-user-blk export"
fi
echo "delete vm2: $out"
grep -q "export-remove" <<<"$out" || fail "delete vm2: $out"
"$DAXSTORE" image list "$img" --control "$ctl" | jq -e '[.[].name] == ["base", "golden", "vm1", "vm2"]' >/dev/null ||
  fail "a volume went missing"
kill "$server"
wait "$server" || true
server=
"$DAXSTORE" image check "$img" >"$work/check.json" 2>&1 ||
  fail "image check: $(cat "$work/check.json")"
if [[ -n ${skipped:-} ]]; then
  echo "SKIP: $skipped (the rest passed)"
  exit 77
fi
echo "control socket: ok"
