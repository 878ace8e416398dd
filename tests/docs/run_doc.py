#!/usr/bin/env python3
"""Runs the commands of a page in docs/ and checks what they print, so the page cannot drift.

    tests/docs/run_doc.py --doc docs/quickstart.md --build-dir build [--drop-role NAME ...]

What the page may contain (see docs/README.md, "How these pages are tested"):
  ```console blocks   `$ command` lines (continued by a trailing `\\` or a heredoc), each followed by the
                      output it prints (stdout and stderr). In the expected output `…` stands for any
                      text within a line, a line of only `…` for any number of lines, and a last line
                      `[exit N]` for an exit status other than 0.
  <!-- file: NAME --> the next fenced block is written to NAME in the working directory.
  <!-- not run: why --> the next fenced block is not run (it needs a real cluster, an account, ...).
  <!-- needs: PROGRAM --> the next console block runs only where PROGRAM is installed (else: "skip").
  ```sh / ```bash / ```shell blocks must carry `<!-- not run: why -->`: every command is either run
  here or says why it cannot be.

Each page runs in a fresh temporary directory (also $HOME), against the local cluster from .local/env
(dev/cluster up), with a database of its own (PGHOST, PGPORT, PGDATABASE, PGUSER and LEADSYNC_PG_URL
point at it as a superuser) and Kafka topic and group names made unique per run: `leadsync.changes` and
`leadsync-workers` in written files and commands are renamed, and renamed back in the output, so the
page shows the names a user sees. Processes a command leaves in the background are stopped at the end.
"""
import argparse
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

FENCE = re.compile(r"^```(\S*)\s*$")
MARK_FILE = re.compile(r"^<!--\s*file:\s*(\S+)\s*-->\s*$")
MARK_SKIP = re.compile(r"^<!--\s*not run( here)?:.*-->\s*$")
MARK_NEEDS = re.compile(r"^<!--\s*needs:\s*(\S+)\s*-->\s*$")
HEREDOC = re.compile(r"<<-?\s*'?\"?([A-Za-z_]+)'?\"?")
EXIT_LINE = re.compile(r"^\[exit (\d+)\]$")
SHELL_KINDS = {"sh", "bash", "shell"}
SKIPPED = 77  # the exit status CTest's SKIP_RETURN_CODE maps to "skipped"
TOPIC_KEY = re.compile(r"^\s*(?:topic|group|dlq_topic):\s*([A-Za-z0-9._-]+)")


class Block:
    def __init__(self, kind, lines, line_no, mark):
        self.kind, self.lines, self.line_no, self.mark = kind, lines, line_no, mark


def blocks_of(path):
    """Fenced blocks with the marker comment (if any) on the line before the fence."""
    lines = open(path, encoding="utf-8").read().split("\n")
    out, i, mark = [], 0, None
    while i < len(lines):
        line = lines[i]
        m = FENCE.match(line)
        if m and m.group(1) != "":
            kind, start, body = m.group(1), i + 1, []
            i += 1
            while i < len(lines) and lines[i].rstrip() != "```":
                body.append(lines[i])
                i += 1
            out.append(Block(kind, body, start, mark))
            mark = None
        elif MARK_FILE.match(line) or MARK_SKIP.match(line) or MARK_NEEDS.match(line):
            mark = line.strip()
        elif line.strip():
            mark = None
        i += 1
    return out


def commands_of(block):
    """(command, expected lines, expected exit status, line number) for each `$ ` command."""
    cmds, i, lines = [], 0, block.lines
    while i < len(lines):
        if not lines[i].startswith("$ "):
            raise SystemExit(f"line {block.line_no + i + 1}: console block text before its first `$ ` command")
        line_no = block.line_no + i + 1
        cmd = [lines[i][2:]]
        i += 1
        while cmd[-1].endswith("\\") and i < len(lines):
            cmd.append(lines[i])
            i += 1
        here = HEREDOC.search(cmd[-1])
        if here:
            while i < len(lines):
                cmd.append(lines[i])
                i += 1
                if cmd[-1] == here.group(1):
                    break
        expected = []
        while i < len(lines) and not lines[i].startswith("$ "):
            expected.append(lines[i])
            i += 1
        while expected and not expected[-1].strip():
            expected.pop()
        status = 0
        if expected and EXIT_LINE.match(expected[-1]):
            status = int(EXIT_LINE.match(expected.pop()).group(1))
        cmds.append(("\n".join(cmd), expected, status, line_no))
    return cmds


