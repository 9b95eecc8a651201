#!/usr/bin/env python3
"""Runs a server the way systemd runs a Type=notify, NotifyAccess=main unit.

    notify_ready.py TIMEOUT CHECK -- COMMAND...

Starts COMMAND with NOTIFY_SOCKET set, waits up to TIMEOUT seconds for
READY=1 and requires it to come from COMMAND's own PID (NotifyAccess=main
ignores any other sender), then runs the shell command CHECK, stops COMMAND
with SIGTERM (as `systemctl stop` does) and requires it to exit cleanly.
"""
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time


def main():
    timeout = float(sys.argv[1])
    check = sys.argv[2]
    if sys.argv[3] != "--":
        sys.exit("usage: notify_ready.py TIMEOUT CHECK -- COMMAND...")
    command = sys.argv[4:]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        env = dict(os.environ, NOTIFY_SOCKET=path)
        child = subprocess.Popen(command, env=env)
        try:
            ready_pid = wait_ready(sock, child, timeout)
            if ready_pid != child.pid:
                sys.exit(f"READY=1 came from pid {ready_pid}, not the main "
                         f"pid {child.pid}: NotifyAccess=main would drop it")
            print(f"READY=1 from the main pid {child.pid}")
            subprocess.run(["sh", "-c", check], check=True)
        finally:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
            rc = child.wait(timeout=30)
        if rc != 0:
            sys.exit(f"the server exited with {rc} on SIGTERM")
    print("notify: ok")


def wait_ready(sock, child, timeout):
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if child.poll() is not None:
            sys.exit(f"the server exited ({child.returncode}) before READY=1")
        if left <= 0:
            sys.exit(f"no READY=1 within {timeout:.0f} s")
        if not select.select([sock], [], [], min(left, 0.5))[0]:
            continue
        data, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
        if "READY=1" in data.decode(errors="replace").splitlines():
            return pid


if __name__ == "__main__":
    main()
