"""Unit tests of flamegraph.py's parsing and folding of `perf script` output (no perf needed)."""
import io
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flamegraph  # noqa: E402

SCRIPT = """leadsync-worker 10404/10404 12.000001:
\t    7f00aa leaf_fn+0x1a (/work/build/workers/leadsync-worker)
\t    7f00bb mid_fn+0x2 (/work/build/workers/leadsync-worker)
\t    7f00cc main (/work/build/workers/leadsync-worker)

rdk:broker1 10404/10411 12.000002:
\t    7f01aa [unknown] (/usr/lib/x86_64-linux-gnu/librdkafka.so.1)

postgres 10425/10425 12.000003:
\t    55aa01 [unknown] (/usr/lib/postgresql/15/bin/postgres)
\t    55aa02 ExecutorRun+0x40 (/usr/lib/postgresql/15/bin/postgres)

leadsync-worker 10404/10404 12.000004:
\t    7f00aa leaf_fn+0x1b (/work/build/workers/leadsync-worker)
\t    7f00bb mid_fn+0x9 (/work/build/workers/leadsync-worker)
\t    7f00cc main (/work/build/workers/leadsync-worker)
"""


class FlameGraphTest(unittest.TestCase):
    def test_stacks_are_folded_root_first_with_offsets_dropped_and_unknowns_named_by_their_library(self):
        counts = flamegraph.fold(io.StringIO(SCRIPT))
        self.assertEqual(counts[('leadsync-worker', 'main', 'mid_fn', 'leaf_fn')], 2)
        self.assertEqual(counts[('rdk:broker1', '[librdkafka.so.1]')], 1)
        self.assertEqual(counts[('postgres', 'ExecutorRun', '[postgres]')], 1)
        self.assertEqual(sum(counts.values()), 4)

    def test_a_pid_filter_keeps_every_thread_of_that_process_and_nothing_else(self):
        counts = flamegraph.fold(io.StringIO(SCRIPT), pids={10404})
        self.assertEqual(sum(counts.values()), 3)
        self.assertNotIn(('postgres', 'ExecutorRun', '[postgres]'), counts)

    def test_the_svg_has_one_box_per_frame_and_counts_every_sample(self):
        out = flamegraph.svg(flamegraph.fold(io.StringIO(SCRIPT)), 'title <&>')
        self.assertIn('title &lt;&amp;&gt;', out)
        self.assertIn('4 samples', out)
        self.assertIn('<title>mid_fn (2 samples, 50.00%)</title>', out)
        self.assertEqual(out.count('<rect') - 1, 9)   # 9 distinct frames; the first rect is the background


if __name__ == '__main__':
    unittest.main()
