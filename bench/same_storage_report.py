#!/usr/bin/env python3
"""Turns the raw outputs of bench/same_storage_measure.sh into figures.

  same_storage_report.py RAW_DIR WHERE OUT_PREFIX

RAW_DIR holds map-info.json and round1/, round2/, ... with qemu-img bench's
text, Google Benchmark's JSON and fio's JSON. Writes OUT_PREFIX.json and
OUT_PREFIX.md; exits non-zero, naming the file, when an output is missing
or malformed (the smoke test relies on that).
"""
import json
import re
import statistics
import sys
from pathlib import Path

STORAGE = {
    "guest": "kernel-tier guest (QEMU TCG, 2 vCPUs, TCG-emulated): ext4 -o dax "
             "on an fsdax namespace of an emulated NVDIMM",
    "shm": "host /dev/shm (DRAM) declared emulated pmem; fdatasync is free",
    "disk": "host /var/tmp (ext4 on the VM's virtio disk), nothing emulated",
}
# (key, engine, operation)
ROWS = [
    ("qcow2_write", "qemu-img bench, qcow2, flush after every write", "write"),
    ("raw_write", "qemu-img bench, raw, flush after every write", "write"),
    ("fio_libpmem_write", "fio libpmem randwrite (direct=1, sync=1)", "write"),
    ("daxstore_write_1t", "daxstore image, C ABI, pwrite + flush, 1 thread",
     "write"),
    ("daxstore_write_2t", "daxstore image, C ABI, pwrite + flush, 2 threads",
     "write"),
    ("qcow2_read", "qemu-img bench, qcow2", "read"),
    ("raw_read", "qemu-img bench, raw", "read"),
    ("fio_libpmem_read", "fio libpmem randread", "read"),
    ("daxstore_read_1t", "daxstore image, C ABI, pread, 1 thread", "read"),
    ("daxstore_read_2t", "daxstore image, C ABI, pread, 2 threads", "read"),
]


def fail(msg):
    sys.exit(f"same_storage_report: {msg}")


def qemu_iops(path):
    text = path.read_text()
    n = re.search(r"Sending (\d+) (?:read|write) requests", text)
    t = re.search(r"Run completed in ([0-9.]+) seconds", text)
    if not n or not t or float(t.group(1)) <= 0:
        fail(f"{path}: no 'Sending N requests' / 'Run completed' lines")
    return int(n.group(1)) / float(t.group(1))


def json_file(path):
    text = path.read_text()
    if "{" not in text:
        fail(f"{path}: no JSON")
    return json.loads(text[text.index("{"):])


def gbench_iops(path, name):
    for b in json_file(path)["benchmarks"]:
        if b["name"] == name:
            if b.get("error_occurred"):
                fail(f"{path}: {name}: {b.get('error_message')}")
            return b["items_per_second"]
    fail(f"{path}: no benchmark {name}")


def fio_iops(path, op):
    """None when fio ran but refused the file (libpmem wants pmem)."""
    job = json_file(path)["jobs"][0]
    return None if job.get("error") else job[op]["iops"]


def one_round(d):
    g = d / "daxstore.json"
    return {
        "qcow2_write": qemu_iops(d / "qemu-qcow2-write.txt"),
        "raw_write": qemu_iops(d / "qemu-raw-write.txt"),
        "fio_libpmem_write": fio_iops(d / "fio-randwrite.json", "write"),
        "daxstore_write_1t": gbench_iops(g, "BM_Write4KFlush/real_time/threads:1"),
        "daxstore_write_2t": gbench_iops(g, "BM_Write4KFlush/real_time/threads:2"),
        "qcow2_read": qemu_iops(d / "qemu-qcow2-read.txt"),
        "raw_read": qemu_iops(d / "qemu-raw-read.txt"),
        "fio_libpmem_read": fio_iops(d / "fio-randread.json", "read"),
        "daxstore_read_1t": gbench_iops(g, "BM_Read4K/real_time/threads:1"),
        "daxstore_read_2t": gbench_iops(g, "BM_Read4K/real_time/threads:2"),
    }


def median(values):
    values = [v for v in values if v]
    return statistics.median(values) if values else None


def spread(values, fmt):
    values = [v for v in values if v]
    if not values:
        return "n/a"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt(med)
    return f"{fmt(med)} ({fmt(min(values))}-{fmt(max(values))})"


def main():
    if len(sys.argv) != 4:
        fail("usage: same_storage_report.py RAW_DIR WHERE OUT_PREFIX")
    raw, where, prefix = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    dirs = sorted(raw.glob("round*"), key=lambda p: int(p.name[5:]))
    if not dirs:
        fail(f"{raw}: no round folders")
    rounds = [one_round(d) for d in dirs]
    info = json_file(raw / "map-info.json")
    # Per round: how many times the daxstore figure (1 thread) is the other.
    ratios = {}
    for key, _, op in ROWS:
        dax = f"daxstore_{op}_1t"
        ratios[key] = [r[dax] / r[key] for r in rounds if r[key]]
    result = {
        "where": where,
        "storage": STORAGE.get(where, where),
        "tcg_emulated": where == "guest",
        "mapping": {k: info.get(k) for k in ("granularity", "kind", "why")},
        "rounds": rounds,
        "median_iops": {k: median([r[k] for r in rounds]) for k in rounds[0]},
        "daxstore_1t_over": {k: median(v) for k, v in ratios.items()},
    }
    Path(prefix + ".json").write_text(json.dumps(result, indent=2) + "\n")
    tcg = " TCG-emulated: only the ratios mean anything." if where == "guest" else ""
    lines = [
        f"Storage: {result['storage']}. Mapping layer: "
        f"{info.get('granularity')} granularity ({info.get('why')}).{tcg}",
        f"4 KiB, queue depth 1, {len(rounds)} rounds side by side; "
        "median (min-max).",
        "",
        "| engine | op | IOPS | daxstore (1 thread) is |",
        "| --- | --- | ---: | ---: |",
    ]
    for key, name, op in ROWS:
        iops = spread([r[key] for r in rounds], lambda v: f"{v:,.0f}")
        ratio = spread(ratios[key], lambda v: f"{v:.2f}x")
        lines.append(f"| {name} | {op} | {iops} | {ratio} |")
    Path(prefix + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
