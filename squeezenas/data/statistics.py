"""Label statistics of a dataset split: pixels per class, and the class weights that balance them."""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from squeezenas.data.base import FileDataset, SegmentationDataset, read_label, remap_labels
from squeezenas.data.constants import IGNORE_INDEX


def class_pixels(dataset: SegmentationDataset, num_classes: int, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(pixels of each class, pixels of the images in which each class appears), over the split's labels as
    stored (no augmentation; a file dataset reads its label files only)."""
    pixels = np.zeros(num_classes, np.int64)
    present_in = np.zeros(num_classes, np.int64)
    for i in tqdm(range(len(dataset)), desc="class frequencies", unit="img", disable=not progress):
        if isinstance(dataset, FileDataset):
            sample = dataset.files[i]
            labels = remap_labels(read_label(sample.mask), dataset.label_map, sample.mask)
        else:
            labels = np.asarray(dataset.load_raw(i)[1])
        counts = np.bincount(labels[labels != IGNORE_INDEX].ravel(), minlength=num_classes)[:num_classes]
        pixels += counts
        present_in += np.where(counts > 0, labels.size, 0)
    return pixels, present_in


def median_frequency_weights(pixels: np.ndarray, present_in: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Median frequency balancing (Eigen & Fergus, 2015; SegNet): freq(c) = pixels of c / pixels of the images
    where c appears, weight(c) = (median(freq) / freq(c)) ** power; ``power`` 0.5 is the milder square-root
    balancing. Classes never seen get weight 0."""
    seen = present_in > 0
    freq = np.zeros(len(pixels))
    freq[seen] = pixels[seen] / present_in[seen]
    weights = np.zeros(len(pixels))
    weights[seen] = (np.median(freq[seen]) / freq[seen]) ** power
    return weights
