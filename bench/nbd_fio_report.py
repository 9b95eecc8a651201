#!/usr/bin/env python3
"""Turns the raw outputs of bench/nbd_fio_guest_measure.sh into figures.

  nbd_fio_report.py RAW_DIR OUT_PREFIX STORAGE

RAW_DIR holds map-info.json, exports and round1/, round2/, ... with fio's
JSON per export. STORAGE says where it ran (host or TCG guest, which file
system). Writes OUT_PREFIX.json and OUT_PREFIX.md; exits non-zero, naming
the file, when an output is missing or malformed.

The comparison is paired: in each round every export ran once, back to
back, the order rotating; the figure is the median over rounds of
daxstore's IOPS over the file plugin's in the same round, with a bootstrap
95% interval of that median (rounds resampled), the interquartile range of
the per-round ratios, and a sign test (how many rounds daxstore won, and
the two-sided probability of a split at least that uneven if either were
equally likely to win a round).
"""
import json
import math
import os
import random
import statistics
import sys
from pathlib import Path

LABELS = {
    "daxstore": "nbdkit + daxstore plugin (image)",
    "daxstore_pmem": "nbdkit + daxstore plugin (image declared pmem)",
    "file": "nbdkit + file plugin (raw file, flush = fdatasync)",
    "memory": "nbdkit + memory plugin (no file, no flush)",
    "daxstore_serial": "nbdkit + daxstore plugin, threads=serial (image)",
    "daxstore_parallel": "nbdkit + daxstore plugin, threads=parallel (image)",
}

SERVERS = {"fresh": "a new nbdkit per export per round",
           "long": "one nbdkit per export for the whole run"}


def fail(msg):
    sys.exit(f"nbd_fio_report: {msg}")


def json_file(path):
    if not path.is_file():
        fail(f"{path} is missing (see the run's output above)")
    text = path.read_text()
    if "{" not in text:
        fail(f"{path}: no JSON")
    return json.loads(text[text.index("{"):])


def server_stat(path):
    """nbdkit's (user + system CPU seconds, minor faults) from its
    /proc/PID/stat, or None."""
    if not path.is_file():
        return None
    fields = path.read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return cpu, int(fields[7])


def fio_write(path):
    w = json_file(path)["jobs"][0]["write"]
    if w["iops"] <= 0:
        fail(f"{path}: no writes completed")
    pct = w["clat_ns"].get("percentile", {})
    after = server_stat(path.with_name(path.name + ".stat"))
    # A long-lived server: what it used during this run only.
    before = server_stat(path.with_name(path.name + ".stat0")) or (0, 0)
    ios = w["total_ios"]
    return {"iops": w["iops"],
            "p50_us": pct.get("50.000000", 0) / 1000,
            "p99_us": pct.get("99.000000", 0) / 1000,
            # The server's CPU time and page faults per write + flush pair.
            "server_cpu_us": (None if after is None
                              else (after[0] - before[0]) * 1e6 / ios),
            "server_faults": (None if after is None
                              else (after[1] - before[1]) / ios)}


