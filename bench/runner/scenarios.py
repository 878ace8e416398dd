"""The scenarios (S1..S5): processes, timing, samples and checks; the limits are in limits.py.

Every scenario returns one flat dict: the JSON line bench/run prints. What each number means and
how it is measured is in bench/README.md; the code below is the reference.
"""
import json
import os
import shutil
import subprocess
import time

import limits
import prom
import pg_cpu as pg_cpu_mod
import report
import procs
from measure import Snapshot, empty_snapshot, fingerprint, measured
from cluster import BenchError, Context, log

ONE_MILLION = 1_000_000
SINK = ('SINK-INSERT', 'SINK-UPDATE')


def _pg_sampler(cluster, workers):
    """Starts sampling PostgreSQL's processes, with the workers' backends named (pg_cpu.py)."""
    s = pg_cpu_mod.sampler_for(cluster)
    for i, c in enumerate(workers.children):
        s.add_client(f'worker{i + 1}', c.pid)
    return s.start()


def _round(x, digits=4):
    return None if x is None else round(x, digits)


def _expect_new(rows):
    """The producer's report of a first sync of `rows` rows."""
    return {'new': rows, 'changed': 0, 'deleted': 0, 'events_published': rows}


def _expect_mutation(counts):
    """The producer's report of a sync of a mutated sheet (the generator's counts)."""
    return {'changed': counts['changed'], 'new': counts['added'], 'deleted': counts['deleted'],
            'events_published': counts['changed'] + counts['added'] + counts['deleted']}


def _last_json(text, what):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith('{'):
            return json.loads(line)
    raise BenchError(f'{what} printed no JSON report')


class Data:
    """Generated sheets, cached under .local/bench/data by rows and seed (and mutation)."""

    def __init__(self, cluster, data_dir):
        self.cluster = cluster
        self.dir = data_dir
        os.makedirs(data_dir, exist_ok=True)

    def sheet(self, rows, seed):
        path = os.path.join(self.dir, f'leads-{rows}-s{seed}.csv')
        if not os.path.exists(path):
            log(f'generating {rows} rows (seed {seed}) -> {path}')
            tmp = path + '.tmp'
            subprocess.run([self.cluster.bin['gen'], '--rows', str(rows), '--seed', str(seed), '--out', tmp],
                           check=True, capture_output=True)
            os.replace(tmp, path)
        return path

    def mutated(self, base, change, seed):
        """The next version of `base` with `change` of its rows changed; returns (path, counts)."""
        path = base[:-4] + f'-c{change:g}-m{seed}.csv'
        stats_path = path + '.json'
        if not (os.path.exists(path) and os.path.exists(stats_path)):
            log(f'mutating {os.path.basename(base)}: change fraction {change} -> {path}')
            tmp = path + '.tmp'
            r = subprocess.run([self.cluster.bin['gen'], '--mutate', base, '--out', tmp, '--seed', str(seed),
                                '--change-fraction', str(change), '--delete-fraction', '0', '--add-fraction', '0'],
                               check=True, capture_output=True, text=True)
            with open(stats_path, 'w') as f:
                json.dump(_last_json(r.stdout, 'leadsync-gen --mutate'), f)
            os.replace(tmp, path)
        with open(stats_path) as f:
            return path, json.load(f)


