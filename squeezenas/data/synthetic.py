"""Procedurally generated street scenes: a file-free, deterministic, learnable stand-in for a driving data set.

Every scene is drawn from ``(seed, split, index)`` alone: sky above a row of buildings, a road in perspective
towards a vanishing point with lane marks, sidewalks and grass verges beside it, trees behind, and poles, cars
and people standing on the ground, smaller with distance. Each class has its own colour distribution *and* its
own texture (windows on facades, grain on asphalt, tiles on sidewalks, foliage noise on vegetation, shading on
poles, glass and wheels on cars), and the colour ranges overlap (grey cars, grey poles, grey road, grey
buildings), so a network has to look at local texture and shape, not only at colour. Rendering is vectorised
numpy: a few milliseconds per 128×256 image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from squeezenas.data.base import DATASETS, DataError, DatasetInfo, PairTransform, SegmentationDataset
from squeezenas.data.palettes import SYNTHETIC_CLASSES, SYNTHETIC_PALETTE

SKY, BUILDING, ROAD, SIDEWALK, VEGETATION, CAR, PERSON, POLE = range(8)
SYNTHETIC_INFO = DatasetInfo(SYNTHETIC_CLASSES, SYNTHETIC_PALETTE)
SPLITS = {"train": (0, 200), "val": (1, 50), "test": (2, 50)}  # split → (seed offset, default num_samples)
Box = tuple[slice, slice]
FULL: Box = (slice(None), slice(None))
SKY_BANDS = 24  # the sky's vertical gradient is drawn as this many bands
# per-class pixel noise (standard deviation × √12, the width of a uniform distribution): part of the texture
NOISE_SIGMA = (np.array([2, 5, 12, 6, 20, 3, 6, 4], dtype=np.float32) + 3) * np.float32(12 ** 0.5)


@DATASETS.register("synthetic")
class SyntheticStreets(SegmentationDataset):
    """``num_samples`` generated scenes of ``size`` (H, W); ``root`` is ignored (there are no files)."""

    info = SYNTHETIC_INFO

    def __init__(self, root: str | Path | None = None, split: str = "train", transforms: PairTransform | None = None,
                 num_samples: int | None = None, size: tuple[int, int] = (128, 256), seed: int = 0):
        super().__init__(transforms)
        if split not in SPLITS:
            raise DataError(f"unknown synthetic split {split!r} (known: {', '.join(SPLITS)})")
        split_seed, default_len = SPLITS[split]
        self.split = split
        self.num_samples = default_len if num_samples is None else int(num_samples)
        if self.num_samples < 1:
            raise DataError(f"synthetic split {split!r} needs num_samples >= 1, got {num_samples}")
        if len(size) != 2 or min(size) < 16:
            raise DataError(f"synthetic size must be (H, W) with both at least 16, got {size!r}")
        self.size = (int(size[0]), int(size[1]))
        self.seed = (int(seed), split_seed)

    def __len__(self) -> int:
        return self.num_samples

    def load_raw(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = render_scene(np.random.default_rng((*self.seed, index)), self.size)
        return torch.from_numpy(image).permute(2, 0, 1).contiguous(), torch.from_numpy(label)

    def sample_name(self, index: int) -> str:
        return f"synthetic_{self.split}_{index:06d}"


@dataclass
class Canvas:
    """The scene being painted, in coordinates of units of the image height.

    Pixels hold a class id, a region id (an index into ``colours``) and a brightness ``shade``; colours are
    looked up once at the end, which keeps painting to cheap one-channel copies.
    """

    label: np.ndarray  # (H, W) uint8 class ids
    region: np.ndarray  # (H, W) uint16 index into colours
    shade: np.ndarray  # (H, W) float32 brightness factor (cloud, cylinder shading)
    y: np.ndarray  # (H, 1) row / H
    x: np.ndarray  # (1, W) column / H
    px: float  # one pixel in these units (1 / H)
    colours: list[np.ndarray] = field(default_factory=list)
    building_left: np.ndarray | None = None  # (W,) left edge of the facade over each column (windows start there)

    @classmethod
    def blank(cls, h: int, w: int) -> Canvas:
        return cls(np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint16), np.ones((h, w), np.float32),
                   ((np.arange(h, dtype=np.float32) + 0.5) / h)[:, None],
                   ((np.arange(w, dtype=np.float32) + 0.5) / h)[None, :], 1.0 / h)

    def paint(self, mask: np.ndarray, cls: int, colour: np.ndarray, box: Box = FULL,
              pick: np.ndarray | None = None, shade: np.ndarray | float = 1.0) -> None:
        """Set ``mask`` (over ``box``) to class ``cls`` in ``colour`` (one RGB, or k RGBs chosen per pixel by ``pick``)."""
        colour = np.asarray(colour, np.float32).reshape(-1, 3)
        first = len(self.colours)
        self.colours.extend(colour)
        region = first if pick is None else first + pick
        label = self.label[box]  # a view: painting it paints the canvas
        mask = np.broadcast_to(mask, label.shape)
        np.copyto(label, cls, where=mask)
        np.copyto(self.region[box], region, where=mask, casting="unsafe")
        np.copyto(self.shade[box], shade, where=mask)

    def box(self, x0: float, x1: float, y0: float, y1: float) -> tuple[Box, np.ndarray, np.ndarray]:
        """The pixel window covering [x0, x1) × [y0, y1) (height units) and its coordinates; objects paint only there."""
        h, w = self.label.shape
        r0, r1 = max(int(y0 * h), 0), min(int(np.ceil(y1 * h)) + 1, h)
        c0, c1 = max(int(x0 * h), 0), min(int(np.ceil(x1 * h)) + 1, w)
        box = (slice(r0, max(r0, r1)), slice(c0, max(c0, c1)))
        return box, self.y[box[0]], self.x[:, box[1]]


@dataclass(frozen=True)
class Layout:
    """The scene's geometry: horizon, vanishing point, road and sidewalk half-widths at the bottom, scale."""

    horizon: float
    vanish_x: float
    road: float
    sidewalk: float
    scale: float

    def depth(self, y: np.ndarray | float) -> np.ndarray | float:
        """0 at the horizon, 1 at the bottom edge: how near a ground point is (object size grows with it)."""
        return np.clip((y - self.horizon) / (1.0 - self.horizon), 0.0, 1.0)


