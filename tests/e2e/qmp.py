#!/usr/bin/env python3
"""Runs one QMP command on a QEMU's monitor socket and prints its return
value as JSON (an error: the message on stderr, exit status 1).

    qmp.py SOCKET COMMAND [ARGUMENTS-AS-JSON]
"""
import json
import socket
import sys


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    path, command = sys.argv[1], sys.argv[2]
    args = json.loads(sys.argv[3]) if len(sys.argv) == 4 else None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(path)
    f = s.makefile("rw")

    def ask(cmd, arguments=None):
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

    json.loads(f.readline())  # the greeting
    ask("qmp_capabilities")
    print(json.dumps(ask(command, args)))


if __name__ == "__main__":
    main()
