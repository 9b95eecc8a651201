#!/usr/bin/python3
"""Checks that a raw copy of a disk holds what mirror_writer.py logged.

  mirror_verify.py RAW LOG
"""
import hashlib
import sys

raw, log = sys.argv[1:3]
bad = 0
n = 0
with open(raw, "rb") as f, open(log) as lines:
    for line in lines:
        b, want = line.split()
        f.seek(int(b) * 4096)
        if hashlib.sha256(f.read(4096)).hexdigest() != want:
            bad += 1
            if bad <= 5:
                print(f"block {b} does not hold the last write acknowledged")
        n += 1
if bad:
    print(f"{bad} of {n} blocks differ")
    sys.exit(1)
print(f"{n} blocks hold the last write acknowledged")