def render_scene(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One street scene: uint8 (H, W, 3) RGB and uint8 (H, W) labels."""
    h, w = size
    canvas = Canvas.blank(h, w)
    width = w / h
    layout = Layout(horizon=rng.uniform(0.36, 0.52), vanish_x=width * rng.uniform(0.35, 0.65),
                    road=width * rng.uniform(0.35, 0.6), sidewalk=width * rng.uniform(0.18, 0.35),
                    scale=rng.uniform(0.7, 1.4))
    paint_sky_and_buildings(canvas, layout, rng)
    paint_ground(canvas, layout, rng)
    for _ in range(rng.integers(1, 5)):
        paint_tree(canvas, layout, rng)
    for painter, y_base in sorted(place_objects(layout, rng), key=lambda item: item[1]):  # far ones first
        painter(canvas, layout, rng, y_base)
    return finish(canvas, layout, rng), canvas.label


def paint_sky_and_buildings(c: Canvas, lay: Layout, rng: np.random.Generator) -> None:
    """A sky gradient with soft clouds, and a row of facades of random widths, heights and colours."""
    top_colour, low_colour = rng.uniform([60, 110, 180], [140, 180, 240]), rng.uniform([170, 185, 200], [230, 235, 245])
    t = np.linspace(0, 1, SKY_BANDS)[:, None]
    band = np.minimum(c.y / lay.horizon * SKY_BANDS, SKY_BANDS - 1).astype(np.intp)  # the gradient, in bands
    cloud = np.sin(c.x * rng.uniform(3, 7) + rng.uniform(0, 6)) * np.sin(c.y * rng.uniform(5, 10) + rng.uniform(0, 6))
    c.paint(c.y < lay.horizon, SKY, top_colour * (1 - t) + low_colour * t, pick=band,
            shade=1 + 0.35 * np.clip(cloud - 0.4, 0, None))

    # buildings: per column the facade's top, colour and left edge (windows start at the edge)
    cols = c.x[0]
    edges, x = [], -rng.uniform(0, 0.2)
    while x < cols[-1]:
        edges.append(x)
        x += rng.uniform(0.12, 0.45) * lay.scale
    edges = np.array(edges)
    n = len(edges)
    tops = np.where(rng.random(n) < 0.15, lay.horizon, rng.uniform(0.04, lay.horizon - 0.06, n))
    colours = rng.uniform(80, 200, (n, 1)) * rng.uniform([0.85, 0.8, 0.7], [1.15, 1.05, 1.0], (n, 3))
    which = np.searchsorted(edges, cols, side="right") - 1
    facade = (c.y >= tops[which][None, :]) & (c.y < lay.horizon)
    c.paint(facade, BUILDING, colours, pick=which[None, :])
    c.building_left = edges[which]


def paint_ground(c: Canvas, lay: Layout, rng: np.random.Generator) -> None:
    """Road (with lane marks) between sidewalks, grass verges beyond, all narrowing to the vanishing point."""
    d = lay.depth(c.y)
    off = np.abs(c.x - lay.vanish_x)
    ground = c.y >= lay.horizon
    c.paint(ground, VEGETATION, rng.uniform([50, 90, 30], [110, 150, 70]))
    c.paint(ground & (off < (lay.road + lay.sidewalk) * d), SIDEWALK,
            rng.uniform(130, 190) * rng.uniform([0.95, 0.8, 0.75], [1.1, 1.0, 1.0]))
    grey = rng.uniform(60, 120)
    c.paint(ground & (off < lay.road * d), ROAD, np.array([grey, grey, grey * rng.uniform(1.0, 1.1)]))
    # lane marks: a dashed centre line whose dashes shorten with distance (period in 1/depth), solid edge lines
    dash = np.mod(rng.uniform(0.3, 0.6) / np.maximum(d, 1e-3) + rng.uniform(0, 1), 1.0) < 0.5
    centre = ground & (off < 0.012 * d) & dash
    edge = ground & (np.abs(off - 0.95 * lay.road * d) < 0.008 * d)
    c.paint(centre | (edge & (rng.random() < 0.6)), ROAD, rng.uniform([215, 210, 180], [245, 240, 235]))


def paint_tree(c: Canvas, lay: Layout, rng: np.random.Generator) -> None:
    """A trunk and an irregular canopy standing just behind the sidewalk at the horizon."""
    r = rng.uniform(0.06, 0.15) * lay.scale
    cx = rng.uniform(0, c.x[0, -1])
    cy = lay.horizon - rng.uniform(0.6, 1.2) * r
    box, y, x = c.box(cx - 1.2 * r, cx + 1.2 * r, cy - 1.2 * r, lay.horizon + 0.02)
    c.paint((np.abs(x - cx) < max(0.15 * r, c.px)) & (y > cy) & (y < lay.horizon + 0.02), VEGETATION,
            rng.uniform([60, 40, 20], [110, 80, 50]), box)
    angle = np.arctan2(y - cy, x - cx)
    wobble = 1 + 0.18 * np.sin(angle * rng.integers(3, 7) + rng.uniform(0, 6))
    c.paint(np.hypot(x - cx, (y - cy) * 1.2) < r * wobble, VEGETATION, rng.uniform([25, 70, 20], [80, 130, 60]), box)


Painter = Callable[[Canvas, Layout, np.random.Generator, float], None]


def place_objects(lay: Layout, rng: np.random.Generator) -> list[tuple[Painter, float]]:
    """Which cars, people and poles stand where: (painter, y of the foot point)."""
    objects: list[tuple[Painter, float]] = []
    for painter, count in ((paint_car, rng.integers(0, 5)), (paint_person, rng.integers(0, 5)), (paint_pole, rng.integers(0, 4))):
        for _ in range(count):
            objects.append((painter, lay.horizon + (1.02 - lay.horizon) * rng.uniform(0.08, 1.0) ** 0.7))
    return objects


def paint_car(c: Canvas, lay: Layout, rng: np.random.Generator, y_base: float) -> None:
    """A body, a narrower glass cabin with a highlight, and two dark wheels."""
    d = lay.depth(y_base) * lay.scale
    height, width = 0.36 * d, 0.75 * d * rng.uniform(0.85, 1.15)
    x0 = lay.vanish_x + rng.uniform(-0.9, 0.9) * lay.road * lay.depth(y_base) - width / 2
    box, y, x = c.box(x0, x0 + width, y_base - height, y_base)
    body_colour = car_colour(rng)
    inside_x = (x >= x0) & (x < x0 + width)
    c.paint(inside_x & (y >= y_base - 0.62 * height) & (y < y_base - 0.1 * height), CAR, body_colour, box)
    c.paint(inside_x & (np.abs(y - (y_base - 0.52 * height)) < 0.03 * height + 0.5 * c.px), CAR,
            np.minimum(body_colour * 1.35 + 30, 255), box)
    cabin = (x >= x0 + 0.17 * width) & (x < x0 + 0.83 * width) & (y >= y_base - height) & (y < y_base - 0.62 * height)
    c.paint(cabin, CAR, rng.uniform([20, 30, 40], [60, 70, 90]), box)
    for wx in (x0 + 0.2 * width, x0 + 0.8 * width):
        c.paint(np.hypot(x - wx, y - (y_base - 0.12 * height)) < 0.13 * height + 0.5 * c.px, CAR, np.full(3, 22.0), box)


def car_colour(rng: np.random.Generator) -> np.ndarray:
    """Mostly greys, whites and blacks (overlapping road, building and pole colours), sometimes a strong hue."""
    if rng.random() < 0.55:
        return np.full(3, rng.uniform(30, 230)) * rng.uniform(0.95, 1.05, 3)
    return rng.permutation([rng.uniform(150, 230), rng.uniform(20, 80), rng.uniform(20, 140)])


def paint_person(c: Canvas, lay: Layout, rng: np.random.Generator, y_base: float) -> None:
    """Two legs, a torso in a random colour and a head, on the sidewalk."""
    d = lay.depth(y_base) * lay.scale
    height, width = 0.5 * d, 0.13 * d
    side = rng.choice([-1, 1])
    cx = lay.vanish_x + side * (lay.road + rng.uniform(0.1, 0.9) * lay.sidewalk) * lay.depth(y_base)
    box, y, x = c.box(cx - width, cx + width, y_base - height, y_base)
    legs = (np.abs(np.abs(x - cx) - 0.25 * width) < 0.18 * width + 0.5 * c.px) & (y >= y_base - 0.47 * height) & (y < y_base)
    c.paint(legs, PERSON, rng.uniform(20, 120, 3), box)
    torso = (np.abs(x - cx) < 0.5 * width + 0.5 * c.px) & (y >= y_base - 0.84 * height) & (y < y_base - 0.45 * height)
    c.paint(torso, PERSON, rng.uniform(30, 230, 3), box)
    head = np.hypot(x - cx, y - (y_base - 0.91 * height)) < 0.08 * height + 0.5 * c.px
    c.paint(head, PERSON, rng.uniform([150, 100, 70], [235, 190, 160]), box)


def paint_pole(c: Canvas, lay: Layout, rng: np.random.Generator, y_base: float) -> None:
    """A tall thin metal pole at the kerb, shaded like a cylinder."""
    d = lay.depth(y_base) * lay.scale
    half = max(0.012 * d, 0.6 * c.px)
    side = rng.choice([-1, 1])
    cx = lay.vanish_x + side * (lay.road + rng.uniform(0.05, 0.3) * lay.sidewalk) * lay.depth(y_base)
    box, y, x = c.box(cx - half, cx + half, y_base - 1.3 * d, y_base)
    shade = 0.55 + 0.45 * np.cos(np.clip((x - cx) / half, -1, 1) * np.pi / 2)
    mask = (np.abs(x - cx) < half) & (y >= y_base - 1.3 * d) & (y < y_base)
    c.paint(mask, POLE, rng.uniform(90, 180) * rng.uniform(0.95, 1.05, 3), box, shade=shade)


def finish(c: Canvas, lay: Layout, rng: np.random.Generator) -> np.ndarray:
    """Per-class textures (windows, tiles, foliage), per-class noise, a global colour cast; to uint8."""
    h, w = c.label.shape
    period = lay.scale * h / 128  # texture periods in pixels scale with the scene and the image size
    rows = np.arange(h, dtype=np.float32)[:, None]
    cols = np.arange(w, dtype=np.float32)[None, :]
    texture = np.ones((h, w), np.float32)

    window_w, window_h = rng.uniform(6, 11) * period, rng.uniform(8, 13) * period
    left_px = (c.building_left * h).astype(np.float32)[None, :]
    windows = (np.mod(cols - left_px, window_w) > 0.45 * window_w) & (np.mod(rows, window_h) > 0.4 * window_h)
    texture = np.where((c.label == BUILDING) & windows, rng.uniform(0.3, 0.55), texture)

    d = np.maximum(lay.depth(c.y), 1e-3)
    tile = rng.uniform(0.04, 0.07) * lay.scale
    grout = (np.mod(0.6 * lay.scale / d, 1.0) < 0.12) | (np.mod((c.x - lay.vanish_x) / d, tile) < 0.15 * tile)
    texture = np.where((c.label == SIDEWALK) & grout, 0.7, texture)

    foliage = sum(plane_wave(rows, cols, a, f, p)
                  for a, f, p in zip(rng.uniform(0, np.pi, 3), rng.uniform(1.0, 2.5, 3) * period, rng.uniform(0, 6, 3)))
    texture = np.where(c.label == VEGETATION, 0.8 + 0.25 * np.tanh(foliage), texture)

    # brightness noise, uniform with the class's standard deviation: as good as Gaussian here and cheaper
    noise = (rng.random((h, w), dtype=np.float32) - 0.5) * NOISE_SIGMA[c.label]
    cast = (rng.uniform(0.8, 1.2) * rng.uniform(0.92, 1.08, 3)).astype(np.float32)
    image = np.stack(c.colours)[c.region]
    image *= (texture * c.shade)[..., None]
    image += noise[..., None]
    image *= cast
    return np.clip(image, 0, 255).astype(np.uint8)


def plane_wave(rows: np.ndarray, cols: np.ndarray, angle: float, period: float, phase: float) -> np.ndarray:
    """sin(rows·cos(a)/f + cols·sin(a)/f + p) from 1-D sines and cosines (an outer product, no full-grid sin)."""
    u, v = rows * float(np.cos(angle) / period) + float(phase), cols * float(np.sin(angle) / period)
    return np.sin(u) * np.cos(v) + np.cos(u) * np.sin(v)
