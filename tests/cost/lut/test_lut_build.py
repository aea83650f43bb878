"""Building latency tables: coverage, deduplication, adapters, resume, rounds, contention, statistics.

Timings are never compared with each other (shared, noisy CPUs); where the numbers matter a fake timer is used.
"""

from __future__ import annotations

import json

import pytest
import torch

from lut_fakes import ONE, QUICK, TINY_CANDIDATES, FakeTimer, fake_timing, tiny_macro
from squeezenas.cost.lut import (LutError, build_lut, check_lut, load_lut, partial_path, plan_lut,
                                 spanning_genotypes)
from squeezenas.cost.timing import TimingConfig
from squeezenas.space import Genotype, Stage
from squeezenas.cost.lut.plan import IDENTITY_KEY
from squeezenas.cost.tables import ADAPTER_CONTEXT, CostTable, CostTableError


def test_ops_are_timed_after_an_adapter():
    """The adapter context: each op is timed after a 1×1 depthwise adapter, and the adapter alone is subtracted."""
    macro = tiny_macro()
    ort_config = TimingConfig(backend="onnxruntime", threads=1, statistic="median")
    plan = plan_lut(macro, (32, 64), ort_config, context="adapter")
    assert plan.context == "adapter" and plan_lut(macro, (32, 64), QUICK).context == "alone" and not plan.after
    adapters = {k for k, p in plan.parts.items() if p.kind == "adapter"}
    assert len(adapters) == len({tuple(p.input_shape) for p in plan.parts.values() if p.kind == "op"})
    op = plan.parts[plan.cells[0][0]]
    assert op.adapter in adapters and op.adapter.startswith("adapter=dw1x1|c=8|in=1x8x16x32|")
    module = op.build()
    assert isinstance(module[0], torch.nn.Conv2d) and module[0].groups == 8 and module[0].kernel_size == (1, 1)
    timer = FakeTimer()
    table = build_lut(macro, (32, 64), ort_config, progress=False, measure_fn=timer, context="adapter", **ONE)
    assert len(timer.calls) == len(plan.parts) and not table.pairs
    entry = table.meta["entries"][op.key]
    adapter = table.meta["entries"][op.adapter]
    assert table.table[0][0] == entry["median_ms"] == pytest.approx(entry["with_adapter"]["median_ms"]
                                                                    - adapter["median_ms"])
    assert table.meta["context"] == "adapter"
    assert table.fixed["stem"] == table.meta["entries"][plan.fixed["stem"]]["median_ms"]  # fixed parts alone
    with pytest.raises(ValueError, match="context"):
        plan_lut(macro, (32, 64), ort_config, context="inside")


class GroupedBoundaryTimer(FakeTimer):
    """FakeTimer, plus 0.5 ms for an op timed after a grouped (not depthwise) adapter: the layout conversion a
    runtime pays where a block follows one ending in a grouped convolution."""

    def __call__(self, module, shape, config):
        t = super().__call__(module, shape, config)
        first = module[0] if isinstance(module, torch.nn.Sequential) else None
        grouped = isinstance(first, torch.nn.Conv2d) and 1 < first.groups < first.in_channels
        return fake_timing(t.median_ms + 0.5, shape, config) if grouped else t


