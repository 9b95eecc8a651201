# Sourced by the guest benchmarks (nbd_fio_guest.sh, same_storage.sh): one
# kernel-tier guest (QEMU TCG) with an emulated 1 GiB NVDIMM, an fsdax
# namespace on it and ext4 -o dax mounted at /mnt/dax, then a command.
#
#   fsdax_guest WORK SMP TIMEOUT 'ENV NAMES' 'COMMAND' FILE...
# COMMAND is a shell line run in the guest after the mount; in it
# $DAXSTORE_RESULTS_DIR is the guest's results folder, which lands in
# WORK/res on the host. FILE... are shipped into the guest at the same
# absolute paths, with every library ldd names. ENV NAMES are variables
# passed on to the guest when they are set here. KERNEL_CACHE, when set,
# is the kernel tier's cache folder. Returns run-in-guest's status.
fsdax_guest_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

fsdax_guest() {
  local work=$1 smp=$2 timeout=$3 envs=$4 cmd=$5
  shift 5
  mkdir -p "$work/gb" "$work/res"
  cat >"$work/gb/guest.sh" <<GUEST
set -e
ndctl create-namespace -r region0 -m fsdax >/dev/null
mkfs.ext4 -q -F -b 4096 /dev/pmem0
mkdir -p /mnt/dax
mount -t ext4 -o dax /dev/pmem0 /mnt/dax
$cmd
GUEST
  chmod +x "$work/gb/guest.sh" # the harness ships executables only
  local opts=(--build "$work/gb" --results "$work/res" --smp "$smp"
    --memory 1G --nvdimm 1 --nvdimm-size 1G --init-labels
    --timeout "$timeout")
  local f v
  for f in "$@"; do opts+=(--add "$f"); done
  if [[ -n ${KERNEL_CACHE:-} ]]; then opts+=(--cache "$KERNEL_CACHE"); fi
  for v in $envs; do
    if [[ -n ${!v:-} ]]; then opts+=(--env "$v=${!v}"); fi
  done
  "$fsdax_guest_root/emulation/kernel/run-in-guest" "${opts[@]}" -- \
    sh "$work/gb/guest.sh"
}
