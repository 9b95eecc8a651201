#!/usr/bin/env python3
"""Counts duplicate 4 KiB blocks of raw disk files, independently of
daxstore: SHA-256 of every block, in the terms of `daxstore image sharing`.

  dedup_count.py RAW... [--check REPORT.json NAME...]

Prints, per file and in total, zero blocks (holes included), self-sharing
(copies beyond the first inside one file), inter-volume sharing (a file's
first copies of contents an earlier file holds) and distinct contents.
With --check, compares them with the report's volumes NAME... (in the
order of the files) and exits 1 on a difference.
"""
import hashlib
import json
import sys

BLOCK = 4096


def count(paths):
    zero = hashlib.sha256(bytes(BLOCK)).digest()
    seen = set()
    rows = []
    for path in paths:
        mine = {}
        zeros = 0
        with open(path, "rb") as f:
            while True:
                b = f.read(BLOCK)
                if not b:
                    break
                h = hashlib.sha256(b.ljust(BLOCK, b"\0")).digest()
                if h == zero:
                    zeros += 1
                else:
                    mine[h] = mine.get(h, 0) + 1
        rows.append({
            "file": path,
            "zero": zeros,
            "self": sum(n - 1 for n in mine.values()),
            "inter": len(set(mine) & seen),
            "distinct": len(set(mine) - seen),
        })
        seen |= set(mine)
    return rows


def main(argv):
    check = None
    if "--check" in argv:
        i = argv.index("--check")
        check = (argv[i + 1], argv[i + 2:])
        argv = argv[:i]
    rows = count(argv)
    for r in rows:
        print(f"{r['file']}: zero {r['zero']} self {r['self']} "
              f"inter {r['inter']} distinct {r['distinct']}")
    if check is None:
        return 0
    report = json.load(open(check[0]))
    vols = {v["name"]: v for v in report["volumes"]}
    bad = 0
    for r, name in zip(rows, check[1]):
        v = vols[name]
        got = (v["holes"] + v["zero_blocks"], v["self_sharing_blocks"],
               v["inter_volume_blocks"], v["distinct_blocks"])
        want = (r["zero"], r["self"], r["inter"], r["distinct"])
        if got != want:
            print(f"MISMATCH {name}: report {got}, script {want}")
            bad += 1
    print("cross-check: " + ("ok" if not bad else "FAILED"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