def test_layout_context_times_ops_after_a_grouped_block_too(tmp_path):
    """onnxruntime's default: ops timed after the depthwise adapter and after a grouped 1×1 one; the difference
    is the pair term, which a network's prediction adds where a block follows one ending in a grouped
    convolution, identity skips passed over."""
    macro = tiny_macro()
    ort_config = TimingConfig(backend="onnxruntime", threads=1, statistic="median")
    plan = plan_lut(macro, (32, 64), ort_config)
    assert plan.context == "layout" and list(plan.after) == [2]  # k3_d1_e1_g2 ends in 2 groups
    after = plan.after[2]
    assert after[0] == plan.cells[0]  # the first position follows the stem
    op = plan.parts[after[2][0]]
    assert "|after=g2|" in op.key and op.after == 2 and op.adapter.startswith("adapter=pw1x1g2|c=8|")
    module = op.build()
    assert module[0].groups == 2 and module[0].kernel_size == (1, 1)
    assert after[1][TINY_CANDIDATES.index("skip")] == IDENTITY_KEY
    timer = GroupedBoundaryTimer()
    table = build_lut(macro, (32, 64), ort_config, out=tmp_path / "t.json", progress=False, measure_fn=timer, **ONE)
    assert len(timer.calls) == len(plan.parts) and table.meta["context"] == "layout"
    for i, (p, row) in enumerate(zip(macro.positions(), table.pairs[2])):
        for code, v in zip(TINY_CANDIDATES, row):
            identity = code == "skip" and p.is_identity_skip
            assert v == pytest.approx(0.0 if identity or i == 0 else 0.5)
    g2, g1, skip = "k3_d1_e1_g2", "k3_d2_e3_g1", "skip"
    base = CostTable(**{**table.__dict__, "pairs": {}})
    for ops, pair in [((g2, skip, g1, skip, g1), 0.5),  # position 2 follows the g2 block through the identity
                      ((g2, g2, g2, skip, g1), 1.5),  # positions 1, 2 and 4 (through the identity at 3)
                      ((g1, g2, skip, skip, g1), 1.0),  # 2 follows it; the skip at 2 (stride 2) hands on 2 groups
                      ((g1, g1, g1, g1, g1), 0.0),
                      ((g1, skip, g1, g1, skip), 0.0)]:  # the identity, and a 1×1 skip at 4: one group
        genotype = Genotype(macro, ops)
        assert table.pair_cost(genotype) == pytest.approx(pair)
        assert table.predict(genotype) == pytest.approx(base.predict(genotype) + pair)
    loaded = load_lut(tmp_path / "t.json", macro, (32, 64))
    assert loaded.pairs == table.pairs and loaded.predict(Genotype(macro, (g2,) * 5)) == pytest.approx(
        table.predict(Genotype(macro, (g2,) * 5)))
    d = json.loads((tmp_path / "t.json").read_text())
    d["pairs"]["2"][1][0] = "x"
    with pytest.raises(CostTableError, match=r"pairs\['2'\]\[1\]\[0\]"):
        CostTable.from_dict(d, "t.json")
    d["pairs"]["2"] = table.pairs[2][:2]
    with pytest.raises(CostTableError, match=r"t.json: pairs\['2'\] is not 5 positions"):
        CostTable.from_dict(d, "t.json")
    d["pairs"] = {"1": []}
    with pytest.raises(CostTableError, match="'pairs' must map group counts > 1"):
        CostTable.from_dict(d, "t.json")
    bad = CostTable(**{**table.__dict__, "pairs": {2: [[float("nan")] * 4] * 5}})
    with pytest.raises(CostTableError, match=r"pairs\['2'\]\[0\]\[0\].*finite"):
        bad.save(tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


def test_build_covers_every_cell_and_times_each_shape_once(tmp_path):
    macro = tiny_macro()
    timer = FakeTimer()
    table = build_lut(macro, (32, 64), QUICK, out=tmp_path / "t.json", progress=False, measure_fn=timer, **ONE)
    plan = plan_lut(macro, (32, 64), QUICK)
    assert len(timer.calls) == len(plan.parts) < macro.num_positions * len(macro.candidates) + 3
    j = macro.candidates.index("skip")
    for p, row in zip(macro.positions(), table.table):
        for code, v in zip(macro.candidates, row):
            assert v == 0.0 if (code == "skip" and p.is_identity_skip) else v > 0
    assert table.table[1][j] == 0.0 and table.table[0][j] > 0
    assert set(table.fixed) == {"stem", "last_conv", "decoder"} and min(table.fixed.values()) > 0
    m = table.meta
    assert (m["backend"], m["dtype"], m["batch"], m["threads"], m["device"]) == ("eager", "float32", 1, 1, "cpu")
    assert m["fingerprint"]["cpu_model"] and m["fingerprint"]["threads"] == 1
    for key, e in m["entries"].items():
        assert e["median_ms"] > 0 and e["iqr_ms"] >= 0 and e["repeats"] == 7
    assert not partial_path(tmp_path / "t.json").exists()
    # JSON round trip
    loaded = load_lut(tmp_path / "t.json", macro, (32, 64))
    assert loaded.table == table.table and loaded.fixed == table.fixed and loaded.meta == json.loads(json.dumps(m))
    g = spanning_genotypes(loaded, 1, 0)[0].genotype
    assert loaded.predict(g) == pytest.approx(table.predict(g))
    assert loaded.matrix().shape == (macro.num_positions, len(TINY_CANDIDATES))


def test_build_real_timer_positive_entries(tmp_path):
    """The real timer on the tiny space, eager: every entry positive, identity skip 0."""
    macro = tiny_macro()
    table = build_lut(macro, (32, 64), QUICK, progress=False, max_other_cpu=None)
    j = macro.candidates.index("skip")
    flat = [v for row in table.table for v in row]
    assert sum(v == 0 for v in flat) == sum(p.is_identity_skip for p in macro.positions())
    assert all(v > 0 for i, row in enumerate(table.table) for k, v in enumerate(row)
               if not (k == j and macro.positions()[i].is_identity_skip))


def test_build_onnxruntime_backend(tmp_path):
    macro = tiny_macro(stages=(Stage(8, 1, 2), Stage(16, 1, 2)), low_level_position=0,
                       candidates=("k3_d1_e1_g2", "skip"))
    config = TimingConfig(backend="onnxruntime", onnx_exporter="torchscript", threads=1, min_run_time=0.01,
                          warmup=1, min_repeats=3)
    table = build_lut(macro, (32, 32), config, progress=False, max_other_cpu=None)
    assert table.meta["backend"] == "onnxruntime" and all(v > 0 for row in table.table for v in row)
    assert all(v > 0 for k, v in table.fixed.items() if k != ADAPTER_CONTEXT)  # adapter_context: <= 0


def test_onnxruntime_parts_and_networks_are_exported_once(monkeypatch):
    """With the real timer, every round and retry of a part (and of a check's network) times one ONNX export."""
    import squeezenas.cost.lut.build as build
    import squeezenas.cost.timing.targets as targets
    from squeezenas.cost.timing import Artefact

    exports, timed = [], []
    real_export, real_measure = targets.export_for_timing, build.measure

    def counting_export(module, shape, config, directory, name="module"):
        exports.append(name)
        return real_export(module, shape, config, directory, name)

    def recording_measure(target, shape, config):
        timed.append(target)
        return real_measure(target, shape, config)

    monkeypatch.setattr(targets, "export_for_timing", counting_export)
    monkeypatch.setattr(build, "measure", recording_measure)
    macro = tiny_macro(stages=(Stage(8, 1, 2), Stage(16, 1, 2)), low_level_position=0,
                       candidates=("k3_d1_e1_g2", "skip"))
    config = TimingConfig(backend="onnxruntime", onnx_exporter="torchscript", threads=1, min_run_time=0.01,
                          warmup=1, min_repeats=3)
    table = build_lut(macro, (32, 32), config, progress=False, max_other_cpu=None, rounds=2)
    n_parts = len(plan_lut(macro, (32, 32), config).parts)
    assert len(exports) == n_parts and len(timed) == 2 * n_parts
    assert all(isinstance(t, Artefact) and t.backend == "onnxruntime" for t in timed)
    assert not timed[0].path.exists()  # the temp dir is gone with the build
    exports.clear()
    check_lut(table, samples=3, rounds=2, progress=False, max_other_cpu=None, warn_device=False)
    assert len(exports) == 3
    exports.clear()
    build_lut(macro, (32, 32), config, progress=False, max_other_cpu=None, measure_fn=FakeTimer())
    assert exports == []  # a given timer gets modules


def test_rounds_after_an_adapter_are_not_counted_as_retries():
    """An op timed after an adapter keeps its rounds, so 3 rounds of one attempt each are no 'remeasured' part."""
    ort_config = TimingConfig(backend="onnxruntime", threads=1)
    table = build_lut(tiny_macro(), (32, 64), ort_config, progress=False, measure_fn=FakeTimer(), rounds=3)
    assert table.meta["contention"]["remeasured"] == 0
    assert all(e["rounds"] == 3 and e["attempts"] == 3 for e in table.meta["entries"].values())


def test_resume_after_kill_and_refuse_other_settings(tmp_path):
    macro, out = tiny_macro(), tmp_path / "t.json"
    n_parts = len(plan_lut(macro, (32, 64), QUICK).parts)
    with pytest.raises(KeyboardInterrupt):
        build_lut(macro, (32, 64), QUICK, out=out, progress=False, measure_fn=FakeTimer(fail_after=5), **ONE)
    partial = partial_path(out)
    assert partial.is_file() and not out.exists()
    assert len(json.loads(partial.read_text())["entries"]) == 5
    # other settings: refused, naming the field; the partial is kept
    with pytest.raises(LutError, match=r"timing\.min_run_time"):
        build_lut(macro, (32, 64), TimingConfig(threads=1, min_run_time=0.02, statistic="median"), out=out,
                  progress=False, measure_fn=FakeTimer(), **ONE)
    with pytest.raises(LutError, match="input_size"):
        build_lut(macro, (32, 32), QUICK, out=out, progress=False, measure_fn=FakeTimer(), **ONE)
    timer = FakeTimer()
    table = build_lut(macro, (32, 64), QUICK, out=out, progress=False, measure_fn=timer, **ONE)
    assert len(timer.calls) == n_parts - 5 and not partial.exists()
    full = build_lut(macro, (32, 64), QUICK, progress=False, measure_fn=FakeTimer(), **ONE)
    assert table.table == full.table and table.fixed == full.fixed


def test_contended_measurements_are_repeated(monkeypatch):
    """A part measured while other processes held the CPUs is measured again; the entry records it."""
    from squeezenas.cost.timing import contention

    shares = iter([0.6, 0.3] + [0.0] * 1000)  # the first part: two contended attempts, then a quiet one

    class FakeMonitor:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.other_share = next(shares)

    monkeypatch.setattr(contention, "CpuMonitor", FakeMonitor)
    monkeypatch.setattr(contention, "_wait_for_quiet", lambda share, timeout: None)
    timer = FakeTimer()
    table = build_lut(tiny_macro(), (32, 64), QUICK, progress=False, measure_fn=timer, **ONE)
    first = next(iter(table.meta["entries"].values()))
    assert first["attempts"] == 3 and first["other_cpu"] == 0.0
    assert len(timer.calls) == len(table.meta["entries"]) + 2
    c = table.meta["contention"]
    assert c["remeasured"] == 1 and c["still_contended"] == [] and c["worst_other_cpu"] == 0.0
    shares = iter([0.9] * 1000)  # never quiet: gives up after the retries, and says so
    table = build_lut(tiny_macro(), (32, 64), QUICK, progress=False, measure_fn=FakeTimer(), retries=1, **ONE)
    assert len(table.meta["contention"]["still_contended"]) == len(table.meta["entries"])


def test_real_canary_in_a_table_build(monkeypatch):
    """The real workload runs; a build with the canary on records each entry's ratio and the worst one."""
    monkeypatch.setenv("SQUEEZENAS_CANARY", "1")
    table = build_lut(tiny_macro(), (32, 64), QUICK, progress=False, measure_fn=FakeTimer(), max_other_cpu=None,
                      retries=0, canary=True, **ONE)
    ratios = [e["canary_ratio"] for e in table.meta["entries"].values()]
    assert ratios and all(r > 0 for r in ratios)
    assert table.meta["contention"]["worst_canary_ratio"] == max(ratios)
    off = build_lut(tiny_macro(), (32, 64), QUICK, progress=False, measure_fn=FakeTimer(), max_other_cpu=None,
                    canary=False, **ONE)
    assert all("canary_ratio" not in e for e in off.meta["entries"].values())


def test_rounds_take_the_median_round_and_resume_adds_rounds(tmp_path):
    """Each part timed in several round-robin rounds; the entry is the median round."""
    macro, out = tiny_macro(), tmp_path / "t.json"
    n_parts = len(plan_lut(macro, (32, 64), QUICK).parts)

    class Drifting(FakeTimer):  # the machine gets slower and slower: round r takes (1 + r) times as long
        def __call__(self, module, shape, config):
            t = super().__call__(module, shape, config)
            t.median_ms *= 1 + (len(self.calls) - 1) // n_parts
            return t

    with pytest.raises(KeyboardInterrupt):  # killed in the second round
        build_lut(macro, (32, 64), QUICK, out=out, progress=False, measure_fn=Drifting(fail_after=n_parts + 2),
                  rounds=3)
    timer = Drifting()
    table = build_lut(macro, (32, 64), QUICK, out=out, progress=False, measure_fn=timer, rounds=3)
    assert len(timer.calls) == 3 * n_parts - (n_parts + 2)
    base = build_lut(macro, (32, 64), QUICK, progress=False, measure_fn=FakeTimer(), **ONE)
    key = plan_lut(macro, (32, 64), QUICK).fixed["stem"]
    entry = table.meta["entries"][key]
    assert entry["rounds"] == 3 and len(entry["round_medians"]) == 3
    assert entry["median_ms"] == sorted(entry["round_medians"])[1]
    # the stem's rounds: 1x and 2x before the kill, 1x again after it (a fresh timer): the median round is 1x
    assert sorted(entry["round_medians"]) == pytest.approx([base.fixed["stem"]] * 2 + [2 * base.fixed["stem"]])
    assert table.fixed["stem"] == pytest.approx(base.fixed["stem"])
    with pytest.raises(ValueError, match="rounds"):
        build_lut(macro, (32, 64), QUICK, progress=False, measure_fn=FakeTimer(), rounds=0)


def test_statistic_min_used_by_table_adapter_and_check():
    """With statistic="min" the table holds each part's min (ops after an adapter: min minus min), and the check
    compares the networks' min with it; median tables are unchanged."""
    import dataclasses

    cfg = dataclasses.replace(QUICK, statistic="min")
    median = build_lut(tiny_macro(), (32, 64), QUICK, progress=False, measure_fn=FakeTimer(), **ONE)
    table = build_lut(tiny_macro(), (32, 64), cfg, progress=False, measure_fn=FakeTimer(), **ONE)
    assert table.meta["timing"]["statistic"] == "min"
    for name, v in median.fixed.items():  # fake_timing: min = 0.9 × median
        assert table.fixed[name] == pytest.approx(0.9 * v)
    for row_m, row in zip(median.table, table.table):
        for v_m, v in zip(row_m, row):
            assert v == pytest.approx(0.9 * v_m)
    # after an adapter: the difference of the mins
    ort_cfg = dataclasses.replace(cfg, backend="onnxruntime")
    plan = plan_lut(tiny_macro(), (32, 64), ort_cfg, context="adapter")
    part = next(p for p in plan.parts.values() if p.adapter)
    from squeezenas.cost.lut import assemble_table
    entries = {k: {"median_ms": 9.0, "min_ms": 5.0, "iqr_ms": 0.1, "repeats": 3} for k in plan.parts}
    entries[part.adapter] = {"median_ms": 4.0, "min_ms": 1.0, "iqr_ms": 0.1, "repeats": 3}
    t = assemble_table(plan, entries, {}, 0.0)
    assert t.meta["entries"][part.key]["min_ms"] == pytest.approx(4.0)

    def network_timer(model, shape, config):
        assert config.statistic == "min"  # networks are timed with the table's settings
        return fake_timing(table.predict(model.genotype) / 0.9 * 1.2, shape, config)  # its min = 1.2 × predicted

    report = check_lut(table, samples=4, progress=False, measure_fn=network_timer)
    assert report["statistic"] == "min" and report["rounds"] == 2  # twice the table's rounds
    for r in report["networks"]:
        assert r["measured_ms"] == pytest.approx(1.2 * r["predicted_ms"])


def test_statistic_rounds_and_bad_name():
    rounds = [{"median_ms": m, "min_ms": n, "other_cpu": 0.0} for m, n in ((3.0, 1.0), (1.0, 3.0), (2.0, 2.0))]
    from squeezenas.cost.lut import combine_rounds
    assert combine_rounds(rounds, "min_ms")["min_ms"] == 1.0  # min: the fastest call of all rounds
    assert combine_rounds(rounds, "min_ms")["round_values"] == [1.0, 3.0, 2.0]
    assert combine_rounds(rounds, "median_ms")["median_ms"] == 2.0  # median round
    assert combine_rounds(rounds)["round_values"] == [3.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="statistic"):
        TimingConfig(statistic="mode")


def test_defaults_on_a_cpu_are_the_normalised_median_of_sixteen_rounds():
    """With no statistic or rounds asked for, a CPU table keeps the fastest call of each of 16 round-robin rounds
    of 0.1 s and the speed-normalised median of the rounds, and records all three; the check times its networks
    the same way, in twice the table's rounds."""
    timer = FakeTimer()
    config = TimingConfig(threads=1, min_run_time=0.01, warmup=1, min_repeats=3)
    assert config.statistic is None and config.resolved().statistic == "min"
    table = build_lut(tiny_macro(), (32, 64), config, progress=False, measure_fn=timer)
    n_parts = len(table.meta["entries"])
    assert len(timer.calls) == 16 * n_parts and table.meta["rounds"] == 16
    assert table.meta["timing"]["statistic"] == "min" and table.meta["timing"]["threads"] == 1
    assert TimingConfig().min_run_time == 0.1 and table.meta["rounds_combined"] == "speed-normalised median of"
    stem = table.meta["entries"][table.meta["fixed_keys"]["stem"]]
    normalised = sorted(v / f for v, f in zip(stem["round_values"], stem["round_speeds"]))
    assert table.fixed["stem"] == stem["min_ms"] == pytest.approx((normalised[7] + normalised[8]) / 2)
    calls = []

    def network_timer(model, shape, config):
        calls.append(config.statistic)
        return fake_timing(table.predict(model.genotype) / 0.9, shape, config)

    report = check_lut(table, samples=3, progress=False, measure_fn=network_timer)
    assert calls == ["min"] * 96 and report["rounds"] == 32 and report["statistic"] == "min"
    from squeezenas.cost.timing import default_rounds, default_statistic

    assert default_statistic("cuda") == "median" and default_rounds(TimingConfig(device="cuda")) == 1


def test_place_in_context_shifts_a_row_of_negative_differences_and_keeps_every_sum():
    """(adapter + op) − adapter may go negative where the op changes the shape (the adapter alone hands back a
    larger output): the row is shifted so its cheapest candidate costs 1 µs and the shift becomes a fixed cost,
    so a network's sum is still the sum of its differences; rows with the identity skip are clipped instead."""
    from squeezenas.cost.lut.build import place_in_context

    diffs = {"a": -0.15, "b": -0.10, "c": 0.02, "d": 0.3, "e": -0.0001, IDENTITY_KEY: 0.0}
    cells = [["a", "b", "c"], ["d", IDENTITY_KEY, "e"], ["d", "c", "d"]]
    rows, fixed = place_in_context(cells, {"stem": "d"}, diffs.get, "adapter")
    shift = fixed[ADAPTER_CONTEXT]
    assert shift == pytest.approx(-0.151) and fixed["stem"] == 0.3
    assert rows[0] == pytest.approx([0.001, 0.051, 0.171])
    for j, key in enumerate(cells[0]):  # any choice at the shifted position: its difference, exactly
        assert rows[0][j] + shift == pytest.approx(diffs[key])
    assert rows[1] == [0.3, 0.0, 0.001] and rows[2] == [0.3, 0.02, 0.3]
    # timed alone (PyTorch backends), costs are what was measured
    assert place_in_context(cells, {}, diffs.get, "alone") == ([[diffs[k] for k in row] for row in cells], {})


def test_a_table_whose_adapters_are_slower_than_the_pairs_keeps_the_differences():
    """An onnxruntime-style build where an adapter timed alone is slower than with some of the ops after it: the
    rows without the identity skip that go below 1 µs are shifted, the shifts are the table's ADAPTER_CONTEXT
    (< 0), and the table loads."""
    from torch import nn

    from squeezenas.cost.lut.plan import plan_lut

    class SlowAdapter(FakeTimer):
        def __call__(self, module, shape, config):
            t = super().__call__(module, shape, config)
            return fake_timing(t.median_ms + 0.05, shape, config) if isinstance(module, nn.Conv2d) else t

    config = TimingConfig(backend="onnxruntime", threads=1, statistic="median", min_run_time=0.01)
    table = build_lut(tiny_macro(), (32, 64), config, progress=False, measure_fn=SlowAdapter(), max_other_cpu=None,
                      canary=False, **ONE)
    plan = plan_lut(tiny_macro(), (32, 64), config)
    entries, shifted = table.meta["entries"], 0.0
    for i, row in enumerate(plan.cells):
        if IDENTITY_KEY in row:
            assert min(c for k, c in zip(row, table.table[i]) if k != IDENTITY_KEY) >= 1e-3
            continue
        raw = [entries[k]["median_ms"] for k in row]
        if min(raw) >= 1e-3:
            assert table.table[i] == pytest.approx(raw)
            continue
        assert min(table.table[i]) == pytest.approx(1e-3)
        assert [c - table.table[i][0] for c in table.table[i]] == pytest.approx([r - raw[0] for r in raw])
        shifted += min(raw) - 1e-3
    assert table.fixed[ADAPTER_CONTEXT] == pytest.approx(shifted) and shifted < 0
    from squeezenas.cost.lut import shifted_rows

    assert shifted_rows(table) == [i for i, row in enumerate(plan.cells) if IDENTITY_KEY not in row
                                   and min(entries[k]["median_ms"] for k in row) < 1e-3] != []
    CostTable.from_dict(table.to_dict())  # validates: the one fixed cost allowed below 0
    bad = table.to_dict()
    bad["fixed"][ADAPTER_CONTEXT] = 0.5
    with pytest.raises(CostTableError, match="adapter_context"):
        CostTable.from_dict(bad)
    bad["fixed"][ADAPTER_CONTEXT] = -1e3  # the cheapest network would cost less than nothing
    with pytest.raises(CostTableError, match="cheapest network"):
        CostTable.from_dict(bad)
