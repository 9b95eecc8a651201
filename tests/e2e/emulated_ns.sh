# Sourced by the guest tests that give a guest an emulated-bus namespace.
# make_emulated_namespace WORK: an emulated bus in WORK/bus with one 64M
# fsdax namespace; sets DAXSTORE_EMULATED_DIR, `name` (namespaceX.Y) and
# `dev` (its device file's name in WORK/bus/region0). Needs DAXSTORE and a
# fail function.
make_emulated_namespace() {
  local work=$1 ns
  export DAXSTORE_EMULATED_DIR=$work/bus
  "$DAXSTORE" emulate create --size 256M >/dev/null
  ns=$("$DAXSTORE" --bus emulated create-namespace -m fsdax -s 64M -n vmargs)
  dev=$(sed -n 's/.*"blockdev": "\([^"]*\)".*/\1/p' <<<"$ns")
  name=$(sed -n 's/.*"dev": "\([^"]*\)".*/\1/p' <<<"$ns")
  [[ -n $name && -n $dev && -f $work/bus/region0/$dev ]] ||
    fail "no device file for the namespace: $ns"
}
