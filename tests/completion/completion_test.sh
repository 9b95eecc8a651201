#!/usr/bin/env bash
# completion.bash: drives completion/daxstore as bash would, with COMP_WORDS
# and COMP_CWORD set, against the built CLI: verbs, subverbs, options, fixed
# values, namespace and region names of an emulated bus made in a temporary
# directory, and volume names of an image made there. Also checks that the
# script offers exactly the options each verb's --help lists.
#
#   completion_test.sh COMPLETION_SCRIPT DAXSTORE
set -uo pipefail
script=$(realpath "$1")
cli=$(realpath "$2")
failures=0
fail() {
  echo "bash completion: FAIL: $*" >&2
  failures=$((failures + 1))
}

work=$(mktemp -d)
# Control sockets of this test's servers in a directory of its own: tests
# run side by side, and two servers of one name would collide.
export XDG_RUNTIME_DIR=$work/run
mkdir -p -m 700 "$XDG_RUNTIME_DIR"
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
unset DAXSTORE_EMULATED_DIR
# shellcheck source=/dev/null
source "$script" || { echo "bash completion: FAIL: cannot source $script"; exit 1; }
complete -p daxstore >/dev/null || fail "the script does not register a completion for daxstore"

# complete WORD...: completes the last word of `daxstore WORD...` (the CLI
# as COMP_WORDS[0]) and leaves the sorted candidates in $got.
complete_line() {
  COMP_WORDS=("$cli" "$@")
  COMP_CWORD=$#
  COMP_LINE="${COMP_WORDS[*]}"
  COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  _daxstore
  got=$(printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ')
  got=${got% }
}
# expect "WANT" WORD...: the candidates are exactly WANT (sorted, spaces).
expect() {
  local want=$1
  shift
  complete_line "$@"
  [ "$got" = "$want" ] || fail "daxstore $*<TAB>: got '$got', want '$want'"
}
# expect_has "WANT..." WORD...: the candidates include each of WANT.
expect_has() {
  local want=$1 w
  shift
  complete_line "$@"
  for w in $want; do
    [[ " $got " == *" $w "* ]] || fail "daxstore $*<TAB>: '$w' missing from '$got'"
  done
}

# Verbs, subverbs, options, values.
expect "create-namespace" cre
expect "disable-namespace disable-region" disa
expect_has "map bench list image serve vm-args emulate init-labels" ""
expect "check clone create" image c
expect "nbd vhost-user-blk" serve ""
expect "--overcommit" image create vm1 --over
expect "--max-volumes" image import --max
expect "--stall-after" serve vhost-user-blk --st
expect "--force" destroy-namespace --f
expect "--bus" --b
expect "--bus --bus-filter --buses" list --bu
expect "emulated" --bus em
expect "emulated" list --bus = em
expect "devdax" create-namespace -m dev
expect "devdax system-ram" reconfigure-device --mode ""
expect "leaks" image check x --repair = l
expect "cpu_cache" image create x --emulate cp
expect "parallel serial" serve nbd x --threads ""

# Names from an emulated bus in the temporary directory, named on the line.
bus=$work/bus
"$cli" --emulated-dir "$bus" emulate create --size 1G >/dev/null 2>&1 &&
  "$cli" --bus emulated --emulated-dir "$bus" create-namespace -m devdax \
    -s 256M -n guest-disk >/dev/null 2>&1 &&
  "$cli" --bus emulated --emulated-dir "$bus" create-namespace -m fsdax \
    -s 256M >/dev/null 2>&1 ||
  { echo "bash completion: FAIL: cannot make an emulated bus in $bus"; exit 1; }
expect "namespace0.0 namespace0.1" --bus emulated --emulated-dir "$bus" destroy-namespace name
expect "all namespace0.0 namespace0.1" --emulated-dir "$bus" disable-namespace ""
expect "guest-disk" --bus emulated --emulated-dir "$bus" image create gue
expect "guest-disk" image create --bus emulated --emulated-dir "$bus" gue
expect "region0" --emulated-dir "$bus" create-namespace -r ""
expect "dax0.0" --emulated-dir "$bus" reconfigure-device d
expect "" --emulated-dir "$work/no-bus" destroy-namespace name
[ -e "$work/no-bus" ] && fail "completing on a missing bus created $work/no-bus"
# The environment's bus, when the line names none.
DAXSTORE_EMULATED_DIR=$bus expect "guest-disk" --bus emulated vm-args gu

# Volumes of an image in the temporary directory, and of one on the bus.
img=$work/vms.img
"$cli" image create "$img" -s 16M --max-volumes 4 --emulate memory_controller >/dev/null 2>&1 &&
  "$cli" image snapshot "$img" golden >/dev/null 2>&1 &&
  "$cli" image clone "$img" golden web1 >/dev/null 2>&1 ||
  { echo "bash completion: FAIL: cannot make an image with volumes"; exit 1; }
expect "golden" image export "$img" out.raw --volume gol
expect "base golden web1" vm-args "$img" --volume ""
expect "web1" serve nbd "$img" --volume = w
expect "golden" image clone "$img" ""
expect "golden web1" image delete "$img" ""
"$cli" --bus emulated --emulated-dir "$bus" image create guest-disk -s 16M >/dev/null 2>&1 &&
  "$cli" --bus emulated --emulated-dir "$bus" image snapshot guest-disk before-upgrade >/dev/null 2>&1 ||
  fail "cannot make an image on the emulated namespace"
expect "before-upgrade" --bus emulated --emulated-dir "$bus" image info guest-disk --volume be

# Files where a path goes.
touch "$work/raw-disk.raw"
expect "raw-disk.raw" image import raw-
mkdir -p "$work/dirs/only"
expect "dirs/only" --emulated-dir dirs/o

# The script's options of each verb are the ones its --help lists.
help_options() {  # CLI11: "  -s,--size TEXT  ..." under a header other than
  # Subcommands and Positionals; -h,--help left out.
  "$cli" "$@" --help | awk '
    /^[^ ].*:$/ { section = $0; next }
    section != "Subcommands:" && section != "Positionals:" && /^  -/ {
      n = split($1, names, ",")
      for (i = 1; i <= n; i++) if (names[i] != "-h" && names[i] != "--help") print names[i]
    }' | sort | tr '\n' ' '
}
help_subverbs() {
  "$cli" "$@" --help | awk '/^[^ ].*:$/ { s = $0; next } s == "Subcommands:" && /^  [a-z]/ { print $1 }'
}
script_options() {
  local o
  for o in $(_daxstore_opts "$*"); do printf '%s\n' "${o%=}"; done | sort | tr '\n' ' '
}
verbs=$(help_subverbs)
[ -n "$verbs" ] || fail "daxstore --help lists no verbs"
[ "$(echo $verbs | tr ' ' '\n' | sort | tr '\n' ' ')" = \
  "$(echo $_daxstore_verbs | tr ' ' '\n' | sort | tr '\n' ' ')" ] ||
  fail "the script's verbs ($_daxstore_verbs) are not daxstore --help's ($verbs)"
commands=0
for verb in $verbs; do
  subs=$(help_subverbs "$verb")
  [ "$(echo $subs)" = "$(_daxstore_subverbs "$verb")" ] ||
    fail "the script's subverbs of $verb ($(_daxstore_subverbs "$verb")) are not --help's ($(echo $subs))"
  for words in "$verb" ${subs:+$(for s in $subs; do echo "$verb:$s"; done)}; do
    [ -n "$subs" ] && [ "$words" = "$verb" ] && continue
    words=${words/:/ }
    # shellcheck disable=SC2086
    want=$(help_options $words)
    have=$(script_options $words)
    [ "$want" = "$have" ] ||
      fail "options of 'daxstore $words': --help lists '$want', the script offers '$have'"
    commands=$((commands + 1))
  done
done
[ "$commands" -gt 20 ] || fail "checked only $commands commands' options"

if [ "$failures" -gt 0 ]; then
  echo "bash completion: $failures failure(s)"
  exit 1
fi
echo "bash completion: ok ($commands commands' options match --help)"
