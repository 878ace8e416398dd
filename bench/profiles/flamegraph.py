#!/usr/bin/env python3
"""Flame graphs from `perf script` output, with the Python standard library only.

Debian ships linux-perf but no flame-graph renderer, so this folds the stacks `perf script` prints (one block
per sample: a header line `comm pid ... period event:` and one frame per line, leaf first) and draws the
usual icicle-free flame graph as SVG: x = share of samples, y = stack depth, one box per frame, the full name
and sample count in each box's tooltip.

    perf script -i perf.data --no-inline | bench/profiles/flamegraph.py --pid 1234 --title "worker" > w.svg
    perf script -i perf.data --no-inline | bench/profiles/flamegraph.py --folded > stacks.txt
    bench/profiles/flamegraph.py --list-pids < script.txt     # samples per pid and comm
    bench/profiles/flamegraph.py --top 15 < script.txt         # the frames with most self samples
"""
import argparse
import collections
import hashlib
import html
import re
import sys

HEADER = re.compile(r'^(\S.*?)\s+(\d+)(?:/(\d+))?\s+(?:\[\d+\]\s+)?[\d.]+:')
FRAME = re.compile(r'^\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$')


def samples(lines):
    """Yields (comm, pid, [frames root first]) per sample of `perf script` output."""
    comm = pid = None
    frames = []
    for line in lines:
        line = line.rstrip('\n')
        if not line.strip():
            if comm is not None:
                yield comm, pid, list(reversed(frames))
            comm, frames = None, []
            continue
        if comm is None:
            m = HEADER.match(line)
            if m:
                comm, pid = m.group(1).strip(), int(m.group(2))
            continue
        m = FRAME.match(line)
        if m:
            sym, dso = m.group(1), m.group(2)
            if sym == '[unknown]':
                sym = '[' + dso.rsplit('/', 1)[-1] + ']'
            sym = re.sub(r'\+0x[0-9a-f]+$', '', sym)
            frames.append(sym)
    if comm is not None:
        yield comm, pid, list(reversed(frames))


def fold(lines, pids=None, comm=None):
    counts = collections.Counter()
    for c, pid, frames in samples(lines):
        if pids and pid not in pids:
            continue
        if comm and c != comm:
            continue
        counts[tuple([c] + frames)] += 1
    return counts


def colour(name):
    h = int(hashlib.md5(name.encode()).hexdigest()[:6], 16)
    r = 205 + h % 50
    g = 80 + (h >> 8) % 130
    b = 40 + (h >> 16) % 50
    return f'rgb({r},{g},{b})'


def svg(counts, title, width=1400, row=17):
    root = {'n': 0, 'kids': {}}
    depth_max = 0
    for stack, n in counts.items():
        node = root
        node['n'] += n
        for frame in stack:
            node = node['kids'].setdefault(frame, {'n': 0, 'kids': {}})
            node['n'] += n
        depth_max = max(depth_max, len(stack))
    total = root['n'] or 1
    height = (depth_max + 3) * row + 40
    out = [f'<?xml version="1.0" standalone="no"?>',
           f'<svg version="1.1" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" '
           f'font-family="Verdana" font-size="11">',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="#f8f8f0"/>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="15">{html.escape(title)}</text>',
           f'<text x="10" y="{height - 8}" font-size="11">{total} samples; width = share of samples; '
           f'hover a box for its name and count</text>']
    scale = (width - 20) / total

    def draw(name, node, x, depth):
        w = node['n'] * scale
        if w < 0.3:
            return
        y = height - 30 - (depth + 1) * row
        pct = 100.0 * node['n'] / total
        label = html.escape(name)
        out.append(f'<g><title>{label} ({node["n"]} samples, {pct:.2f}%)</title>'
                   f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{row - 1}" fill="{colour(name)}" rx="2"/>')
        chars = int(w / 7)
        if chars >= 3:
            text = name if len(name) <= chars else name[:chars - 2] + '..'
            out.append(f'<text x="{x + 3:.2f}" y="{y + row - 5}">{html.escape(text)}</text>')
        out.append('</g>')
        cx = x
        for kname, kid in sorted(node['kids'].items()):
            draw(kname, kid, cx, depth + 1)
            cx += kid['n'] * scale

    x = 10.0
    for name, node in sorted(root['kids'].items()):
        draw(name, node, x, 0)
        x += node['n'] * scale
    out.append('</svg>')
    return '\n'.join(out) + '\n'


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--pid', type=int, action='append', help='only samples of this pid (repeatable)')
    p.add_argument('--comm', help='only samples of this command name')
    p.add_argument('--title', default='flame graph')
    p.add_argument('--folded', action='store_true', help='print folded stacks instead of SVG')
    p.add_argument('--list-pids', action='store_true', help='print samples per pid and comm')
    p.add_argument('--top', type=int, metavar='N', help='print the N frames with most self samples (%% of all)')
    a = p.parse_args()
    if a.list_pids:
        per = collections.Counter((c, pid) for c, pid, _ in samples(sys.stdin))
        for (c, pid), n in per.most_common():
            print(f'{n}\t{pid}\t{c}')
        return
    counts = fold(sys.stdin, set(a.pid or []), a.comm)
    if not counts:
        sys.exit('flamegraph.py: no samples matched (check --pid/--comm with --list-pids)')
    if a.top:
        own, total = collections.Counter(), sum(counts.values())
        for stack, n in counts.items():
            own[stack[-1]] += n
        for name, n in own.most_common(a.top):
            print(f'{100.0 * n / total:5.1f}%  {name}')
        return
    if a.folded:
        for stack, n in sorted(counts.items()):
            print(';'.join(stack), n)
    else:
        sys.stdout.write(svg(counts, a.title))


if __name__ == '__main__':
    main()
