#!/usr/bin/env python3
"""Turns Google Benchmark JSON from daxstore_bench into a Markdown table of
ratios and a gnuplot PNG.

  bench/report.py results.json --png out.png [--md out.md]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

SIZES = [64, 256, 4096, 65536, 1 << 20]
WRITERS = ["daxstore", "libpmem", "pwrite_fdatasync", "mmap_msync",
           "odirect_dsync"]


def load(path):
    with open(path) as f:
        data = json.load(f)
    times = {}
    paired = {}
    # With --benchmark_repetitions the median of the runs is used.
    medians = any(b.get("aggregate_name") == "median"
                  for b in data["benchmarks"])
    for b in data["benchmarks"]:
        if b.get("error_occurred"):
            continue
        if medians and b.get("aggregate_name") != "median":
            continue
        if not medians and b.get("run_type") == "aggregate":
            continue
        # write/ENGINE/PATTERN/SIZE/real_time/threads:N[_median]
        parts = b.get("run_name", b["name"]).split("/")
        kind, engine, pattern, size = parts[0], parts[1], parts[2], int(parts[3])
        threads = int(parts[-1].split(":")[1])
        if kind == "paired":
            paired[(pattern, size, threads)] = (
                b["daxstore_ns"], b["libpmem_ns"], b["ratio"])
            continue
        times[(kind, engine, pattern, size, threads)] = b["real_time"]
    return data.get("context", {}), times, paired


def human(n):
    for unit, div in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div:
            return f"{n // div} {unit}"
    return f"{n} B"


def table(times):
    rows = ["| pattern | threads | size | daxstore ns | libpmem ns | "
            "daxstore / libpmem speed (separate rows) | pwrite+fdatasync ns | "
            "mapping speedup vs pwrite+fdatasync | msync ns | O_DIRECT ns |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for pattern in ("seq", "rand"):
        for threads in (1, 2):
            for size in SIZES:
                def t(engine):
                    return times.get(("write", engine, pattern, size, threads))
                d, l, p = t("daxstore"), t("libpmem"), t("pwrite_fdatasync")
                m, o = t("mmap_msync"), t("odirect_dsync")
                if d is None:
                    continue
                fmt = lambda v: f"{v:,.0f}" if v is not None else "n/a"
                rows.append(
                    f"| {pattern} | {threads} | {human(size)} | {fmt(d)} | "
                    f"{fmt(l)} | {l / d:.2f}x | {fmt(p)} | "
                    f"{(p / d if p else 0):,.0f}x | {fmt(m)} | {fmt(o)} |")
    return "\n".join(rows)


def paired_table(paired):
    rows = ["| pattern | threads | size | daxstore ns | libpmem ns | "
            "daxstore / libpmem speed (median of rounds) |",
            "|---|---|---|---|---|---|"]
    for pattern in ("seq", "rand"):
        for threads in (1, 2):
            for size in SIZES:
                v = paired.get((pattern, size, threads))
                if v is None:
                    continue
                rows.append(f"| {pattern} | {threads} | {human(size)} | "
                            f"{v[0]:,.0f} | {v[1]:,.0f} | {v[2]:.3f}x |")
    return "\n".join(rows)


def plot(times, png):
    with tempfile.TemporaryDirectory() as tmp:
        dat = os.path.join(tmp, "w.dat")
        with open(dat, "w") as f:
            for size in SIZES:
                vals = [times.get(("write", e, "seq", size, 1), float("nan"))
                        for e in WRITERS]
                f.write(f"{size} " + " ".join(f"{v:.1f}" for v in vals) + "\n")
        plots = ", ".join(
            f"'{dat}' using 1:{i + 2} with linespoints title '{e}'"
            for i, e in enumerate(WRITERS))
        script = f"""
set terminal pngcairo size 900,560 noenhanced
set output '{png}'
set title 'Durable sequential writes, 1 thread (emulated pmem: DRAM-backed)'
set logscale xy
set xlabel 'write size (bytes)'
set ylabel 'latency per durable write (ns, lower is better)'
set key top left
set grid
plot {plots}
"""
        subprocess.run(["gnuplot"], input=script, text=True, check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("json")
    ap.add_argument("--png")
    ap.add_argument("--md")
    a = ap.parse_args()
    ctx, times, paired = load(a.json)
    md = (f"Machine: {ctx.get('num_cpus', '?')} CPUs at "
          f"{ctx.get('mhz_per_cpu', '?')} MHz, {ctx.get('date', '')}\n\n"
          + table(times) + "\n")
    if paired:
        md += ("\nmemcpy_persist, daxstore vs libpmem taking turns in one "
               "benchmark (paired/daxstore_vs_libpmem):\n\n"
               + paired_table(paired) + "\n")
    if a.md:
        with open(a.md, "w") as f:
            f.write(md)
    print(md)
    if a.png:
        plot(times, a.png)
        print(f"plot: {a.png}")


if __name__ == "__main__":
    sys.exit(main())
