#!/usr/bin/env python3
"""man.pages: the man pages match the CLI they document.

  man_pages_test.py --cli DAXSTORE --man-dir BUILD/man --scdoc SCDOC
                    [--plugin nbdkit-daxstore-plugin.so]

Reads every verb and subverb from `daxstore --help` and `daxstore VERB
--help` (CLI11's format) and checks:
  (a) each verb has a page, daxstore-VERB.1, or a ".so" page that leads to
      one; each subverb (image create, serve nbd, ...) has a subsection
      named after it on its verb's page;
  (b) every option a verb's --help lists appears on its page: within the
      verb's subsection where the page has one (-h/--help anywhere on the
      page), the global options on daxstore(1); with --plugin, every
      parameter of `nbdkit PLUGIN --help` on nbdkit-daxstore-plugin(1);
  (c) every page renders with `man --warnings -l` at 80 columns without a
      warning and without a line wider than 80 columns.
Exits 77 (a ctest skip) saying why when scdoc or man is missing.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

failures = []


def fail(msg):
    failures.append(msg)
    print(f"man pages: FAIL: {msg}", file=sys.stderr)


def skip(msg):
    print(f"man pages: skipped: {msg}")
    sys.exit(77)


def cli_help(cli, words):
    """Options, subcommands and option groups of `daxstore WORDS --help`."""
    out = subprocess.run([cli, *words, "--help"], capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        fail(f"'daxstore {' '.join(words)} --help' exited {out.returncode}: "
             f"{out.stderr.strip()}")
        return [], []
    options, subcommands = [], []
    section = None
    for line in out.stdout.splitlines():
        # Section headers stand at column 0 and end with ':' ("Options:",
        # "Subcommands:", "Positionals:", an option group like "Testing:").
        m = re.match(r"^(\S[^:]*):$", line)
        if m:
            section = m.group(1)
            continue
        # An entry is indented two spaces; its continuation lines, more.
        m = re.match(r"^  (\S+)", line)
        if not m or section in (None, "Positionals"):
            continue
        if section == "Subcommands":
            subcommands.append(m.group(1))
        else:
            names = [n for n in m.group(1).split(",") if n.startswith("-")]
            if not names:
                fail(f"cannot parse an option line of 'daxstore "
                     f"{' '.join(words)} --help': {line!r}")
            options.extend(names)
    return options, subcommands


def page_file(man_dir, name, section="1"):
    return os.path.join(man_dir, f"{name}.{section}")


def resolve(man_dir, name):
    """The page NAME(1) shows, following ".so" redirects; None if none."""
    path = page_file(man_dir, name)
    for _ in range(3):
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as f:
            first = f.readline().strip()
        m = re.match(r"^\.so\s+(\S+)$", first)
        if not m:
            return path
        path = os.path.join(man_dir, os.path.basename(m.group(1)))
    return None


def render(path):
    """man's text for the page at 80 columns, and its warnings."""
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
    env.pop("MANPAGER", None)
    env.pop("PAGER", None)
    text = subprocess.run(["man", "-l", path], capture_output=True, text=True,
                          env=env, check=False)
    warn = subprocess.run(["man", "--warnings=w", "-l", path],
                          capture_output=True, text=True, env=env, check=False)
    if text.returncode != 0:
        fail(f"man -l {path} exited {text.returncode}: {text.stderr.strip()}")
    out = text.stdout
    # Lines man cannot fill (examples, the synopsis of libdaxstore(3)) draw
    # no warning when they overflow: measure them.
    for line in out.splitlines():
        if len(line) > 80:
            fail(f"{os.path.basename(path)}: a line is wider than 80 columns: {line.strip()!r}")
    # Undo line breaks inside words: groff's own hyphens (U+2010) go, a
    # break after a word's hyphen keeps it ("--vhost-" "user-blk").
    out = re.sub("\u2010\n\\s+", "", out)
    out = re.sub(r"(?<=\S)-\n\s+", "-", out)
    return out, warn.stderr.strip()


def sections(text):
    """{heading: body} for each SH (column 0) and SS (column 3) heading."""
    result, current, body = {}, None, []
    for line in text.splitlines():
        if re.match(r"^(\S.*|   \S.*)$", line) and not line.startswith("    "):
            if current is not None:
                result.setdefault(current, "\n".join(body))
            current, body = line.strip(), []
        else:
            body.append(line)
    if current is not None:
        result.setdefault(current, "\n".join(body))
    return result


def mentions(text, option):
    return re.search(r"(?<![\w-])" + re.escape(option) + r"(?![\w-])", text) is not None


