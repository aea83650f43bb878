"""What a run leaves behind besides checkpoints, shared by training and the search: a log of progress lines, a
CSV of one row per epoch (rewritten whole, atomically, so it always agrees with the last checkpoint) and
TensorBoard scalars."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Sequence

from squeezenas.utils.io import atomic_write_text


class RunLog:
    """Prints a line (around progress bars, when ``echo``) and appends it to ``path`` (None: print only)."""

    def __init__(self, path: str | Path | None, echo: bool = True):
        self.path, self.echo = (Path(path) if path is not None else None), echo

    def __call__(self, message: str) -> None:
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(message + "\n")
        if self.echo:
            from tqdm import tqdm

            tqdm.write(message)


def silent(message: str) -> None:
    """The log of a process that writes nothing (every rank but the first under torchrun)."""


def write_csv(path: str | Path, rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None,
              float_format: str | None = None) -> None:
    """The whole history as CSV, atomically: ``columns`` (default: every key, in first-seen order), floats
    written with ``float_format`` (e.g. ".6g") when given."""
    if columns is None:
        columns = []
        for row in rows:
            columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (format(v, float_format) if float_format and isinstance(v, float) else v)
                         for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())


def open_tensorboard(folder: str | Path, purge_step: int | None = None) -> Any:
    """A SummaryWriter on ``folder`` (a resumed run purges the steps after ``purge_step``), or None where
    TensorBoard is not installed (the CSV log has the numbers)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(folder), purge_step=purge_step or None)
