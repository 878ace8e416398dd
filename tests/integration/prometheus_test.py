#!/usr/bin/env python3
"""R10 with a real Prometheus (ctest PrometheusScrapesAndAlerts, label integration).

Debian's Prometheus server scrapes a running leadsync-worker and `leadsyncctl exporter` on the local
cluster with the shipped alert rules loaded (their `for:` durations shortened to seconds; promtool's
unit tests cover the real ones). The worker joins its group: Prometheus sees
leadsync_assigned_partitions and LeadsyncNoConsumer / LeadsyncNoProgress stay inactive. The worker is
stopped and a sync publishes while it is down: only the exporter still reports, and through
Prometheus' own API LeadsyncNoConsumer and LeadsyncNoProgress go pending, then firing. The worker is
restarted: it applies the backlog and both alerts resolve, and the exporter's field counters count
every event the run applied.

Needs .local/env (dev/cluster up), build/ (the executables) and promtool's sibling `prometheus`.
"""
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("LEADSYNC_BUILD_DIR", ROOT / "build"))
NO_CONSUMER, NO_PROGRESS = "LeadsyncNoConsumer", "LeadsyncNoProgress"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, predicate, timeout=90):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except OSError as e:  # not up yet
            last = e
        time.sleep(0.5)
    raise SystemExit(f"FAILED: {what} within {timeout} s (last: {last})")


class Prometheus:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path, **params):
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.load(r)["data"]

    def alert_state(self, name):
        for a in self.get("/api/v1/alerts")["alerts"]:
            if a["labels"].get("alertname") == name:
                return a["state"]  # pending or firing
        return "inactive"


def main():
    env = dict(os.environ)
    for key in ("LEADSYNC_KAFKA_BROKERS", "LEADSYNC_PG_URL"):
        if key not in env:
            raise SystemExit(f"FAILED: {key} not set: run dev/cluster up and source .local/env")
    prometheus_bin = shutil.which("prometheus")
    if not prometheus_bin:
        raise SystemExit("FAILED: no prometheus server on PATH (dev/setup installs Debian's prometheus)")

    work = pathlib.Path(tempfile.mkdtemp(prefix="leadsync-prom-"))
    procs = []
    try:
        # A configuration of its own: topics, group, schema and source no other test uses.
        run = f"prom{os.getpid()}"
        config = yaml.safe_load((ROOT / "examples/leadsync.yaml").read_text())
        config["kafka"].update(topic=f"{run}.changes", dlq_topic=f"{run}.changes.dlq", group=f"{run}-workers",
                               partitions=2)
        config["postgres"]["schema"] = run
        source = config["sources"][0]
        source.update(name=run, url=str(ROOT / "examples" / source["url"]))
        config["sources"] = [source]
        (work / "leadsync.yaml").write_text(yaml.safe_dump(config))
        ctl = [str(BUILD / "ctl/leadsyncctl"), "--config", str(work / "leadsync.yaml")]
        for cmd in ("migrate", "topics"):
            subprocess.run(ctl + [cmd], env=env, check=True, stdout=subprocess.DEVNULL)

        log = open(work / "processes.log", "ab")
        worker_port, exporter_port, prom_port = free_port(), free_port(), free_port()

        def start_worker():
            p = subprocess.Popen([str(BUILD / "workers/leadsync-worker"), "--config", str(work / "leadsync.yaml"),
                                  "--metrics-address", f"127.0.0.1:{worker_port}"], env=env, stdout=log, stderr=log)
            procs.append(p)
            return p

        procs.append(subprocess.Popen(ctl + ["--metrics-address", f"127.0.0.1:{exporter_port}", "exporter",
                                             "--interval", "1"], env=env, stdout=log, stderr=log))
        # The shipped rules, with every `for:` shortened to 2 s.
        spec = yaml.safe_load((ROOT / "deploy/k8s/base/prometheus-rules.yaml").read_text())["spec"]
        for g in spec["groups"]:
            g["interval"] = "1s"
            for r in g["rules"]:
                if "for" in r:
                    r["for"] = "2s"
        (work / "rules.yaml").write_text(yaml.safe_dump(spec))
        (work / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(work / "rules.yaml")],
            "scrape_configs": [
                {"job_name": "leadsync-worker", "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}]},
                {"job_name": "leadsync-exporter", "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]},
            ],
        }))
        worker = start_worker()
        procs.append(subprocess.Popen(
            [prometheus_bin, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"], stdout=log, stderr=subprocess.STDOUT))
        prom = Prometheus(prom_port)

        def value(query):
            result = prom.get("/api/v1/query", query=query)["result"]
            return float(result[0]["value"][1]) if result else None

        wait_for("Prometheus scraping the worker (leadsync_assigned_partitions > 0)",
                 lambda: (value("sum(leadsync_assigned_partitions)") or 0) > 0)
        wait_for("Prometheus scraping the exporter (leadsync_group_members)",
                 lambda: value("max(leadsync_group_members)") is not None)
        time.sleep(4)  # a few evaluations with the worker present
        for alert in (NO_CONSUMER, NO_PROGRESS):
            state = prom.alert_state(alert)
            if state != "inactive":
                raise SystemExit(f"FAILED: {alert} is {state} while a worker holds partitions and nothing waits")
        print(f"worker and exporter scraped; {NO_CONSUMER} and {NO_PROGRESS} inactive")

        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        subprocess.run([str(BUILD / "producers/leadsync-producer"), "--config", str(work / "leadsync.yaml"), "--once"],
                       env=env, check=True, stdout=subprocess.DEVNULL, stderr=log)
        wait_for("the exporter's lag in Prometheus after a sync with the worker down",
                 lambda: (value("max(leadsync_group_lag_messages)") or 0) > 0)
        for alert in (NO_CONSUMER, NO_PROGRESS):
            seen = set()
            wait_for(f"{alert} firing with every worker down",
                     lambda: seen.add(prom.alert_state(alert)) or "firing" in seen)
            print(f"worker down, lag {value('max(leadsync_group_lag_messages)'):.0f}: {alert} went "
                  + " -> ".join(s for s in ("pending", "firing") if s in seen))

        start_worker()
        for alert in (NO_CONSUMER, NO_PROGRESS):
            wait_for(f"{alert} resolved after the worker restarted", lambda: prom.alert_state(alert) == "inactive",
                     timeout=180)
            print(f"worker restarted: {alert} resolved")
        wait_for("the backlog applied (group lag 0)", lambda: value("max(leadsync_group_lag_messages)") == 0,
                 timeout=180)
        print("backlog applied: group lag 0")
        # The exporter's field counters (docs/operating.md, "Field counters"), counted from its start,
        # before the sync: each mapped field counts every event the run applied, as status says.
        status = json.loads(subprocess.run(ctl + ["status", run, "--json"], env=env, check=True, capture_output=True,
                                           text=True).stdout)
        applied = sum(status["applied"].get(k, 0) for k in ("inserted", "updated", "unchanged"))
        query = 'leadsync_field_applied_total{entity="lead",field="email"}'
        wait_for(f"{query} = {applied} (status: {status['applied']})", lambda: value(query) == applied)
        print(f"exporter field counters: {query} = {applied}, as status --json says")
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
        if os.environ.get("KEEP_PROM_TEST_DIR"):
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
