"""Files a run writes: atomic writes (a file is either the old one or the complete new one, never half-written,
with the permissions the user's umask gives), checks that an output can be written before any work starts, and
the lock that keeps two runs out of one folder."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the same folder; on success it is renamed over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a plain open() would honour the umask
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1) + "\n")


def update_json_locked(path: str | Path, update: Callable[[dict], dict], lock_dir: str | Path) -> dict:
    """Read the JSON object at ``path`` ({} when absent), apply ``update`` and write the result atomically, all
    under an exclusive lock in ``lock_dir``: processes updating the same file side by side each keep what the others
    wrote. Returns what was written."""
    import fcntl

    path = Path(path)
    Path(lock_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(lock_dir) / f"{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        obj = update(json.loads(path.read_text()) if path.is_file() else {})
        atomic_write_json(path, obj)
        return obj


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """torch.save through a temporary file; only plain containers and tensors (weights_only-loadable)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def safe_torch_load(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """torch.load with weights_only=True and errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # corrupt zip, pickle with disallowed globals, truncated file, ...
        raise ValueError(f"{path}: cannot be read as a weights-only PyTorch checkpoint ({type(e).__name__}: {e})") from None


class OutputError(ValueError):
    """An output path cannot be written: an unwritable folder, a file where a folder is needed (or the other
    way round), or one of the run's own inputs."""


def check_output(path: str | Path, *, kind: str = "file", what: str = "output",
                 inputs: tuple[str | Path, ...] = ()) -> Path:
    """Raise OutputError naming ``path`` (called ``what``) unless a ``kind`` ("file" or "folder") can be
    written there: not an existing entry of the other kind, not one of ``inputs``, and the nearest existing
    folder on its way writable. Nothing is created."""
    path = Path(path)
    if kind == "file" and path.is_dir():
        raise OutputError(f"{what} {path} is a folder; name a file")
    if kind == "folder" and path.exists() and not path.is_dir():
        raise OutputError(f"{what} {path} is a file; name a folder")
    if path.exists() and any(path.resolve() == Path(i).resolve() for i in inputs):
        raise OutputError(f"{what} {path} is one of the inputs; writing it would destroy it")
    base = path if kind == "folder" and path.is_dir() else path.parent
    while not base.exists():
        base = base.parent
    if not base.is_dir():
        raise OutputError(f"{what} {path}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {path}: the folder {base} is not writable")
    return path


LOCK_FILE = ".lock"  # in a run folder while a command works there (train, search, sample, demo)


class RunLock:
    """An exclusive lock on a run folder (or on one output file): ``path`` holds the owner's pid while a
    command works there and is removed when it ends; a lock left by a process that no longer runs is taken over.

    Two runs started into one ``--out`` would otherwise both write there and leave a folder that mixes them.
    """

    def __init__(self, path: str | Path, what: str = "run folder"):
        self.path, self.what = Path(path), what
        self._held = False

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is not None and _alive(owner):
                    raise OutputError(f"{self.path.parent} is in use by another squeezenas process (pid {owner}, "
                                      f"lock {self.path}); wait for it to end or choose another {self.what}") from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()}\n")
            self._held = True
            return self
        raise OutputError(f"{self.path}: cannot take the lock of {self.path.parent}")

    def __exit__(self, *exc: Any) -> None:
        if self._held:
            self.path.unlink(missing_ok=True)
            self._held = False

    def _owner(self) -> int | None:
        try:
            return int(self.path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
