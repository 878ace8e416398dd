"""Where PostgreSQL's CPU goes during a timed window, per process: the backend of each client the runner
started (a worker, the producer), the other backends, and each background process (checkpointer, WAL
writer, autovacuum, …).

A thread samples the postmaster's children from /proc every `interval` seconds: utime+stime, and the
process title (`postgres: user db 127.0.0.1(PORT) state` for a backend, `postgres: checkpointer` for a
background process). A backend is attributed by its client port to the runner's process that holds that
port (`procs.tcp_peer_ports`); no SQL is sent, so the sampling itself costs PostgreSQL nothing.

A process's CPU in the window is its last sample minus its first (0 for one born in the window). What
no sample saw (a backend that lived less than one interval, and the postmaster itself) is the
server's whole CPU delta minus the sum: reported as `unsampled`, never spread over the others.
"""
import os
import re
import threading

import procs

_PORT = re.compile(r'\((\d+)\)')


def classify(title, ports):
    """The label of one PostgreSQL process from its title; `ports` maps client ports to client names."""
    t = title[len('postgres: '):] if title.startswith('postgres: ') else title
    m = _PORT.search(t)
    if m and ' ' in t:  # a backend of a TCP client: "user db host(port) state"
        name = ports.get(int(m.group(1)))
        return f'backend:{name}' if name else 'backend:other'
    if t.startswith('autovacuum worker'):
        return 'autovacuum worker'
    if t.count(' ') >= 2:  # a backend of a Unix-socket client: "user db [local] state"
        return 'backend:other'
    return t.strip() or 'postmaster'


def attribute(first, last, labels):
    """Sums per label of each pid's CPU between its first and its last sample (first = 0 for a pid
    born after the window opened, which `first` then lacks)."""
    out = {}
    for pid, cpu in last.items():
        label = labels.get(pid, 'backend:other')
        out[label] = out.get(label, 0.0) + cpu - first.get(pid, 0.0)
    return out


class PgCpuSampler:
    def __init__(self, postmaster_pid, pg_port, interval=0.2):
        self.postmaster = postmaster_pid
        self.pg_port = pg_port
        self.interval = interval
        self.clients = {}  # name -> pid, added as the runner starts them
        self._first, self._last, self._labels, self._ports = {}, {}, {}, {}
        self._stop = threading.Event()
        self._thread = None
        self._tree0 = None
        self._result = None

    def add_client(self, name, pid):
        self.clients[name] = pid

    def _titles(self):
        out = {}
        for pid in procs._children_of(self.postmaster):
            try:
                with open(f'/proc/{pid}/cmdline', 'rb') as f:
                    title = f.read().replace(b'\0', b' ').decode(errors='replace').strip()
                out[pid] = (title, procs.cpu_seconds(pid))
            except OSError:
                continue
        return out

    def _sample(self, first):
        for name, pid in list(self.clients.items()):
            for port in procs.tcp_peer_ports(pid, self.pg_port):
                self._ports[port] = name
        for pid, (title, cpu) in self._titles().items():
            if first:
                self._first[pid] = cpu
            self._last[pid] = cpu
            if not title:  # between fork and exec, or exiting: nothing to learn
                continue
            # A backend attributed to a client stays so (the client may have closed its port since).
            held = self._labels.get(pid, '')
            if not (held.startswith('backend:') and held != 'backend:other'):
                self._labels[pid] = classify(title, self._ports)

    def start(self):
        self._tree0 = procs.tree_cpu_seconds(self.postmaster)
        self._sample(first=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.interval):
            self._sample(first=False)

    def stop(self):
        """The window's CPU seconds per label, plus 'unsampled' and 'total' (the server's whole delta).
        A second call returns the first call's result."""
        if self._result is not None:
            return self._result
        self._stop.set()
        if self._thread:
            self._thread.join()
        self._sample(first=False)
        tree1 = procs.tree_cpu_seconds(self.postmaster)
        out = attribute(self._first, self._last, self._labels)
        out = {k: round(v, 2) for k, v in sorted(out.items(), key=lambda kv: -kv[1]) if round(v, 2) > 0}
        if self._tree0 is not None and tree1 is not None:
            total = tree1 - self._tree0
            out['unsampled'] = round(total - sum(out.values()), 2)
            out['total'] = round(total, 2)
        self._result = out
        return out


def sampler_for(cluster):
    port = int(cluster.env.get('LEADSYNC_PG_PORT') or 5432)
    return PgCpuSampler(cluster.postgres_pid(), port)


if __name__ == '__main__':  # a quick look at a live server: python3 pg_cpu.py POSTMASTER_PID PORT SECONDS
    import sys
    import time
    s = PgCpuSampler(int(sys.argv[1]), int(sys.argv[2])).start()
    time.sleep(float(sys.argv[3]))
    print(s.stop())
    os._exit(0)
