"""The physical limit each scenario is compared with, measured by the runner in the same run.

What exactly is timed is described in bench/README.md ("The physical limit, exactly"); each function
adds limit_s, its parts, limit_kind and ratio_to_limit to a scenario's result.
"""
import os
import random

import report
from cluster import REPO, BenchError


def _round(x, digits=4):
    return None if x is None else round(x, digits)


def _columns(cluster, ctx):
    out = cluster.psql("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                       f"'{ctx.limit_schema}' AND table_name = 'leads' ORDER BY ordinal_position")
    return out.split()


def _same_tables(cluster, ctx, table='leads'):
    n = cluster.scalar_in_key_order(f'SELECT count(*) FROM {ctx.schema}.leads t FULL JOIN {ctx.limit_schema}.{table} '
                                    'l ON l.lead_id = t.lead_id WHERE ROW(t.*) IS DISTINCT FROM ROW(l.*)')
    if n != '0':
        raise BenchError(f'{ctx.limit_schema}.{table} differs from the synced table in {n} rows')


def copy(cluster, ctx, result):
    """S1's limit: COPY of the same typed rows straight into an identical empty table."""
    path = os.path.join(ctx.dir, 'typed-rows.tsv')
    # Not timed: the rows exactly as leadsync stored them (verified equal to the sheet).
    cluster.psql(f"\\copy (SELECT * FROM {ctx.schema}.leads ORDER BY lead_id) TO '{path}'\n")
    _, times = cluster.psql(f"\\copy {ctx.limit_schema}.leads FROM '{path}'\n", timing=True)
    _same_tables(cluster, ctx)
    ceiling(cluster, ctx, result, path, 'insert')
    os.unlink(path)
    copy_s = times[0] / 1000.0
    result.update({'limit_s': _round(copy_s, 3), 'limit_copy_s': _round(copy_s, 3),
                   'limit_kind': 'psql \\copy FROM of the same typed rows into an identical empty table '
                                 '(primary key included), psql \\timing'})
    result['ratio_to_limit'] = _round(result['wall_s'] / copy_s, 2) if copy_s > 0 else None


def merge(cluster, ctx, result):
    """S2/S3's limit: the same update (the rows this scenario changed) applied from a staging table."""
    path = os.path.join(ctx.dir, 'changed-rows.tsv')
    s, lim = ctx.schema, ctx.limit_schema
    # Not timed: the rows the scenario changed = rows of the synced table that the limit table,
    # which holds the state before the scenario, does not have identical.
    cluster.psql(cluster.KEY_ORDER +
                 f"\\copy (SELECT t.* FROM {s}.leads t LEFT JOIN {lim}.leads l ON l.lead_id = t.lead_id "
                 f"WHERE ROW(t.*) IS DISTINCT FROM ROW(l.*) ORDER BY t.lead_id) TO '{path}'\n")
    with open(path, 'rb') as f:
        changed = sum(1 for _ in f)
    cols = [c for c in _columns(cluster, ctx) if c != 'lead_id']
    sets = ', '.join(f'{c} = EXCLUDED.{c}' for c in cols)
    script = (f'CREATE TEMP TABLE stage (LIKE {lim}.leads);\n'
              f"\\copy stage FROM '{path}'\n"
              f'INSERT INTO {lim}.leads AS t SELECT * FROM stage ON CONFLICT (lead_id) DO UPDATE SET {sets} '
              'WHERE t._version < EXCLUDED._version;\n')
    _, times = cluster.psql(script, timing=True)
    if len(times) != 3:
        raise BenchError(f'psql \\timing gave {len(times)} times for 3 statements')
    _same_tables(cluster, ctx)
    ceiling(cluster, ctx, result, path, 'update')
    os.unlink(path)
    copy_s, merge_s = times[1] / 1000.0, times[2] / 1000.0
    limit = copy_s + merge_s
    result.update({'limit_s': _round(limit, 4), 'limit_copy_s': _round(copy_s, 4),
                   'limit_merge_s': _round(merge_s, 4), 'limit_rows': changed,
                   'limit_kind': f'psql \\copy of the {changed} changed rows into a temp staging table + one '
                                 'INSERT ... SELECT ... ON CONFLICT (lead_id) DO UPDATE ... WHERE _version < '
                                 'EXCLUDED._version, psql \\timing'})
    result['ratio_to_limit'] = _round(result['wall_s'] / limit, 2) if limit > 0 else None


def single_row(cluster, ctx, result, rows, statements=1000):
    """S4's limit: latency of one single-row upsert committed on its own, as psql sees it."""
    lim = ctx.limit_schema
    cols = [c for c in _columns(cluster, ctx) if c not in ('lead_id', '_version')]
    sets = ', '.join(f'{c} = EXCLUDED.{c}' for c in cols)
    rng = random.Random(7)
    lines = []
    for _ in range(statements):
        key = f'L-{rng.randrange(1, rows + 1):07d}'
        lines.append(f"INSERT INTO {lim}.leads AS t SELECT * FROM {lim}.leads WHERE lead_id = '{key}' "
                     f'ON CONFLICT (lead_id) DO UPDATE SET {sets}, _version = EXCLUDED._version + 1 '
                     'WHERE t._version < EXCLUDED._version + 1;')
    _, times = cluster.psql('\n'.join(lines) + '\n', timing=True)
    times = sorted(t / 1000.0 for t in times)
    p50 = times[int(0.5 * (len(times) - 1))]
    p99 = times[int(0.99 * (len(times) - 1))]
    result.update({'limit_s': _round(p99, 5), 'limit_p50_s': _round(p50, 5),
                   'limit_kind': f'p99 of {len(times)} single-row INSERT ... SELECT ... ON CONFLICT DO UPDATE '
                                 'statements, each committed on its own (psql autocommit, \\timing); exact '
                                 'order statistics'})
    p99_e2e = result.get('latency_p99_s')
    result['ratio_to_limit'] = _round(p99_e2e / p99, 2) if p99_e2e and p99 > 0 else None


def ceiling(cluster, ctx, result, path, kind):
    """The database's own ceiling for what the sink does: the rows in `path` (typed, COPY text format)
    applied as the worker applies them, in batches of the worker's size, each batch one transaction:
    COPY into a session-level staging table + one guarded merge. `kind` is 'insert' (the table is
    empty before) or 'update' (it holds the state before the scenario). Adds ceiling_* and
    ratio_to_ceiling to `result`; the ceiling table must end identical to the synced table."""
    lim = ctx.limit_schema
    batch, where = report.worker_batch_size_of(ctx.config, REPO)
    parts_dir = os.path.join(ctx.dir, 'ceiling-batches')
    os.makedirs(parts_dir, exist_ok=True)
    files = []
    # Not timed: the rows split into one file per batch (COPY text format has one row per line).
    with open(path, 'rb') as src:
        out, n = None, 0
        for line in src:
            if n % batch == 0:
                if out:
                    out.close()
                files.append(os.path.join(parts_dir, f'{len(files):06d}.tsv'))
                out = open(files[-1], 'wb')
            out.write(line)
            n += 1
        if out:
            out.close()
    sizes = report.batch_split(n, batch)
    if len(sizes) != len(files):
        raise BenchError(f'ceiling: {len(files)} batch files for {n} rows at {batch} per batch')
    cols = [c for c in _columns(cluster, ctx) if c != 'lead_id']
    sets = ', '.join(f'{c} = EXCLUDED.{c}' for c in cols)
    merge_sql = (f'INSERT INTO {lim}.leads_ceiling AS t SELECT * FROM stage ON CONFLICT (lead_id) DO UPDATE SET '
                 f'{sets} WHERE t._version < EXCLUDED._version;')
    script = [f'CREATE TEMP TABLE stage (LIKE {lim}.leads_ceiling) ON COMMIT DELETE ROWS;']
    for f in files:
        script += ['BEGIN;', f"\\copy stage FROM '{f}'", merge_sql, 'COMMIT;']
    _, times = cluster.psql('\n'.join(script) + '\n', timing=True)
    if len(times) != 1 + 4 * len(files):
        raise BenchError(f'ceiling: psql \\timing gave {len(times)} times for {1 + 4 * len(files)} commands')
    _same_tables(cluster, ctx, 'leads_ceiling')
    for f in files:
        os.unlink(f)
    os.rmdir(parts_dir)
    per = [times[1 + 4 * i: 5 + 4 * i] for i in range(len(files))]
    copy_s = sum(p[1] for p in per) / 1000.0
    merge_s = sum(p[2] for p in per) / 1000.0
    other_s = sum(p[0] + p[3] for p in per) / 1000.0
    total = copy_s + merge_s + other_s
    result.update({
        'ceiling_s': _round(total, 4), 'ceiling_copy_s': _round(copy_s, 4), 'ceiling_merge_s': _round(merge_s, 4),
        'ceiling_begin_commit_s': _round(other_s, 4), 'ceiling_rows': n, 'ceiling_batch': batch,
        'ceiling_batches': len(files), 'ceiling_batch_from': where,
        'ceiling_kind': f'guarded upsert, {kind} pass: {len(files)} transactions of <= {batch} rows, each BEGIN; '
                        'psql \\copy into a session-level TEMP staging table (ON COMMIT DELETE ROWS); INSERT ... '
                        'SELECT ... ON CONFLICT (lead_id) DO UPDATE SET <every column> WHERE t._version < '
                        'EXCLUDED._version; COMMIT; psql \\timing summed',
    })
    result['ratio_to_ceiling'] = report.ratio(result.get('wall_s'), total) if n else None
