"""python3 -m unittest bench/runner/test_report.py  (run from the repository root; bench/run --smoke runs it too)."""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402


def line(scenario, rows, wall, workers=1, repeat=1, producer=1.0, worker=2.0, pg=3.0, kafka=0.5):
    return {'scenario': scenario, 'rows': rows, 'workers': workers, 'repeat': repeat, 'wall_s': wall,
            'cpu_s': {'producer': producer, 'worker1': worker}, 'pg_backend_cpu_s': {'worker1': 1.0},
            'server_cpu_s': {'postgres': pg, 'kafka': kafka}}


class RatioTest(unittest.TestCase):
    def test_ratio_divides_and_rounds(self):
        self.assertEqual(report.ratio(10.0, 4.0), 2.5)
        self.assertEqual(report.ratio(1.0, 3.0), 0.33)

    def test_ratio_of_an_empty_or_missing_ceiling_is_none(self):
        self.assertIsNone(report.ratio(1.0, 0.0))
        self.assertIsNone(report.ratio(None, 2.0))
        self.assertIsNone(report.ratio(2.0, None))

    def test_speedup_is_the_scenarios_rate_over_the_peers(self):
        self.assertEqual(report.speedup(75000.0, 25000.0), 3.0)
        self.assertEqual(report.speedup(20000.0, 25000.0), 0.8)

    def test_batches_cover_every_row_once(self):
        self.assertEqual(report.batch_split(12000, 5000), [5000, 5000, 2000])
        self.assertEqual(report.batch_split(10000, 5000), [5000, 5000])
        self.assertEqual(report.batch_split(0, 5000), [])
        with self.assertRaises(ValueError):
            report.batch_split(10, 0)


class BatchSizeTest(unittest.TestCase):
    HEADER = 'struct W {\n  int max_batch = 5000;       // events applied in one transaction\n};\n'

    def test_the_configurations_worker_max_batch_wins(self):
        yaml = 'kafka:\n  topic: t\nworker:\n  max_wait_ms: 20\n  max_batch: 2000\npostgres:\n  schema: s\n'
        self.assertEqual(report.worker_batch_size(yaml, self.HEADER)[0], 2000)
        self.assertEqual(report.worker_batch_size('worker: {max_wait_ms: 5, max_batch: 300}\n', self.HEADER)[0], 300)

    def test_without_it_the_workers_default_from_config_h(self):
        yaml = 'kafka:\n  max_batch: 7\nworker:\n  max_wait_ms: 20\npostgres:\n  schema: s\n'
        size, where = report.worker_batch_size(yaml, self.HEADER)
        self.assertEqual(size, 5000)
        self.assertIn('config.h', where)
        self.assertEqual(report.worker_batch_size('', "  int max_batch = 10'000;\n")[0], 10000)

    def test_neither_is_an_error(self):
        with self.assertRaises(ValueError):
            report.worker_batch_size('', 'int other = 1;')


def s4(rate, p99, p50=0.01, achieved=None, capped=False):
    return {'scenario': f'S4/r{rate:g}', 'stream_rate': rate, 'rows_per_s': rate if achieved is None else achieved,
            'latency_p50_s': p50, 'latency_p99_s': p99, 'latency_p99_capped': capped, 'latency_mean_s': p50,
            'kafka_messages': int(rate * 10), 'batches': 100, 'stream_report': {'max_behind_schedule_ms': 1.0}}


