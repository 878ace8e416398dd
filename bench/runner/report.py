"""The runner's arithmetic on measured figures, kept free of processes and servers so that it can be
unit-tested (test_report.py): ratios to the limits and to the peer, the worker's batch size as the
ceiling uses it, and the scaling curve's table.
"""
import os
import re
import statistics


def _round(x, digits=4):
    return None if x is None else round(x, digits)


def ratio(numerator, denominator, digits=2):
    """numerator / denominator, rounded; None when either is missing or the denominator is not > 0
    (a ceiling of an empty change set, S3, has no meaningful ratio)."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return round(numerator / denominator, digits)


def speedup(rows_per_s, peer_rows_per_s, digits=2):
    """How many times the peer's rate a scenario reached (> 1: faster than the peer)."""
    return ratio(rows_per_s, peer_rows_per_s, digits)


def batch_split(rows, batch):
    """Sizes of the batches `rows` rows fall into at `batch` rows per batch: [batch, ..., remainder]."""
    if batch < 1:
        raise ValueError(f'batch size must be >= 1, not {batch}')
    full, rest = divmod(rows, batch)
    return [batch] * full + ([rest] if rest else [])


_YAML_MAX_BATCH = (re.compile(r'^worker:\s*\n(?:[ \t]+.*\n|\s*\n)*?[ \t]+max_batch:\s*(\d+)', re.MULTILINE),
                   re.compile(r'^worker:\s*\{[^}]*\bmax_batch:\s*(\d+)', re.MULTILINE))
_DEFAULT_MAX_BATCH = re.compile(r'\bint\s+max_batch\s*=\s*([0-9\']+)\s*;')


def worker_batch_size(config_text, config_h_text):
    """(size, where): `worker.max_batch` of the context's configuration if it sets one, else the
    worker's compiled-in default from common/config.h. Raises ValueError if neither says."""
    m = _YAML_MAX_BATCH[0].search(config_text) or _YAML_MAX_BATCH[1].search(config_text)
    if m:
        return int(m.group(1)), 'worker.max_batch in the configuration'
    m = _DEFAULT_MAX_BATCH.search(config_h_text)
    if m:
        return int(m.group(1).replace("'", '')), "the worker's default (common/config.h: max_batch)"
    raise ValueError('worker.max_batch: not in the configuration and no default found in common/config.h')


def worker_batch_size_of(config_path, repo):
    with open(config_path) as f:
        config_text = f.read()
    with open(os.path.join(repo, 'common', 'config.h')) as f:
        config_h_text = f.read()
    return worker_batch_size(config_text, config_h_text)


# ---------------------------------------------------------------------------------- scaling curve

def _cpu_total(r):
    """Producer + workers + their backends + the whole PostgreSQL and Kafka servers (their own
    processes): the CPU the pipeline kept busy, to set beside the wall time on a 2-core machine.
    The worker backends are part of the PostgreSQL server's figure, so they are not added twice."""
    cpu = r.get('cpu_s') or {}
    own = sum(v for k, v in cpu.items() if v is not None and (k == 'producer' or k.startswith('worker')))
    servers = r.get('server_cpu_s') or {}
    pg = servers.get('postgres')
    if pg is None:  # the server's figure is unreadable: count at least the workers' backends
        pg = sum(v for v in (r.get('pg_backend_cpu_s') or {}).values() if v)
    return own + pg + (servers.get('kafka') or 0)


