#!/usr/bin/env python3
"""bench/run: leadsync's end-to-end benchmark on the local cluster (see bench/README.md).

Python 3 standard library only. Prints progress on stderr; on stdout one JSON line per scenario
(and per repeat), then a table.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import REPO, BenchError, Cluster, load_env, log  # noqa: E402
from scenarios import Data, Runner  # noqa: E402
import curve  # noqa: E402
import report  # noqa: E402

ALL = ['S1', 'S2', 'S3', 'S4', 'S5', 'SINK-INSERT', 'SINK-UPDATE']
ALIASES = {'SINK': ['SINK-INSERT', 'SINK-UPDATE']}


def parse_args(argv):
    p = argparse.ArgumentParser(prog='bench/run', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--scenarios', default=','.join(ALL), help='comma-separated subset of S1..S5 (default: all)')
    p.add_argument('--rows', type=int, default=1_000_000, help='rows of the generated sheet (default 1,000,000)')
    p.add_argument('--repeat', type=int, default=1, help='run everything R times; adds a median line per scenario')
    p.add_argument('--smoke', action='store_true', help='10,000 rows, S1+S2+S3, once: checks the harness works')
    p.add_argument('--json-out', help='also write the JSON lines to this file')
    p.add_argument('--workers', type=int, default=1, help='workers for S1..S4 (default 1)')
    p.add_argument('--s5-workers', default='1,2', help='worker counts S5 compares (default 1,2)')
    p.add_argument('--seed', type=int, default=42, help='sheet seed (leadsync-gen --seed)')
    p.add_argument('--change-fraction', type=float, default=0.01, help='S2: share of rows changed (default 0.01)')
    p.add_argument('--stream-rate', type=float, default=1000, help='S4: events per second (default 1000)')
    p.add_argument('--stream-seconds', type=float, default=60, help='S4: seconds (default 60; per rate of a sweep)')
    p.add_argument('--stream-rates', default=None,
                   help='S4 as a rate sweep: comma-separated events/s, e.g. 1000,2000,4000,8000; one S4/r<rate> line '
                        'per rate (fresh workers, every event verified applied), in increasing order, stopping after '
                        'the first rate whose p99 exceeds 100 ms, then an S4-SWEEP line with the highest rate whose '
                        'p99 stayed <= 100 ms')
    p.add_argument('--worker-log-level', default=None, choices=['trace', 'debug', 'info', 'warn', 'error'],
                   help="the workers' --log-level; at debug each batch logs its fill and apply times "
                        '(bench/README.md, issue 12 — S4 latency); copied to WORK_DIR/logs/')
    p.add_argument('--kafka-property', action='append', default=[], metavar='KEY=VALUE',
                   help="adds KEY: VALUE to kafka.properties of every context's configuration (every client: "
                        'producer, workers, ctl), e.g. queued.max.messages.kbytes=16384 to try a setting on one build')
    p.add_argument('--worker-connections', type=int, default=None, metavar='N',
                   help="sets worker.connections in every context's configuration: the PostgreSQL connections "
                        'each worker applies a batch over (default: the worker\'s own, common/config.h)')
    p.add_argument('--build-dir', default=os.path.join(REPO, 'build'))
    p.add_argument('--work-dir', default=os.path.join(REPO, '.local', 'bench'),
                   help='per-run configs and logs, and the data cache (data/)')
    p.add_argument('--pg-options', default=None,
                   help="PGOPTIONS for leadsync's own processes (producer, workers, leadsyncctl, stream tool), "
                        "e.g. '-c jit=off'; the limit's psql keeps the server defaults")
    p.add_argument('--peer', action='store_true',
                   help='after each sink-alone scenario, the Debezium JDBC sink on the same rows (PEER-INSERT, '
                        'PEER-UPDATE lines; bench/peers/debezium); fetches its jars with Maven the first time')
    p.add_argument('--peer-tasks', type=int, default=2, help="the peer connector's tasks.max (default 2)")
    p.add_argument('--curve', action='store_true',
                   help='the scaling curve instead of --scenarios: S1+S2 at each --curve-rows, S5 with each '
                        '--curve-workers at --curve-s5-rows; writes a table and a PNG plot (gnuplot)')
    p.add_argument('--curve-rows', default='100000,1000000,3000000', help='rows of each S1/S2 point')
    p.add_argument('--curve-workers', default='1,2,4', help='worker counts of the S5 points')
    p.add_argument('--curve-s5-rows', type=int, default=1_000_000, help='rows of the S5 points (default 1,000,000)')
    p.add_argument('--curve-out', default=None,
                   help='folder for curve.md, curve.jsonl, curve.png (default WORK_DIR/curve-<time>)')
    p.add_argument('--keep', action='store_true', help='keep schemas, topics, state rows and logs (debugging)')
    p.add_argument('--keep-topics', action='store_true', help='drop the schemas but leave the Kafka topics')
    o = p.parse_args(argv)
    if o.smoke:
        o.rows, o.scenarios, o.repeat = 10_000, 'S1,S2,S3,SINK', 1
    names = []
    for s in (x.strip().upper() for x in o.scenarios.split(',') if x.strip()):
        names += ALIASES.get(s, [s])
    o.scenarios = list(dict.fromkeys(names))
    bad = [s for s in o.scenarios if s not in ALL]
    if bad or not o.scenarios:
        p.error(f'--scenarios: unknown {bad}; choose from {ALL} or SINK (both sink scenarios)')
    if o.peer and not any(s.startswith('SINK') for s in o.scenarios):
        p.error('--peer compares with the sink-alone scenarios: select SINK-INSERT and/or SINK-UPDATE')
    try:
        o.curve_rows = [int(x) for x in o.curve_rows.split(',') if x.strip()]
        o.curve_workers = [int(x) for x in o.curve_workers.split(',') if x.strip()]
    except ValueError:
        p.error('--curve-rows and --curve-workers: comma-separated integers')
    if o.curve and (not o.curve_rows or min(o.curve_rows) < 100 or not o.curve_workers or min(o.curve_workers) < 1
                    or o.curve_s5_rows < 100):
        p.error('--curve: rows >= 100 and workers >= 1')
    if o.peer_tasks < 1:
        p.error('--peer-tasks >= 1')
    if o.rows < 100 or o.repeat < 1 or o.workers < 1:
        p.error('--rows >= 100, --repeat >= 1 and --workers >= 1')
    o.s5_workers = [int(x) for x in o.s5_workers.split(',') if x.strip()]
    try:
        o.kafka_property = dict(kv.split('=', 1) for kv in o.kafka_property)
    except ValueError:
        p.error('--kafka-property: KEY=VALUE')
    if o.stream_rates is not None:
        try:
            o.stream_rates = sorted({float(x) for x in o.stream_rates.split(',') if x.strip()})
            o.stream_rates = [int(x) if x.is_integer() else x for x in o.stream_rates]  # 2000, not 2000.0
        except ValueError:
            p.error('--stream-rates: comma-separated numbers')
        if not o.stream_rates or min(o.stream_rates) <= 0:
            p.error('--stream-rates: positive rates')
        if 'S4' not in o.scenarios:
            p.error('--stream-rates sweeps S4: select it (--scenarios S4)')
    return o


def machine():
    up = subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(['git', '-C', REPO, 'rev-parse', '--short', 'HEAD'], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(['git', '-C', REPO, 'status', '--porcelain', '--untracked-files=no'], capture_output=True,
                           text=True).stdout.strip()
    return {'uptime': up, 'cpus': os.cpu_count(), 'commit': commit + ('+dirty' if dirty else '')}


def median_of(results):
    """One line per scenario: the median of each number over the repeats (ratios too: each ratio
    was measured within its own repeat, against that repeat's limit)."""
    out = []
    for name in dict.fromkeys(r['scenario'] for r in results):
        group = [r for r in results if r['scenario'] == name]
        m = {'scenario': name, 'repeat': 'median', 'repeats': len(group)}
        for k, v in group[0].items():
            if k in m or k == 'repeat':
                continue
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                vals = [g[k] for g in group if isinstance(g.get(k), (int, float))]
                med = statistics.median(vals) if vals else None
                m[k] = None if med is None else int(med) if float(med).is_integer() else round(med, 4)
            elif isinstance(v, dict) and all(isinstance(x, (int, float)) or x is None for x in v.values()):
                m[k] = {kk: round(statistics.median([g[k][kk] for g in group if g[k].get(kk) is not None]), 3)
                        if any(g[k].get(kk) is not None for g in group) else None for kk in v}
        out.append(m)
    return out


def fmt(v, digits=2):
    if v is None:
        return '-'
    if isinstance(v, float):
        return f'{v:,.{digits}f}'
    return f'{v:,}' if isinstance(v, int) else str(v)


def table(lines, info):
    head = ['scenario', 'rep', 'rows', 'K', 'wall s', 'rows/s', 'p50 s', 'p99 s', 'msgs', 'limit s', 'ratio',
            'ceil s', 'ratio ceil', 'x peer', 'prod cpu s', 'prod MiB', 'wrk cpu s', 'wrk MiB', 'wrk-pg cpu s',
            'pg-all cpu s', 'targets']
    rows = []
    for r in lines:
        if r['scenario'] == 'S4-SWEEP':
            continue  # printed after the table (report.sweep_table)
        cpu, rss = r.get('cpu_s', {}), r.get('peak_rss_mib', {})
        # The applying side: leadsync's workers, or the peer's Kafka Connect JVM.
        applier = lambda k: k.startswith('worker') or k == 'connect'  # noqa: E731
        wcpu = sum(v for k, v in cpu.items() if applier(k) and v is not None)
        wrss = max((v for k, v in rss.items() if applier(k) and v is not None), default=None)
        t = r.get('targets')
        targets = ('-' if t is None else 'n/a' if isinstance(t, str) else
                   ', '.join(('ok ' if ok else 'MISS ') + name for name, ok in t.items()))
        p99 = fmt(r.get('latency_p99_s'), 3) + ('+' if r.get('latency_p99_capped') else '')
        rows.append([r['scenario'], str(r.get('repeat')), fmt(r.get('rows')), fmt(r.get('workers')),
                     fmt(r.get('wall_s'), 2), fmt(r.get('rows_per_s'), 0), fmt(r.get('latency_p50_s'), 3), p99,
                     fmt(r.get('kafka_messages')), fmt(r.get('limit_s'), 3), fmt(r.get('ratio_to_limit'), 1),
                     fmt(r.get('ceiling_s'), 3), fmt(r.get('ratio_to_ceiling'), 2), fmt(r.get('speedup_vs_peer'), 2),
                     fmt(cpu.get('producer', cpu.get('stream')), 2), fmt(rss.get('producer', rss.get('stream')), 0),
                     fmt(wcpu, 2), fmt(wrss, 0), fmt(sum(v for v in (r.get('pg_backend_cpu_s') or {}).values() if v), 2),
                     fmt((r.get('server_cpu_s') or {}).get('postgres'), 2), targets])
    widths = [max(len(h), *(len(x[i]) for x in rows)) for i, h in enumerate(head)]
    out = [f'# {info["uptime"]} | {info["cpus"]} CPUs | commit {info["commit"]}'
           + (f' | PGOPTIONS for leadsync: {info["leadsync_pg_options"]}' if info.get('leadsync_pg_options') else ''),
           '  '.join(h.ljust(w) for h, w in zip(head, widths))]
    out += ['  '.join(c.ljust(w) for c, w in zip(x, widths)) for x in rows]
    for r in lines:
        if r['scenario'] == 'S4-SWEEP' and 'rates' in r:  # (a median line has no per-rate table)
            out.append(f'# S4 rate sweep (repeat {r.get("repeat")}):\n' + report.sweep_table(r))
    out.append('# latency: bucket-interpolated from leadsync_end_to_end_latency_seconds ("+": beyond the top '
               'bucket, a lower bound); limit: see limit_kind in the JSON;\n# ceil: the guarded-upsert ceiling '
               '(ceiling_kind); x peer: rows/s over the Debezium peer\'s on the same rows in this run;\n'
               '# wrk: the workers (PEER lines: the Kafka Connect JVM); wrk-pg: their PostgreSQL backends; '
               'pg-all: the whole server, other clients of the shared cluster included')
    return '\n'.join(out)


def main(argv):
    o = parse_args(argv)
    try:
        cluster = Cluster(load_env(), o.build_dir, o.pg_options)
    except BenchError as e:
        print(f'bench/run: {e}', file=sys.stderr)
        return 2
    if o.smoke:
        # The quantile arithmetic every latency figure rests on, checked before the cluster run.
        import unittest
        import test_prom
        import test_pg_cpu
        import test_report
        suite = unittest.TestSuite([unittest.defaultTestLoader.loadTestsFromModule(m)
                                    for m in (test_prom, test_report, test_pg_cpu)])
        if not unittest.TextTestRunner(stream=sys.stderr, verbosity=0).run(suite).wasSuccessful():
            return 1
    info = machine()
    info['leadsync_pg_options'] = o.pg_options
    log(f'{info["uptime"]}; scenarios {",".join(o.scenarios)}, {o.rows} rows, repeat {o.repeat}')
    os.makedirs(o.work_dir, exist_ok=True)
    runner = Runner(cluster, Data(cluster, os.path.join(o.work_dir, 'data')), o, o.work_dir)
    results, failed = [], None
    started = time.time()
    def emit(r):
        r['uptime_at_start'] = info['uptime']
        r['commit'] = info['commit']
        r['pg_options'] = o.pg_options
        r['worker_connections'] = o.worker_connections
        results.append(r)
        print(json.dumps(r), flush=True)

    try:
        if o.curve:
            curve.run(runner, o, emit)
        else:
            for i in range(o.repeat):
                runner.run_all(o.scenarios, i + 1, emit)
    except (BenchError, subprocess.SubprocessError, OSError) as e:
        failed = e
        log(f'FAILED: {e}')
    except KeyboardInterrupt:
        failed = 'interrupted'
    finally:
        runner.cleanup()
    lines = list(results)
    if o.repeat > 1 and results and not o.curve:  # the curve has its own medians, per point
        for m in median_of(results):
            print(json.dumps(m), flush=True)
            lines.append(m)
    if o.json_out:
        with open(o.json_out, 'w') as f:
            for r in lines:
                f.write(json.dumps(r) + '\n')
    if lines:
        print(table(lines, info), flush=True)
    if o.curve and results:
        try:
            print(curve.write(results, info, o), flush=True)
        except (BenchError, OSError, subprocess.SubprocessError) as e:
            failed = failed or e
            log(f'curve output FAILED: {e}')
    log(f'done in {time.time() - started:.0f} s' + (f'; FAILED: {failed}' if failed else ''))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
