"""Processes of a benchmark run: start, readiness, CPU seconds and peak RSS, stop.

CPU seconds are utime+stime. For a process the runner waited for (the producer, the stream tool)
they come from wait4()'s rusage, with ru_maxrss as its peak RSS. For a process still running (a
worker) they are read from /proc/PID/stat, and its peak RSS from VmHWM in /proc/PID/status, at the
end of the scenario, before it is stopped. Server CPU (PostgreSQL, Kafka) is the difference of two
samples; for PostgreSQL it sums the postmaster's own and reaped children's time (cutime/cstime,
which keeps the time of backends that exited in between) and that of its live children.
"""
import os
import signal
import socket
import subprocess
import time

CLK_TCK = os.sysconf('SC_CLK_TCK')


def free_port():
    """A port that was free a moment ago (the worker binds it right after)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _stat_fields(pid):
    with open(f'/proc/{pid}/stat') as f:
        text = f.read()
    # comm may hold spaces and parentheses: the fields start after the last ')'.
    return text[text.rindex(')') + 2:].split()


def cpu_seconds(pid, children=False):
    """utime+stime of a live process (+cutime+cstime with children=True), in seconds."""
    f = _stat_fields(pid)
    ticks = int(f[11]) + int(f[12])  # fields 14, 15 of proc(5), counted from 'state' = field 3
    if children:
        ticks += int(f[13]) + int(f[14])
    return ticks / CLK_TCK


def peak_rss_mib(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024.0
    return None


def _children_of(ppid):
    out = []
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            f = _stat_fields(d)
        except (OSError, ValueError):
            continue
        if int(f[1]) == ppid:
            out.append(int(d))
    return out


def tree_cpu_seconds(pid):
    """CPU of a server process and its children, dead (reaped) and alive; None if unreadable."""
    if not pid:
        return None
    try:
        total = cpu_seconds(pid, children=True)
    except OSError:
        return None
    for child in _children_of(pid):
        try:
            total += cpu_seconds(child)
        except OSError:
            pass  # exited meanwhile; its time is in the parent's cutime by the next sample
    return total


def tcp_peer_ports(pid, remote_port):
    """Local ports of `pid`'s TCP connections to `remote_port` (its PostgreSQL connections)."""
    inodes = set()
    try:
        for fd in os.listdir(f'/proc/{pid}/fd'):
            try:
                target = os.readlink(f'/proc/{pid}/fd/{fd}')
            except OSError:
                continue
            if target.startswith('socket:['):
                inodes.add(target[8:-1])
    except OSError:
        return []
    ports = []
    for table in ('tcp', 'tcp6'):
        try:
            with open(f'/proc/{pid}/net/{table}') as f:
                next(f)
                for line in f:
                    cols = line.split()
                    local, remote, inode = cols[1], cols[2], cols[9]
                    if inode in inodes and int(remote.rsplit(':', 1)[1], 16) == remote_port:
                        ports.append(int(local.rsplit(':', 1)[1], 16))
        except OSError:
            continue
    return ports


def read_pid_file(path):
    try:
        with open(path) as f:
            pid = int(f.readline().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


class Child:
    """A started executable; stdout and stderr go to files under the run directory."""

    def __init__(self, name, argv, log_dir, env, stdin_pipe=False):
        self.name = name
        self.argv = argv
        self.out_path = os.path.join(log_dir, name + '.out')
        self.err_path = os.path.join(log_dir, name + '.log')
        with open(self.out_path, 'wb') as out, open(self.err_path, 'wb') as err:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env,
                                         stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL)
        self.started = time.monotonic()
        self.returncode = None
        self.rusage = None

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.returncode is None and self.proc.poll() is None

    def wait(self, timeout=None):
        """Waits for the exit; returns the exit code and keeps the rusage. None on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            pid, status, rusage = os.wait4(self.pid, 0 if deadline is None else os.WNOHANG)
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                self.proc.returncode = self.returncode  # Popen must not reap it again
                self.rusage = rusage
                return self.returncode
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)

    def usage(self):
        """(cpu_s, peak_rss_mib): from rusage after wait(), else sampled from /proc."""
        if self.rusage is not None:
            return (self.rusage.ru_utime + self.rusage.ru_stime, self.rusage.ru_maxrss / 1024.0)
        return (cpu_seconds(self.pid), peak_rss_mib(self.pid))

    def stop(self, grace=30.0):
        """SIGTERM, then SIGKILL after `grace` seconds. Returns the exit code."""
        if self.returncode is not None:
            return self.returncode
        try:
            self.proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        rc = self.wait(grace)
        if rc is None:
            self.proc.kill()
            rc = self.wait()
        return rc

    def send_line(self, line):
        self.proc.stdin.write((line + '\n').encode())
        self.proc.stdin.flush()

    def stdout(self):
        with open(self.out_path, encoding='utf-8', errors='replace') as f:
            return f.read()

    def log_tail(self, lines=30):
        try:
            with open(self.err_path, encoding='utf-8', errors='replace') as f:
                return ''.join(f.readlines()[-lines:])
        except OSError:
            return ''