class Workers:
    """K leadsync-worker processes of one context, each serving /metrics on a port chosen here."""

    log_level = None  # --worker-log-level (the Runner sets it): e.g. debug, for the per-batch timing lines

    def __init__(self, ctx, count, tag):
        self.ctx = ctx
        self.children = []
        env = ctx.cluster.env
        for i in range(count):
            port = procs.free_port()
            argv = [ctx.cluster.bin['worker'], '--config', ctx.config, '--metrics-address', f'127.0.0.1:{port}']
            if Workers.log_level:
                argv += ['--log-level', Workers.log_level]
            child = procs.Child(f'{tag}-worker{i + 1}', argv, ctx.dir, env)
            child.port = port
            self.children.append(child)

    def wait_ready(self, timeout=120):
        """Until every worker is connected to PostgreSQL and the group has assigned every partition."""
        expected = Context.PARTITIONS * (1 + Context.RETRY_TIERS)  # main topic + retry tiers
        deadline = time.monotonic() + timeout
        while True:
            for c in self.children:
                if not c.alive():
                    raise BenchError(f'{c.name} exited during start-up:\n{c.log_tail()}')
            try:
                scraped = [prom.scrape(c.port) for c in self.children]
                assigned = [prom.value(s, 'leadsync_assigned_partitions') for s in scraped]
                db_up = [prom.value(s, 'leadsync_database_up') for s in scraped]
                if sum(assigned) == expected and all(a > 0 for a in assigned) and all(d == 1 for d in db_up):
                    return
            except OSError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise BenchError(f'workers not ready after {timeout} s (want {expected} partitions assigned)')
            time.sleep(0.2)

    def scrape(self):
        return [prom.scrape(c.port) for c in self.children]

    def cpu(self):
        return [procs.cpu_seconds(c.pid) for c in self.children]

    def stop(self):
        bad = []
        for c in self.children:
            rc = c.stop()
            if rc != 0:
                bad.append(f'{c.name} exited {rc}:\n{c.log_tail()}')
            if Workers.log_level:  # kept beside the context folder, which the clean-up removes
                kept = os.path.join(os.path.dirname(self.ctx.dir), 'logs', f'{self.ctx.id}-{c.name}.log')
                os.makedirs(os.path.dirname(kept), exist_ok=True)
                shutil.copyfile(c.err_path, kept)
                log(f'{c.name} log kept: {kept}')
        if bad:
            raise BenchError('worker did not stop cleanly: ' + '\n'.join(bad))


