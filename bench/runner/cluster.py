"""The local cluster as the benchmark sees it: environment, psql, Kafka offsets, and the isolated
deployment ("context") each measured run gets: its own source name, topics, consumer group,
target schema and limit schema, created before and dropped after.
"""
import json
import os
import random
import re
import shutil
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class BenchError(Exception):
    """A run that cannot be trusted: a check failed or a process misbehaved."""


def log(msg):
    print(f'[bench {time.strftime("%H:%M:%S")}] {msg}', file=os.sys.stderr, flush=True)


def load_env():
    """os.environ plus .local/env (written by dev/cluster up) for what the environment lacks."""
    env = dict(os.environ)
    path = os.path.join(REPO, '.local', 'env')
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                m = re.match(r'^\s*export\s+([A-Z_][A-Z0-9_]*)=(.*)$', line.strip())
                if m and m.group(1) not in env:
                    env[m.group(1)] = m.group(2).strip().strip("'\"")
    for k in ('LEADSYNC_KAFKA_BROKERS', 'LEADSYNC_PG_URL'):
        if not env.get(k):
            raise BenchError(f'{k} is not set and .local/env lacks it: start the cluster (dev/cluster up)')
    return env


class Cluster:
    def __init__(self, env, build_dir, pg_options=None):
        # self.env: for leadsync's processes; self.psql_env: for the runner's own psql (the limit,
        # checks, clean-up), which always runs with the server's defaults.
        self.psql_env = {k: v for k, v in env.items() if k != 'PGOPTIONS'}
        self.env = dict(env)
        if pg_options is not None:
            self.env['PGOPTIONS'] = pg_options
        self.brokers = env['LEADSYNC_KAFKA_BROKERS']
        self.pg_url = env['LEADSYNC_PG_URL']
        self.psql_bin = shutil.which('psql') or os.path.join(env.get('LEADSYNC_PG_BIN', ''), 'psql')
        self.kcat = shutil.which('kcat')
        self.bin = {
            'producer': os.path.join(build_dir, 'producers', 'leadsync-producer'),
            'worker': os.path.join(build_dir, 'workers', 'leadsync-worker'),
            'ctl': os.path.join(build_dir, 'ctl', 'leadsyncctl'),
            'gen': os.path.join(build_dir, 'bench', 'leadsync-gen'),
            'stream': os.path.join(build_dir, 'bench', 'leadsync-bench-stream'),
        }
        missing = [p for p in self.bin.values() if not os.access(p, os.X_OK)]
        if missing:
            raise BenchError('not built: ' + ', '.join(missing) + ' (cmake --build build --target leadsync-producer '
                             'leadsync-worker leadsyncctl leadsync-gen leadsync-bench-stream)')

    # ------------------------------------------------------------------ PostgreSQL

    def psql(self, sql, timing=False, check=True):
        """Runs a script through one psql session (autocommit: each statement commits).

        Returns stdout. With timing=True, \\timing is on and the result is (stdout, [ms, ...]), one
        entry per statement or meta-command, in order.
        """
        script = ('\\timing on\n' if timing else '') + sql
        r = subprocess.run([self.psql_bin, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-At', '-d', self.pg_url],
                           input=script, capture_output=True, text=True, env=self.psql_env)
        if check and r.returncode != 0:
            raise BenchError(f'psql failed ({r.returncode}): {r.stderr.strip()}\n--- script:\n{sql[:2000]}')
        if not timing:
            return r.stdout
        times, rest = [], []
        for line in r.stdout.splitlines():
            m = re.match(r'^Time: ([0-9.]+) ms', line)
            if m:
                times.append(float(m.group(1)))
            else:
                rest.append(line)
        return '\n'.join(rest), times

    def scalar(self, sql):
        return self.psql(sql).strip()

    # The equality checks join two tables of the same keys. Joined by hash, two 10,000,000-row tables
    # spilled PostgreSQL's temporary files until the disk was full (bench/README.md, "the producer's
    # state at 10,000,000 rows"); as a merge join of their primary-key indexes, read in key order, the
    # check needs no temporary file at any size.
    KEY_ORDER = 'SET enable_hashjoin = off;\nSET enable_sort = off;\n'

    def scalar_in_key_order(self, sql):
        return self.scalar(self.KEY_ORDER + sql)

    def postgres_pid(self):
        data = self.env.get('LEADSYNC_PG_DATA')
        if not data:
            return None
        from procs import read_pid_file
        return read_pid_file(os.path.join(data, 'postmaster.pid'))

    def backends_of(self, pid):
        """PostgreSQL backend pids serving the connections of process `pid`."""
        from procs import tcp_peer_ports
        ports = tcp_peer_ports(pid, int(self.env.get('LEADSYNC_PG_PORT') or 5432))
        if not ports:
            return []
        out = self.psql('SELECT pid FROM pg_stat_activity WHERE client_port IN (' +
                        ', '.join(str(p) for p in ports) + ')')
        return [int(x) for x in out.split()]

    def kafka_pid(self):
        from procs import read_pid_file
        return read_pid_file(os.path.join(REPO, '.local', 'kafka.pid'))

    # ------------------------------------------------------------------ Kafka

    def high_watermarks(self, topic, partitions):
        """Sum of the partitions' end offsets (= messages ever produced; no transactions here)."""
        if not self.kcat:
            return None
        argv = [self.kcat, '-Q', '-b', self.brokers]
        for p in range(partitions):
            argv += ['-t', f'{topic}:{p}:-1']
        for attempt in range(5):  # a topic created a moment ago may not answer yet
            r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            offsets = re.findall(r'\[\d+\] offset (-?\d+)', r.stdout)
            if r.returncode == 0 and len(offsets) == partitions:
                return sum(max(0, int(o)) for o in offsets)
            time.sleep(0.5)
        log(f'high watermarks of {topic} unreadable: {r.stderr.strip()[:300]}')
        return None


def _replace_once(text, pattern, repl, what):
    new, n = re.subn(pattern, repl, text, count=0, flags=re.MULTILINE)
    if n != 1:
        raise BenchError(f'examples/leadsync.yaml: expected one {what} to rewrite, found {n}')
    return new


class Context:
    """One isolated deployment on the shared cluster."""

    PARTITIONS = 12
    RETRY_TIERS = 3

    def __init__(self, cluster, label, work_root):
        self.cluster = cluster
        stamp = time.strftime('%Y%m%d%H%M%S')
        self.id = f'{stamp}{random.randrange(16**4):04x}_{label.lower()}'
        self.source = f'bench-{self.id}'.replace('_', '-')
        self.topic = f'bench.{self.id}.changes'
        self.dlq = self.topic + '.dlq'
        self.group = f'bench-{self.id}'
        self.schema = f'bench_{self.id}'
        self.limit_schema = self.schema + '_limit'
        self.dir = os.path.join(work_root, self.id)
        self.sheet = os.path.join(self.dir, 'sheet.csv')
        self.config = os.path.join(self.dir, 'leadsync.yaml')
        self.stream_run_ids = []
        os.makedirs(self.dir, exist_ok=True)

    kafka_properties = {}  # --kafka-property (the Runner sets it): kafka.properties of every context's config
    worker_connections = None  # --worker-connections (the Runner sets it): worker.connections, else the default

    def write_config(self):
        with open(os.path.join(REPO, 'examples', 'leadsync.yaml')) as f:
            y = f.read()
        y = _replace_once(y, r'^(\s+topic:\s*).*$', rf'\g<1>{self.topic}', 'kafka.topic')
        y = _replace_once(y, r'^(\s+dlq_topic:\s*).*$', rf'\g<1>{self.dlq}', 'kafka.dlq_topic')
        y = _replace_once(y, r'^(\s+group:\s*).*$', rf'\g<1>{self.group}', 'kafka.group')
        y = _replace_once(y, r'^(\s+partitions:\s*).*$', rf'\g<1>{self.PARTITIONS}', 'kafka.partitions')
        y = _replace_once(y, r'^(\s+retry:\s*).*$',
                          rf'\g<1>{{attempts: {self.RETRY_TIERS}, base_ms: 1000, max_ms: 10000}}', 'kafka.retry')
        y = _replace_once(y, r'^(\s+schema:\s*).*$', rf'\g<1>{self.schema}', 'postgres.schema')
        y = _replace_once(y, r'^(\s+-\s+name:\s*).*$', rf'\g<1>{self.source}', 'source name')
        y = _replace_once(y, r'^(\s+url:\s*)leads\.csv.*$', rf'\g<1>"{self.sheet}"', 'source url')
        # --kafka-property K=V, and BENCH_KAFKA_PROPERTIES='linger.ms=50,compression.type=zstd' from the
        # environment: librdkafka properties for every client of the context (kafka.properties), to measure
        # client settings without a rebuild. The option wins over the environment.
        props_in = dict(kv.split('=', 1) for kv in os.environ.get('BENCH_KAFKA_PROPERTIES', '').split(',') if kv)
        props_in.update(self.kafka_properties or {})
        if props_in:
            props = ', '.join(f'{json.dumps(k)}: {json.dumps(v)}' for k, v in sorted(props_in.items()))
            y = _replace_once(y, r'^(\s+dlq_topic:\s*.*)$', rf'\g<1>\n  properties: {{{props}}}', 'kafka.dlq_topic')
        if self.worker_connections:
            if re.search(r'^worker:', y, re.MULTILINE):
                raise BenchError('examples/leadsync.yaml has a worker: section; --worker-connections cannot add one')
            y = y.rstrip('\n') + f'\nworker:\n  connections: {int(self.worker_connections)}\n'
        header = (f'# Written by bench/run from examples/leadsync.yaml for benchmark context {self.id}:\n'
                  '# own topics, group, schema and source name. Removed by the runner unless --keep.\n')
        with open(self.config, 'w') as f:
            f.write(header + y)

    def use_sheet(self, path):
        """Points the source at `path` (a symlink: the producer and verify read the same bytes)."""
        tmp = self.sheet + '.new'
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(os.path.abspath(path), tmp)
        os.replace(tmp, self.sheet)

    def ctl(self, *args, timeout=None, check=True):
        r = subprocess.run([self.cluster.bin['ctl'], '--config', self.config, *args], capture_output=True, text=True,
                           env=self.cluster.env, timeout=timeout)
        if check and r.returncode != 0:
            raise BenchError(f'leadsyncctl {" ".join(args)} exited {r.returncode}: {r.stderr.strip()} '
                             f'{r.stdout.strip()[-2000:]}')
        return r

    def setup(self):
        self.write_config()
        self.ctl('migrate')
        self.ctl('topics')
        # The limit's table: identical columns, types, primary key, defaults; empty.
        self.cluster.psql(f'CREATE SCHEMA {self.limit_schema};\n'
                          f'CREATE TABLE {self.limit_schema}.leads (LIKE {self.schema}.leads INCLUDING ALL);\n'
                          # The guarded-upsert ceiling's table (limits.ceiling): the same, filled by batches.
                          f'CREATE TABLE {self.limit_schema}.leads_ceiling (LIKE {self.schema}.leads INCLUDING ALL);\n')

    def teardown(self, delete_topics=True):
        c = self.cluster
        runs = f"SELECT run_id FROM leadsync.sync_runs WHERE source = '{self.source}'"
        stream = ', '.join(f"'{r}'" for r in self.stream_run_ids) or "''"
        script = (f'DROP SCHEMA IF EXISTS {self.schema} CASCADE;\n'
                  f'DROP SCHEMA IF EXISTS {self.limit_schema} CASCADE;\n'
                  f"DELETE FROM leadsync.run_apply_stats WHERE run_id IN ({runs}) OR run_id IN ({stream});\n"
                  f"DELETE FROM leadsync.run_errors WHERE source = '{self.source}';\n"
                  f"DELETE FROM leadsync.record_changes WHERE source = '{self.source}';\n"
                  f"DELETE FROM leadsync.source_state WHERE source = '{self.source}';\n"
                  f"DELETE FROM leadsync.sync_runs WHERE source = '{self.source}';\n")
        try:
            c.psql(script)
        except BenchError as e:
            # Leave the way to finish the clean-up by hand: the script names everything of this context.
            log(f'clean-up of context {self.id} in PostgreSQL failed ({e}); run by hand:\n{script}')
        if delete_topics:
            subprocess.run([c.bin['stream'], '--config', self.config, '--delete-topics'], env=c.env,
                           capture_output=True, timeout=120)
        shutil.rmtree(self.dir, ignore_errors=True)