def subsection(page_sections, words):
    """The body of the subsection titled 'VERB SUB' (or 'daxstore VERB SUB')."""
    want = " ".join(words)
    for heading, body in page_sections.items():
        if heading in (want, "daxstore " + want):
            return body
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--man-dir", required=True)
    ap.add_argument("--scdoc", default="")
    ap.add_argument("--plugin", default="")
    a = ap.parse_args()
    if not a.scdoc or a.scdoc.endswith("-NOTFOUND"):
        skip("scdoc was not found when the build was configured, so no man "
             "pages were built (apt-get install scdoc, then configure again)")
    if shutil.which("man") is None:
        skip("man is missing (apt-get install man-db)")
    if not os.path.isdir(a.man_dir):
        fail(f"{a.man_dir} does not exist: build the man_pages target")
        return finish()

    rendered = {}

    def page_text(path):
        if path not in rendered:
            text, warnings = render(path)
            if warnings:
                fail(f"{os.path.basename(path)}: man warns at 80 columns: {warnings}")
            rendered[path] = (text, sections(text))
        return rendered[path]

    # Every page renders cleanly, redirects lead somewhere.
    for name in sorted(os.listdir(a.man_dir)):
        if not re.search(r"\.[1-8]$", name):
            continue
        path = os.path.join(a.man_dir, name)
        with open(path, encoding="utf-8") as f:
            first = f.readline()
        if first.startswith(".so"):
            target = os.path.join(a.man_dir, os.path.basename(first.split()[1]))
            if not os.path.isfile(target):
                fail(f"{name} redirects to {first.split()[1]}, which is not built")
            continue
        page_text(path)

    # The global options, on daxstore(1).
    options, verbs = cli_help(a.cli, [])
    top = resolve(a.man_dir, "daxstore")
    if top is None:
        fail("no daxstore(1) page")
    else:
        text, secs = page_text(top)
        for opt in options:
            if not mentions(text, opt):
                fail(f"daxstore(1) does not mention the global option {opt}")
        for verb in verbs:
            if not mentions(secs.get("DESCRIPTION", ""), verb):
                fail(f"daxstore(1)'s DESCRIPTION does not list the verb {verb}")
    if not verbs:
        fail("'daxstore --help' lists no verbs")

    checked = 0
    for verb in verbs:
        page = resolve(a.man_dir, f"daxstore-{verb}")
        if page is None:
            fail(f"the verb '{verb}' has no page daxstore-{verb}(1)")
            continue
        text, secs = page_text(page)
        name = os.path.basename(page)
        options, subverbs = cli_help(a.cli, [verb])
        commands = [([verb], options)]
        for sub in subverbs:
            sub_options, deeper = cli_help(a.cli, [verb, sub])
            if deeper:
                fail(f"'daxstore {verb} {sub}' has subverbs of its own; "
                     "this test does not look that deep")
            commands.append(([verb, sub], sub_options))
        for words, opts in commands:
            body = subsection(secs, words)
            if body is None and len(words) > 1:
                fail(f"{name} has no subsection '{' '.join(words)}'")
                continue
            if body is None:
                body = text  # a page for one verb: all of it
            for opt in opts:
                where = text if opt in ("-h", "--help") else body
                if not mentions(where, opt):
                    fail(f"{name} does not document {opt} of "
                         f"'daxstore {' '.join(words)}'"
                         + ("" if where is text else " in its subsection"))
                checked += 1

    if a.plugin:
        check_plugin(a, page_text)

    print(f"checked {len(verbs)} verbs, {checked} options, "
          f"{len(rendered)} rendered pages")
    return finish()


def check_plugin(a, page_text):
    """Every parameter `nbdkit PLUGIN --help` lists is on the plugin's page."""
    page = resolve(a.man_dir, "nbdkit-daxstore-plugin")
    if page is None:
        fail("no nbdkit-daxstore-plugin(1) page")
        return
    if shutil.which("nbdkit") is None:
        print("nbdkit is missing: the plugin's parameters are not checked")
        return
    out = subprocess.run(["nbdkit", a.plugin, "--help"], capture_output=True,
                         text=True, check=False).stdout
    keys = re.findall(r"^([a-z][a-z-]*)=", out, flags=re.M)
    if not keys:
        fail(f"'nbdkit {a.plugin} --help' lists no parameters")
    text, secs = page_text(page)
    params = secs.get("PARAMETERS", "")
    for key in keys:
        if not re.search(r"(?<![\w-])" + re.escape(key) + "=", params):
            fail(f"nbdkit-daxstore-plugin(1) PARAMETERS lacks {key}=")


def finish():
    if failures:
        print(f"man pages: {len(failures)} failure(s)")
        return 1
    print("man pages: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