class Runner:
    def __init__(self, cluster, data, opts, work_root):
        self.cluster = cluster
        self.data = data
        self.opts = opts
        self.work_root = work_root
        self.contexts = []
        Workers.log_level = getattr(opts, 'worker_log_level', None)
        Context.kafka_properties = dict(getattr(opts, 'kafka_property', None) or {})
        Context.worker_connections = getattr(opts, 'worker_connections', None)

    def new_context(self, label):
        ctx = Context(self.cluster, label, self.work_root)
        self.contexts.append(ctx)
        log(f'context {ctx.id}: schema {ctx.schema}, topic {ctx.topic}, source {ctx.source}')
        ctx.setup()
        return ctx

    def cleanup(self):
        for ctx in self.contexts:
            if self.opts.keep:
                log(f'kept context {ctx.id} ({ctx.dir})')
                continue
            ctx.teardown(delete_topics=not self.opts.keep_topics)
        self.contexts = []

    def _timeout(self, rows):
        return max(300, rows // 1000)

    # ------------------------------------------------------------------ the sync path, timed

    def _publish(self, ctx, scenario, timeout, pg_cpu=None):
        """Runs `leadsync-producer --once` for the context's source; (the process, its JSON report)."""
        producer = procs.Child(f'{scenario.lower().replace("/", "-")}-producer',
                               [self.cluster.bin['producer'], '--config', ctx.config, '--source', ctx.source, '--once'],
                               ctx.dir, self.cluster.env)
        if pg_cpu is not None:
            pg_cpu.add_client('producer', producer.pid)
        rc = producer.wait(timeout)
        if rc is None:
            producer.stop()
            raise BenchError(f'{scenario}: producer still running after {timeout} s: stopped\n{producer.log_tail()}')
        if rc != 0:
            raise BenchError(f'{scenario}: producer exited {rc}: {producer.stdout()[-2000:]}\n{producer.log_tail()}')
        return producer, _last_json(producer.stdout(), 'leadsync-producer --once')

    def sync(self, ctx, scenario, sheet, workers_count, expect):
        """Workers up and ready, then: producer --once, leadsyncctl wait (timed), verify (not timed)."""
        ctx.use_sheet(sheet)
        rows = self.opts.rows
        timeout = self._timeout(rows)
        binaries = fingerprint(self.cluster, ('producer', 'worker'))
        workers = Workers(ctx, workers_count, scenario.lower().replace('/', '-'))
        pg_cpu = None
        try:
            workers.wait_ready()
            before = Snapshot(ctx, workers)
            pg_cpu = _pg_sampler(self.cluster, workers)
            t0 = time.monotonic()
            producer, report = self._publish(ctx, scenario, timeout, pg_cpu)
            producer_wall = time.monotonic() - t0
            ctx.ctl('wait', ctx.source, '--timeout', str(timeout), timeout=timeout + 60)
            wall = time.monotonic() - t0
            after = Snapshot(ctx, workers)
            result = measured(ctx, workers, before, after, scenario, rows)
            result['pg_cpu_by_process_s'] = pg_cpu.stop()
        finally:
            if pg_cpu is not None:
                pg_cpu.stop()
            workers.stop()
        p_cpu, p_rss = producer.usage()
        result['cpu_s'] = {'producer': _round(p_cpu, 2), **result['cpu_s']}
        result['peak_rss_mib'] = {'producer': _round(p_rss, 1), **result['peak_rss_mib']}
        result.update({
            'wall_s': _round(wall, 3),
            'rows_per_s': _round(rows / wall, 1),
            'producer_wall_s': _round(producer_wall, 3),
            'producer_report': {k: report.get(k) for k in ('new', 'changed', 'unchanged', 'deleted', 'failed',
                                                          'events_published', 'snapshot_unchanged', 'seconds')},
            'kafka_messages': report.get('events_published'),
            'binaries': binaries,
        })
        self._check_report(scenario, report, expect, result)
        t = time.monotonic()
        ctx.ctl('verify', ctx.source, timeout=timeout)
        result['verify'] = 'ok'
        result['verify_s'] = _round(time.monotonic() - t, 2)
        return result

    def _check_report(self, scenario, report, expect, result):
        problems = [f'{k} = {report.get(k)}, expected {v}' for k, v in expect.items() if report.get(k) != v]
        if report.get('status') != 'completed':
            problems.append(f'status {report.get("status")}: {report.get("message")}')
        wm = result['kafka_messages_watermark']
        if wm is not None and wm != report.get('events_published'):
            problems.append(f'topic high watermarks moved by {wm}, the producer reports '
                            f'{report.get("events_published")} events published')
        result['kafka_messages_check'] = ('high watermarks agree' if wm is not None else
                                          'not checked: high watermarks unreadable (kcat)')
        if result['events_dead_lettered']:
            problems.append(f'{result["events_dead_lettered"]} events dead-lettered')
        if problems:
            raise BenchError(f'{scenario}: ' + '; '.join(problems))

    # ------------------------------------------------------------------ scenarios

    def run_s1(self, ctx, sheet, workers, scenario='S1'):
        r = self.sync(ctx, scenario, sheet, workers, _expect_new(self.opts.rows))
        limits.copy(self.cluster, ctx, r)
        return r

    def run_s2(self, ctx, sheet_v2, counts, workers):
        r = self.sync(ctx, 'S2', sheet_v2, workers, _expect_mutation(counts))
        r['rows'] = counts['rows_out']
        r['rows_per_s'] = _round(counts['rows_out'] / r['wall_s'], 1)
        r['changed_rows'] = counts['changed']
        limits.merge(self.cluster, ctx, r)
        return r

    def run_s3(self, ctx, sheet, workers):
        r = self.sync(ctx, 'S3', sheet, workers, {'events_published': 0})
        if r['kafka_messages_watermark'] not in (0, None):
            raise BenchError(f'S3: {r["kafka_messages_watermark"]} messages reached the topic, expected none')
        limits.merge(self.cluster, ctx, r)
        return r

    # ------------------------------------------------------------------ the sink alone (issue 12)

    def publish_only(self, ctx, scenario, sheet, expect):
        """Set-up of a sink-alone scenario, not timed: the producer publishes the sheet's events with no
        worker running. Checks its counts and that the topic's high watermarks moved by as many."""
        ctx.use_sheet(sheet)
        timeout = self._timeout(self.opts.rows)
        wm0 = self.cluster.high_watermarks(ctx.topic, Context.PARTITIONS)
        t0 = time.monotonic()
        producer, rep = self._publish(ctx, scenario, timeout)
        publish_s = time.monotonic() - t0
        wm1 = self.cluster.high_watermarks(ctx.topic, Context.PARTITIONS)
        wm = None if wm0 is None or wm1 is None else wm1 - wm0
        problems = [f'{k} = {rep.get(k)}, expected {v}' for k, v in expect.items() if rep.get(k) != v]
        # No worker runs yet: the run is published and stays 'running' until its events are applied.
        if rep.get('status') not in ('running', 'completed'):
            problems.append(f'status {rep.get("status")}: {rep.get("message")}')
        if wm is not None and wm != rep.get('events_published'):
            problems.append(f'topic high watermarks moved by {wm}, the producer reports '
                            f'{rep.get("events_published")} events published')
        if problems:
            raise BenchError(f'{scenario} (publishing, no worker running): ' + '; '.join(problems))
        p_cpu, p_rss = producer.usage()
        return rep, wm, {'publish_s': _round(publish_s, 3), 'publish_cpu_s': _round(p_cpu, 2),
                         'publish_peak_rss_mib': _round(p_rss, 1)}

    def sink(self, ctx, scenario, sheet, workers_count, expect):
        """The sink alone: the sheet's events are already in the topic (publish_only); timed from the start
        of the K workers until `leadsyncctl wait` returns (every event applied), then verify."""
        rows = self.opts.rows
        timeout = self._timeout(rows)
        rep, wm, publish = self.publish_only(ctx, scenario, sheet, expect)
        binaries = fingerprint(self.cluster, ('worker',))
        before = empty_snapshot(ctx, workers_count)
        pg_cpu = pg_cpu_mod.sampler_for(self.cluster).start()
        t0 = time.monotonic()
        workers = Workers(ctx, workers_count, scenario.lower())
        for i, c in enumerate(workers.children):
            pg_cpu.add_client(f'worker{i + 1}', c.pid)
        try:
            ctx.ctl('wait', ctx.source, '--timeout', str(timeout), timeout=timeout + 60)
            wall = time.monotonic() - t0
            after = Snapshot(ctx, workers)
            result = measured(ctx, workers, before, after, scenario, rows)
            result['pg_cpu_by_process_s'] = pg_cpu.stop()
        finally:
            pg_cpu.stop()
            workers.stop()
        if result['events_dead_lettered']:
            raise BenchError(f'{scenario}: {result["events_dead_lettered"]} events dead-lettered')
        if result['events_applied'] != rep.get('events_published'):
            raise BenchError(f'{scenario}: the workers applied {result["events_applied"]} events, '
                             f'{rep.get("events_published")} were published')
        result.update({
            'wall_s': _round(wall, 3),
            'rows_per_s': _round(rows / wall, 1),
            'clock': 'worker start -> leadsyncctl wait returned; the events were published before, with no worker',
            'producer_report': {k: rep.get(k) for k in ('new', 'changed', 'unchanged', 'deleted', 'failed',
                                                       'events_published', 'seconds', 'status')},
            'kafka_messages': rep.get('events_published'),
            'kafka_messages_watermark': wm,
            'kafka_messages_check': ('high watermarks agree' if wm is not None else
                                     'not checked: high watermarks unreadable (kcat)'),
            'binaries': binaries,
            **publish,
        })
        t = time.monotonic()
        ctx.ctl('verify', ctx.source, timeout=timeout)
        result['verify'] = 'ok'
        result['verify_s'] = _round(time.monotonic() - t, 2)
        return result

    def run_sink_insert(self, ctx, sheet, workers):
        r = self.sink(ctx, 'SINK-INSERT', sheet, workers, _expect_new(self.opts.rows))
        limits.copy(self.cluster, ctx, r)
        return r

    def run_sink_update(self, ctx, sheet_v2, counts, workers):
        r = self.sink(ctx, 'SINK-UPDATE', sheet_v2, workers, _expect_mutation(counts))
        r['changed_rows'] = counts['changed']
        limits.merge(self.cluster, ctx, r)
        return r

    def _wait_applied(self, run_id, count, timeout, alive=None):
        """Polls run_apply_stats until `count` events of `run_id` are counted; returns (total, failed)."""
        deadline = time.monotonic() + timeout
        while True:
            total, failed = (int(x) for x in self.cluster.scalar(
                'SELECT coalesce(sum(inserted + updated + deleted + unchanged + stale + failed), 0) || \' \' || '
                f"coalesce(sum(failed), 0) FROM leadsync.run_apply_stats WHERE run_id = '{run_id}'").split())
            if total >= count:
                return total, failed
            if alive is not None:
                state = alive()
                if isinstance(state, BenchError):
                    raise state
            if time.monotonic() > deadline:
                raise BenchError(f'{run_id}: {total} of {count} events applied after {timeout} s')
            time.sleep(0.1)

    def run_s4(self, ctx, workers_count, rate=None, scenario='S4'):
        """S4 at `rate` events/s (default --stream-rate): fresh workers, the stream tool, every event
        counted as applied and none failed; one result line named `scenario`."""
        o = self.opts
        rate = o.stream_rate if rate is None else rate
        run_id = f'bench-stream-{ctx.id}' + ('' if scenario == 'S4' else f'-r{rate:g}')
        ctx.stream_run_ids.append(run_id)
        ctx.stream_run_ids.append(run_id + '-warmup')
        binaries = fingerprint(self.cluster, ('stream', 'worker'))
        workers = Workers(ctx, workers_count, scenario.lower().replace('/', '-'))  # s4, s4-r2000
        stream = None
        try:
            workers.wait_ready()
            stream = procs.Child('s4-stream', [self.cluster.bin['stream'], '--config', ctx.config, '--source',
                                               ctx.source, '--rows', str(o.rows), '--seed', str(o.seed), '--rate',
                                               f'{rate:g}', '--seconds', str(o.stream_seconds), '--run-id',
                                               run_id, '--wait-for-go'], ctx.dir, self.cluster.env, stdin_pipe=True)
            # The stream tool's one warm-up event (its producer learning the topic) is applied before the
            # first sample, so that its start-up second is not in S4's latencies.
            self._wait_applied(run_id + '-warmup', 1, 120, lambda: stream.alive() or
                               BenchError(f'stream tool exited {stream.proc.poll()}: {stream.log_tail()}'))
            before = Snapshot(ctx, workers)
            t0 = time.monotonic()
            stream.send_line('go')
            rc = stream.wait(o.stream_seconds + 300)
            if rc is None:
                stream.stop()
                raise BenchError(f'stream tool still running after {o.stream_seconds + 300} s: stopped')
            if rc != 0:
                raise BenchError(f'stream tool exited {rc}: {stream.stdout()}\n{stream.log_tail()}')
            report = _last_json(stream.stdout(), 'leadsync-bench-stream')
            sent = report['sent']
            total, failed = self._wait_applied(run_id, sent, 300)
            wall = time.monotonic() - t0
            after = Snapshot(ctx, workers)
            r = measured(ctx, workers, before, after, scenario, o.rows)
        finally:
            if stream is not None and stream.alive():
                stream.stop()
            workers.stop()
        s_cpu, s_rss = stream.usage()
        r['cpu_s'] = {'stream': _round(s_cpu, 2), **r['cpu_s']}
        r['peak_rss_mib'] = {'stream': _round(s_rss, 1), **r['peak_rss_mib']}
        if failed or r['events_dead_lettered']:
            raise BenchError(f'{scenario}: {failed} events failed / {r["events_dead_lettered"]} dead-lettered')
        wm = r['kafka_messages_watermark']
        if wm is not None and wm != sent:
            raise BenchError(f'{scenario}: topic high watermarks moved by {wm}, the stream tool sent {sent}')
        r.update({'wall_s': _round(wall, 3), 'rows_per_s': _round(report['achieved_rate'], 1), 'stream_rate': rate,
                  'kafka_messages': sent, 'kafka_messages_check': 'high watermarks agree' if wm is not None else None,
                  'stream_report': report, 'binaries': binaries, 'verify': f'run_apply_stats: {total} of {sent} events applied, 0 failed'})
        limits.single_row(self.cluster, ctx, r, o.rows)
        return r

    def run_s4_sweep(self, ctx, workers_count, keep, emit_summary):
        """S4 once per rate of --stream-rates, in increasing order (lines S4/r<rate>), then one S4-SWEEP
        line: p50/p99 per rate and the highest rate whose p99 stayed <= 100 ms (report.sweep_summary).
        A rate whose p99 exceeds the bound ends the sweep: the higher rates would only queue more."""
        points = []
        for rate in sorted(self.opts.stream_rates):
            r = self.run_s4(ctx, workers_count, rate, scenario=f'S4/r{rate:g}')
            keep(r)
            points.append(r)
            if not report.within(r, report.SWEEP_P99_BOUND_S):
                skipped = [x for x in sorted(self.opts.stream_rates) if x > rate]
                if skipped:
                    log(f'S4 sweep: p99 {r["latency_p99_s"]} s > {report.SWEEP_P99_BOUND_S} s at {rate:g}/s; '
                        f'not running {skipped}')
                break
        summary = report.sweep_summary(points, self.opts.stream_rates)
        summary.update({'rows': self.opts.rows, 'workers': workers_count, 'stream_seconds': self.opts.stream_seconds})
        emit_summary(summary)

    def run_all(self, scenarios, repeat_index, emit):
        """Runs the selected scenarios once, passing each result dict to `emit` as soon as it is done."""
        o = self.opts
        base = self.data.sheet(o.rows, o.seed)

        def emit_summary(r):
            r['repeat'] = repeat_index
            log(f'{r["scenario"]}: highest rate with p99 <= 100 ms: {r["max_rate_p99_le_100ms"]}'
                + (' (every swept rate met it: a lower bound)' if r['max_rate_is_lower_bound'] else ''))
            emit(r)

        def keep(r):
            r['repeat'] = repeat_index
            self._targets(r)
            log(f'{r["scenario"]}: wall {r["wall_s"]} s, ratio to limit {r.get("ratio_to_limit")}')
            emit(r)

        if any(s in scenarios for s in ('S1', 'S2', 'S3', 'S4')):
            ctx = self.new_context('main')
            r1 = self.run_s1(ctx, base, o.workers)
            if 'S1' in scenarios:
                keep(r1)
            else:
                log(f'S1 ran as set-up for {",".join(scenarios)} (not reported)')
            current = base
            if 'S2' in scenarios:
                current, counts = self.data.mutated(base, o.change_fraction, o.seed + 1)
                keep(self.run_s2(ctx, current, counts, o.workers))
            if 'S3' in scenarios:
                keep(self.run_s3(ctx, current, o.workers))
            if 'S4' in scenarios and not o.stream_rates:
                keep(self.run_s4(ctx, o.workers))
            elif 'S4' in scenarios:
                self.run_s4_sweep(ctx, o.workers, keep, emit_summary)
            self.cleanup()
        if any(s in scenarios for s in SINK):
            self.run_sink_all(scenarios, base, keep)
        if 'S5' in scenarios:
            for k in o.s5_workers:
                ctx = self.new_context(f's5w{k}')
                keep(self.run_s1(ctx, base, k, scenario=f'S5/w{k}'))
                self.cleanup()

    def run_sink_all(self, scenarios, base, keep):
        """SINK-INSERT then SINK-UPDATE in one fresh context (the update pass needs the insert pass's
        rows; an unselected SINK-INSERT runs as set-up). With --peer, each pass is followed by the
        peer's pass over the same rows, and the two lines carry each other's figures."""
        o = self.opts
        ctx = self.new_context('sink')
        peer = None
        if o.peer:
            from peer import DebeziumPeer, attach
            peer = DebeziumPeer(self.cluster, ctx, o.peer_tasks, self._timeout(o.rows))
        try:
            if peer:
                peer.setup()
            r = self.run_sink_insert(ctx, base, o.workers)
            p = None
            if peer:
                p = peer.run_pass('PEER-INSERT', o.rows, f'SELECT count(*) FROM {peer.schema}.leads', o.rows)
                attach(r, p)
            if 'SINK-INSERT' in scenarios:
                keep(r)
                if p:
                    keep(p)
            else:
                log('SINK-INSERT ran as set-up for SINK-UPDATE (not reported)')
            if 'SINK-UPDATE' in scenarios:
                sheet, counts = self.data.mutated(base, 1.0, o.seed + 1)
                r = self.run_sink_update(ctx, sheet, counts, o.workers)
                p = None
                if peer:
                    # Every row changed: each now has the update run's _version, above every earlier one.
                    lo = self.cluster.scalar(f'SELECT min(_version) FROM {ctx.schema}.leads')
                    older = self.cluster.scalar(f'SELECT count(*) FROM {peer.schema}.leads WHERE _version >= {lo}')
                    if older != '0':
                        raise BenchError(f'PEER-UPDATE: {older} rows of the peer already have _version >= {lo}')
                    p = peer.run_pass('PEER-UPDATE', counts['rows_out'],
                                      f'SELECT count(*) FROM {peer.schema}.leads WHERE _version >= {lo}',
                                      counts['changed'])
                    attach(r, p)
                keep(r)
                if p:
                    keep(p)
        finally:
            if peer:
                peer.teardown()
            self.cleanup()

    # ------------------------------------------------------------------ targets (reported, never asserted)

    def _targets(self, r):
        s, million = r['scenario'], r['rows'] >= ONE_MILLION
        rss = r['peak_rss_mib']
        workers_rss = max((v for k, v in rss.items() if k.startswith('worker') and v is not None), default=None)
        checks = []
        if s in ('S1',) or s.startswith('S5'):
            checks.append(('rows/s >= 50000', r['rows_per_s'] >= 50000))
            if r.get('ratio_to_limit') is not None:
                checks.append(('<= 3x limit', r['ratio_to_limit'] <= 3))
            if workers_rss is not None:
                checks.append(('worker RSS <= 256 MiB', workers_rss <= 256))
            if rss.get('producer') is not None:
                checks.append(('producer RSS <= 512 MiB', rss['producer'] <= 512))
        elif s == 'S2':
            checks.append(('<= 5 s', r['wall_s'] <= 5))
            checks.append(('<= 2 s (issue 12)', r['wall_s'] <= 2))
        elif s == 'S3':
            checks.append(('<= 2 s', r['wall_s'] <= 2))
            checks.append(('0 messages', r['kafka_messages'] == 0))
        elif s in SINK:
            floor = 75000 if s == 'SINK-INSERT' else 55000
            checks.append((f'rows/s >= {floor}', r['rows_per_s'] >= floor))
            if r.get('ratio_to_ceiling') is not None:
                checks.append(('<= 1.5x ceiling', r['ratio_to_ceiling'] <= 1.5))
            if r.get('speedup_vs_peer') is not None:
                checks.append(('>= 3x peer', r['speedup_vs_peer'] >= 3))
            if workers_rss is not None:
                checks.append(('worker RSS <= 256 MiB', workers_rss <= 256))
        elif s == 'S4' or s.startswith('S4/'):
            checks.append(('p99 <= 100 ms', r['latency_p99_s'] is not None and r['latency_p99_s'] <= 0.1
                           and not r['latency_p99_capped']))
            checks.append(('p99 <= 50 ms (issue 12)', r['latency_p99_s'] is not None and r['latency_p99_s'] <= 0.05
                           and not r['latency_p99_capped']))
        applies = million or s == 'S4' or s.startswith('S4/')
        r['targets'] = {name: ok for name, ok in checks} if applies else 'stated for 1,000,000 rows; not evaluated'
