"""bench/lut_round_scale.py: each round's speed factor, common to its items."""

from __future__ import annotations

import numpy as np
import pytest

from tests.bench.bench_scripts import load_bench_script

scale = load_bench_script("lut_round_scale")


def test_round_factors_find_a_round_that_ran_slower_for_every_item():
    items = np.array([[1.0, 1.2, 1.0], [2.0, 2.4, 2.1], [5.0, 6.0, 4.9], [0.5, 0.9, 0.5]])
    f = scale.round_factors(items)
    assert f == pytest.approx([1.0, 1.2, 1.0], abs=0.02)  # the median item: one outlier (0.9) does not move it
    assert (items / f).min(axis=1) == pytest.approx([1.0, 2.0, 4.9, 0.5], abs=0.05)
