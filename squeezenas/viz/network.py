"""Network pictures like the paper's Figure 8: one row of blocks per network, lined up at the downsampling
blocks, each block labelled with its kernel, dilation, expansion and groups and coloured by type."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from squeezenas.space.genotype import Genotype, load_genotype
from squeezenas.space.macro import MacroArch
from squeezenas.space.ops import parse_op

# colour by (kernel, dilation); grouped 1×1 convs (g2) are hatched; skips are white with a dashed outline
TYPE_COLOURS = {(3, 1): "#6baed6", (5, 1): "#74c476", (3, 2): "#b39ddb"}
OTHER_COLOUR = "#fdd0a2"
DOWNSAMPLE = "#d62728"
FIXED_COLOUR = "#d9d9d9"
BLOCK_W = 0.82  # width of a block in units of one position


@dataclass(frozen=True)
class Row:
    """One network to draw: its genotype and the label written left of it."""

    genotype: Genotype
    label: str


def resolve_genotype(spec: str | Path) -> tuple[Genotype, str]:
    """A zoo name or a genotype file (.json/.yaml) → (genotype, label)."""
    from squeezenas.models.zoo import ZOO

    s = str(spec)
    if s in ZOO:
        g = ZOO.get(s).genotype
        if g is None:
            raise ValueError(f"{s} is not a network of the search space: nothing to draw")
        return g, s
    return load_genotype(s), Path(s).stem


def block_height(expansion: float) -> float:
    """Taller blocks expand more: e1 0.55, e3 0.78, e6 1.0 (of one row's height)."""
    return min(1.0, 0.435 + 0.1125 * expansion) if expansion >= 1 else 0.5


def block_label(code: str, c_in: int, c_out: int, stride: int) -> str:
    """Text inside a block: kernel, dilation, expansion, groups (skip: its form at this position)."""
    spec = parse_op(code)
    if spec.is_skip:
        if stride == 2:
            return "skip\nFR"
        return "skip" if c_in == c_out else "skip\n1×1"
    e = int(spec.expansion) if float(spec.expansion).is_integer() else spec.expansion
    return f"k{spec.kernel} d{spec.dilation}\ne{e}" + (f" g{spec.groups}" if spec.groups != 1 else "")


def _segments(macro: MacroArch) -> list[list[int]]:
    """Positions split at every downsampling block (a stride-2 block starts a new segment)."""
    segs: list[list[int]] = [[]]
    for p in macro.positions():
        if p.stride == 2 and segs[-1]:
            segs.append([])
        segs[-1].append(p.index)
    return segs


def _aligned_x(macros: Sequence[MacroArch]) -> list[list[float]]:
    """x of every position of every row so that the k-th downsampling block of each row lines up."""
    segs = [_segments(m) for m in macros]
    starts_s2 = [[m.positions()[s[0]].stride == 2 for s in ss] for m, ss in zip(macros, segs)]
    # segment k of a row: index k if it starts with a downsampling block (counting the leading stride-1 part as 0)
    keyed = []
    for ss, s2 in zip(segs, starts_s2):
        d = {}
        k = 0 if not s2[0] else 1
        for seg, is_s2 in zip(ss, s2):
            d[k] = seg
            k += 1
        keyed.append(d)
    keys = sorted({k for d in keyed for k in d})
    width = {k: max(len(d.get(k, [])) for d in keyed) for k in keys}
    xs = []
    for d, m in zip(keyed, macros):
        x = [0.0] * m.num_positions
        base = 0.0
        for k in keys:
            for j, pos in enumerate(d.get(k, [])):
                x[pos] = base + j
            base += width[k]
        xs.append(x)
    return xs


def draw_networks(genotypes: Sequence[Genotype | tuple[Genotype, str]], path: str | Path,
                  size: tuple[int, int] = (1024, 2048), num_classes: int = 19, title: str | None = None) -> Path:
    """Draw one row per genotype into ``path`` (PNG/PDF/SVG by suffix): stem, searched blocks, last conv and
    decoder boxes, channels per stage, the downsampling blocks in red, the low-level tap, GMACs at ``size``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, Patch, Rectangle

    from squeezenas.cost.counting import count_costs
    from squeezenas.models.builder import build_model

    rows = [Row(*g) if isinstance(g, tuple) else Row(g, g.macro_name) for g in genotypes]
    if not rows:
        raise ValueError("nothing to draw")
    macros = [r.genotype.macro_arch for r in rows]
    xs = _aligned_x(macros)
    n_cols = max(max(x) for x in xs) + 1
    row_h = 3.3
    fig_w = max(8.0, 0.62 * (n_cols + 7))
    fig, ax = plt.subplots(figsize=(fig_w, 1.0 + 2.0 * len(rows)))
    x0 = 2.2  # room for the stem box and the label
    for r, (row, macro, x) in enumerate(zip(rows, macros, xs)):
        y = -r * row_h
        positions = macro.positions()
        sizes = macro.input_sizes(*size)
        report = count_costs(build_model(row.genotype, num_classes=num_classes), tuple(size))
        ax.text(-0.2, y + 0.5, f"{row.label}\n{macro.name}, {report.gmacs:.2f} GMACs\n"
                f"{report.params / 1e6:.2f} M params", ha="right", va="center", fontsize=8)
        ax.add_patch(Rectangle((0.1, y), 1.6, 1.0, fc=FIXED_COLOUR, ec="black", lw=0.8))
        ax.text(0.9, y + 0.5, f"stem\n3×3 s2\n{macro.stem_channels}", ha="center", va="center", fontsize=6.5)
        ax.text(0.9, y - 0.28, f"{(size[0] + 1) // 2}×{(size[1] + 1) // 2}", ha="center", va="top", fontsize=5.5,
                color="#555555")
        for p, code, hw in zip(positions, row.genotype.ops, sizes):
            spec = parse_op(code)
            bx = x0 + x[p.index]
            if spec.is_skip:
                h = 0.4
                rect = Rectangle((bx, y + (1 - h) / 2), BLOCK_W, h, fc="white", ec="#555555", lw=0.9, ls="--")
            else:
                h = block_height(spec.expansion)
                rect = Rectangle((bx, y + (1 - h) / 2), BLOCK_W, h,
                                 fc=TYPE_COLOURS.get((spec.kernel, spec.dilation), OTHER_COLOUR), ec="black", lw=0.7,
                                 hatch="////" if spec.groups > 1 else None)
            if p.stride == 2:
                rect.set_edgecolor(DOWNSAMPLE)
                rect.set_linewidth(2.2)
            ax.add_patch(rect)
            ax.text(bx + BLOCK_W / 2, y + 0.5, block_label(code, p.c_in, p.c_out, p.stride), ha="center",
                    va="center", fontsize=5.5, linespacing=0.95,
                    bbox=dict(fc="white", ec="none", alpha=0.75, pad=0.4) if spec.groups > 1 else None)
            if p.stride == 2:
                out_hw = ((hw[0] + 1) // 2, (hw[1] + 1) // 2)
                ax.text(bx + BLOCK_W / 2, y - 0.28, f"s2\n{out_hw[0]}×{out_hw[1]}", ha="center", va="top",
                        fontsize=5.5, color=DOWNSAMPLE)
        # channels per stage: a bracket over the stage's blocks
        first = 0
        for s_i, stage in enumerate(macro.stages):
            idx = list(range(first, first + stage.repeats))
            first += stage.repeats
            left, right = x0 + x[idx[0]], x0 + x[idx[-1]] + BLOCK_W
            ax.plot([left, left, right, right], [y + 1.12, y + 1.2, y + 1.2, y + 1.12], color="#444444", lw=0.7)
            ax.text((left + right) / 2, y + 1.25, f"{stage.channels} ch", ha="center", va="bottom", fontsize=6)
        # last conv, decoder, low-level tap
        end = x0 + max(x) + 1.2
        if macro.last_channels:
            ax.add_patch(Rectangle((end, y), 1.3, 1.0, fc=FIXED_COLOUR, ec="black", lw=0.8))
            ax.text(end + 0.65, y + 0.5, f"1×1\n{macro.last_channels}", ha="center", va="center", fontsize=6.5)
            end += 1.6
        dec = {"lr_aspp": "LR-ASPP", "aspp": "ASPP"}.get(macro.decoder.name, macro.decoder.name)
        ax.add_patch(Rectangle((end, y), 2.0, 1.0, fc="#fee391", ec="black", lw=0.8))
        ax.text(end + 1.0, y + 0.5, f"{dec}\n{macro.decoder.channels} ch\n→ {num_classes} cl.", ha="center",
                va="center", fontsize=6.5)
        low = x0 + x[macro.low_level_position] + BLOCK_W / 2
        ax.add_patch(FancyArrowPatch((low, y - 0.02), (end + 0.4, y - 0.02), connectionstyle="arc3,rad=0.18",
                                     arrowstyle="-|>", mutation_scale=8, color="#2c7fb8", lw=0.8))
        ax.text(low, y - 0.75, f"low-level (pos. {macro.low_level_position})", fontsize=5.5, color="#2c7fb8",
                ha="left", va="top")
    legend = [Patch(fc=c, ec="black", label=f"k{k} d{d}") for (k, d), c in TYPE_COLOURS.items()]
    legend += [Patch(fc="white", ec="black", hatch="////", label="grouped 1×1 (g2)"),
               Patch(fc="white", ec="#555555", ls="--", label="skip"),
               Patch(fc="white", ec=DOWNSAMPLE, lw=2, label="downsampling (stride 2)")]
    ax.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=6, fontsize=7, frameon=False)
    ax.set_xlim(-0.3, end + 2.3)
    ax.set_ylim(-(len(rows) - 1) * row_h - 1.7, 1.7)
    ax.axis("off")
    ax.set_title(title or f"block height: expansion (e1 < e3 < e6); input {size[0]}×{size[1]}", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return path
