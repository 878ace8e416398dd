#!/usr/bin/env python3
"""Builds kustomize directories with `kubectl kustomize` and validates the output offline.

Core kinds are checked strictly against the Kubernetes OpenAPI schemas that the kubernetes-validate
package bundles (no network); the custom resources leadsync ships (ServiceMonitor, PrometheusRule,
KEDA ScaledObject) against the strict JSON schemas in deploy/validate/schemas. A kind with neither
is an error. The Grafana dashboard ConfigMap must hold JSON whose every panel query parses
(`promtool check rules` on the queries as recording rules).

    check_manifests.py                       # base and every overlay: exit 1 on any error
    check_manifests.py DIR --expect-invalid --expect TEXT ...
                                             # a broken fixture: exit 0 only if every TEXT is
                                             # found in the errors (the check can fail)
"""
import argparse
import copy
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile

import jsonschema
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "deploy" / "validate" / "schemas"
K8S_VERSION = "1.30.0"


def crd_schemas():
    common = json.loads((SCHEMAS / "common.json").read_text())

    def resolve(node):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref and ref.startswith("common.json#/"):
                return copy.deepcopy(common[ref.split("/", 1)[1]])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    out = {}
    for path in SCHEMAS.glob("*_*_*.json"):
        group, version, kind = path.stem.split("_")
        out[(f"{group}/{version}", kind)] = resolve(json.loads(path.read_text()))
    return out


def kustomize_command():
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    local = ROOT / ".local/bin/kustomize"  # dev/setup builds it where no kubectl is installed
    if local.exists():
        return [str(local), "build"]
    raise SystemExit("FAILED: neither kubectl nor .local/bin/kustomize (run dev/setup)")


def build(directory):
    r = subprocess.run(kustomize_command() + [str(directory)], capture_output=True, text=True)
    if r.returncode != 0:
        return None, [f"{directory}: kustomize build failed: {r.stderr.strip()}"]
    return [d for d in yaml.safe_load_all(r.stdout) if d], []


def name_of(doc):
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def validate(doc, crds):
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in crds:
        validator = jsonschema.Draft7Validator(crds[key])
        return [f"{name_of(doc)}: {'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
                for e in validator.iter_errors(doc)]
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{name_of(doc)}: no schema for {key[0]} {key[1]} (not a Kubernetes {K8S_VERSION} kind "
                f"and not in deploy/validate/schemas)"]
    except kubernetes_validate.ValidationError as e:
        return [f"{name_of(doc)}: {'.'.join(map(str, e.path)) or '(top)'}: {e.message}"]
    return []


def dashboard_errors(docs):
    errors, queries = [], []
    boards = [d for d in docs if d.get("kind") == "ConfigMap"
              and d.get("metadata", {}).get("labels", {}).get("grafana_dashboard") == "1"]
    if not boards:
        return ["no ConfigMap labelled grafana_dashboard=1 (the Grafana sidecar would load nothing)"]
    for cm in boards:
        for key, text in cm.get("data", {}).items():
            try:
                board = json.loads(text)
            except json.JSONDecodeError as e:
                errors.append(f"{name_of(cm)}: {key} is not JSON: {e}")
                continue
            panels = board.get("panels", [])
            if not panels:
                errors.append(f"{name_of(cm)}: {key} has no panels")
            for p in panels:
                targets = p.get("targets", [])
                if not targets:
                    errors.append(f"{name_of(cm)}: panel '{p.get('title')}' has no query")
                for t in targets:
                    queries.append((p.get("title"), t.get("expr", "")))
    if queries:
        rules = {"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard:panel_{i}", "expr": q} for i, (_, q) in enumerate(queries)]}]}
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            yaml.safe_dump(rules, f)
            f.flush()
            r = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
            if r.returncode != 0:
                errors.append("a dashboard query does not parse: " + (r.stderr or r.stdout).strip())
    return errors


def check(directory, crds):
    docs, errors = build(directory)
    if docs is None:
        return errors
    for doc in docs:
        errors += validate(doc, crds)
    errors += dashboard_errors(docs)
    return [f"{directory.relative_to(ROOT)}: {e}" for e in errors]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="*", type=pathlib.Path)
    ap.add_argument("--expect-invalid", action="store_true")
    ap.add_argument("--expect", action="append", default=[])
    args = ap.parse_args()
    dirs = [d.resolve() for d in args.dirs] or [ROOT / "deploy/k8s/base"] + sorted(
        p for p in (ROOT / "deploy/k8s/overlays").iterdir() if p.is_dir())
    crds = crd_schemas()
    errors = []
    for d in dirs:
        found = check(d, crds)
        print(f"{d.relative_to(ROOT)}: {'ok' if not found else f'{len(found)} error(s)'}")
        errors += found
    for e in errors:
        print("  " + e)
    if args.expect_invalid:
        missing = [t for t in args.expect if not any(t in e for e in errors)]
        if not errors or missing:
            print(f"expected errors containing {missing or args.expect}, got {len(errors)} error(s)")
            return 1
        print(f"the broken fixture was rejected ({len(errors)} error(s)), as it must be")
        return 0
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
