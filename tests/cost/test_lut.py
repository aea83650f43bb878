"""Latency lookup tables: plan and keys, build (coverage, dedup, resume, provenance), checks, calibration math.

Timings are never compared with each other (shared, noisy CPUs); where the numbers matter a fake timer is used.
"""

from __future__ import annotations

import json
import math
import random
import warnings

import numpy as np
import pytest
import torch

from squeezenas.cost.lut import (IDENTITY_KEY, LutError, build_lut, check_device, check_lut, error_summary,
                                 fit_calibration, kendall_tau, leave_one_out, load_lut, output_sizes, partial_path,
                                 plan_lut, spanning_genotypes)
from squeezenas.cost.tables import CostTable, CostTableError
from squeezenas.cost.timing import Timing, TimingConfig
from squeezenas.models import build_model
from squeezenas.space import DecoderSpec, MacroArch, Stage, get_macro, random_genotype

TINY_CANDIDATES = ("k3_d1_e1_g2", "k3_d2_e3_g1", "k5_d1_e6_g1", "skip")
QUICK = TimingConfig(threads=1, min_run_time=0.01, warmup=1, min_repeats=3)


def tiny_macro(**kw) -> MacroArch:
    """Stride-2 (factorized-reduce skip), channel-change (1×1 skip) and identity positions; both decoders."""
    args = dict(name="tiny", stem_channels=8, stages=(Stage(8, 2, 2), Stage(16, 2, 2), Stage(24, 1, 1)),
                low_level_position=1, last_channels=32, decoder=DecoderSpec("lr_aspp", 16), candidates=TINY_CANDIDATES)
    return MacroArch(**{**args, **kw})


class FakeTimer:
    """Counts calls; a part's 'latency' is a deterministic function of its input shape and parameter count."""

    def __init__(self, fail_after: int | None = None):
        self.calls: list[tuple[int, ...]] = []
        self.fail_after = fail_after

    def __call__(self, module, shape, config: TimingConfig) -> Timing:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("simulated kill")
        self.calls.append(tuple(shape))
        return fake_timing(0.01 + sum(p.numel() for p in module.parameters()) * math.prod(shape[1:]) * 1e-7,
                           shape, config)


def fake_timing(ms: float, shape, config: TimingConfig) -> Timing:
    return Timing(median_ms=ms, iqr_ms=ms / 10, p10_ms=ms * 0.95, p90_ms=ms * 1.1, mean_ms=ms, min_ms=ms * 0.9,
                  repeats=7, calls_per_repeat=1, backend=config.backend, device=config.device, dtype=config.dtype,
                  threads=config.threads or 1, batch=config.batch, channels_last=config.channels_last,
                  input_shape=tuple(shape))


def test_plan_keys_dedup_identity_and_shapes():
    macro = get_macro("small")
    plan = plan_lut(macro, (128, 256), QUICK)
    j = macro.candidates.index("skip")
    # positions 1-3 share shapes: one key per candidate for all three; identity skip there, not at stride 2
    assert plan.cells[1] == plan.cells[2] == plan.cells[3] and plan.cells[1][j] == IDENTITY_KEY
    assert plan.cells[0][j] != IDENTITY_KEY and plan.cells[0] != plan.cells[1]
    assert plan.cells[12][j] != IDENTITY_KEY  # 40 → 48 channels, stride 1: 1×1 skip
    assert plan.cells[0][3] == "op=k3_d1_e6_g1|cin=16|cout=16|s=2|in=1x16x64x128|float32|nchw|eager"
    assert set(plan.fixed) == {"stem", "last_conv", "decoder"}
    assert plan.fixed["decoder"].startswith("decoder=lr_aspp|ch=128|high=256x8x16|low=24x16x32|out=128x256|classes=19")
    keys = {k for row in plan.cells for k in row} - {IDENTITY_KEY}
    assert keys | set(plan.fixed.values()) == set(plan.parts)
    # another backend, dtype or layout is another key
    other = plan_lut(macro, (128, 256), TimingConfig(backend="onnxruntime"))
    assert other.cells[0][3].endswith("|float32|nchw|onnxruntime")
    assert plan_lut(macro, (128, 256), TimingConfig(dtype="bfloat16", channels_last=True)).cells[0][3].endswith(
        "|bfloat16|nhwc|eager")


