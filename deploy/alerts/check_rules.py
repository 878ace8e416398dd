#!/usr/bin/env python3
"""Checks the alert rules of deploy/k8s/base/prometheus-rules.yaml offline (ctest DeployAlertRules).

1. `promtool check rules` on the rule groups (expressions and annotation templates parse).
2. Every alert has a summary and a runbook: what it means ("Means:"), the first three things to check
   ("1." "2." "3.") and the leadsyncctl command that shows it.
3. Every alert has a promtool test case where it fires and one where it must not
   (deploy/alerts/alerts_test.yaml), and `promtool test rules` passes. Annotations are left out of
   the copy promtool tests (they are checked in 2.), so a test names only an alert's labels.
"""
import pathlib
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/k8s/base/prometheus-rules.yaml"
TESTS = ROOT / "deploy/alerts/alerts_test.yaml"


def run(cmd, cwd):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    print((r.stdout + r.stderr).rstrip())
    return r.returncode == 0


def main():
    errors = []
    spec = yaml.safe_load(RULES.read_text())["spec"]
    alerts = [r for g in spec["groups"] for r in g["rules"] if "alert" in r]
    if not alerts:
        errors.append("no alerts found")
    for a in alerts:
        ann = a.get("annotations", {})
        book = ann.get("runbook", "")
        if not ann.get("summary"):
            errors.append(f"{a['alert']}: no summary annotation")
        for part in ("Means:", "1.", "2.", "3.", "leadsyncctl"):
            if part not in book:
                errors.append(f"{a['alert']}: the runbook annotation lacks '{part}'")

    tests = yaml.safe_load(TESTS.read_text())
    fires, quiet = set(), set()
    for case in tests.get("tests", []):
        for t in case.get("alert_rule_test", []):
            (fires if t.get("exp_alerts") else quiet).add(t["alertname"])
    for a in alerts:
        if a["alert"] not in fires:
            errors.append(f"{a['alert']}: no promtool test where it fires")
        if a["alert"] not in quiet:
            errors.append(f"{a['alert']}: no promtool test where it must not fire")

    with tempfile.TemporaryDirectory() as d:
        (pathlib.Path(d) / "full.yaml").write_text(yaml.safe_dump(spec))
        if not run(["promtool", "check", "rules", "full.yaml"], d):
            errors.append("promtool check rules failed")
        for g in spec["groups"]:
            for r in g["rules"]:
                r.pop("annotations", None)
        (pathlib.Path(d) / "rules.yaml").write_text(yaml.safe_dump(spec))
        shutil.copy(TESTS, pathlib.Path(d) / "alerts_test.yaml")
        if not run(["promtool", "test", "rules", "alerts_test.yaml"], d):
            errors.append("promtool test rules failed")

    for e in errors:
        print("error: " + e)
    print(f"{len(alerts)} alerts: " + ("all checked" if not errors else f"{len(errors)} error(s)"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