def pattern_of(expected):
    parts = []
    for line in expected:
        if line.strip() == "…":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*?".join(re.escape(p) for p in line.rstrip().split("…")) + r"\n")
    return re.compile("".join(parts) + r"\Z", re.S)


class Runner:
    def __init__(self, doc, build_dir, roles, repo):
        self.doc, self.roles, self.repo = doc, roles, repo
        self.topic_marker = "doc" + secrets.token_hex(3)
        self.renames = {}  # name shown in the page -> name used in this run
        for name in ("leadsync.changes", "leadsync-workers"):
            self.add_rename(name)
        self.work = tempfile.mkdtemp(prefix="leadsync-doc-")
        self.db = "leadsync_doc_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(doc))[0])
        self.groups = []
        env = dict(os.environ)
        for name in ("LEADSYNC_KAFKA_BROKERS", "LEADSYNC_PG_PORT", "LEADSYNC_PG_USER"):
            if not env.get(name):
                raise SystemExit(f"{name} is not set: run dev/cluster up and source .local/env")
        bins = [os.path.join(build_dir, d) for d in ("ctl", "producers", "workers")]
        env.update({
            "HOME": self.work,
            "PATH": os.pathsep.join(bins + [env.get("PATH", "")]),
            "PGHOST": "127.0.0.1", "PGPORT": env["LEADSYNC_PG_PORT"], "PGDATABASE": self.db,
            "PGUSER": env["LEADSYNC_PG_USER"], "LEADSYNC_REPO": repo,
            "LC_ALL": "C.UTF-8", "TZ": "UTC",
        })
        for name in ("LEADSYNC_PG_SUPER_URL", "PGPASSWORD", "PGSSLMODE", "PGOPTIONS"):
            env.pop(name, None)
        # leadsync's own processes use the page's database too, unless the page says otherwise.
        env["LEADSYNC_PG_URL"] = f"postgresql://{env['PGUSER']}@127.0.0.1:{env['PGPORT']}/{self.db}"
        self.env = env
        self.state = os.path.join(self.work, ".doc-state")

    def add_rename(self, name):
        self.renames.setdefault(name, f"{name}.{self.topic_marker}")

    @staticmethod
    def replace_all(text, mapping):
        if not mapping:
            return text
        alternatives = "|".join(re.escape(k) for k in sorted(mapping, key=len, reverse=True))
        return re.sub(alternatives, lambda m: mapping[m.group(0)], text)

    def rename(self, text):
        return self.replace_all(text, self.renames)

    def unrename(self, text):
        return self.replace_all(text, {real: shown for shown, real in self.renames.items()})

    def admin_sql(self, sql, database="postgres"):
        env = dict(self.env, PGDATABASE=database, PGOPTIONS="-c client_min_messages=warning")
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], env=env, check=True,
                       stdout=subprocess.DEVNULL)

    def reset_database(self):
        self.admin_sql(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
        for role in self.roles:
            self.admin_sql(f'DROP ROLE IF EXISTS "{role}"')
        self.admin_sql(f'CREATE DATABASE "{self.db}"')

    def run_command(self, cmd):
        # One bash per command; exported variables, functions and the working directory carry over.
        script = (f'[ -f {self.state} ] && . {self.state}\n'
                  f'{cmd}\n'
                  f'__rc=$?; {{ export -p; declare -f; echo "cd \\"$PWD\\""; }} > {self.state}.new; '
                  f'mv {self.state}.new {self.state}; exit $__rc\n')
        proc = subprocess.Popen(["bash", "-c", script], cwd=self.work, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.groups.append(proc.pid)
        try:
            out, _ = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            return 124, out.decode("utf-8", "replace") + "\n(timed out after 300 s)\n"
        return proc.returncode, out.decode("utf-8", "replace")

    def run(self):
        failures, ran = 0, 0
        self.reset_database()
        try:
            for block in blocks_of(self.doc):
                where = f"{self.doc}:{block.line_no}"
                if block.mark and MARK_SKIP.match(block.mark):
                    continue
                if block.mark and MARK_FILE.match(block.mark):
                    name = MARK_FILE.match(block.mark).group(1)
                    for line in block.lines:  # topics and groups a written config names
                        m = TOPIC_KEY.match(line)
                        if m:
                            self.add_rename(m.group(1))
                    with open(os.path.join(self.work, name), "w", encoding="utf-8") as f:
                        f.write(self.rename("\n".join(block.lines) + "\n"))
                    continue
                if block.kind in SHELL_KINDS:
                    print(f"{where}: a ```{block.kind} block must be a ```console block (run here) or carry "
                          f"<!-- not run: why -->")
                    failures += 1
                    continue
                if block.kind != "console":
                    continue
                needs = MARK_NEEDS.match(block.mark) if block.mark else None
                if needs and not shutil.which(needs.group(1)):
                    print(f"skip {where}: {needs.group(1)} is not installed")
                    continue
                for cmd, expected, status, line_no in commands_of(block):
                    ran += 1
                    started = time.monotonic()
                    rc, out = self.run_command(self.rename(cmd))
                    out = self.unrename(out)
                    out = "".join(l.rstrip() + "\n" for l in out.rstrip().split("\n")) if out.strip() else ""
                    ok = rc == status and pattern_of(expected).match(out) is not None
                    print(f"{'ok  ' if ok else 'FAIL'} {self.doc}:{line_no} ({time.monotonic() - started:.1f} s) "
                          f"$ {cmd.splitlines()[0]}")
                    if not ok:
                        failures += 1
                        print(f"  exit status {rc}, expected {status}\n  expected output:")
                        print("".join(f"    | {l}\n" for l in expected), end="")
                        print("  actual output:")
                        print("".join(f"    | {l}\n" for l in out.rstrip("\n").split("\n")), end="")
                        return failures, ran  # later commands build on this one
        finally:
            self.cleanup()
        return failures, ran

    def cleanup(self):
        for pgid in self.groups:
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 20
        for pgid in self.groups:
            while time.monotonic() < deadline:
                try:
                    os.killpg(pgid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
        cluster = os.path.join(self.repo, "dev", "cluster")
        listed = subprocess.run([cluster, "topic", "list"], capture_output=True, text=True, env=self.env)
        for topic in listed.stdout.split():
            if self.topic_marker in topic:
                subprocess.run([cluster, "topic", "delete", topic], capture_output=True, env=self.env)
        try:
            self.admin_sql(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
            for role in self.roles:
                self.admin_sql(f'DROP ROLE IF EXISTS "{role}"')
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--doc", required=True)
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--drop-role", action="append", default=[], help="a role the page creates")
    ap.add_argument("--check-only", action="store_true", help="only check that every shell block is marked")
    args = ap.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    doc = os.path.abspath(args.doc)
    if args.check_only:
        bad = [b for b in blocks_of(doc) if b.kind in SHELL_KINDS and not (b.mark and MARK_SKIP.match(b.mark))]
        for b in bad:
            print(f"{doc}:{b.line_no}: a ```{b.kind} block must be ```console (run) or carry <!-- not run: why -->")
        return 1 if bad else 0
    failures, ran = Runner(doc, os.path.abspath(args.build_dir), args.drop_role, repo).run()
    print(f"{doc}: {ran} command(s) run, {failures} failure(s)")
    if not failures and ran == 0:
        return SKIPPED  # every block needs a program this machine lacks: CTest reports "skipped"
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
