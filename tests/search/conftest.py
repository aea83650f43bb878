"""Tiny searches on synthetic data for the search tests: Small space, 64×128 (or 32×64) crops, a few steps."""

from __future__ import annotations

import argparse
import importlib
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from squeezenas.cost.tables import mac_table
from squeezenas.search.config import SearchConfig

DATA = {"num_samples": 8, "size": (64, 128)}


# The schedule without warm-up or ramp (the cost at full weight, pruning, from the first step), so that a few
# steps exercise everything; the defaults' warm-up and ramp have tests of their own.
IMMEDIATE = {"warmup_epochs": 0, "cost_ramp": 0.0}


def tiny_config(out: Path, **overrides) -> SearchConfig:
    """A search of a few CPU steps; the cost table is the MAC table at 64×128 whatever the crop."""
    base = SearchConfig(space="small", dataset="synthetic", data_options=dict(DATA), crop=(64, 128), scale=(1.0, 1.0),
                        size=(64, 128), batch_size=2, epochs=3, steps_per_epoch=2, workers=0, theta_lr=0.1,
                        prune_threshold=0.0, progress=False, tensorboard=False, out=str(out), **IMMEDIATE)
    return replace(base, **overrides)


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """One intra-op thread: on a shared 2-core machine two threads spin against other jobs and run ~10× slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(name="tiny_config")
def tiny_config_fixture():
    """The ``tiny_config(out, **overrides)`` factory."""
    return tiny_config


@pytest.fixture(scope="session")
def mac_small():
    """The MAC table of the Small space at 64×128 for the 8 synthetic classes."""
    return mac_table("small", (64, 128), num_classes=8)


def parse(command: str, argv: list[str]) -> argparse.Namespace:
    """The options of one subcommand (``squeezenas.cli.<command>``) parsed alone."""
    module = importlib.import_module(f"squeezenas.cli.{command}")
    p = argparse.ArgumentParser(prog=f"squeezenas {command}")
    module.add_arguments(p)
    return p.parse_args(argv)


def run_command(command: str, argv: list[str]) -> int:
    """``squeezenas COMMAND ARGV...`` through that subcommand's module."""
    return importlib.import_module(f"squeezenas.cli.{command}").run(parse(command, argv))


@pytest.fixture(name="parse")
def parse_fixture():
    """The ``parse(command, argv)`` function."""
    return parse


@pytest.fixture(name="run_command")
def run_command_fixture():
    """The ``run_command(command, argv)`` function."""
    return run_command


@pytest.fixture(scope="session")
def tiny_search(tmp_path_factory) -> Path:
    """One finished search through the command line: 3 epochs × 2 steps, pruning at p < 0.07 (uniform is 1/13)."""
    out = tmp_path_factory.mktemp("search") / "run"
    rc = run_command("search", [
        "--space", "small", "--dataset", "synthetic", "--data-option", "num_samples=8", "--data-option",
        "size=[64,128]", "--crop", "64", "128", "--scale", "1", "1", "--batch-size", "2", "--epochs", "3",
        "--steps-per-epoch", "2", "--workers", "0", "--theta-lr", "0.1", "--alpha", "2", "--prune-threshold", "0.07",
        "--no-progress", "--out", str(out)])
    assert rc == 0
    return out