def curve_points(results):
    """One point per (scenario, rows, workers): medians over repeats of wall_s and CPU.

    Returns a list of dicts sorted by scenario family (S1, S2, S5), rows, workers, with
    wall_s, rows_per_s, us_per_row, cpu_s (see _cpu_total), busy_cores = cpu_s / wall_s, and
    n (repeats). S2's rows are the mutated sheet's rows (all of which the producer reads)."""
    groups = {}
    for r in results:
        if r.get('repeat') == 'median' or r.get('wall_s') is None:
            continue
        family = 'S5' if r['scenario'].startswith('S5') else r['scenario']
        groups.setdefault((family, r['rows'], r.get('workers') or 1), []).append(r)
    order = {'S1': 0, 'S2': 1, 'S5': 2}
    points = []
    for (family, rows, workers), group in sorted(groups.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0][1],
                                                                                  kv[0][2])):
        wall = statistics.median(g['wall_s'] for g in group)
        cpu = statistics.median(_cpu_total(g) for g in group)
        points.append({'scenario': family, 'rows': rows, 'workers': workers, 'n': len(group),
                       'wall_s': round(wall, 3), 'rows_per_s': round(rows / wall, 1) if wall > 0 else None,
                       'us_per_row': round(1e6 * wall / rows, 3) if rows else None,
                       'cpu_s': round(cpu, 2), 'busy_cores': ratio(cpu, wall)})
    # Linearity: each point's time per row over the smallest size's of the same scenario (1.00 = linear).
    # S5: the speed-up over one worker at the same rows.
    for family in ('S1', 'S2'):
        pts = [p for p in points if p['scenario'] == family]
        if pts:
            base = pts[0]['us_per_row']
            for p in pts:
                p['per_row_vs_smallest'] = ratio(p['us_per_row'], base)
    for p in points:
        if p['scenario'] == 'S5':
            one = next((q for q in points if q['scenario'] == 'S5' and q['rows'] == p['rows'] and q['workers'] == 1),
                       None)
            p['speedup_vs_1_worker'] = ratio(one['wall_s'], p['wall_s']) if one else None
    return points


def curve_table(points):
    """A Markdown table of curve_points(), as bench/README.md shows it."""
    head = ['scenario', 'rows', 'K', 'wall s', 'rows/s', 'µs/row', 'per row vs smallest', 'speed-up vs K=1',
            'CPU s', 'busy cores', 'n']

    def f(v, digits=2):
        if v is None:
            return '–'
        if isinstance(v, float):
            return f'{v:,.{digits}f}'
        return f'{v:,}'
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for p in points:
        lines.append('| ' + ' | '.join([p['scenario'], f(p['rows']), f(p['workers']), f(p['wall_s']),
                                        f(p['rows_per_s'], 0), f(p['us_per_row'], 1),
                                        f(p.get('per_row_vs_smallest')), f(p.get('speedup_vs_1_worker')),
                                        f(p['cpu_s']), f(p['busy_cores']), f(p['n'])]) + ' |')
    return '\n'.join(lines)


def curve_data_files(points, out_dir):
    """Whitespace-separated data files for gnuplot: rows-<S>.dat (rows, wall_s, rows/s) per scenario of
    S1/S2, and workers.dat (workers, rows/s, wall_s) for S5 at its largest size. Returns their paths."""
    paths = {}
    for family in ('S1', 'S2'):
        pts = [p for p in points if p['scenario'] == family]
        path = os.path.join(out_dir, f'rows-{family}.dat')
        with open(path, 'w') as fh:
            fh.write('# rows wall_s rows_per_s\n')
            for p in pts:
                fh.write(f'{p["rows"]} {p["wall_s"]} {p["rows_per_s"]}\n')
        paths[family] = path
    s5 = [p for p in points if p['scenario'] == 'S5']
    s5_rows = max((p['rows'] for p in s5), default=None)
    path = os.path.join(out_dir, 'workers.dat')
    with open(path, 'w') as fh:
        fh.write(f'# S5 at {s5_rows} rows: workers wall_s rows_per_s\n')
        for p in s5:
            if p['rows'] == s5_rows:
                fh.write(f'{p["workers"]} {p["wall_s"]} {p["rows_per_s"]}\n')
    paths['S5'] = path
    paths['S5_rows'] = s5_rows
    return paths


# ---------------------------------------------------------------------------------- S4 rate sweep

