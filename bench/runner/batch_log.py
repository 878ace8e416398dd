#!/usr/bin/env python3
"""Summarises a leadsync-worker log written at --log-level debug (bench/run --worker-log-level debug keeps
them in WORK_DIR/logs/): per batch, its size, why it ended, its first record's age when taken, its fill and
apply times (bench/README.md, issue 12 — S4 latency).  Usage: bench/runner/batch_log.py LOG"""
import re, statistics, sys
take = re.compile(r'batch: (\d+) records \((\w+)\), first record ([\d.]+) ms old when taken, filled in ([\d.]+) ms')
apply = re.compile(r'batch: (\d+) records applied in ([\d.]+) ms, its oldest ([\d.-]+) ms after observed_at')
T, A = [], []
for line in open(sys.argv[1]):
    m = take.search(line)
    if m: T.append((int(m[1]), m[2], float(m[3]), float(m[4])))
    m = apply.search(line)
    if m: A.append((int(m[1]), float(m[2]), float(m[3])))
def q(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else None
print(f'batches taken {len(T)}, applied {len(A)}')
if T:
    print('size p50/p99/mean', q([t[0] for t in T], .5), q([t[0] for t in T], .99), round(statistics.mean(t[0] for t in T), 1))
    why = {}
    for t in T: why[t[1]] = why.get(t[1], 0) + 1
    print('ended by', why)
    for name, i in (('first record age when taken ms', 2), ('fill ms', 3)):
        xs = [t[i] for t in T]; print(name, 'p50', q(xs, .5), 'p90', q(xs, .9), 'p99', q(xs, .99), 'mean', round(statistics.mean(xs), 2))
if A:
    for name, i in (('apply ms', 1), ('oldest latency ms', 2)):
        xs = [a[i] for a in A]; print(name, 'p50', q(xs, .5), 'p90', q(xs, .9), 'p99', q(xs, .99), 'mean', round(statistics.mean(xs), 2))
# Transit: batches whose poll waited >= 2 ms before their first record (the worker was idle when it
# came, so its age when taken is the stream tool -> Kafka -> consumer time alone, no queueing behind
# an apply). Log timestamps have 1 ms resolution.
import datetime
prev_applied, transit, behind = None, [], []
def ts(line):
    return datetime.datetime.strptime(line[:23], '%Y-%m-%dT%H:%M:%S.%f').timestamp() * 1e3
for line in open(sys.argv[1]):
    m = take.search(line)
    if m and prev_applied is not None:
        idle = ts(line) - float(m[4]) - prev_applied
        (transit if idle >= 2 else behind).append(float(m[3]))
    if apply.search(line):
        prev_applied = ts(line)
if transit:
    print(f'first record arrived while idle ({len(transit)} batches): age p50', q(transit, .5), 'p90', q(transit, .9), 'mean', round(statistics.mean(transit), 2))
if behind:
    print(f'first record queued behind an apply ({len(behind)} batches): age p50', q(behind, .5), 'p90', q(behind, .9), 'mean', round(statistics.mean(behind), 2))
