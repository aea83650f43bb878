"""Network drawings (the paper's Figure 8): files are written for genotype files and zoo names."""

from __future__ import annotations

from squeezenas.cli.main import main
from squeezenas.viz.network import _aligned_x, block_label, draw_networks
from squeezenas.space.genotype import random_genotype
from squeezenas.space.macro import get_macro

PNG = b"\x89PNG\r\n\x1a\n"


def test_block_labels_name_kernel_dilation_expansion_groups_and_skip_forms():
    assert block_label("k3_d2_e6_g1", 16, 16, 1) == "k3 d2\ne6"
    assert block_label("k5_d1_e1_g2", 16, 16, 1) == "k5 d1\ne1 g2"
    assert block_label("skip", 16, 16, 1) == "skip"
    assert block_label("skip", 16, 24, 1) == "skip\n1×1"
    assert block_label("skip", 16, 24, 2) == "skip\nFR"


def test_rows_line_up_at_their_downsampling_blocks():
    small, large = get_macro("small"), get_macro("large")
    xs, xl = _aligned_x([small, large])
    s2_small = [p.index for p in small.positions() if p.stride == 2]
    s2_large = [p.index for p in large.positions() if p.stride == 2]
    assert [xs[i] for i in s2_small] == [xl[i] for i in s2_large]


def test_draw_writes_a_png(tmp_path):
    g = random_genotype("small", 0)
    g.save(tmp_path / "g.json")
    assert main(["draw", str(tmp_path / "g.json"), "squeezenas_lat_large", "--size", "64", "128"]) == 0
    assert (tmp_path / "g.png").read_bytes()[:8] == PNG
    out = draw_networks([g], tmp_path / "one.png", size=(128, 256), num_classes=8)
    assert out.read_bytes()[:8] == PNG
