#!/usr/bin/env python3
"""Checks that README.md and docs/*.md stand on their own:

  * every Markdown link points to a file inside the repository that exists (and, with #anchor, to a
    heading of that file); no link leaves the repository (no ../ above the root, no http(s) links);
  * every alert rule in deploy/ is explained in docs/operating.md;
  * every ```sh / ```bash / ```shell block is either a ```console block that tests/docs/run_doc.py
    runs, or carries <!-- not run: why --> (run_doc.py's own rule, checked here without a cluster).

    tests/docs/check_docs.py            exit 0 when all is well, 1 with one line per problem
"""
import glob
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_doc import MARK_SKIP, SHELL_KINDS, blocks_of  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading):
    """GitHub's anchor of a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    out, fenced = set(), False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            out.add(slug(line.lstrip("#")))
    return out


def problems_of(path):
    found = []
    rel = os.path.relpath(path, REPO)
    text = open(path, encoding="utf-8").read()
    # Links outside code blocks and inline code.
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    prose = re.sub(r"`[^`\n]*`", "", prose)
    for target in LINK.findall(prose):
        if re.match(r"^[a-z]+:", target):
            found.append(f"{rel}: link to {target} leaves the repository")
            continue
        file_part, _, anchor = target.partition("#")
        dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
        if not (dest + os.sep).startswith(REPO + os.sep) and dest != REPO:
            found.append(f"{rel}: link to {target} points outside the repository")
        elif not os.path.exists(dest):
            found.append(f"{rel}: link to {target}: no such file")
        elif anchor and dest.endswith(".md") and anchor not in anchors(dest):
            found.append(f"{rel}: link to {target}: no heading with that anchor")
    for block in blocks_of(path):
        if block.kind in SHELL_KINDS and not (block.mark and MARK_SKIP.match(block.mark)):
            found.append(f"{rel}:{block.line_no}: a ```{block.kind} block must be ```console (run by "
                         f"tests/docs/run_doc.py) or carry <!-- not run: why -->")
    return found


def alert_problems():
    """Every alert rule shipped in deploy/ has a row in docs/operating.md."""
    page = os.path.join(REPO, "docs", "operating.md")
    text = open(page, encoding="utf-8").read() if os.path.exists(page) else ""
    found = []
    for rules in sorted(glob.glob(os.path.join(REPO, "deploy", "**", "*.yaml"), recursive=True)):
        for name in re.findall(r"^\s*-?\s*alert:\s*(\S+)", open(rules, encoding="utf-8").read(), re.M):
            if f"`{name}`" not in text:
                found.append(f"docs/operating.md: the alert {name} ({os.path.relpath(rules, REPO)}) is not explained")
    return found


def main():
    files = [os.path.join(REPO, "README.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))
    problems = [p for f in files for p in problems_of(f)] + alert_problems()
    for p in problems:
        print(p)
    print(f"{len(files)} file(s) checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
