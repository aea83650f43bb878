"""bench/runtime_search.py: which table and which check each runtime's search takes (no search here)."""

from __future__ import annotations

import argparse
import json

import pytest

from tests.bench.bench_scripts import load_bench_script

runtime_search = load_bench_script("runtime_search")
STEM = "small_360x480_eager"


def _folders(tmp_path):
    new, old, checks = tmp_path / "new", tmp_path / "old", tmp_path / "checks"
    for d in (new, old, checks):
        d.mkdir()
    for d in (new, old):
        (d / f"{STEM}.json").write_text("{}")
        (d / f"{STEM}_check.json").write_text(json.dumps({"table": str(d / f"{STEM}.json")}))
    return new, old, checks


def _args(tables, checks=()):
    return argparse.Namespace(tables=[str(t) for t in tables], checks=[str(c) for c in checks])


def test_the_first_folder_holding_the_table_and_a_check_of_that_very_table(tmp_path):
    new, old, checks = _folders(tmp_path)
    assert runtime_search.table_and_check(STEM, _args([new, old])) == (new / f"{STEM}.json", new / f"{STEM}_check.json")
    assert runtime_search.table_and_check(STEM, _args([tmp_path / "none", old]))[0] == old / f"{STEM}.json"
    # a check made again elsewhere is taken first, but only when it checked the same table
    (checks / f"{STEM}_check.json").write_text(json.dumps({"table": str(old / f"{STEM}.json")}))
    assert runtime_search.table_and_check(STEM, _args([new], [checks]))[1] == new / f"{STEM}_check.json"
    assert runtime_search.table_and_check(STEM, _args([old], [checks]))[1] == checks / f"{STEM}_check.json"


def test_a_missing_table_or_check_is_one_line(tmp_path):
    new, old, _ = _folders(tmp_path)
    with pytest.raises(SystemExit, match=f"no small_128x256_eager.json in {new}"):
        runtime_search.table_and_check("small_128x256_eager", _args([new]))
    # the check beside the table is its own, whatever path its "table" field holds (another checkout's)
    (new / f"{STEM}_check.json").write_text(json.dumps({"table": "/elsewhere/" + STEM + ".json"}))
    assert runtime_search.table_and_check(STEM, _args([new]))[1] == new / f"{STEM}_check.json"
    (new / f"{STEM}_check.json").unlink()
    (old / f"{STEM}_check.json").write_text(json.dumps({"no table": 1}))  # named nothing: not taken from --checks
    with pytest.raises(SystemExit, match=f"no check of {new / STEM}.json"):
        runtime_search.table_and_check(STEM, _args([new], [old]))
