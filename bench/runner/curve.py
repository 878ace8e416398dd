"""bench/run --curve: the scaling curve of issue 12 — S1 and S2 at several sizes, S5 with several worker
counts — as one table (Markdown, printed and written to curve.md) and one PNG (curve.png, drawn by
gnuplot with bench/profiles/plot_curve.gp). The arithmetic is in report.py (curve_points)."""
import json
import os
import shutil
import subprocess
import time

import report
from cluster import REPO, BenchError, log

PLOT = os.path.join(REPO, 'bench', 'profiles', 'plot_curve.gp')


def run(runner, o, emit):
    """Every point once per repeat: S1+S2 at each of --curve-rows, then S5 at --curve-s5-rows."""
    rows_before, workers_before = o.rows, o.s5_workers
    try:
        for i in range(o.repeat):
            for rows in o.curve_rows:
                o.rows = rows
                log(f'curve: S1+S2 at {rows} rows (repeat {i + 1})')
                runner.run_all(['S1', 'S2'], i + 1, emit)
            o.rows, o.s5_workers = o.curve_s5_rows, o.curve_workers
            log(f'curve: S5 with {o.curve_workers} workers at {o.rows} rows (repeat {i + 1})')
            runner.run_all(['S5'], i + 1, emit)
            o.s5_workers = workers_before
    finally:
        o.rows, o.s5_workers = rows_before, workers_before


def write(results, info, o):
    """curve.jsonl (every line), curve.md (the table), data files and curve.png; returns the table text."""
    out = o.curve_out or os.path.join(o.work_dir, 'curve-' + time.strftime('%Y%m%d-%H%M%S'))
    os.makedirs(out, exist_ok=True)
    points = report.curve_points(results)
    with open(os.path.join(out, 'curve.jsonl'), 'w') as f:
        for r in results:
            f.write(json.dumps(r) + '\n')
    cmd = 'bench/run --curve --curve-rows ' + ','.join(map(str, o.curve_rows)) + ' --curve-workers ' + \
          ','.join(map(str, o.curve_workers)) + f' --curve-s5-rows {o.curve_s5_rows}' + \
          (f' --repeat {o.repeat}' if o.repeat > 1 else '')
    text = (f'Scaling curve: `{cmd}` — `{info["uptime"]}`, {info["cpus"]} CPUs, commit {info["commit"]}; '
            f'medians of {o.repeat} run(s) per point.\n\n' + report.curve_table(points) + '\n')
    with open(os.path.join(out, 'curve.md'), 'w') as f:
        f.write(text)
    files = report.curve_data_files(points, out)
    png = os.path.join(out, 'curve.png')
    gnuplot = shutil.which('gnuplot')
    if not gnuplot:
        raise BenchError(f'gnuplot not found: the table is in {out}/curve.md; dev/setup installs gnuplot-nox')
    title = f'leadsync scaling, commit {info["commit"]}, {info["cpus"]} CPUs (load{info["uptime"].split("load")[-1]})'
    expr = (f"out='{png}'; s1='{files['S1']}'; s2='{files['S2']}'; w='{files['S5']}'; "
            f"s5rows='{files['S5_rows']}'; title='{title}'")
    r = subprocess.run([gnuplot, '-e', expr, PLOT], capture_output=True, text=True, timeout=120)
    if r.returncode != 0 or not os.path.exists(png):
        raise BenchError(f'gnuplot failed ({r.returncode}): {r.stderr.strip()[-1500:]}')
    log(f'curve: {out}/curve.md, {png}')
    return text + f'\n(plot: {png})'
