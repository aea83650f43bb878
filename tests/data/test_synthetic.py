"""Generated street scenes: determinism, splits, shapes, class coverage, cost, and that a tiny net can learn them."""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from squeezenas.data import DataError, build_dataset
from squeezenas.data.palettes import SYNTHETIC_CLASSES
from squeezenas.engine.metrics import ConfusionMatrix


def test_defaults_and_shapes():
    ds = build_dataset("synthetic", None, "train")
    assert len(ds) == 200 and ds.classes == SYNTHETIC_CLASSES and ds.num_classes == 8 and ds.ignore_index == 255
    assert len(build_dataset("synthetic", None, "val")) == len(build_dataset("synthetic", None, "test")) == 50
    image, mask = ds[0]
    assert image.shape == (3, 128, 256) and image.dtype == torch.float32
    assert mask.shape == (128, 256) and mask.dtype == torch.int64
    assert ds.image_path(0) is None and ds.files == () and ds.sample_name(3) == "synthetic_train_000003"


def test_deterministic_from_seed_and_index():
    a = build_dataset("synthetic", None, "train", num_samples=4, size=(32, 64))
    b = build_dataset("synthetic", None, "train", num_samples=4, size=(32, 64))
    for i in (0, 3, 1):  # any order: a sample depends on its index only
        assert all(torch.equal(x, y) for x, y in zip(a.load_raw(i), b.load_raw(i)))
    assert not torch.equal(a.load_raw(0)[0], a.load_raw(1)[0])
    other_seed = build_dataset("synthetic", None, "train", num_samples=4, size=(32, 64), seed=1)
    assert not torch.equal(a.load_raw(0)[0], other_seed.load_raw(0)[0])


def test_splits_differ():
    images = [build_dataset("synthetic", None, s, size=(32, 64)).load_raw(0)[0] for s in ("train", "val", "test")]
    assert not torch.equal(images[0], images[1]) and not torch.equal(images[1], images[2])


def test_every_class_occurs_and_no_ignore():
    ds = build_dataset("synthetic", None, "val", num_samples=20, size=(64, 128))
    counts = sum(torch.bincount(ds.load_raw(i)[1].flatten().long(), minlength=8) for i in range(len(ds)))
    assert len(counts) == 8 and (counts > 0).all()
    assert counts.max() < 0.4 * counts.sum()  # no class dominates


def test_cheap_to_render():
    ds = build_dataset("synthetic", None, "train", num_samples=20)
    ds.load_raw(0)
    start = time.perf_counter()
    for i in range(20):
        ds.load_raw(i)
    assert (time.perf_counter() - start) / 20 < 0.05  # a few ms each; generous for a loaded machine


def test_bad_arguments():
    with pytest.raises(DataError, match="unknown synthetic split 'tarin'"):
        build_dataset("synthetic", None, "tarin")
    with pytest.raises(DataError, match="num_samples"):
        build_dataset("synthetic", None, "train", num_samples=0)
    with pytest.raises(DataError, match="size"):
        build_dataset("synthetic", None, "train", size=(8, 8))


@pytest.fixture
def one_thread():
    """Tiny convolutions gain nothing from threads, and on a busy machine OpenMP threads spin against each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_tiny_conv_net_learns_it(one_thread):
    """Four convolutions, 100 Adam steps at 64×128 on the CPU: mIoU far above chance (about 0.07)."""
    torch.manual_seed(0)
    train = build_dataset("synthetic", None, "train", num_samples=64, size=(64, 128))
    val = build_dataset("synthetic", None, "val", num_samples=16, size=(64, 128))
    x_train, y_train = map(torch.stack, zip(*[train[i] for i in range(len(train))]))
    x_val, y_val = map(torch.stack, zip(*[val[i] for i in range(len(val))]))

    def conv(c_in: int, c_out: int, **kw) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=kw.get("dilation", 1), **kw), nn.BatchNorm2d(c_out), nn.ReLU()]

    net = nn.Sequential(*conv(3, 16, stride=2), *conv(16, 16, stride=2), *conv(16, 16, dilation=2), nn.Conv2d(16, 8, 1),
                        nn.Upsample(scale_factor=4, mode="bilinear"))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(100):
        batch = torch.randint(0, len(train), (8,))
        loss = F.cross_entropy(net(x_train[batch]), y_train[batch], ignore_index=255)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    net.eval()
    metric = ConfusionMatrix(8)
    with torch.no_grad():
        metric.update(net(x_val), y_val)
    scores = metric.compute()
    assert scores["miou"] > 0.4, scores["per_class_iou"]  # 0.55–0.6 over seeds
    assert scores["pixel_accuracy"] > 0.7
