"""Reading pictures: every mode becomes 8-bit RGB with its values kept, or a DataError naming the file."""

import numpy as np
import pytest
from PIL import Image

from squeezenas.data import DataError
from squeezenas.data.base import read_image


def test_16_bit_greyscale_is_scaled_not_clipped(tmp_path):
    values = (np.arange(48 * 64).reshape(48, 64) * 21).astype(np.uint16)  # 0 … 64 491
    Image.fromarray(values).save(tmp_path / "a.png")
    assert Image.open(tmp_path / "a.png").mode == "I;16"
    rgb = np.asarray(read_image(tmp_path / "a.png"))
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    assert np.array_equal(rgb[..., 0], rgb[..., 2])
    np.testing.assert_allclose(rgb[..., 0], values / 257, atol=0.51)  # convert("RGB") would give 255 almost everywhere


def test_8_bit_modes_keep_their_values(tmp_path):
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(grey, "L").save(tmp_path / "l.png")
    assert np.array_equal(np.asarray(read_image(tmp_path / "l.png"))[..., 1], grey)
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 7)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert np.array_equal(np.asarray(read_image(tmp_path / "rgba.png"))[..., 0], grey)


def test_float_images_and_broken_files_are_named(tmp_path):
    Image.fromarray(np.zeros((8, 8), np.float32), "F").save(tmp_path / "f.tiff")
    with pytest.raises(DataError, match=r"f\.tiff: mode F"):
        read_image(tmp_path / "f.tiff")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match="broken.png"):
        read_image(tmp_path / "broken.png")