class SweepTest(unittest.TestCase):
    def test_the_highest_rate_before_the_first_miss(self):
        rates = [1000, 2000, 4000, 8000]
        s = report.sweep_summary([s4(1000, 0.02), s4(2000, 0.04), s4(4000, 0.3)], rates)
        self.assertEqual(s['scenario'], 'S4-SWEEP')
        self.assertEqual(s['max_rate_p99_le_100ms'], 2000)
        self.assertFalse(s['max_rate_is_lower_bound'])
        self.assertEqual([x['rate'] for x in s['rates']], rates)
        self.assertEqual([x['run'] for x in s['rates']], [True, True, True, False])
        self.assertEqual(s['rates'][1]['p99_s'], 0.04)

    def test_a_rate_that_meets_the_bound_above_a_miss_does_not_count(self):
        s = report.sweep_summary([s4(1000, 0.02), s4(2000, 0.2), s4(4000, 0.05)], [1000, 2000, 4000])
        self.assertEqual(s['max_rate_p99_le_100ms'], 1000)

    def test_every_rate_met_is_a_lower_bound(self):
        s = report.sweep_summary([s4(1000, 0.02), s4(2000, 0.1)], [2000, 1000])
        self.assertEqual(s['max_rate_p99_le_100ms'], 2000)  # exactly 100 ms is within
        self.assertTrue(s['max_rate_is_lower_bound'])

    def test_none_when_the_lowest_rate_misses(self):
        s = report.sweep_summary([s4(1000, 0.5)], [1000, 2000])
        self.assertIsNone(s['max_rate_p99_le_100ms'])
        self.assertFalse(s['max_rate_is_lower_bound'])

    def test_a_capped_p99_or_a_rate_the_sender_did_not_keep_misses(self):
        self.assertFalse(report.within(s4(1000, 0.05, capped=True), 0.1))
        self.assertFalse(report.within(s4(8000, 0.05, achieved=7000), 0.1))  # 87.5% of the asked rate
        self.assertTrue(report.within(s4(8000, 0.05, achieved=7700), 0.1))
        self.assertFalse(report.within(s4(1000, None), 0.1))
        s = report.sweep_summary([s4(1000, 0.02), s4(2000, 0.03, achieved=1500)], [1000, 2000])
        self.assertEqual(s['max_rate_p99_le_100ms'], 1000)
        self.assertFalse(s['rates'][1]['rate_kept'])

    def test_the_table_names_each_rate_and_the_result(self):
        t = report.sweep_table(report.sweep_summary([s4(1000, 0.02), s4(2000, 0.3)], [1000, 2000, 4000]))
        self.assertIn('| 1,000 | 1,000 | 0.010 | 0.020 |', t)
        self.assertIn('| 4,000 | not run', t)
        self.assertIn('highest rate with p99 <= 100 ms: 1,000', t)


class CurveTest(unittest.TestCase):
    def results(self):
        return [line('S1', 100000, 10.0), line('S1', 100000, 12.0, repeat=2), line('S1', 100000, 11.0, repeat=3),
                line('S1', 1000000, 120.0), line('S2', 100000, 2.0), line('S2', 1000000, 20.0),
                line('S5/w1', 1000000, 100.0), line('S5/w2', 1000000, 80.0, workers=2),
                {'scenario': 'S1', 'repeat': 'median', 'rows': 100000, 'wall_s': 999.0}]

    def test_points_are_medians_per_scenario_rows_and_workers(self):
        pts = report.curve_points(self.results())
        s1 = [p for p in pts if p['scenario'] == 'S1']
        self.assertEqual([(p['rows'], p['wall_s'], p['n']) for p in s1], [(100000, 11.0, 3), (1000000, 120.0, 1)])
        self.assertEqual(s1[0]['rows_per_s'], 9090.9)
        self.assertEqual(s1[0]['us_per_row'], 110.0)

    def test_linearity_is_time_per_row_over_the_smallest_sizes(self):
        pts = report.curve_points(self.results())
        by = {(p['scenario'], p['rows']): p for p in pts}
        self.assertEqual(by[('S1', 100000)]['per_row_vs_smallest'], 1.0)
        self.assertEqual(by[('S1', 1000000)]['per_row_vs_smallest'], 1.09)  # 120 us / 110 us per row
        self.assertEqual(by[('S2', 1000000)]['per_row_vs_smallest'], 1.0)

    def test_s5_speedup_is_over_one_worker_at_the_same_rows(self):
        pts = [p for p in report.curve_points(self.results()) if p['scenario'] == 'S5']
        self.assertEqual([(p['workers'], p['speedup_vs_1_worker']) for p in pts], [(1, 1.0), (2, 1.25)])

    def test_busy_cores_counts_the_pipelines_cpu_once(self):
        # producer 1 + worker 2 + PostgreSQL 3 (its workers' backends inside) + Kafka 0.5 = 6.5 over 10 s
        p = report.curve_points([line('S1', 1000, 10.0)])[0]
        self.assertEqual((p['cpu_s'], p['busy_cores']), (6.5, 0.65))

    def test_table_and_data_files(self):
        pts = report.curve_points(self.results())
        table = report.curve_table(pts).splitlines()
        self.assertEqual(len(table), 2 + len(pts))
        self.assertTrue(table[2].startswith('| S1 | 100,000 | 1 | 11.00 | 9,091 |'))
        with tempfile.TemporaryDirectory() as d:
            files = report.curve_data_files(pts, d)
            with open(files['S1']) as f:
                self.assertEqual(f.read().splitlines()[1:], ['100000 11.0 9090.9', '1000000 120.0 8333.3'])
            with open(files['S5']) as f:
                self.assertEqual(f.read().splitlines()[1:], ['1 100.0 10000.0', '2 80.0 12500.0'])
            self.assertEqual(files['S5_rows'], 1000000)


