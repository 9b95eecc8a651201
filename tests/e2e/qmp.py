#!/usr/bin/env python3
"""Runs QMP commands on a QEMU's monitor socket, one connection for all,
and prints the last one's return value as JSON (an error: the message on
stderr, exit status 1).

    qmp.py SOCKET STEP [-- STEP]...

A STEP is one of
    COMMAND [ARGUMENTS-AS-JSON]
    --until COMMAND CONDITION [SECONDS]
        repeats COMMAND (no arguments) every 20 ms until the Python
        expression CONDITION holds for its return value `r`; exit status 2
        if SECONDS (default 120) pass first
    --check CONDITION
        exit status 3 unless CONDITION holds for the last return value
Example:
    qmp.py vm.qmp --until query-migrate 'r["status"] != "active"' \
        -- --check 'r["status"] == "completed"'
"""
import json
import socket
import sys
import time


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(path)
    f = s.makefile("rw")
    json.loads(f.readline())  # the greeting
    return f


def ask(f, cmd, arguments=None):
    msg = {"execute": cmd}
    if arguments is not None:
        msg["arguments"] = arguments
    f.write(json.dumps(msg) + "\n")
    f.flush()
    for line in f:
        r = json.loads(line)
        if "return" in r:
            return r["return"]
        if "error" in r:
            print(f"qmp {cmd}: {r['error'].get('desc', r['error'])}",
                  file=sys.stderr)
            sys.exit(1)
        # Events arriving before the reply are skipped.
    print(f"qmp {cmd}: the monitor closed", file=sys.stderr)
    sys.exit(1)


def main():
    argv = sys.argv[1:]
    if len(argv) < 2:
        sys.exit(__doc__)
    path, steps = argv[0], [[]]
    for a in argv[1:]:
        if a == "--":
            steps.append([])
        else:
            steps[-1].append(a)
    f = connect(path)
    ask(f, "qmp_capabilities")
    r = None
    for step in steps:
        if not step:
            sys.exit(__doc__)
        if step[0] == "--until" and len(step) in (3, 4):
            limit = float(step[3]) if len(step) == 4 else 120.0
            end = time.monotonic() + limit
            while True:
                r = ask(f, step[1])
                if eval(step[2], {}, {"r": r}):
                    break
                if time.monotonic() > end:
                    print(json.dumps(r))
                    sys.exit(2)
                time.sleep(0.02)
        elif step[0] == "--check" and len(step) == 2:
            if not eval(step[1], {}, {"r": r}):
                print(f"qmp: not so: {step[1]}: {json.dumps(r)}",
                      file=sys.stderr)
                sys.exit(3)
        elif len(step) in (1, 2) and not step[0].startswith("-"):
            r = ask(f, step[0], json.loads(step[1]) if len(step) == 2 else None)
        else:
            sys.exit(__doc__)
    print(json.dumps(r))


if __name__ == "__main__":
    main()