def test_onnxruntime_ops_are_timed_after_an_adapter():
    """onnxruntime: each op is timed after a 1×1 depthwise adapter, and the adapter alone is subtracted."""
    macro = tiny_macro()
    ort_config = TimingConfig(backend="onnxruntime", threads=1)
    plan = plan_lut(macro, (32, 64), ort_config)
    assert plan.context == "adapter" and plan_lut(macro, (32, 64), QUICK).context == "alone"
    adapters = {k for k, p in plan.parts.items() if p.kind == "adapter"}
    assert len(adapters) == len({tuple(p.input_shape) for p in plan.parts.values() if p.kind == "op"})
    op = plan.parts[plan.cells[0][0]]
    assert op.adapter in adapters and op.adapter.startswith("adapter=dw1x1|c=8|in=1x8x16x32|")
    module = op.build()
    assert isinstance(module[0], torch.nn.Conv2d) and module[0].groups == 8 and module[0].kernel_size == (1, 1)
    timer = FakeTimer()
    table = build_lut(macro, (32, 64), ort_config, progress=False, measure_fn=timer)
    assert len(timer.calls) == len(plan.parts)
    entry = table.meta["entries"][op.key]
    adapter = table.meta["entries"][op.adapter]
    assert table.table[0][0] == entry["median_ms"] == pytest.approx(entry["with_adapter"]["median_ms"]
                                                                    - adapter["median_ms"])
    assert table.meta["context"] == "adapter"
    assert table.fixed["stem"] == table.meta["entries"][plan.fixed["stem"]]["median_ms"]  # fixed parts alone
    with pytest.raises(ValueError, match="context"):
        plan_lut(macro, (32, 64), ort_config, context="inside")


@pytest.mark.parametrize("space", ["small", "large", "xlarge"])
def test_output_sizes_match_the_network(space):
    macro = get_macro(space)
    net = build_model(macro, [macro.candidates[0]] * macro.num_positions).eval()
    with torch.no_grad():
        feats = net.encoder.features(torch.zeros(1, 3, 72, 100))
    assert [tuple(f.shape[-2:]) for f in feats] == output_sizes(macro, 72, 100)


