"""bench/lut_floor_parts.py: the positions where the adapter subtraction left candidates at the 1 µs floor."""

from __future__ import annotations

import json

from tests.bench.bench_scripts import load_bench_script

floor = load_bench_script("lut_floor_parts")


def test_floored_candidates_are_counted_per_position_with_their_figures(tmp_path):
    entries = {"a": {"min_ms": 0.30},
               "op1": {"adapter": "a", "with_adapter": {"min_ms": 0.15}, "below_resolution": True},
               "op2": {"adapter": "a", "with_adapter": {"min_ms": 0.40}}, "op3": {"min_ms": 0.2}}
    table = {"candidates": ["x", "y", "skip"], "table": [[0.001, 0.1, 0.0], [0.2, 0.2, 0.0]],
             "meta": {"timing": {"statistic": "min"}, "entries": entries,
                      "cells": [["op1", "op2", "identity"], ["op3", "op3", "identity"]]}}
    path = tmp_path / "small_t.json"
    path.write_text(json.dumps(table))
    rows = floor.floor_parts(path)
    # position 0: one candidate at the floor (the identity skip, 0 ms, is not one); position 1: none
    assert rows == [{"position": 0, "at_floor": 1, "candidates": 3, "example": "x", "pair_ms": 0.15,
                     "adapter_ms": 0.30}]
