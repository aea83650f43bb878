"""Shared test fixtures: where ../shared lies, and skips when its data is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# The speed canary (cost.timing.canary) stays off in tests: their fake and tiny measurements say nothing about the
# machine's speed, and its waits would only slow the suite down; its own tests enable it explicitly.
os.environ.setdefault("SQUEEZENAS_CANARY", "0")

SHARED = Path(os.environ.get("SQUEEZENAS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
CAMVID = SHARED / "data" / "camvid"
RELEASED = SHARED / "weights" / "squeezenas-official"
PUBLISHED = SHARED / "spec" / "published_nets.json"

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present")
    return SHARED


@pytest.fixture(scope="session")
def camvid_root() -> Path:
    if not (CAMVID / "train.txt").is_file():
        pytest.skip(f"CamVid not present at {CAMVID}")
    return CAMVID


@pytest.fixture(scope="session")
def released_dir() -> Path:
    if not RELEASED.is_dir():
        pytest.skip(f"released weights not present at {RELEASED}")
    return RELEASED
