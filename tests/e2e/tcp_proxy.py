#!/usr/bin/python3
"""A TCP proxy that stands for the network between two hosts: killing it
drops every connection through it.

  tcp_proxy.py PORT_FILE HOST PORT

Listens on 127.0.0.1 (a free port, written to PORT_FILE once it listens)
and forwards each connection to HOST:PORT.
"""
import socket
import sys
import threading

port_file, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])


def pump(src, dst):
    try:
        while True:
            data = src.recv(1 << 16)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(8)
with open(port_file + ".tmp", "w") as f:
    f.write(str(ls.getsockname()[1]))
import os  # noqa: E402
os.rename(port_file + ".tmp", port_file)
while True:
    c, _ = ls.accept()
    u = socket.create_connection((host, port))
    for a, b in ((c, u), (u, c)):
        threading.Thread(target=pump, args=(a, b), daemon=True).start()