if __name__ == '__main__':
    unittest.main()


class PeerFiguresTest(unittest.TestCase):
    def test_attach_puts_the_speedup_on_the_sink_line_and_the_ceiling_ratio_on_the_peers(self):
        import peer
        sink = {'rows_per_s': 75000.0, 'wall_s': 13.0, 'limit_s': 4.0, 'ceiling_s': 10.0, 'ceiling_batch': 5000}
        p = {'rows_per_s': 25000.0, 'wall_s': 40.0}
        peer.attach(sink, p)
        self.assertEqual((sink['speedup_vs_peer'], sink['peer_wall_s'], sink['peer_rows_per_s']), (3.0, 40.0, 25000.0))
        self.assertEqual((p['ratio_to_limit'], p['ratio_to_ceiling'], p['ceiling_batch']), (10.0, 4.0, 5000))

    def test_start_offsets_are_read_per_partition_from_connects_log(self):
        import peer
        obj = peer.DebeziumPeer.__new__(peer.DebeziumPeer)
        obj.topic = 'bench.x_sink.peer'

        class Ctx:
            PARTITIONS = 3
        obj.ctx = Ctx()
        lines = ['1 [t] INFO o.a.k.c.c.i.SubscriptionState - [Consumer] Resetting offset for partition '
                 'bench.x_sink.peer-0 to position FetchPosition{offset=0, offsetEpoch=Optional.empty}.',
                 '2 [t] INFO o.a.k.c.c.i.ConsumerUtils - [Consumer] Setting offset for partition bench.x_sink.peer-1 '
                 'to the committed offset FetchPosition{offset=40, offsetEpoch=Optional[0]}',
                 '3 [t] INFO o.a.k.c.c.i.ConsumerUtils - [Consumer] Setting offset for partition bench.x_sink.peer-2 '
                 'to the committed offset FetchPosition{offset=2, offsetEpoch=Optional[0]}',
                 '4 [t] INFO o.a.k.c.c.i.ConsumerUtils - [Consumer] Setting offset for partition bench.x_sink.peer-0 '
                 'to the committed offset FetchPosition{offset=30, offsetEpoch=Optional[0]}',
                 '5 [t] INFO Setting offset for partition bench.x_sink.peerZ-0 to the committed offset '
                 'FetchPosition{offset=999}']
        with tempfile.TemporaryDirectory() as d:
            obj.connect_log = os.path.join(d, 'connect.log')
            with open(obj.connect_log, 'w') as f:
                f.write('\n'.join(lines) + '\n')
            self.assertEqual(obj._start_offsets(), 72)  # the last start of each partition: 30 + 40 + 2
            with open(obj.connect_log, 'w') as f:
                f.write('\n'.join(lines[:2]) + '\n')
            self.assertIsNone(obj._start_offsets())  # a partition without a start line: unknown, not 0
