#!/usr/bin/env python3
"""Turns the raw outputs of bench/nbd_fio_guest_measure.sh into figures.

  nbd_fio_guest_report.py RAW_DIR OUT_PREFIX

RAW_DIR holds map-info.json and round1/, round2/, ... with fio's JSON for
the daxstore and file exports. Writes OUT_PREFIX.json and OUT_PREFIX.md;
exits non-zero, naming the file, when an output is missing or malformed.
"""
import json
import statistics
import sys
from pathlib import Path

EXPORTS = {
    "daxstore": "nbdkit + daxstore plugin (image)",
    "file": "nbdkit + file plugin (raw file, flush = fdatasync)",
}
STORAGE = ("kernel-tier guest (QEMU TCG, {cpus} vCPU(s), TCG-emulated): "
           "ext4 -o dax on an fsdax namespace of an emulated NVDIMM")


def fail(msg):
    sys.exit(f"nbd_fio_guest_report: {msg}")


def json_file(path):
    if not path.is_file():
        fail(f"{path} is missing (see the guest's output above)")
    text = path.read_text()
    if "{" not in text:
        fail(f"{path}: no JSON")
    return json.loads(text[text.index("{"):])


def fio_write(path):
    w = json_file(path)["jobs"][0]["write"]
    if w["iops"] <= 0:
        fail(f"{path}: no writes completed")
    pct = w["clat_ns"].get("percentile", {})
    return {"iops": w["iops"],
            "p50_us": pct.get("50.000000", 0) / 1000,
            "p99_us": pct.get("99.000000", 0) / 1000}


def spread(xs, fmt):
    return f"{fmt(statistics.median(xs))} ({fmt(min(xs))}-{fmt(max(xs))})"


def main():
    if len(sys.argv) != 3:
        fail("usage: nbd_fio_guest_report.py RAW_DIR OUT_PREFIX")
    raw, prefix = Path(sys.argv[1]), Path(sys.argv[2])
    rounds = sorted((d for d in raw.glob("round*") if d.is_dir()),
                    key=lambda d: int(d.name[5:]))
    if not rounds:
        fail(f"{raw}: no round folders (did the guest run finish?)")
    per = {e: [fio_write(d / f"{e}.json") for d in rounds] for e in EXPORTS}
    ratios = [a["iops"] / b["iops"]
              for a, b in zip(per["daxstore"], per["file"])]
    info = json_file(raw / "map-info.json")
    cpus = raw / "cpus"
    storage = STORAGE.format(
        cpus=cpus.read_text().strip() if cpus.is_file() else "?")
    result = {
        "storage": storage,
        "workload": "fio --ioengine=nbd --rw=randwrite --bs=4k --fsync=1 "
                    "--iodepth=1, time based, every block written once first",
        "mapping": {k: info.get(k) for k in ("granularity", "kind", "why")},
        "rounds": per,
        "daxstore_over_file": ratios,
        "median": {e: statistics.median(r["iops"] for r in per[e])
                   for e in EXPORTS},
        "median_ratio": statistics.median(ratios),
    }
    prefix.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")

    n = lambda x: f"{x:,.0f}"
    x = lambda x: f"{x:.2f}x"
    lines = [
        f"fio nbd engine, 4 KiB randwrite, fsync=1, iodepth 1, {len(rounds)} "
        f"rounds; {storage}. The image mapped with "
        f"{info.get('granularity')} granularity ({info.get('why')}).",
        "",
        "| export | IOPS, median (min-max) | p50 write latency (us) "
        "| p99 write latency (us) | daxstore / file, per round |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for e, label in EXPORTS.items():
        iops = [r["iops"] for r in per[e]]
        p50 = statistics.median(r["p50_us"] for r in per[e])
        p99 = statistics.median(r["p99_us"] for r in per[e])
        ratio = spread(ratios, x) if e == "daxstore" else ""
        lines.append(f"| {label} | {spread(iops, n)} | {p50:.0f} | {p99:.0f} "
                     f"| {ratio} |")
    lines += ["", "Per round (IOPS daxstore / file = ratio): " + "; ".join(
        f"{n(a['iops'])} / {n(b['iops'])} = {x(a['iops'] / b['iops'])}"
        for a, b in zip(per["daxstore"], per["file"]))]
    prefix.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


main()
