"""The search loop: end to end on CPU, pruning, the α trade-off, alternating updates and warm-up, exact resume."""

from __future__ import annotations

import csv
import dataclasses
import json
import math

import pytest
import torch

from squeezenas.models.builder import build_model
from squeezenas.search.config import SearchConfig
from squeezenas.search.loop import run_search
from squeezenas.space.genotype import load_genotype
from squeezenas.utils.config import ConfigError
from squeezenas.utils.io import safe_torch_load


def test_tiny_search_end_to_end(tiny_search):
    g = load_genotype(tiny_search / "genotype.json")
    assert g.macro_name == "small" and len(g.ops) == 20
    net = build_model(g, num_classes=8).eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 64, 128)).shape == (1, 8, 64, 128)
    theta = json.loads((tiny_search / "theta.json").read_text())
    assert [e["epoch"] for e in theta["epochs"]] == [0, 1, 2, 3]
    p = torch.tensor(theta["epochs"][-1]["probabilities"])
    assert p.shape == (20, 13) and torch.allclose(p.sum(1), torch.ones(20), atol=1e-4)
    assert (tiny_search / "theta_heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # drawn by the command
    rows = list(csv.DictReader((tiny_search / "log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3] and all(float(r["seconds"]) > 0 for r in rows)
    ckpt = safe_torch_load(tiny_search / "checkpoint.pt")  # weights_only
    for key in ("supernet", "opt_w", "opt_theta", "rng", "config", "epoch", "history", "theta_history"):
        assert key in ckpt
    assert ckpt["epoch"] == 3 and "theta" in ckpt["supernet"] and "alive" in ckpt["supernet"]
    assert any((tiny_search / "tb").iterdir())
    result = json.loads((tiny_search / "result.json").read_text())
    assert result["finished"] and result["genotype"] == g.to_dict()


def test_pruning_removes_improbable_candidates_and_logs_them(tiny_search):
    ckpt = safe_torch_load(tiny_search / "checkpoint.pt")
    alive = ckpt["supernet"]["alive"]
    rows = list(csv.DictReader((tiny_search / "log.csv").open()))
    n_pruned = sum(int(r["pruned"]) for r in rows)
    assert n_pruned > 0 and int(alive.sum()) == 20 * 13 - n_pruned == int(rows[-1]["alive"])
    assert alive.any(dim=1).all()  # never the last candidate of a position
    assert len(ckpt["pruned"]) == n_pruned
    assert "pruned" in (tiny_search / "search.log").read_text()
    final = torch.tensor(json.loads((tiny_search / "theta.json").read_text())["epochs"][-1]["probabilities"])
    assert (final[~alive] == 0).all()
    g = load_genotype(tiny_search / "genotype.json")
    codes = ckpt["macro"]["candidates"]
    assert all(alive[i, codes.index(c)] for i, c in enumerate(g.ops))  # the result uses alive candidates only


def _final_state(out):
    ckpt = safe_torch_load(out / "checkpoint.pt")
    return ckpt["supernet"], ckpt["history"]


def test_resumed_search_equals_uninterrupted(tmp_path, mac_small, tiny_config):
    kw = dict(crop=(32, 64), epochs=2, steps_per_epoch=2, prune_threshold=0.07, alpha=2.0)
    full = run_search(tiny_config(tmp_path / "full", **kw), mac_small)
    first = run_search(tiny_config(tmp_path / "cut", **kw), mac_small, stop_after=1)
    assert not first.finished and first.epochs == 1 and first.pruned  # pruned before the cut
    with pytest.raises(FileExistsError):
        run_search(tiny_config(tmp_path / "cut", **kw), mac_small)
    with pytest.raises(ConfigError, match="alpha"):
        run_search(tiny_config(tmp_path / "cut", **{**kw, "alpha": 1.0}), mac_small, resume=True)
    resumed = run_search(tiny_config(tmp_path / "cut", **kw), mac_small, resume=True)
    assert resumed.finished and resumed.genotype == full.genotype and full.pruned == resumed.pruned
    theta = json.loads((tmp_path / "cut" / "theta.json").read_text())["epochs"]
    assert [e["epoch"] for e in theta] == [0, 1, 2]
    assert not (tmp_path / "full" / "theta_heatmap.png").exists()  # the library draws nothing
    a, ha = _final_state(tmp_path / "full")
    b, hb = _final_state(tmp_path / "cut")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    drop = ("seconds", "seconds_per_step", "peak_memory_gib")  # measured, not computed
    assert [{k: v for k, v in r.items() if k not in drop} for r in ha] == \
           [{k: v for k, v in r.items() if k not in drop} for r in hb]


def test_large_alpha_gives_a_cheaper_distribution(tmp_path, mac_small, tiny_config):
    kw = dict(crop=(32, 64), epochs=1, steps_per_epoch=4)
    free = run_search(tiny_config(tmp_path / "a0", alpha=0.0, **kw), mac_small)
    costly = run_search(tiny_config(tmp_path / "a50", alpha=50.0, **kw), mac_small)
    start = mac_small.fixed_total + float(mac_small.matrix().mean(1).sum())  # the uniform distribution's
    # with α = 50 every θ-step goes down the cost (Adam steps of 0.1); with α = 0 cost drifts with the CE only
    assert costly.expected_cost < 0.92 * start and costly.expected_cost < 0.95 * free.expected_cost
    assert costly.predicted_cost < free.predicted_cost


@pytest.mark.slow
def test_alternating_updates_with_warmup(tmp_path, mac_small, tiny_config):
    cfg = tiny_config(tmp_path / "alt", crop=(32, 64), epochs=2, warmup_epochs=1, steps_per_epoch=2, alternate=True,
                      holdout=0.25, data_options={"num_samples": 10, "size": (64, 128)})
    r = run_search(cfg, mac_small)
    theta = json.loads((tmp_path / "alt" / "theta.json").read_text())["epochs"]
    uniform = torch.full((20, 13), 1 / 13)
    assert torch.allclose(torch.tensor(theta[1]["probabilities"]), uniform, atol=1e-6)  # θ frozen in warm-up
    assert not torch.allclose(torch.tensor(theta[2]["probabilities"]), uniform, atol=1e-3)
    assert [h["phase"] for h in r.history] == ["warmup", "search"] and r.finished
    assert math.isfinite(r.history[-1]["ce"])


def test_resume_config_check_counts_fields_an_older_checkpoint_lacks_as_their_defaults():
    """A checkpoint written before a field existed resumes when the field is at its default (what that version
    did), and is refused with the field named when it is not."""
    from squeezenas.search.checkpoint import check_resume_config, to_dict

    cfg = SearchConfig(epochs=3)
    old = {k: v for k, v in to_dict(cfg).items() if k not in ("amp", "sync_bn")}
    check_resume_config(old, cfg, "ckpt.pt")  # amp False and sync_bn True are the defaults: same search
    with pytest.raises(ConfigError, match=r"ckpt\.pt: cannot resume with a different config \(amp: False → True\)"):
        check_resume_config(old, dataclasses.replace(cfg, amp=True), "ckpt.pt")
    with pytest.raises(ConfigError, match="epochs: 3 → 4"):
        check_resume_config(to_dict(cfg), dataclasses.replace(cfg, epochs=4), "ckpt.pt")