def quantile(xs, q):
    s = sorted(xs)
    pos = q * (len(s) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def bootstrap_median(xs, n=10000, seed=7):
    """95% percentile-bootstrap interval of the median of xs."""
    rng = random.Random(seed)
    meds = sorted(statistics.median(rng.choices(xs, k=len(xs)))
                  for _ in range(n))
    return meds[int(0.025 * n)], meds[int(0.975 * n) - 1]


def sign_test(wins, n):
    """Two-sided binomial probability of a split at least this uneven."""
    k = min(wins, n - wins)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def ratio_stats(num, den, key="iops"):
    ratios = [a[key] / b[key] for a, b in zip(num, den)]
    lo, hi = bootstrap_median(ratios)
    wins = sum(r > 1 for r in ratios)
    return {"per_round": ratios,
            "median": statistics.median(ratios),
            "bootstrap95": [lo, hi],
            "iqr": [quantile(ratios, 0.25), quantile(ratios, 0.75)],
            "min": min(ratios), "max": max(ratios),
            "rounds_above_1": wins,
            "sign_test_p": sign_test(wins, len(ratios))}


def main():
    if len(sys.argv) != 4:
        fail("usage: nbd_fio_report.py RAW_DIR OUT_PREFIX STORAGE")
    raw, prefix, storage = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    rounds = sorted((d for d in raw.glob("round*") if d.is_dir()),
                    key=lambda d: int(d.name[5:]))
    if not rounds:
        fail(f"{raw}: no round folders (did the run finish?)")
    exports_file = raw / "exports"
    exports = (exports_file.read_text().split() if exports_file.is_file()
               else ["daxstore", "file"])
    servers_file = raw / "servers"
    servers = (servers_file.read_text().strip() if servers_file.is_file()
               else "fresh")
    ours = [e for e in exports if e.startswith("daxstore")]
    if not ours or "file" not in exports:
        fail(f"{raw}: the exports must include file and a daxstore one")
    job_file = raw / "job"
    job = (job_file.read_text().strip() if job_file.is_file()
           else "--rw=randwrite --bs=4k --fsync=1 --iodepth=1")
    per = {e: [fio_write(d / f"{e}.json") for d in rounds] for e in exports}
    info = json_file(raw / "map-info.json")
    cpus = raw / "cpus"
    storage = storage.replace(
        "{cpus}", cpus.read_text().strip() if cpus.is_file() else "?")
    versus = {e: ratio_stats(per[e], per["file"])
              for e in exports if e != "file"}
    # The plugin's two thread models against each other, paired per round.
    if "daxstore_serial" in per and "daxstore_parallel" in per:
        serial_over_parallel = ratio_stats(per["daxstore_serial"],
                                           per["daxstore_parallel"])
    else:
        serial_over_parallel = None
    has_cpu = all(r["server_cpu_us"] for e in exports for r in per[e])
    # Server CPU per I/O, file plugin's over ours: above 1x, ours is cheaper.
    cpu_versus = ({e: ratio_stats(per["file"], per[e], "server_cpu_us")
                   for e in exports if e != "file"} if has_cpu else {})
    result = {
        "storage": storage,
        "servers": servers,
        "workload": f"fio --ioengine=nbd {job}, time based, every block "
                    "written once first; same nbdkit options for every "
                    "export (but the daxstore plugin's threads=); order "
                    "rotating",
        "mapping": {k: info.get(k) for k in
                    ("granularity", "kind", "flush", "memory_only", "why")},
        "rounds": per,
        "median_iops": {e: statistics.median(r["iops"] for r in per[e])
                        for e in exports},
        "over_file": versus,
        "server_cpu_file_over": cpu_versus,
        "serial_over_parallel": serial_over_parallel,
        # Kept for readers of the earlier layout.
        "daxstore_over_file": versus[ours[0]]["per_round"],
        "median_ratio": versus[ours[0]]["median"],
    }
    prefix.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")

    n = lambda v: f"{v:,.0f}"
    x = lambda v: f"{v:.3f}x"
    lines = [
        f"fio nbd engine, `{job}`, {len(rounds)} "
        f"rounds ({', '.join(exports)}, order rotating; {servers} "
        f"servers: {SERVERS[servers]}); {storage}. The "
        f"image mapped with {info.get('granularity')} granularity, flush "
        f"{info.get('flush')}, memory only: {info.get('memory_only')} "
        f"({info.get('why')}).",
        "",
        "| export | IOPS, median (min-max) | p50 write latency (us) "
        "| p99 write latency (us) | server CPU (us) / page faults "
        "per write+flush |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for e in exports:
        iops = [r["iops"] for r in per[e]]
        p50 = statistics.median(r["p50_us"] for r in per[e])
        p99 = statistics.median(r["p99_us"] for r in per[e])
        cpu = (f"{statistics.median(r['server_cpu_us'] for r in per[e]):.1f}"
               f" / {statistics.median(r['server_faults'] for r in per[e]):.2f}"
               if has_cpu else "")
        lines.append(f"| {LABELS.get(e, e)} | {n(statistics.median(iops))} "
                     f"({n(min(iops))}-{n(max(iops))}) | {p50:.0f} "
                     f"| {p99:.0f} | {cpu} |")
    lines += ["", "| per round | median | bootstrap 95% of the median | IQR "
              "| min-max | rounds > 1x | sign test p |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    rows = [(f"{e} IOPS / file IOPS", v) for e, v in versus.items()]
    if serial_over_parallel:
        rows.append(("daxstore_serial IOPS / daxstore_parallel IOPS",
                     serial_over_parallel))
    rows += [(f"file server CPU / {e} server CPU", v)
             for e, v in cpu_versus.items()]
    for name, v in rows:
        lines.append(
            f"| {name} | {x(v['median'])} | {x(v['bootstrap95'][0])}-"
            f"{x(v['bootstrap95'][1])} | {x(v['iqr'][0])}-{x(v['iqr'][1])} "
            f"| {x(v['min'])}-{x(v['max'])} | {v['rounds_above_1']} of "
            f"{len(rounds)} | {v['sign_test_p']:.3g} |")
    lines += ["", f"Per round (IOPS {ours[0]} / file = ratio): " + "; ".join(
        f"{n(a['iops'])} / {n(b['iops'])} = {a['iops'] / b['iops']:.2f}x"
        for a, b in zip(per[ours[0]], per["file"]))]
    prefix.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


main()
