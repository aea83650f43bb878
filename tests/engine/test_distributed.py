"""Two CPU processes under torchrun (gloo): identical weights on both ranks, one reduced confusion matrix."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from squeezenas.engine.distributed import ShardSampler
from squeezenas.engine.evaluate import evaluate
from squeezenas.engine.loaders import build_eval_dataset, build_eval_loader
from squeezenas.models import get_model

WORKER = textwrap.dedent("""
    import os, sys
    import torch
    torch.set_num_threads(1)
    from squeezenas.engine.checkpoint import cpu_state_dict
    from squeezenas.engine.config import TrainConfig
    from squeezenas.engine.train import train

    out, results = sys.argv[1], sys.argv[2]
    seen = {}

    def on_epoch_end(epoch, model, row):
        seen.update(state=cpu_state_dict(model), metrics=row["metrics"])

    cfg = TrainConfig(model="squeezenas_lat_small", dataset="synthetic", data_options={"num_samples": 9, "size": [32, 64]},
                      out=out, epochs=1, batch_size=2, crop=(32, 64), workers=0, device="cpu", progress=False,
                      max_steps_per_epoch=2)
    summary = train(cfg, on_epoch_end=on_epoch_end)
    m = seen["metrics"]
    torch.save({"state": seen["state"], "confusion": m["confusion"], "num_images": m["num_images"],
                "steps": summary["steps"]}, os.path.join(results, f"rank{os.environ['RANK']}.pt"))
""")


def test_shard_sampler_covers_every_index_once():
    shards = [list(ShardSampler(9, r, 2)) for r in range(2)]
    assert sorted(shards[0] + shards[1]) == list(range(9)) and [len(ShardSampler(9, r, 2)) for r in range(2)] == [5, 4]


@pytest.mark.slow
def test_two_gloo_processes(tmp_path: Path):
    script, out, results = tmp_path / "worker.py", tmp_path / "run", tmp_path / "results"
    script.write_text(WORKER)
    results.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(out), str(results)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0, r1 = (torch.load(results / f"rank{r}.pt", weights_only=True) for r in range(2))

    assert r0["steps"] == r1["steps"] == 2
    for key, value in r0["state"].items():  # parameters and BN statistics alike
        assert torch.equal(value, r1["state"][key]), key
    assert torch.equal(r0["confusion"], r1["confusion"]) and r0["num_images"] == r1["num_images"] == 9

    # the reduced matrix is the one a single process computes over the whole split with the saved weights
    ckpt = torch.load(out / "last.pt", weights_only=True)
    model = get_model("squeezenas_lat_small", num_classes=8)
    model.load_state_dict(ckpt["model"])
    for key, value in r0["state"].items():
        assert torch.equal(value, ckpt["model"][key]), key
    torch.set_num_threads(1)
    metrics = evaluate(model, build_eval_loader(build_eval_dataset("synthetic", None, "val", num_samples=9, size=(32, 64)),
                                                workers=0), 8, "cpu")
    assert torch.equal(metrics["confusion"], r0["confusion"])
    assert (out / "train.log").read_text().count("epoch 1:") == 1  # only rank 0 logs
    assert "2 process(es)" in (out / "train.log").read_text()
