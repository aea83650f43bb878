"""Joint transforms: crop size, ignore padding, image and mask flipped together, normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from squeezenas.data.transforms import MEAN, STD, RandomScale, denormalize, eval_transforms, train_transforms


def ramp(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An image whose red channel and a mask that both encode the column, so alignment can be checked."""
    cols = torch.arange(w).expand(h, w)
    image = torch.stack([cols * 255 // (w - 1), torch.zeros(h, w, dtype=torch.int64), torch.full((h, w), 128)])
    return image.to(torch.uint8), (cols % 200).to(torch.uint8)


def test_eval_normalises_exactly():
    image = torch.zeros(3, 4, 5, dtype=torch.uint8)
    image[0] = 255
    out, mask = eval_transforms()(image, torch.ones(4, 5, dtype=torch.uint8))
    assert out.dtype == torch.float32 and mask.dtype == torch.int64 and type(out) is torch.Tensor
    assert torch.allclose(out[:, 0, 0], torch.tensor([(1 - MEAN[0]) / STD[0], -MEAN[1] / STD[1], -MEAN[2] / STD[2]]))
    assert torch.allclose(denormalize(out)[0], torch.ones(4, 5))


def test_eval_accepts_pil_and_resizes():
    pil = Image.fromarray(np.zeros((30, 40, 3), np.uint8))
    image, mask = eval_transforms((15, 20))(pil, torch.zeros(30, 40, dtype=torch.uint8))
    assert image.shape == (3, 15, 20) and mask.shape == (15, 20)
    image, mask = eval_transforms((15, 20), resize_mask=False)(pil, torch.zeros(30, 40, dtype=torch.uint8))
    assert image.shape == (3, 15, 20) and mask.shape == (30, 40)


def test_train_crop_size_and_padding_with_ignore():
    torch.manual_seed(0)
    image, mask = ramp(20, 30)
    out, out_mask = train_transforms((48, 64), scale=(1.0, 1.0), hflip=False)(image, mask)
    assert out.shape == (3, 48, 64) and out_mask.shape == (48, 64)
    padded = out_mask == 255
    assert padded.sum() == 48 * 64 - 20 * 30  # exactly the pixels outside the image
    pad_value = torch.tensor([-m / s for m, s in zip(MEAN, STD)]).view(3, 1)
    assert torch.allclose(out[:, padded], pad_value.expand(3, int(padded.sum())))  # image padded with 0


def test_train_crop_is_a_window_of_the_input():
    torch.manual_seed(1)
    image, mask = ramp(40, 60)
    out, out_mask = train_transforms((16, 24), scale=(1.0, 1.0), hflip=False)(image, mask)
    first = int(out_mask[0, 0])
    assert torch.equal(out_mask, (torch.arange(first, first + 24) % 200).expand(16, 24))


def test_flip_moves_image_and_mask_together():
    image, mask = ramp(16, 32)
    flips = 0
    for seed in range(8):
        torch.manual_seed(seed)
        out, out_mask = train_transforms((16, 32), scale=(1.0, 1.0), hflip=True)(image, mask)
        red = denormalize(out)[0] * 255
        expected_red = (out_mask * 255 // 31).float()
        assert torch.allclose(red, expected_red, atol=1.0)  # the image column always matches the mask column
        flips += int(out_mask[0, 0] == 31)
    assert 0 < flips < 8


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_random_scale_uses_nearest_for_masks(factor: float):
    image, mask = ramp(20, 30)
    out, out_mask = RandomScale((factor, factor))(tv_tensors.Image(image), tv_tensors.Mask(mask))
    assert out.shape[-2:] == (round(20 * factor), round(30 * factor)) == out_mask.shape[-2:]
    assert set(out_mask.unique().tolist()) <= set(mask.unique().tolist())  # no blended label values


def test_train_output_always_has_the_crop_size():
    torch.manual_seed(2)
    image, mask = ramp(36, 48)
    transform = train_transforms((32, 32))
    for _ in range(10):
        out, out_mask = transform(image, mask)
        assert out.shape == (3, 32, 32) and out_mask.shape == (32, 32)


def test_bad_inputs():
    with pytest.raises(ValueError, match="uint8"):
        eval_transforms()(torch.zeros(3, 4, 4), torch.zeros(4, 4))
    with pytest.raises(ValueError, match=r"\(H,W\) mask"):
        eval_transforms()(torch.zeros(3, 4, 4, dtype=torch.uint8), torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="scale range"):
        train_transforms((8, 8), scale=(2.0, 1.0))
    with pytest.raises(ValueError, match="size"):
        train_transforms((8, 0))

