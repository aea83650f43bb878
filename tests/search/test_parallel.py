"""The search and the sample step on two CPU processes under torchrun (gloo): θ and every weight identical on
both ranks, pruning and the target's projection the same, a kill between epochs resumed exactly, a sharded
sample equal to one process; against one process with the same global batch and seed, what can be equal is.

Why a 2-process search cannot equal a 1-process one bit for bit: each rank's BatchNorm normalises with the
statistics of its own B/N images (SyncBatchNorm needs GPUs, and the fused mixture computes its statistics itself),
each rank's augmentation and Gumbel noise come from its own generator (independent draws, not the single
process's stream cut in pieces), and gradients are summed in another order. With BatchNorm in eval mode and the
same per-sample noise, one step does agree up to rounding (``test_one_step_equals_one_process``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from squeezenas.engine.distributed import DistInfo, GlobalBatchShards
from squeezenas.engine.loaders import batches, epoch_seed
from squeezenas.search.config import SearchConfig
from squeezenas.search.data import build_data, check_world
from squeezenas.search.loop import run_search
from squeezenas.search.parallel import Replicas, rank_seed
from squeezenas.search.sample import sample_and_select
from squeezenas.utils.config import ConfigError

# Shared by the workers and this process: the searches, and one step of the search's update with fixed inputs.
COMMON = textwrap.dedent("""
    import torch
    from squeezenas.cost.tables import mac_table
    from squeezenas.search.config import SampleConfig, SearchConfig

    TABLE = mac_table("small", (64, 128), num_classes=8)

    def search_config(out, supernet):
        extra = {"target": 0.014} if supernet == "path" else {"alpha": 2.0}  # path: the target's projection
        return SearchConfig(space="small", dataset="synthetic", data_options={"num_samples": 8, "size": [32, 64]},
                            crop=(32, 64), scale=(1.0, 1.0), size=(64, 128), batch_size=4, epochs=2,
                            steps_per_epoch=2, workers=0, theta_lr=0.1, prune_threshold=0.07, warmup_epochs=0,
                            cost_ramp=0.0, supernet=supernet, progress=False, tensorboard=False, device="cpu",
                            out=str(out), **extra)

    def sample_config(search):
        return SampleConfig(search=str(search), n=5, bn_batches=1, val_limit=3, budget=1.0, budget_kind="gmacs",
                            finalists=2, rescore_limit=5, workers=0, progress=False, device="cpu")

    def one_step(rank, world):
        '''The weights and θ after one joint step on a fixed global batch of 4 with fixed per-sample noise,
        BatchNorm in eval mode (a sample's output then does not depend on the others in its batch).'''
        from squeezenas.engine.distributed import DistInfo
        from squeezenas.search.checkpoint import SearchState
        from squeezenas.search.loop import _joint_step
        from squeezenas.search.objective import CostModel
        from squeezenas.search.parallel import Replicas
        from squeezenas.supernet import SuperNet

        cfg = search_config("unused", "mixture")
        g = torch.Generator().manual_seed(1)
        image, mask = torch.randn(4, 3, 32, 64, generator=g), torch.randint(0, 8, (4, 32, 64), generator=g)
        torch.manual_seed(0)
        net = SuperNet("small", 8, split_theta=True)
        noise = net.gumbel_noise(4, torch.Generator().manual_seed(2))
        share = slice(rank * 4 // world, (rank + 1) * 4 // world)
        net.gumbel_noise = lambda n, generator=None: noise[share]
        st = SearchState.start(net, cfg, 2.0, None)
        rep = Replicas(DistInfo(rank, world), torch.device("cpu"))
        rep.wrap(net)
        net.eval()
        _joint_step(st, cfg, CostModel.from_table(TABLE), rep, (image[share], mask[share]), 5.0, False, 2.0)
        return {k: v.detach().clone() for k, v in net.state_dict().items()}
""")

WORKER = COMMON + textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    torch.set_num_threads(1)
    from squeezenas.engine.distributed import cleanup_distributed, init_distributed
    from squeezenas.search.loop import run_search
    from squeezenas.search.sample import sample_and_select

    phase, root = sys.argv[1], Path(sys.argv[2])
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])

    def record(name):
        def on_epoch(row, net):
            state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            torch.save(state, root / f"{name}.epoch{row['epoch']}.rank{rank}.pt")
        return on_epoch

    def kill(row, net):  # the whole job dies between epoch 1 and 2, its checkpoint written
        os.kill(os.getpid(), signal.SIGKILL)

    if phase == "first":
        init_distributed(torch.device("cpu"))
        torch.save(one_step(rank, world), root / f"step.rank{rank}.pt")
        cleanup_distributed()
        for mode in ("mixture", "path"):
            run_search(search_config(root / f"full_{mode}", mode), TABLE, on_epoch=record(f"full_{mode}"))
        run_search(search_config(root / "cut_mixture", "mixture"), TABLE, stop_after=1)
        run_search(search_config(root / "cut_path", "path"), TABLE, on_epoch=kill)
    else:
        for mode in ("mixture", "path"):
            run_search(search_config(root / f"cut_{mode}", mode), TABLE, resume=True, on_epoch=record(f"cut_{mode}"))
        r = sample_and_select(sample_config(root / "full_mixture"))
        torch.save({"samples": r.samples, "chosen": r.chosen}, root / f"sample.rank{rank}.pt")
""")


