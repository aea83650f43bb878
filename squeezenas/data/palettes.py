"""Class names and colour palettes of the datasets (also used to colour zoo predictions)."""

from __future__ import annotations

CITYSCAPES_CLASSES: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)
CITYSCAPES_PALETTE: tuple[tuple[int, int, int], ...] = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
    (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
)


def default_palette(num_classes: int) -> tuple[tuple[int, int, int], ...]:
    """A deterministic, well-spread palette for datasets that bring none."""
    import colorsys

    return tuple(
        tuple(int(255 * c) for c in colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.65 + 0.35 * (i % 2), 0.95 - 0.3 * (i % 3) / 2))
        for i in range(num_classes)
    )


# CamVid as distributed with SegNet: label values 0–10, 11 = void; colours of the SegNet CamVid tutorial.
CAMVID_CLASSES: tuple[str, ...] = (
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist",
)
CAMVID_PALETTE: tuple[tuple[int, int, int], ...] = (
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
    (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
)

# The generated street scenes; colours borrowed from the matching Cityscapes classes.
SYNTHETIC_CLASSES: tuple[str, ...] = ("sky", "building", "road", "sidewalk", "vegetation", "car", "person", "pole")
SYNTHETIC_PALETTE: tuple[tuple[int, int, int], ...] = (
    (70, 130, 180), (70, 70, 70), (128, 64, 128), (244, 35, 232), (107, 142, 35), (0, 0, 142), (220, 20, 60),
    (153, 153, 153),
)


# How one dataset's classes answer for another's, to score a network trained on the first on the second without
# retraining ("zero-shot"): target class → the source classes whose logits stand for it (their maximum).
# Cityscapes classes with no CamVid counterpart (wall, terrain, train, motorcycle) are left out.
CLASS_MAPS: dict[str, tuple[tuple[str, ...], tuple[str, ...], dict[str, tuple[str, ...]]]] = {
    "cityscapes-camvid": (CITYSCAPES_CLASSES, CAMVID_CLASSES, {
        "Sky": ("sky",), "Building": ("building",), "Pole": ("pole",), "Road": ("road",),
        "Pavement": ("sidewalk",), "Tree": ("vegetation",), "SignSymbol": ("traffic light", "traffic sign"),
        "Fence": ("fence",), "Car": ("car", "truck", "bus"), "Pedestrian": ("person",),
        "Bicyclist": ("rider", "bicycle"),
    }),
}
