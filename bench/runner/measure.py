"""What a scenario measures: samples at the start and at the end of its timed window (worker metrics,
/proc, Kafka high watermarks, server CPU), and the fields every scenario's JSON line has, from two samples.
"""
import hashlib
import os
import time

import prom
import procs
from cluster import Context

LATENCY = 'leadsync_end_to_end_latency_seconds'
APPLIED = 'leadsync_events_applied_total'


def _round(x, digits=4):
    return None if x is None else round(x, digits)


class Snapshot:
    """Everything sampled at the start and at the end of a timed window."""

    def __init__(self, ctx, workers):
        c = ctx.cluster
        self.metrics = workers.scrape()
        self.worker_cpu = workers.cpu()
        self.watermark = c.high_watermarks(ctx.topic, Context.PARTITIONS)
        # The PostgreSQL backends serving each worker (found by the client port of its connection):
        # the database side of the apply, which the worker's own CPU seconds do not show.
        self.backend_cpu = []
        for w in workers.children:
            total = 0.0
            for pid in c.backends_of(w.pid):
                try:
                    total += procs.cpu_seconds(pid)
                except OSError:
                    pass
            self.backend_cpu.append(total)
        self.pg_cpu = procs.tree_cpu_seconds(c.postgres_pid())
        kpid = c.kafka_pid()
        try:
            self.kafka_cpu = procs.cpu_seconds(kpid) if kpid else None
        except OSError:
            self.kafka_cpu = None


def empty_snapshot(ctx, count):
    """The start of a window that opens before the workers exist (the sink-alone scenarios): their
    counters, CPU and backends all start from zero; the servers and the topic are sampled now."""
    c = ctx.cluster
    s = Snapshot.__new__(Snapshot)
    s.metrics = [{} for _ in range(count)]
    s.worker_cpu = [0.0] * count
    s.backend_cpu = [0.0] * count
    s.watermark = c.high_watermarks(ctx.topic, Context.PARTITIONS)
    s.pg_cpu = procs.tree_cpu_seconds(c.postgres_pid())
    kpid = c.kafka_pid()
    try:
        s.kafka_cpu = procs.cpu_seconds(kpid) if kpid else None
    except OSError:
        s.kafka_cpu = None
    return s


def fingerprint(cluster, names):
    """Short sha256 and mtime of the executables a scenario runs: others may rebuild them during a run."""
    out = {}
    for name in names:
        path = cluster.bin[name]
        h = hashlib.sha256()
        with open(path, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                h.update(chunk)
        out[name] = f'{h.hexdigest()[:12]} {time.strftime("%H:%M:%S", time.localtime(os.path.getmtime(path)))}'
    return out


def _diff(a, b):
    return None if a is None or b is None else b - a


def measured(ctx, workers, before, after, scenario, rows):
    """The fields every scenario has, from two snapshots."""
    d = prom.delta(after.metrics, before.metrics)
    hist = prom.buckets(d, LATENCY)
    p50 = prom.histogram_quantile(0.5, hist)
    p99 = prom.histogram_quantile(0.99, hist)
    cpu, rss, backend = {}, {}, {}
    for i, c in enumerate(workers.children):
        cpu[f'worker{i + 1}'] = _round(after.worker_cpu[i] - before.worker_cpu[i], 2)
        rss[f'worker{i + 1}'] = _round(procs.peak_rss_mib(c.pid), 1)
        backend[f'worker{i + 1}'] = _round(after.backend_cpu[i] - before.backend_cpu[i], 2)
    count = prom.value(d, LATENCY + '_count')
    # Per worker and topic: shows how the group spread the work (S5), not only how much was done.
    consumed = {}
    for i in range(len(workers.children)):
        wd = prom.delta([after.metrics[i]], [before.metrics[i]])
        consumed[f'worker{i + 1}'] = {dict(ls).get('topic', '?'): int(v) for (n, ls), v in wd.items()
                                      if n == 'leadsync_events_consumed_total' and v}
    batch = prom.buckets(d, 'leadsync_batch_apply_seconds')
    batch_p50, batch_p99 = prom.histogram_quantile(0.5, batch), prom.histogram_quantile(0.99, batch)
    batches = prom.value(d, 'leadsync_batch_apply_seconds_count')
    return {
        'scenario': scenario,
        'rows': rows,
        'workers': len(workers.children),
        'latency_p50_s': _round(p50[0]) if p50 else None,
        'latency_p99_s': _round(p99[0]) if p99 else None,
        'latency_p99_capped': bool(p99 and p99[1]),
        'latency_observations': int(hist[-1][1]) if hist else 0,
        'latency_mean_s': _round(prom.value(d, LATENCY + '_sum') / count) if count else None,
        'latency_buckets': [['+Inf' if b == float('inf') else b, int(c)] for b, c in hist],
        'batches': int(batches),
        'batch_apply_p50_s': _round(batch_p50[0]) if batch_p50 else None,
        'batch_apply_p99_s': _round(batch_p99[0]) if batch_p99 else None,
        'events_consumed_per_worker': consumed,
        'latency_method': 'bucket-interpolated (histogram_quantile) from the delta of the workers\' '
                          f'{LATENCY} buckets',
        'events_applied': int(prom.value(d, APPLIED)),
        'events_dead_lettered': int(prom.value(d, 'leadsync_events_dead_lettered_total')),
        'cpu_s': cpu,
        'peak_rss_mib': rss,
        'kafka_messages_watermark': _diff(before.watermark, after.watermark),
        'pg_backend_cpu_s': backend,
        'server_cpu_s': {'postgres': _round(_diff(before.pg_cpu, after.pg_cpu), 2),
                         'kafka': _round(_diff(before.kafka_cpu, after.kafka_cpu), 2)},
        'load_avg_1m': round(os.getloadavg()[0], 2),
    }