SWEEP_P99_BOUND_S = 0.1   # issue 12: the highest rate at which S4's p99 stays <= 100 ms
SWEEP_RATE_KEPT = 0.95    # a rate counts as offered when the stream tool achieved >= 95% of it


def kept_rate(r):
    """True when the stream tool sent at (nearly) the asked rate: a sender that fell behind offered
    less load than the rate names, and its latencies would flatter that rate."""
    achieved, asked = r.get('rows_per_s'), r.get('stream_rate')
    return achieved is not None and asked is not None and achieved >= SWEEP_RATE_KEPT * asked


def within(r, bound_s):
    """S4 line `r` met p99 <= bound_s: a p99 measured (not beyond the top bucket) and the rate kept."""
    p99 = r.get('latency_p99_s')
    return p99 is not None and not r.get('latency_p99_capped') and p99 <= bound_s and kept_rate(r)


def sweep_summary(points, rates, bound_s=SWEEP_P99_BOUND_S):
    """The S4-SWEEP line from the S4/r<rate> lines `points` of the asked `rates`.

    max_rate_p99_le_100ms is the highest rate r such that every swept rate <= r met p99 <= bound_s
    (within()): "stays" <= 100 ms, so a rate that met it above one that missed does not count.
    None when the lowest rate missed. max_rate_is_lower_bound: every asked rate was run and met it,
    so the true limit lies higher. Rates not run (the sweep stops at the first miss) are listed."""
    by_rate = {p['stream_rate']: p for p in points}
    per_rate, best, broken = [], None, False
    for rate in sorted(rates):
        p = by_rate.get(rate)
        if p is None:
            per_rate.append({'rate': rate, 'run': False})
            continue
        ok = within(p, bound_s)
        per_rate.append({'rate': rate, 'run': True, 'achieved_rate': p.get('rows_per_s'),
                         'p50_s': p.get('latency_p50_s'), 'p99_s': p.get('latency_p99_s'),
                         'p99_capped': bool(p.get('latency_p99_capped')), 'mean_s': p.get('latency_mean_s'),
                         'events': p.get('kafka_messages'), 'batches': p.get('batches'),
                         'max_behind_schedule_ms': (p.get('stream_report') or {}).get('max_behind_schedule_ms'),
                         'rate_kept': kept_rate(p), 'p99_within_bound': ok})
        if ok and not broken:
            best = rate
        elif not ok:
            broken = True
    all_met = bool(rates) and all(x.get('p99_within_bound') for x in per_rate)
    return {'scenario': 'S4-SWEEP', 'p99_bound_s': bound_s, 'rates': per_rate,
            'max_rate_p99_le_100ms': best, 'max_rate_is_lower_bound': all_met}


def sweep_table(summary):
    """Markdown rows of an S4-SWEEP line, as bench/README.md shows them."""
    def f(v, d=3):
        return '–' if v is None else f'{v:,.{d}f}' if isinstance(v, float) else f'{v:,}'
    lines = ['| rate ev/s | achieved ev/s | p50 s | p99 s | mean s | batches | p99 <= 100 ms |', '|---|---|---|---|---|---|---|']
    for x in summary['rates']:
        if not x['run']:
            lines.append(f'| {f(x["rate"], 0)} | not run (a lower rate missed) | | | | | |')
            continue
        p99 = f(x['p99_s']) + ('+' if x['p99_capped'] else '')
        met = 'yes' if x['p99_within_bound'] else ('no (rate not kept)' if not x['rate_kept'] else 'no')
        lines.append(f'| {f(x["rate"], 0)} | {f(x["achieved_rate"], 0)} | {f(x["p50_s"])} | {p99} | {f(x["mean_s"])} '
                     f'| {f(x["batches"])} | {met} |')
    best = summary['max_rate_p99_le_100ms']
    lines.append(f'\nhighest rate with p99 <= 100 ms: {f(best, 0) if best is not None else "none"}'
                 + (' (every rate swept met it: a lower bound)' if summary['max_rate_is_lower_bound'] else ''))
    return '\n'.join(lines)
