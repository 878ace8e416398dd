"""The reference peer of the sink-alone scenarios (bench/peers/debezium/README.md): Kafka Connect
(standalone) running the Debezium JDBC sink connector in upsert mode, on the bench's own cluster,
with its own topic and table, over the same rows the sink scenarios applied.

One pass (PEER-INSERT into an empty table, PEER-UPDATE with every row changed), not timed first:
the rows of the synced table as they are right after the sink scenario, as JsonConverter records
(schema + payload) produced to the peer's topic with kcat; Connect started and its REST API up.
Timed: from the POST of the connector until the peer's table holds every row of the pass. Then,
not timed, the peer's table must equal the synced table on every column it has.
"""
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import procs
import report
from cluster import REPO, BenchError, _replace_once, log

PEER_DIR = os.path.join(REPO, 'bench', 'peers', 'debezium')
# leadsync's own bookkeeping columns, which a generic sink has no use for; _version stays, as the
# version a change event carries (the peer writes it like any other column, without a guard).
BOOKKEEPING = ('_event_id', '_deleted', '_source', '_origin', '_synced_at')
JVM_OPTS = ['-Xms256M', '-Xmx2G', '-server', '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20',
            '-XX:InitiatingHeapOccupancyPercent=35', '-XX:+ExplicitGCInvokesConcurrent', '-XX:MaxInlineLevel=15',
            '-Djava.awt.headless=true', '-Dorg.slf4j.simpleLogger.showDateTime=true',
            '-Dorg.slf4j.simpleLogger.defaultLogLevel=info', '-Dorg.slf4j.simpleLogger.log.org.apache.kafka.clients=warn',
            # Where each partition's consumption starts (committed offset or reset): start_offsets_sum.
            '-Dorg.slf4j.simpleLogger.log.org.apache.kafka.clients.consumer.internals=info', 
            '-Dorg.slf4j.simpleLogger.log.org.hibernate=warn', '-Dorg.slf4j.simpleLogger.log.com.mchange=warn']
# The share of a pass after which the cheap progress figure (pg_stat_user_tables) hands over to the
# exact completion query; see _wait_done.
EXACT_FROM = 0.9
# A pass fails when the peer's table has not grown for this long (env BENCH_PEER_STALL_S overrides).
STALL_S = int(os.environ.get('BENCH_PEER_STALL_S', '180'))


def _json_type(pg_type, column):
    """The Connect schema of one column (JsonConverter, schemas.enable=true)."""
    if pg_type == 'text':
        return {'type': 'string', 'optional': column != 'lead_id', 'field': column}
    if pg_type == 'ARRAY':
        return {'type': 'array', 'items': {'type': 'string', 'optional': True}, 'optional': True, 'field': column}
    if pg_type == 'bigint':
        return {'type': 'int64', 'optional': column != '_version', 'field': column}
    if pg_type == 'integer':
        return {'type': 'int32', 'optional': True, 'field': column}
    if pg_type == 'boolean':
        return {'type': 'boolean', 'optional': True, 'field': column}
    if pg_type == 'timestamp with time zone':
        return {'type': 'string', 'optional': True, 'name': 'io.debezium.time.ZonedTimestamp', 'version': 1,
                'field': column}
    raise BenchError(f'peer: no Connect schema for column {column} of type {pg_type}')


