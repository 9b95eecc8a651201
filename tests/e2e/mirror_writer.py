#!/usr/bin/python3
"""The guest of the mirror tests: writes to an NBD export until a stop file
appears, each write acknowledged before the next, and records the last
content it wrote to each block.

  mirror_writer.py URI STOP LOG

Writes random 4 KiB blocks, and every seventh time a write-zeroes of one
block, at random blocks of the export, about 200 a second (a busy guest;
one writing as fast as the host allows would outrun any mirror that does
not slow it down, as with QEMU's default mirror). On STOP it flushes and writes LOG,
one line per block written: BLOCK HEX-SHA256 (of the block's last
content). Exits 1, saying why, if the server fails a request.
"""
import hashlib
import os
import random
import sys
import time

import nbd

uri, stop, log = sys.argv[1:4]
h = nbd.NBD()
h.connect_uri(uri)
bs = 4096
blocks = h.get_size() // bs
last = {}
n = 0
rnd = random.Random(os.getpid())
try:
    while not os.path.exists(stop):
        b = rnd.randrange(blocks)
        if n % 7 == 6:
            h.zero(bs, b * bs)
            data = bytes(bs)
        else:
            data = n.to_bytes(8, "little") + os.urandom(bs - 8)
            h.pwrite(data, b * bs)
        last[b] = hashlib.sha256(data).hexdigest()
        n += 1
        time.sleep(0.005)
    h.flush()
except nbd.Error as e:
    print(f"writer: request {n} failed: {e}", file=sys.stderr)
    sys.exit(1)
with open(log, "w") as f:
    for b in sorted(last):
        f.write(f"{b} {last[b]}\n")
print(f"writer: {n} writes acknowledged")