@pytest.mark.parametrize("decoder", [DecoderSpec("lr_aspp", 16), DecoderSpec("aspp", 16)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_packed_decoder_equals_the_network_decoder(decoder, channels_last):
    macro = tiny_macro(decoder=decoder)
    plan = plan_lut(macro, (40, 72), TimingConfig(channels_last=channels_last), num_classes=5)
    part = plan.parts[plan.fixed["decoder"]]
    net = build_model(macro, ["k3_d1_e1_g2"] * macro.num_positions, num_classes=5).eval()
    x = torch.rand(1, 3, 40, 72)
    packed_dec = part.build(channels_last)
    packed_dec.decoder.load_state_dict(net.decoder.state_dict())
    with torch.no_grad():
        high, low = net.encoder(x)
        packed = torch.zeros(part.input_shape)
        perm = (0, 2, 3, 1) if channels_last else (0, 1, 2, 3)
        offset = packed_dec.offset
        packed.view(-1)[:low.numel()] = low.permute(*perm).reshape(-1)
        packed.view(-1)[offset:offset + high.numel()] = high.permute(*perm).reshape(-1)
        torch.testing.assert_close(packed_dec(packed), net(x))


def test_build_covers_every_cell_and_times_each_shape_once(tmp_path):
    macro = tiny_macro()
    timer = FakeTimer()
    table = build_lut(macro, (32, 64), QUICK, out=tmp_path / "t.json", progress=False, measure_fn=timer)
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
    g = spanning_genotypes(loaded, 1, 0)[0][1]
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
    assert all(v > 0 for v in table.fixed.values())


def test_onnxruntime_parts_and_networks_are_exported_once(monkeypatch):
    """With the real timer, every round and retry of a part (and of a check's network) times one ONNX export."""
    import squeezenas.cost.lut as lut

    exports, timed = [], []
    real_export, real_measure = lut.export_for_timing, lut.measure

    def counting_export(module, shape, config, directory, name="module"):
        exports.append(name)
        return real_export(module, shape, config, directory, name)

    def recording_measure(target, shape, config):
        timed.append(target)
        return real_measure(target, shape, config)

    monkeypatch.setattr(lut, "export_for_timing", counting_export)
    monkeypatch.setattr(lut, "measure", recording_measure)
    macro = tiny_macro(stages=(Stage(8, 1, 2), Stage(16, 1, 2)), low_level_position=0,
                       candidates=("k3_d1_e1_g2", "skip"))
    config = TimingConfig(backend="onnxruntime", onnx_exporter="torchscript", threads=1, min_run_time=0.01,
                          warmup=1, min_repeats=3)
    table = build_lut(macro, (32, 32), config, progress=False, max_other_cpu=None, rounds=2)
    n_parts = len(plan_lut(macro, (32, 32), config).parts)
    assert len(exports) == n_parts and len(timed) == 2 * n_parts
    assert all(isinstance(t, lut.OnnxModel) for t in timed)
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
        build_lut(macro, (32, 64), QUICK, out=out, progress=False, measure_fn=FakeTimer(fail_after=5))
    partial = partial_path(out)
    assert partial.is_file() and not out.exists()
    assert len(json.loads(partial.read_text())["entries"]) == 5
    # other settings: refused, naming the field; the partial is kept
    with pytest.raises(LutError, match=r"timing\.min_run_time"):
        build_lut(macro, (32, 64), TimingConfig(threads=1, min_run_time=0.02), out=out, progress=False,
                  measure_fn=FakeTimer())
    with pytest.raises(LutError, match="input_size"):
        build_lut(macro, (32, 32), QUICK, out=out, progress=False, measure_fn=FakeTimer())
    timer = FakeTimer()
    table = build_lut(macro, (32, 64), QUICK, out=out, progress=False, measure_fn=timer)
    assert len(timer.calls) == n_parts - 5 and not partial.exists()
    full = build_lut(macro, (32, 64), QUICK, progress=False, measure_fn=FakeTimer())
    assert table.table == full.table and table.fixed == full.fixed


def test_other_space_or_resolution_is_an_error_other_device_a_warning(tmp_path):
    macro = tiny_macro()
    build_lut(macro, (32, 64), QUICK, out=tmp_path / "t.json", progress=False, measure_fn=FakeTimer())
    with pytest.raises(CostTableError, match="not 'small'"):
        load_lut(tmp_path / "t.json", get_macro("small"), (32, 64))
    with pytest.raises(CostTableError, match="32×64, not 64×64"):
        load_lut(tmp_path / "t.json", macro, (64, 64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = load_lut(tmp_path / "t.json", macro, (32, 64), warn_device=True)  # same machine: no warning
    table.meta["fingerprint"] = {**table.meta["fingerprint"], "cpu_model": "Some Phone SoC", "torch": "1.0"}
    with pytest.warns(UserWarning, match=r"another device: cpu_model: 'Some Phone SoC' != .*; torch: '1.0' != "):
        diff = check_device(table)
    assert len(diff) == 2
    # a MAC table is not a latency table
    from squeezenas.cost.tables import mac_table

    mac_table(macro, (32, 64)).save(tmp_path / "m.json")
    with pytest.raises(LutError, match="not a latency table"):
        load_lut(tmp_path / "m.json")


def test_calibrated_predict_uses_stored_calibration():
    macro = tiny_macro()
    table = build_lut(macro, (32, 64), QUICK, progress=False, measure_fn=FakeTimer())
    g = spanning_genotypes(table, 1, 3)[0][1]
    raw = table.predict(g)
    assert table.predict(g, calibrated=True) == raw  # no calibration yet
    table.meta["calibration"] = {"overhead_ms": 0.5, "scale": 1.2}
    assert table.predict(g, calibrated=True) == pytest.approx(0.5 + 1.2 * raw)
    assert CostTable.from_dict(json.loads(json.dumps(table.to_dict()))).predict(g, calibrated=True) == \
        pytest.approx(0.5 + 1.2 * raw)


def test_spanning_genotypes_span_the_range():
    from squeezenas.cost.tables import mac_table

    table = mac_table("small", (128, 256))  # any cost table orders the candidates
    nets = spanning_genotypes(table, 40, seed=1)
    ratios = [r for r, _ in nets]
    assert ratios == sorted(ratios) and 0 <= ratios[0] < 0.025 and 0.975 < ratios[-1] <= 1
    costs = [table.predict(g) for _, g in nets]
    uniform = [table.predict(random_genotype("small", seed)) for seed in range(40)]
    assert np.std(costs) > 1.5 * np.std(uniform)  # uniform draws cluster around the mean
    assert min(costs) < min(uniform) and max(costs) > max(uniform)
    assert kendall_tau(ratios, costs) > 0.7
    assert [g.ops for _, g in spanning_genotypes(table, 40, seed=1)] == [g.ops for _, g in nets]


def test_fit_calibration_recovers_overhead_and_scale_exactly():
    pred = [1.0, 2.5, 4.0, 7.5, 10.0]
    meas = [3.0 + 1.25 * p for p in pred]
    overhead, scale = fit_calibration(pred, meas)
    assert overhead == pytest.approx(3.0, abs=1e-9) and scale == pytest.approx(1.25, abs=1e-12)
    assert leave_one_out(pred, meas) == pytest.approx(meas)
    assert fit_calibration([2.0], [3.0]) == (1.0, 1.0)  # one point: overhead only
    assert fit_calibration([2.0, 2.0], [3.0, 5.0]) == (2.0, 1.0)  # no spread in predictions: overhead only


def test_kendall_tau_known_cases():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)  # one discordant pair of six
    # with ties (tau-b): scipy.stats.kendalltau([1, 2, 2, 3], [1, 2, 3, 3]) = 0.8
    assert kendall_tau([1, 2, 2, 3], [1, 2, 3, 3]) == pytest.approx(0.8)
    assert math.isnan(kendall_tau([1, 1], [2, 2]))
    rng = random.Random(0)
    a = [rng.random() for _ in range(30)]
    b = [rng.random() for _ in range(30)]
    assert kendall_tau(a, b) == pytest.approx(kendall_tau(b, a))


def test_error_summary():
    s = error_summary([11.0, 18.0], [10.0, 20.0])
    assert s["mape"] == pytest.approx(10.0) and s["max_abs_pct_error"] == pytest.approx(10.0)
    assert s["max_abs_error_ms"] == pytest.approx(2.0) and s["mean_signed_pct_error"] == pytest.approx(0.0)
    assert s["kendall_tau"] == 1.0


def test_check_reports_errors_before_and_after_calibration():
    """With a fake timer whose networks cost overhead + scale × (sum of parts), calibration is exact."""
    macro = tiny_macro()
    table = build_lut(macro, (32, 64), QUICK, progress=False, measure_fn=FakeTimer())

    def network_timer(model, shape, config):
        return fake_timing(2.0 + 1.5 * table.predict(model.genotype), shape, config)

    report = check_lut(table, samples=8, seed=0, calibrate=True, progress=False, measure_fn=network_timer)
    for key in ("mape", "kendall_tau", "raw", "calibrated", "calibration_fit", "networks", "n"):
        assert key in report
    assert report["n"] == 8 and len(report["networks"]) == 8 and report["mape"] > 1
    assert report["calibrated"]["mape"] == pytest.approx(0, abs=1e-6)
    assert report["kendall_tau"] == pytest.approx(1.0)
    assert table.calibration["overhead_ms"] == pytest.approx(2.0) and table.calibration["scale"] == pytest.approx(1.5)
    row = report["networks"][0]
    for key in ("genotype", "mix_ratio", "predicted_ms", "measured_ms", "calibrated_loo_ms", "error_pct"):
        assert key in row
    again = check_lut(table, samples=4, seed=1, progress=False, measure_fn=network_timer)
    assert again["stored_calibration"]["mape"] == pytest.approx(0, abs=1e-6)
    json.dumps(report)


def test_check_with_the_real_timer_runs():
    table = build_lut(tiny_macro(), (32, 64), QUICK, progress=False, max_other_cpu=None)
    report = check_lut(table, samples=3, seed=0, progress=False, max_other_cpu=None)
    assert report["n"] == 3 and all(r["measured_ms"] > 0 for r in report["networks"])
    assert report["threads"] == 1 and report["backend"] == "eager"


def test_busy_cpu_warning(monkeypatch):
    from squeezenas.cost import lut

    monkeypatch.setattr(lut.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(lut.os, "getloadavg", lambda: (1.7, 1.0, 0.5))
    with pytest.warns(UserWarning, match="load average 1.70 on 2 logical cores"):
        assert lut.warn_if_busy(TimingConfig(threads=2)) == (1.7, 1.0, 0.5)
    monkeypatch.setattr(lut.os, "getloadavg", lambda: (0.2, 1.0, 0.5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lut.warn_if_busy(TimingConfig(threads=2))
        monkeypatch.setattr(lut.os, "getloadavg", lambda: (1.2, 1.0, 0.5))
        lut.warn_if_busy(TimingConfig(threads=1))  # one core is free
        lut.warn_if_busy(TimingConfig(device="cuda", threads=2))


def test_contended_measurements_are_repeated(monkeypatch):
    """A part measured while other processes held the CPUs is measured again; the entry records it."""
    from squeezenas.cost import lut

    shares = iter([0.6, 0.3] + [0.0] * 1000)  # the first part: two contended attempts, then a quiet one

    class FakeMonitor:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.other_share = next(shares)

    monkeypatch.setattr(lut, "CpuMonitor", FakeMonitor)
    monkeypatch.setattr(lut, "_wait_for_quiet", lambda share, timeout: None)
    timer = FakeTimer()
    table = build_lut(tiny_macro(), (32, 64), QUICK, progress=False, measure_fn=timer)
    first = next(iter(table.meta["entries"].values()))
    assert first["attempts"] == 3 and first["other_cpu"] == 0.0
    assert len(timer.calls) == len(table.meta["entries"]) + 2
    c = table.meta["contention"]
    assert c["remeasured"] == 1 and c["still_contended"] == [] and c["worst_other_cpu"] == 0.0
    shares = iter([0.9] * 1000)  # never quiet: gives up after the retries, and says so
    table = build_lut(tiny_macro(), (32, 64), QUICK, progress=False, measure_fn=FakeTimer(), retries=1)
    assert len(table.meta["contention"]["still_contended"]) == len(table.meta["entries"])


def test_cpu_monitor_sees_other_processes():
    import subprocess
    import sys
    import time

    from squeezenas.cost.lut import CpuMonitor

    if not CpuMonitor._STAT.is_file():
        pytest.skip("needs /proc")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        with CpuMonitor() as m:
            time.sleep(0.6)
    finally:
        busy.kill()
        busy.wait()
    import os

    assert m.other_share is not None and m.other_share > 0.5 / (os.cpu_count() or 1)  # about one busy core


def test_calibration_never_reverses_the_table_order():
    from squeezenas.cost.lut import fit_calibration

    overhead, scale = fit_calibration([10.0, 20.0, 30.0], [50.0, 40.0, 30.0])  # noise: measured falls as predicted rises
    assert overhead == 0.0 and scale > 0
    assert fit_calibration([10.0, 20.0, 30.0], [13.0, 23.0, 33.0]) == pytest.approx((3.0, 1.0))


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
    base = build_lut(macro, (32, 64), QUICK, progress=False, measure_fn=FakeTimer())
    key = plan_lut(macro, (32, 64), QUICK).fixed["stem"]
    entry = table.meta["entries"][key]
    assert entry["rounds"] == 3 and len(entry["round_medians"]) == 3
    assert entry["median_ms"] == sorted(entry["round_medians"])[1]
    # the stem's rounds: 1x and 2x before the kill, 1x again after it (a fresh timer): the median round is 1x
    assert sorted(entry["round_medians"]) == pytest.approx([base.fixed["stem"]] * 2 + [2 * base.fixed["stem"]])
    assert table.fixed["stem"] == pytest.approx(base.fixed["stem"])
    with pytest.raises(ValueError, match="rounds"):
        build_lut(macro, (32, 64), QUICK, progress=False, measure_fn=FakeTimer(), rounds=0)


def test_check_rounds():
    table = build_lut(tiny_macro(), (32, 64), QUICK, progress=False, measure_fn=FakeTimer())
    calls = []

    def network_timer(model, shape, config):
        calls.append(1)
        return fake_timing(table.predict(model.genotype) * (1 + 0.1 * (len(calls) % 3)), shape, config)

    report = check_lut(table, samples=4, rounds=3, progress=False, measure_fn=network_timer)
    assert len(calls) == 12 and report["rounds"] == 3
    assert all(len(r["round_medians"]) == 3 for r in report["networks"])


def test_statistic_min_used_by_table_adapter_and_check():
    """With statistic="min" the table holds each part's min (ops after an adapter: min minus min), and the check
    compares the networks' min with it; median tables are unchanged."""
    import dataclasses

    cfg = dataclasses.replace(QUICK, statistic="min")
    median = build_lut(tiny_macro(), (32, 64), QUICK, progress=False, measure_fn=FakeTimer())
    table = build_lut(tiny_macro(), (32, 64), cfg, progress=False, measure_fn=FakeTimer())
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
    assert report["statistic"] == "min"
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