class DebeziumPeer:
    def __init__(self, cluster, ctx, tasks, timeout):
        self.cluster = cluster
        self.ctx = ctx
        self.tasks = tasks
        self.timeout = timeout
        self.schema = ctx.schema + '_peer'
        self.topic = f'bench.{ctx.id}.peer'
        self.name = f'bench-{ctx.id}-peer'
        self.dir = os.path.join(ctx.dir, 'peer')
        os.makedirs(self.dir, exist_ok=True)
        self.created = False
        self.topic_created = False
        self.connect = None
        self.columns = None

    # ------------------------------------------------------------------ set-up and clean-up, not timed

    def setup(self):
        r = subprocess.run([os.path.join(PEER_DIR, 'fetch')], capture_output=True, text=True)
        if r.returncode != 0:
            raise BenchError(f'peer: bench/peers/debezium/fetch failed: {r.stderr.strip()[-2000:]}')
        self.libs = r.stdout.strip().splitlines()[-1]
        c, s = self.cluster, self.ctx.schema
        cols = c.psql("SELECT column_name || ' ' || data_type FROM information_schema.columns WHERE table_schema = "
                      f"'{s}' AND table_name = 'leads' ORDER BY ordinal_position").splitlines()
        self.columns = [tuple(x.split(' ', 1)) for x in cols if x and x.split(' ', 1)[0] not in BOOKKEEPING]
        names = ', '.join(n for n, _ in self.columns)
        # The peer's table: leadsync's columns and types without its bookkeeping, the same primary key.
        c.psql(f'CREATE SCHEMA {self.schema};\n'
               f'CREATE TABLE {self.schema}.leads AS SELECT {names} FROM {s}.leads WITH NO DATA;\n'
               f'ALTER TABLE {self.schema}.leads ADD PRIMARY KEY (lead_id);\n')
        self.created = True
        # The peer's topic, created (and deleted) by leadsync's own tools through a copy of the context's
        # configuration naming it: they also make its retry and dead-letter topics, which stay empty.
        with open(self.ctx.config) as f:
            y = f.read()
        y = _replace_once(y, r'^(\s+topic:\s*).*$', rf'\g<1>{self.topic}', 'kafka.topic')
        y = _replace_once(y, r'^(\s+dlq_topic:\s*).*$', rf'\g<1>{self.topic}.dlq', 'kafka.dlq_topic')
        self.topic_config = os.path.join(self.dir, 'peer-topic.yaml')
        with open(self.topic_config, 'w') as f:
            f.write(y)
        self.topic_created = True
        r = subprocess.run([self.cluster.bin['ctl'], '--config', self.topic_config, 'topics'], capture_output=True,
                           text=True, env=self.cluster.env, timeout=120)
        if r.returncode != 0:
            raise BenchError(f'peer: leadsyncctl topics exited {r.returncode}: {r.stderr.strip()[-1500:]}')

    def teardown(self):
        self.stop_connect()
        # Connect's logs outlive the context's folder (removed by the clean-up): the place to look first.
        keep = os.path.join(os.path.dirname(self.ctx.dir), 'peer-logs', self.ctx.id)
        os.makedirs(keep, exist_ok=True)
        for name in os.listdir(self.dir):
            if name.endswith('.log') or name.endswith('.out'):
                shutil.copy(os.path.join(self.dir, name), keep)
        if self.created:
            try:
                self.cluster.psql(f'DROP SCHEMA IF EXISTS {self.schema} CASCADE;\n')
            except BenchError as e:
                log(f'peer: dropping {self.schema} failed: {e}')
        if self.topic_created:
            r = subprocess.run([self.cluster.bin['stream'], '--config', self.topic_config, '--delete-topics'],
                               env=self.cluster.env, capture_output=True, text=True, timeout=120)
            if r.returncode != 0:
                log(f'peer: deleting the topics of {self.topic} failed: {r.stderr.strip()[-500:]}')

    def _records(self, path):
        """The synced table's rows (every column the peer has) as JsonConverter key<TAB>value lines."""
        key_schema = json.dumps({'type': 'struct', 'optional': False, 'name': 'bench.leads.Key',
                                 'fields': [_json_type('text', 'lead_id')]}, separators=(',', ':'))
        value_schema = json.dumps({'type': 'struct', 'optional': False, 'name': 'bench.leads.Value',
                                   'fields': [_json_type(t, n) for n, t in self.columns]}, separators=(',', ':'))
        fields = []
        for n, t in self.columns:
            v = (f"to_char({n} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
                 if t == 'timestamp with time zone' else n)
            fields.append(f"'{n}', {v}")
        sql = (f"SELECT '{{\"schema\":{key_schema},\"payload\":' || json_build_object('lead_id', lead_id)::text || '}}' "
               f"|| E'\\t' || '{{\"schema\":{value_schema},\"payload\":' || json_build_object({', '.join(fields)})::text "
               f"|| '}}' FROM {self.ctx.schema}.leads ORDER BY lead_id;\n")
        # FETCH_COUNT: a cursor, so that psql does not hold a million rows in memory.
        self.cluster.psql(f'\\set FETCH_COUNT 20000\n\\o {path}\n' + sql + '\\o\n')
        with open(path, 'rb') as f:
            return sum(1 for _ in f)

    def _produce(self, path, count):
        before = self.cluster.high_watermarks(self.topic, self.ctx.PARTITIONS)
        with open(path, 'rb') as f:
            r = subprocess.run([self.cluster.kcat, '-P', '-b', self.cluster.brokers, '-t', self.topic, '-K', '\t',
                                '-X', 'linger.ms=20', '-X', 'batch.num.messages=10000',
                                '-X', 'queue.buffering.max.messages=500000', '-X', 'queue.buffering.max.kbytes=1048576'],
                               stdin=f, capture_output=True, text=True, timeout=self.timeout)
        if r.returncode != 0:
            raise BenchError(f'peer: kcat -P exited {r.returncode}: {r.stderr.strip()[-1500:]}')
        after = self.cluster.high_watermarks(self.topic, self.ctx.PARTITIONS)
        if before is None or after is None or after - before != count:
            raise BenchError(f'peer: the topic grew by {None if before is None or after is None else after - before} '
                             f'records, {count} were produced')

    # ------------------------------------------------------------------ Connect

    def start_connect(self, label):
        rest = procs.free_port()
        props = os.path.join(self.dir, 'connect-standalone.properties')
        with open(props, 'w') as f:
            f.write(f'bootstrap.servers={self.cluster.brokers}\n'
                    f'listeners=http://127.0.0.1:{rest}\n'
                    'key.converter=org.apache.kafka.connect.json.JsonConverter\n'
                    'value.converter=org.apache.kafka.connect.json.JsonConverter\n'
                    'key.converter.schemas.enable=true\nvalue.converter.schemas.enable=true\n'
                    f'offset.storage.file.filename={os.path.join(self.dir, "connect.offsets")}\n'
                    'offset.flush.interval.ms=10000\nconnector.client.config.override.policy=All\n'
                    # The jars carry ServiceLoader manifests: no class-path scan (~25 s of start-up).
                    'plugin.discovery=service_load\n')
        self.rest = f'http://127.0.0.1:{rest}'
        self.connect = procs.Child(f'peer-connect-{label}', ['java', *JVM_OPTS, '-cp', os.path.join(self.libs, '*'),
                                                              'org.apache.kafka.connect.cli.ConnectStandalone', props],
                                   self.dir, self.cluster.psql_env)
        deadline = time.monotonic() + 240
        while True:
            if not self.connect.alive():
                raise BenchError(f'peer: Kafka Connect exited during start-up:\n{self.connect.log_tail()}')
            try:
                urllib.request.urlopen(self.rest + '/', timeout=5).read()
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchError('peer: Kafka Connect\'s REST API not up after 240 s')
            time.sleep(0.5)

    def stop_connect(self):
        if self.connect is not None and self.connect.alive():
            self.connect.stop(grace=60)
        self.connect = None

    def _connector(self):
        url = self.cluster.pg_url
        m = re.match(r'^postgres(?:ql)?://([^@/]+)@([^:/]+):(\d+)/([^?]+)', url)
        if not m:
            raise BenchError(f'peer: cannot read user, host, port and database from LEADSYNC_PG_URL')
        user, host, port, db = m.groups()
        return {'name': self.name, 'config': {
            'connector.class': 'io.debezium.connector.jdbc.JdbcSinkConnector',
            'tasks.max': str(self.tasks),
            'topics': self.topic,
            'connection.url': f'jdbc:postgresql://{host}:{port}/{db}',
            'connection.username': user,
            'connection.password': '',
            'insert.mode': 'upsert',
            'primary.key.mode': 'record_key',
            'primary.key.fields': 'lead_id',
            'schema.evolution': 'none',
            'delete.enabled': 'false',
            # Schema-qualified: with a bare name the sink resolves the first table called leads that the
            # JDBC metadata lists, whatever the connection's search_path.
            'collection.name.format': f'{self.schema}.leads',
            'key.converter': 'org.apache.kafka.connect.json.JsonConverter',
            'key.converter.schemas.enable': 'true',
            'value.converter': 'org.apache.kafka.connect.json.JsonConverter',
            'value.converter.schemas.enable': 'true',
        }}

    def _status(self):
        try:
            with urllib.request.urlopen(f'{self.rest}/connectors/{self.name}/status', timeout=10) as r:
                st = json.loads(r.read())
        except (OSError, ValueError):
            return None
        failed = [t for t in st.get('tasks', []) if t.get('state') == 'FAILED']
        if failed or st.get('connector', {}).get('state') == 'FAILED':
            return BenchError('peer: connector or task FAILED: ' + json.dumps(st)[:2000])
        return st

    def _start_offsets(self):
        """From Connect's log: per partition of the peer's topic, the last offset its consumer started at."""
        starts = {}
        pat = re.compile(r'(?:Setting offset for partition|Resetting offset for partition) '
                         + re.escape(self.topic) + r'-(\d+) to (?:the committed offset |position )?'
                         r'FetchPosition\{offset=(\d+)')
        try:
            with open(self.connect_log, encoding='utf-8', errors='replace') as f:
                for line in f:
                    m = pat.search(line)
                    if m:
                        starts[int(m.group(1))] = int(m.group(2))
        except OSError:
            return None
        return sum(starts.values()) if len(starts) == self.ctx.PARTITIONS else None

    # ------------------------------------------------------------------ one pass, timed

    def _progress(self):
        """Rows the table received so far by the server's statistics: cheap, but flushed by each
        backend at most once a second (up to ~10 s late when it goes idle)."""
        v = self.cluster.scalar('SELECT coalesce(n_tup_ins + n_tup_upd, 0) FROM pg_stat_user_tables '
                                f"WHERE schemaname = '{self.schema}' AND relname = 'leads'")
        return int(v or 0)

    def _wait_done(self, done_sql, target, progress0):
        """Until done_sql (exact) returns >= target. The exact query scans the table (a tenth of a second
        at a million rows), so it runs only when the cheap statistics say the pass is nearly done
        (>= EXACT_FROM of it: then every 0.2 s) or have not moved for a second (a backend that went idle
        flushes its statistics up to ~10 s late, so the end of a pass may not show there: then once a
        second). Detection lags the last commit by at most ~1 s. Returns (exact queries, last value)."""
        deadline = time.monotonic() + self.timeout
        now = time.monotonic()
        last, last_change, last_exact, exact, next_status = -1, now, 0.0, 0, now + 5
        while True:
            progress = self._progress() - progress0
            now = time.monotonic()
            if progress != last:
                last, last_change = progress, now
            near = progress >= EXACT_FROM * target
            if near or (now - last_change >= 1.0 and now - last_exact >= 1.0):
                value = int(self.cluster.scalar(done_sql) or 0)
                exact += 1
                last_exact = time.monotonic()
                if value >= target:
                    return exact, value
            if not self.connect.alive():
                raise BenchError(f'peer: Kafka Connect exited during the pass:\n{self.connect.log_tail()}')
            if now >= next_status:
                next_status = now + 5
                st = self._status()
                if isinstance(st, BenchError):
                    raise st
            if now - last_change > STALL_S:
                raise BenchError(f'peer: no progress for {STALL_S} s at {progress} of {target} rows '
                                 f'(Connect log: {self.connect.err_path})')
            if now > deadline:
                raise BenchError(f'peer: {progress} of {target} rows after {self.timeout} s')
            time.sleep(0.2)

    def run_pass(self, scenario, rows, done_sql, target):
        """Exports, produces, starts Connect, then times the connector from its POST to done_sql >= target."""
        path = os.path.join(self.dir, f'{scenario.lower()}.kv')
        count = self._records(path)
        if count != target:
            raise BenchError(f'peer: {count} records exported, the pass expects {target}')
        before_pass = self.cluster.high_watermarks(self.topic, self.ctx.PARTITIONS)
        self._produce(path, count)
        os.unlink(path)
        self.start_connect(scenario.lower())
        self.connect_log = self.connect.err_path
        try:
            c = self.cluster
            progress0 = self._progress()
            jpid = self.connect.pid
            cpu0 = procs.cpu_seconds(jpid)
            pg0 = procs.tree_cpu_seconds(c.postgres_pid())
            kpid = c.kafka_pid()
            k0 = procs.cpu_seconds(kpid) if kpid else None
            body = json.dumps(self._connector()).encode()
            t0 = time.monotonic()
            req = urllib.request.Request(self.rest + '/connectors', data=body, method='POST',
                                         headers={'Content-Type': 'application/json'})
            try:
                urllib.request.urlopen(req, timeout=60).read()
            except urllib.error.HTTPError as e:
                raise BenchError(f'peer: POST /connectors: {e.code} {e.read().decode(errors="replace")[:1500]}')
            exact, value = self._wait_done(done_sql, target, progress0)
            wall = time.monotonic() - t0
            cpu = procs.cpu_seconds(jpid) - cpu0
            rss = procs.peak_rss_mib(jpid)
            backends = 0.0
            for pid in c.backends_of(jpid):
                try:
                    backends += procs.cpu_seconds(pid)  # opened after the POST: their whole life is in the pass
                except OSError:
                    pass
            pg1 = procs.tree_cpu_seconds(c.postgres_pid())
            k1 = procs.cpu_seconds(kpid) if kpid else None
        finally:
            self.stop_connect()
        starts = self._start_offsets()
        diff = self.cluster.scalar_in_key_order(
            f'SELECT count(*) FROM {self.ctx.schema}.leads t FULL JOIN {self.schema}.leads p USING (lead_id) WHERE '
            f'({", ".join("t." + n for n, _ in self.columns)}) IS DISTINCT FROM '
            f'({", ".join("p." + n for n, _ in self.columns)})')
        if diff != '0':
            raise BenchError(f'{scenario}: the peer\'s table differs from the synced table in {diff} rows')
        return {
            'scenario': scenario, 'rows': rows, 'workers': self.tasks, 'wall_s': round(wall, 3),
            'rows_per_s': round(rows / wall, 1),
            'clock': 'POST of the connector to a running Kafka Connect -> the peer table holds every row of the pass',
            'peer': f'Kafka Connect standalone + Debezium JDBC sink (bench/peers/debezium/pom.xml), upsert, '
                    f'tasks.max={self.tasks}, default batch settings',
            'cpu_s': {'connect': round(cpu, 2)},
            'peak_rss_mib': {'connect': None if rss is None else round(rss, 1)},
            'pg_backend_cpu_s': {'connect': round(backends, 2)},
            'server_cpu_s': {'postgres': None if pg0 is None or pg1 is None else round(pg1 - pg0, 2),
                             'kafka': None if k0 is None or k1 is None else round(k1 - k0, 2)},
            'kafka_messages': count, 'completion_queries': exact,
            # Sum over partitions of the offset each task started from (its group's committed offset, or 0):
            # the records of earlier passes, if the previous Connect committed them when it stopped.
            'start_offsets_sum': starts,
            'records_before_pass': before_pass,
            'replayed_records': None if starts is None else before_pass - starts,
            'verify': 'peer table = synced table on every column it has',
            'load_avg_1m': round(os.getloadavg()[0], 2),
        }


def attach(sink, peer_result):
    """The sink scenario's comparison with the peer of the same pass, measured in the same run; the peer
    line gets the sink pass's limit and ceiling, so that its ratios stand beside the sink's."""
    sink['peer_wall_s'] = peer_result['wall_s']
    sink['peer_rows_per_s'] = peer_result['rows_per_s']
    sink['speedup_vs_peer'] = report.speedup(sink['rows_per_s'], peer_result['rows_per_s'])
    for k in ('limit_s', 'limit_kind', 'ceiling_s', 'ceiling_kind', 'ceiling_batch'):
        if k in sink:
            peer_result[k] = sink[k]
    peer_result['ratio_to_limit'] = report.ratio(peer_result['wall_s'], sink.get('limit_s'))
    peer_result['ratio_to_ceiling'] = report.ratio(peer_result['wall_s'], sink.get('ceiling_s'))
    peer_result['speedup_vs_peer'] = 1.0
