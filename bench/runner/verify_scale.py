"""bench/verify_scale: `leadsyncctl verify` at N rows (default 1,000,000) beside a plain full read of
both sides, in the same session, back to back (issue 11 item 1: "time stays near a full read of both
sides", peak RSS <= 256 MiB).

Set-up (not measured): an isolated context (bench/runner/cluster.py), the generated sheet
(leadsync-gen, seed 42, cached in .local/bench/data), one synced run through producer and worker
exactly as bench/run's S1 does (its checks included). Then `--repeat` rounds (default 3), each:

  verify      /usr/bin/time -v leadsyncctl --config C verify SOURCE          (must exit 0)
  table read  /usr/bin/time -v psql -X -c "\\copy (SELECT * FROM SCHEMA.leads) TO '/dev/null'"
  sheet read  /usr/bin/time -v cat SHEET > /dev/null                         (page cache: warm)
  sheet mapped  leadsyncctl verify SOURCE --key no-such-key: every row parsed and mapped, as verify
              and the producer read it, nothing sorted, no table row read (exits 1: the key is missing)

For each: wall seconds, the process's user+system CPU seconds and its max RSS, plus the PostgreSQL
server's CPU seconds over the same interval (the backend that served the read; the cluster is this
worktree's own, so other engineers' work is not in it, this worktree's tests would be), and the
1-minute load average at the start. Medians per measurement; the ratios verify / (table read + sheet
read) and verify / (table read + sheet mapped) of wall seconds and of CPU seconds (client + server). Output: JSON lines, then a table.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import REPO, BenchError, Cluster, load_env, log  # noqa: E402
import procs  # noqa: E402
from scenarios import Data, Runner  # noqa: E402


def timed(cmd, env, cluster, ok=(0,)):
    """Runs cmd under /usr/bin/time -v; returns wall, cpu, rss (MiB), server cpu, load."""
    load = os.getloadavg()[0]
    pg = cluster.postgres_pid()
    pg0 = procs.tree_cpu_seconds(pg) if pg else None
    t0 = time.monotonic()
    r = subprocess.run(['/usr/bin/time', '-v', *cmd], env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    pg1 = procs.tree_cpu_seconds(pg) if pg else None
    if r.returncode not in ok:
        raise BenchError(f'{" ".join(cmd)} exited {r.returncode}: {r.stderr[-2000:]}')

    def field(name):
        m = re.search(rf'^\s*{re.escape(name)}: (.*)$', r.stderr, re.MULTILINE)
        if not m:
            raise BenchError(f'/usr/bin/time printed no "{name}"')
        return m.group(1)
    return {
        'wall_s': round(wall, 3),
        'cpu_s': round(float(field('User time (seconds)')) + float(field('System time (seconds)')), 2),
        'peak_rss_mib': round(int(field('Maximum resident set size (kbytes)')) / 1024, 1),
        'pg_server_cpu_s': None if pg0 is None else round(pg1 - pg0, 2),
        'load1': round(load, 2),
    }


def main(argv):
    p = argparse.ArgumentParser(prog='bench/verify_scale', description=__doc__.split('\n\n')[0])
    p.add_argument('--rows', type=int, default=1_000_000)
    p.add_argument('--repeat', type=int, default=3)
    p.add_argument('--seed', type=int, default=42)
    p.add_argument('--build-dir', default=os.path.join(REPO, 'build'))
    p.add_argument('--work-dir', default=os.path.join(REPO, '.local', 'bench'))
    p.add_argument('--json-out')
    p.add_argument('--keep', action='store_true', help='leave the synced context (schema, topics) behind')
    o = p.parse_args(argv)
    cluster = Cluster(load_env(), o.build_dir)
    os.makedirs(o.work_dir, exist_ok=True)
    opts = argparse.Namespace(rows=o.rows, keep=o.keep, keep_topics=False)
    data = Data(cluster, os.path.join(o.work_dir, 'data'))
    runner = Runner(cluster, data, opts, o.work_dir)
    uptime = subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(['git', '-C', REPO, 'rev-parse', '--short', 'HEAD'], capture_output=True,
                            text=True).stdout.strip()
    lines = []
    try:
        sheet = data.sheet(o.rows, o.seed)
        ctx = runner.new_context('verify')
        log(f'syncing {o.rows} rows (set-up, not measured)')
        s1 = runner.sync(ctx, 'set-up', sheet, 1,
                         {'new': o.rows, 'changed': 0, 'deleted': 0, 'events_published': o.rows})
        log(f'synced in {s1["wall_s"]} s; measuring {o.repeat} rounds')
        table = f'{ctx.schema}.leads'
        commands = {
            'verify': [cluster.bin['ctl'], '--config', ctx.config, 'verify', ctx.source],
            'table_read': [cluster.psql_bin, '-X', '-q', cluster.pg_url, '-c',
                           f"\\copy (SELECT * FROM {table}) TO '/dev/null'"],
            'sheet_read': ['sh', '-c', 'cat "$0" > /dev/null', sheet],
            # The sheet read through the mapping, as verify and the producer read it: verify of one key
            # that is not there parses and maps every row, sorts nothing and reads no table row.
            'sheet_mapped': [cluster.bin['ctl'], '--config', ctx.config, 'verify', ctx.source, '--key',
                             'no-such-key-verify-scale'],
        }
        for i in range(o.repeat):
            for name, cmd in commands.items():
                env = cluster.env if name in ('verify', 'sheet_mapped') else cluster.psql_env
                m = timed(cmd, env, cluster, ok=(0, 1) if name == 'sheet_mapped' else (0,))
                m.update({'measure': name, 'round': i + 1, 'rows': o.rows})
                lines.append(m)
                print(json.dumps(m), flush=True)
    except (BenchError, subprocess.SubprocessError, OSError) as e:
        log(f'FAILED: {e}')
        runner.cleanup()
        return 1
    runner.cleanup()

    med = {}
    for name in commands:
        ms = [m for m in lines if m['measure'] == name]
        med[name] = {k: round(statistics.median(m[k] for m in ms), 3)
                     for k in ('wall_s', 'cpu_s', 'peak_rss_mib', 'pg_server_cpu_s', 'load1')
                     if all(m[k] is not None for m in ms)}
    reads_wall = med['table_read']['wall_s'] + med['sheet_read']['wall_s']
    cpu = {n: med[n]['cpu_s'] + med[n].get('pg_server_cpu_s', 0) for n in med}
    summary = {'measure': 'median', 'rows': o.rows, 'repeat': o.repeat, 'uptime_at_start': uptime,
               'commit': commit, **{n: med[n] for n in med},
               'ratio_wall': round(med['verify']['wall_s'] / reads_wall, 2),
               'ratio_cpu': round(cpu['verify'] / (cpu['table_read'] + cpu['sheet_read']), 2),
               # against the sheet read through the mapping instead of a plain read of its bytes
               'ratio_wall_mapped': round(med['verify']['wall_s'] /
                                          (med['table_read']['wall_s'] + med['sheet_mapped']['wall_s']), 2),
               'ratio_cpu_mapped': round(cpu['verify'] / (cpu['table_read'] + cpu['sheet_mapped']), 2)}
    print(json.dumps(summary), flush=True)
    if o.json_out:
        with open(o.json_out, 'w') as f:
            for m in lines + [summary]:
                f.write(json.dumps(m) + '\n')
    print(f'# {uptime} | commit {commit} | {o.rows} rows, median of {o.repeat}')
    print(f'{"measure":<11} {"wall_s":>8} {"cpu_s":>7} {"pg_cpu_s":>8} {"rss_mib":>8} {"load1":>6}')
    for n in med:
        m = med[n]
        print(f'{n:<11} {m["wall_s"]:>8.2f} {m["cpu_s"]:>7.2f} {m.get("pg_server_cpu_s", float("nan")):>8.2f} '
              f'{m["peak_rss_mib"]:>8.1f} {m["load1"]:>6.2f}')
    print(f'verify / (table read + sheet read): wall {summary["ratio_wall"]}x, CPU (client + server) '
          f'{summary["ratio_cpu"]}x')
    print(f'verify / (table read + sheet mapped): wall {summary["ratio_wall_mapped"]}x, CPU (client + server) '
          f'{summary["ratio_cpu_mapped"]}x')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
