#!/usr/bin/env python3
"""Prints the Debian 12 (bookworm) sources apt uses here, one "URI SUITE"
line each, from /etc/apt/sources.list and sources.list.d (one-line .list
and deb822 .sources files): binary ("deb") entries with component main."""
import glob
import sys


def one_line(path):
    for line in open(path, encoding="utf-8", errors="replace"):
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):  # [options]
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 3:
            yield words[0], [words[1]], words[2:]


def deb822(path):
    text = open(path, encoding="utf-8", errors="replace").read()
    for stanza in text.split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[0].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.split()
        if "deb" not in fields.get("types", []):
            continue
        if fields.get("enabled", ["yes"])[0].lower() == "no":
            continue
        for uri in fields.get("uris", []):
            yield uri, fields.get("suites", []), fields.get("components", [])


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else ""
    entries = []
    for path in [root + "/etc/apt/sources.list"] + sorted(
            glob.glob(root + "/etc/apt/sources.list.d/*.list")):
        try:
            entries += one_line(path)
        except FileNotFoundError:
            pass
    for path in sorted(glob.glob(root + "/etc/apt/sources.list.d/*.sources")):
        entries += deb822(path)
    for uri, suites, components in entries:
        for suite in suites:
            if (suite == "bookworm" or suite.startswith("bookworm-")) and \
                    "main" in components:
                print(uri, suite)


if __name__ == "__main__":
    main()
