"""python3 -m unittest bench/runner/test_prom.py  (run from the repository root)."""
import math
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import prom  # noqa: E402

TEXT = '''# HELP h x
# TYPE h histogram
h_bucket{le="0.1"} 10
h_bucket{le="0.5"} 30
h_bucket{le="1"} 40
h_bucket{le="+Inf"} 40
h_sum 12
h_count 40
c_total{result="inserted"} 7
c_total{result="updated"} 3
'''


class PromTest(unittest.TestCase):
    def test_interpolates_inside_the_bucket_like_prometheus(self):
        b = prom.buckets(prom.parse(TEXT), 'h')
        self.assertEqual(b[-1], (math.inf, 40.0))
        # rank 20 lies in (0.1, 0.5]: 10 before, 20 inside -> 0.1 + 0.4 * 10/20
        self.assertAlmostEqual(prom.histogram_quantile(0.5, b)[0], 0.3)
        # rank 2 in the first bucket interpolates from 0
        self.assertAlmostEqual(prom.histogram_quantile(0.05, b)[0], 0.02)

    def test_rank_in_the_inf_bucket_is_capped_at_the_top_bound(self):
        b = [(0.1, 1.0), (1.0, 2.0), (math.inf, 10.0)]
        self.assertEqual(prom.histogram_quantile(0.99, b), (1.0, True))

    def test_delta_of_two_scrapes_counts_only_the_new_observations(self):
        before = prom.parse('h_bucket{le="1"} 5\nh_bucket{le="+Inf"} 5\n')
        after = prom.parse('h_bucket{le="1"} 5\nh_bucket{le="+Inf"} 9\n')
        d = prom.delta([after], [before])
        self.assertEqual(prom.buckets(d, 'h'), [(1.0, 0.0), (math.inf, 4.0)])
        self.assertEqual(prom.histogram_quantile(0.5, prom.buckets(d, 'h')), (1.0, True))

    def test_value_sums_matching_labels(self):
        s = prom.parse(TEXT)
        self.assertEqual(prom.value(s, 'c_total'), 10.0)
        self.assertEqual(prom.value(s, 'c_total', result='updated'), 3.0)

    def test_empty_histogram_has_no_quantile(self):
        self.assertIsNone(prom.histogram_quantile(0.5, [(1.0, 0.0), (math.inf, 0.0)]))


if __name__ == '__main__':
    unittest.main()
