"""python3 -m unittest test_pg_cpu  (from bench/runner; CTest BenchRunnerPgCpu and bench/run --smoke run it)."""
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pg_cpu  # noqa: E402


class ClassifyTest(unittest.TestCase):
    def test_a_backend_is_named_by_its_client_port(self):
        ports = {41234: 'worker1', 41300: 'producer'}
        self.assertEqual(pg_cpu.classify('postgres: leadsync leadsync 127.0.0.1(41234) idle in transaction', ports),
                         'backend:worker1')
        self.assertEqual(pg_cpu.classify('postgres: leadsync leadsync 127.0.0.1(41300) INSERT', ports),
                         'backend:producer')
        self.assertEqual(pg_cpu.classify('postgres: leadsync leadsync 127.0.0.1(50000) idle', ports),
                         'backend:other')
        self.assertEqual(pg_cpu.classify('postgres: leadsync leadsync [local] idle', ports), 'backend:other')

    def test_background_processes_keep_their_own_names(self):
        self.assertEqual(pg_cpu.classify('postgres: checkpointer', {}), 'checkpointer')
        self.assertEqual(pg_cpu.classify('postgres: walwriter', {}), 'walwriter')
        self.assertEqual(pg_cpu.classify('postgres: background writer', {}), 'background writer')
        self.assertEqual(pg_cpu.classify('postgres: autovacuum worker leadsync', {}), 'autovacuum worker')
        self.assertEqual(pg_cpu.classify('postgres: autovacuum launcher', {}), 'autovacuum launcher')


class AttributeTest(unittest.TestCase):
    def test_each_pid_counts_from_its_first_sample_and_a_newborn_from_zero(self):
        first = {10: 5.0, 11: 1.0}
        last = {10: 7.5, 11: 1.0, 12: 0.75}
        labels = {10: 'backend:worker1', 11: 'checkpointer', 12: 'backend:worker1'}
        self.assertEqual(pg_cpu.attribute(first, last, labels), {'backend:worker1': 3.25, 'checkpointer': 0.0})


class SamplerTest(unittest.TestCase):
    def test_a_busy_child_is_sampled_and_the_rest_is_reported_unsampled(self):
        # This process plays the postmaster: its child burns CPU for 0.6 s.
        s = pg_cpu.PgCpuSampler(os.getpid(), 5432, interval=0.05).start()
        child = subprocess.Popen([sys.executable, '-c',
                                  'import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\n'
                                  'time.sleep(0.3)'])
        child.wait()
        time.sleep(0.1)
        out = s.stop()
        # The child is reaped: its last sample (before its exit) holds nearly all of its 0.6 s.
        self.assertGreater(out.get('backend:other', 0), 0.4, out)
        self.assertAlmostEqual(out['total'], sum(v for k, v in out.items() if k != 'total'), places=1)
        self.assertIs(s.stop(), out)


if __name__ == '__main__':
    unittest.main()
