"""Prometheus text-format scraping and histogram quantiles, the way Prometheus computes them.

Only what the benchmark needs: counters and histogram buckets, summed over processes, and the
difference between two scrapes, so that a scenario sees only its own observations.
"""
import math
import re
import urllib.request

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, frozenset(labels)): value} for every sample line of a text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith('#'):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = frozenset(_LABEL.findall(m.group(3) or ''))
        try:
            out[(m.group(1), labels)] = float(m.group(4))
        except ValueError:
            continue
    return out


def scrape(port, timeout=5.0):
    with urllib.request.urlopen(f'http://127.0.0.1:{port}/metrics', timeout=timeout) as r:
        return parse(r.read().decode('utf-8'))


def combine(samples_list, sign=1.0, into=None):
    """Adds (sign=1) or subtracts (sign=-1) scrapes sample by sample."""
    out = dict(into or {})
    for samples in samples_list:
        for k, v in samples.items():
            out[k] = out.get(k, 0.0) + sign * v
    return out


def delta(after_list, before_list):
    """Sum over processes of after minus before (a process missing before counts from zero)."""
    return combine(before_list, -1.0, combine(after_list))


def value(samples, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def buckets(samples, name):
    """Sorted [(upper_bound, cumulative_count)] of histogram `name` (le="+Inf" last)."""
    acc = {}
    for (n, ls), v in samples.items():
        if n != name + '_bucket':
            continue
        le = dict(ls).get('le')
        if le is None:
            continue
        bound = math.inf if le in ('+Inf', 'Inf') else float(le)
        acc[bound] = acc.get(bound, 0.0) + v
    return sorted(acc.items())


def histogram_quantile(q, bucket_list):
    """Prometheus' histogram_quantile: linear interpolation inside the bucket holding rank q*count.

    Returns (value, capped): capped is True when the rank falls into the +Inf bucket, where, as in
    Prometheus, the value is the highest finite bound (so the true quantile is at least that).
    None when the histogram has no observations.
    """
    if not bucket_list or bucket_list[-1][0] != math.inf:
        return None
    total = bucket_list[-1][1]
    if total <= 0:
        return None
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in bucket_list:
        if count >= rank:
            if bound == math.inf:
                return (prev_bound, True)
            if count == prev_count:
                return (bound, False)
            return (prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count), False)
        prev_bound, prev_count = bound, count
    return (prev_bound, True)
