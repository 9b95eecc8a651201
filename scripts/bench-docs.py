#!/usr/bin/env python3
"""Regenerates the result tables in docs/benchmarks.md from bench/results/.

  scripts/bench-docs.py           rewrite docs/benchmarks.md in place
  scripts/bench-docs.py --check   exit 1 (with a diff) if it is out of date

bench/results/manifest.json lists every suite: the command that reproduces
it, the files of its latest run, and when, at which commit and on which
machine that run was made (Google Benchmark JSON carries its own date and
machine). Each suite's table goes between the markers

  <!-- bench-docs: begin ID -->
  <!-- bench-docs: end ID -->

in docs/benchmarks.md; the prose around them is left alone. A file in
bench/results/ that the manifest does not name, or a named file that is
missing, is an error: bench/results/ keeps the latest run of each suite
only (older runs stay in git history).
"""
import argparse
import difflib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
MANIFEST = RESULTS / "manifest.json"


def fail(msg):
    print(f"bench-docs: {msg}", file=sys.stderr)
    sys.exit(1)


def fmt_num(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def gbench_table(path):
    """Median rows of a Google Benchmark JSON: name, time, counters."""
    data = json.loads(path.read_text())
    ctx = data.get("context", {})
    rows = [b for b in data["benchmarks"]
            if b.get("aggregate_name") == "median"] or [
                b for b in data["benchmarks"] if "aggregate_name" not in b]
    skip = {"name", "run_name", "run_type", "repetitions", "repetition_index",
            "threads", "iterations", "real_time", "cpu_time", "time_unit",
            "aggregate_name", "aggregate_unit", "family_index",
            "per_family_instance_index", "error_occurred", "error_message"}
    counters = []
    for b in rows:
        for k in b:
            if k not in skip and k not in counters:
                counters.append(k)
    head = ["benchmark", "real time", "CPU time"] + counters
    lines = ["| " + " | ".join(head) + " |",
             "| --- | " + " | ".join(["---:"] * (len(head) - 1)) + " |"]
    for b in rows:
        unit = b.get("time_unit", "ns")
        cells = [f"`{b.get('run_name', b['name'])}`",
                 f"{fmt_num(b['real_time'])} {unit}",
                 f"{fmt_num(b['cpu_time'])} {unit}"]
        cells += [fmt_num(b[k]) if k in b else "" for k in counters]
        lines.append("| " + " | ".join(cells) + " |")
    machine = (f"{ctx.get('num_cpus', '?')} CPUs at "
               f"{ctx.get('mhz_per_cpu', '?')} MHz")
    load = ctx.get("load_avg")
    if load:
        machine += ", load average " + " ".join(f"{x:.2f}" for x in load)
    return "\n".join(lines), ctx.get("date", "")[:10], machine


def markdown_table(path):
    """A result's own Markdown, without its long per-round listings."""
    keep = [l for l in path.read_text().splitlines()
            if not l.startswith("Per round")]
    while keep and not keep[-1].strip():
        keep.pop()
    return "\n".join(keep)


def section(suite, default_machine):
    sid = suite["id"]
    date = suite.get("date", "")
    machine = suite.get("machine", default_machine)
    if "gbench" in suite:
        table, gdate, gmachine = gbench_table(RESULTS / suite["gbench"])
        date = date or gdate
        machine = f"{machine}; {gmachine}"
    else:
        table = markdown_table(RESULTS / suite["table"])
    files = ", ".join(f"`bench/results/{f}`" for f in suite["files"])
    stamp = (f"Run {date} at commit `{suite['commit']}` on {machine}. "
             f"Raw output: {files}.")
    body = [stamp, "", "Reproduce:", "", "```sh", suite["command"], "```",
            "", table]
    return (f"<!-- bench-docs: begin {sid} -->\n" + "\n".join(body) +
            f"\n<!-- bench-docs: end {sid} -->")


def generate(doc_text, manifest):
    named = set()
    for s in manifest["suites"]:
        for f in s["files"]:
            if not (RESULTS / f).is_file():
                fail(f"suite {s['id']}: bench/results/{f} is missing")
            named.add(f)
    stray = sorted(p.name for p in RESULTS.iterdir()
                   if p.name != MANIFEST.name and p.name not in named)
    if stray:
        fail("bench/results/ holds files no suite in manifest.json names: " +
             ", ".join(stray) + " (keep the latest run of each suite; "
             "git rm older ones or add the suite to the manifest)")
    out = doc_text
    for s in manifest["suites"]:
        pat = re.compile(
            rf"<!-- bench-docs: begin {re.escape(s['id'])} -->.*?"
            rf"<!-- bench-docs: end {re.escape(s['id'])} -->", re.S)
        if not pat.search(out):
            fail(f"docs/benchmarks.md has no markers for suite {s['id']}")
        new = section(s, manifest["machine"])
        out = pat.sub(lambda _m: new, out, count=1)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="fail with a diff if docs/benchmarks.md is stale")
    args = ap.parse_args()
    manifest = json.loads(MANIFEST.read_text())
    old = DOC.read_text()
    new = generate(old, manifest)
    if args.check:
        if new != old:
            sys.stdout.writelines(difflib.unified_diff(
                old.splitlines(True), new.splitlines(True),
                "docs/benchmarks.md", "generated"))
            fail("docs/benchmarks.md is out of date: run "
                 "scripts/bench-docs.py and commit the result")
        print("bench-docs: docs/benchmarks.md is up to date")
        return
    if new != old:
        DOC.write_text(new)
        print("bench-docs: docs/benchmarks.md rewritten")
    else:
        print("bench-docs: docs/benchmarks.md already up to date")


if __name__ == "__main__":
    main()
