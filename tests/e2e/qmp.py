#!/usr/bin/env python3
"""Runs a QMP command on a QEMU's monitor socket and prints its return
value as JSON (an error: the message on stderr, exit status 1).

    qmp.py SOCKET COMMAND [ARGUMENTS-AS-JSON]
    qmp.py SOCKET --until COMMAND CONDITION [SECONDS]

--until repeats COMMAND (no arguments) every 20 ms on one connection until
the Python expression CONDITION holds for its return value `r`, then prints
that value; exit status 2 if SECONDS (default 120) pass first. Example:
    qmp.py vm.qmp --until query-migrate 'r.get("status") == "completed"'
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
    if len(argv) >= 4 and argv[1] == "--until":
        path, command, condition = argv[0], argv[2], argv[3]
        limit = float(argv[4]) if len(argv) > 4 else 120.0
        f = connect(path)
        ask(f, "qmp_capabilities")
        end = time.monotonic() + limit
        while True:
            r = ask(f, command)
            if eval(condition, {}, {"r": r}):
                print(json.dumps(r))
                return
            if time.monotonic() > end:
                print(json.dumps(r))
                sys.exit(2)
            time.sleep(0.02)
    if len(argv) not in (2, 3):
        sys.exit(__doc__)
    path, command = argv[0], argv[1]
    args = json.loads(argv[2]) if len(argv) == 3 else None
    f = connect(path)
    ask(f, "qmp_capabilities")
    print(json.dumps(ask(f, command, args)))


if __name__ == "__main__":
    main()