def _torchrun(script: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), *args], env=env, capture_output=True, text=True, timeout=600)


def _common() -> dict:
    ns: dict = {}
    exec(COMMON, ns)  # noqa: S102 -- the test's own source, shared with the workers
    return ns


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Both launches: searches (one killed after epoch 1), then the resumptions and a sharded sample; one process
    samples a copy of the same search."""
    root = tmp_path_factory.mktemp("parallel")
    script = root / "worker.py"
    script.write_text(WORKER)
    first = _torchrun(script, "first", str(root))
    assert first.returncode != 0, "the job was to be killed after epoch 1 of cut_path"
    assert (root / "full_path" / "result.json").is_file(), first.stdout[-3000:] + first.stderr[-3000:]
    shutil.copytree(root / "full_mixture", root / "one_process_sample")
    second = _torchrun(script, "second", str(root))
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    return root


def _load(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def _assert_equal_states(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("mode", ["mixture", "path"])
def test_every_rank_holds_the_same_supernet(runs, mode):
    """θ, θ_cost, the alive mask (pruning), every weight and BatchNorm statistic: the same bits on both ranks
    after every epoch, and what rank 0 saved; only rank 0 wrote, and world_size is recorded."""
    for epoch in (1, 2):
        r0, r1 = (_load(runs / f"full_{mode}.epoch{epoch}.rank{r}.pt") for r in range(2))
        _assert_equal_states(r0, r1)
    assert not r0["alive"].all()  # pruning happened (and the DDP wrapper was rebuilt after it)
    _assert_equal_states(r0, _load(runs / f"full_{mode}" / "checkpoint.pt")["supernet"])
    out = runs / f"full_{mode}"
    assert json.loads((out / "config.json").read_text())["world_size"] == 2
    result = json.loads((out / "result.json").read_text())
    assert result["world_size"] == 2 and result["finished"]
    assert (out / "search.log").read_text().count("epoch 2/2:") == 1  # one writer
    assert "× 2 processes" in (out / "search.log").read_text()


def test_the_target_is_held_on_every_rank(runs):
    """The path search projects θ_cost onto the target after every θ-step and after every pruning, on each rank
    from identical state (θ_cost is, above): the result meets the target."""
    result = json.loads((runs / "full_path" / "result.json").read_text())
    assert result["expected_cost"] == pytest.approx(0.014, rel=1e-4) and result["lam_total"] != 0
    assert result["pruned"]  # pruning happened, and the target still holds after it


@pytest.mark.parametrize("mode", ["mixture", "path"])
def test_a_killed_job_resumes_exactly(runs, mode):
    """cut_path was killed (SIGKILL, both ranks) after epoch 1, cut_mixture stopped there; resumed under
    torchrun, both end bit for bit where the uninterrupted runs ended."""
    for r in range(2):
        _assert_equal_states(_load(runs / f"cut_{mode}.epoch2.rank{r}.pt"), _load(runs / f"full_{mode}.epoch2.rank{r}.pt"))
    full, cut = (json.loads((runs / d / "result.json").read_text()) for d in (f"full_{mode}", f"cut_{mode}"))
    assert cut["genotype"] == full["genotype"] and cut["pruned"] == full["pruned"]
    measured = ("second", "memory")
    rows = [[{k: v for k, v in row.items() if not any(m in k for m in measured)}
             for row in _load(runs / d / "checkpoint.pt")["history"]] for d in (f"full_{mode}", f"cut_{mode}")]
    assert rows[0] == rows[1]


def test_one_step_equals_one_process(runs):
    """Gradients averaged by DDP (weights) and by the θ all-reduce give the update of one process on the whole
    global batch, up to rounding, once BatchNorm does not depend on the batch."""
    one = _common()["one_step"](0, 1)
    two = [_load(runs / f"step.rank{r}.pt") for r in range(2)]
    _assert_equal_states(two[0], two[1])
    assert not torch.equal(one["theta"], torch.zeros_like(one["theta"]))
    for k, v in one.items():
        torch.testing.assert_close(two[0][k], v, rtol=1e-5, atol=1e-6, msg=k)


def test_one_process_with_the_same_global_batch(runs, tmp_path):
    """The same schedule (steps, learning rate, temperature), the same cost constraint met, pruning from the same
    threshold; the genotype may differ (see the module's docstring)."""
    common = _common()
    for mode in ("mixture", "path"):
        one = run_search(common["search_config"](tmp_path / mode, mode), common["TABLE"])
        two = _load(runs / f"full_{mode}" / "checkpoint.pt")["history"]
        for a, b in zip(one.history, two):
            for key in ("steps", "lr", "temperature", "phase", "target", "alpha"):
                assert a[key] == b[key], (mode, key)
        assert one.world_size == 1 and json.loads((tmp_path / mode / "result.json").read_text())["world_size"] == 1
    assert one.expected_cost == pytest.approx(0.014, rel=1e-4)  # the path runs: the target, in both


def test_the_sharded_sample_equals_one_process(runs):
    """Paths shared out over 2 processes (re-estimation and scoring), the finalists scored on shards of the
    split: the same scores, front, finalists and choice as one process; pareto.json records world_size."""
    one = sample_and_select(_common()["sample_config"](runs / "one_process_sample"))
    two = _load(runs / "sample.rank0.pt")
    assert _load(runs / "sample.rank1.pt") == two  # every rank returns the result
    assert two["samples"] == one.samples and two["chosen"] == one.chosen
    reports = [json.loads((runs / d / "pareto.json").read_text()) for d in ("full_mixture", "one_process_sample")]
    assert reports[0]["world_size"] == 2 and reports[1]["world_size"] == 1
    assert reports[0]["second_look"]["finalists"] == reports[1]["second_look"]["finalists"]
    assert all("miou_rescored" in reports[0]["samples"][i] for i in reports[0]["second_look"]["finalists"])
    cached = (runs / "full_mixture" / "sample_cache.jsonl").read_text().count("\n")
    assert cached == (runs / "one_process_sample" / "sample_cache.jsonl").read_text().count("\n") == len(one.samples)


# --- no process group needed ------------------------------------------------------------------------------------


class _Indexed(torch.utils.data.Dataset):
    """Sample i is an image filled with i (no augmentation: only the order is compared)."""

    def __len__(self) -> int:
        return 12

    def __getitem__(self, i: int):
        return torch.full((3, 4, 4), float(i)), torch.zeros(4, 4, dtype=torch.long)


def test_the_ranks_together_see_the_global_batches(tiny_config, tmp_path):
    """Same order on every rank, each its slice: the ranks' batches concatenated are one process's batches."""
    cfg = tiny_config(tmp_path / "run", batch_size=4)
    one = build_data(cfg, _Indexed(), 8).loader
    Replicas(DistInfo(0, 1), torch.device("cpu")).seed_epoch(one, 3, cfg.seed)
    expected = [image[:, 0, 0, 0].tolist() for image, _ in batches(one)]
    shards = []
    for rank in range(2):
        rep = Replicas(DistInfo(rank, 2), torch.device("cpu"))
        loader = rep.shard(build_data(cfg, _Indexed(), 8).loader, cfg.batch_size)
        rep.seed_epoch(loader, 3, cfg.seed)
        shards.append([image[:, 0, 0, 0].tolist() for image, _ in batches(loader)])
    assert len(expected) == len(shards[0]) == len(shards[1]) == 3
    assert [a + b for a, b in zip(*shards)] == expected
    assert sum(expected, []) != sorted(sum(expected, []))  # shuffled


def test_global_batch_shards_and_rank_seeds():
    sampler = list(range(10))
    parts = [list(GlobalBatchShards(sampler, 4, r, 2)) for r in range(2)]
    assert parts == [[[0, 1], [4, 5]], [[2, 3], [6, 7]]] and len(GlobalBatchShards(sampler, 4, 0, 2)) == 2
    assert rank_seed(7, 3, 0) == epoch_seed(7, 3)  # rank 0 draws what one process draws
    low = {rank_seed(7, 3, r) % 2**32 for r in range(8)} | {epoch_seed(7, 3, 1) % 2**32}
    assert len(low) == 9  # the CPU generator reads the low 32 bits: every stream differs there


def test_the_global_batch_must_split_evenly():
    cfg = SearchConfig(batch_size=6)
    check_world(cfg, DistInfo(0, 3))
    for world in (4, 5):
        with pytest.raises(ConfigError, match="batch_size 6 is the global batch"):
            check_world(cfg, DistInfo(0, world))


def test_amp_runs_the_search(tiny_config, tmp_path, mac_small):
    """--amp: autocast around the loss (bfloat16 here on CPU; float16 with gradient scaling on CUDA)."""
    r = run_search(tiny_config(tmp_path / "amp", crop=(32, 64), epochs=1, steps_per_epoch=1, amp=True), mac_small)
    assert r.finished and all(torch.isfinite(torch.tensor(r.probabilities)).flatten())
    assert r.history[-1]["peak_memory_gib"] > 0


def test_the_command_lines(parse):
    assert parse("sample", ["--search", "s", "--num-samples", "7"]).n == 7  # torchrun takes "--n" for its own
    with pytest.raises(SystemExit):
        parse("search", ["--world-size", "2"])  # set by torchrun, never an option
