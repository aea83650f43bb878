"""Run files: written with the user's umask, outputs checked before work, one run per folder."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from squeezenas.cli.main import main
from squeezenas.utils.io import LOCK_FILE, OutputError, RunLock, atomic_write_json, check_output


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_atomic_writes_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write_json(tmp_path / "a.json", {"x": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_check_output(tmp_path):
    (tmp_path / "f").write_text("x")
    assert check_output(tmp_path / "new" / "deeper" / "out.json") == tmp_path / "new" / "deeper" / "out.json"
    with pytest.raises(OutputError, match="is a folder"):
        check_output(tmp_path)
    with pytest.raises(OutputError, match="is a file"):
        check_output(tmp_path / "f", kind="folder")
    with pytest.raises(OutputError, match="f is a file, not a folder"):
        check_output(tmp_path / "f" / "below.json")
    with pytest.raises(OutputError, match="one of the inputs"):
        check_output(tmp_path / "f", inputs=(str(tmp_path / "f"),))
    assert not (tmp_path / "new").exists()  # nothing created


@pytest.fixture
def other_process():
    """A live process that is not this one (its pid stands for another squeezenas run)."""
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield p.pid
    p.kill()
    p.wait()


def test_a_lock_of_a_live_process_is_respected(tmp_path, other_process):
    (tmp_path / LOCK_FILE).write_text(f"{other_process}\n")
    with pytest.raises(OutputError, match=f"in use by another squeezenas process \\(pid {other_process}"):
        with RunLock(tmp_path / LOCK_FILE):
            pass
    assert (tmp_path / LOCK_FILE).read_text().strip() == str(other_process)


def test_a_stale_lock_is_taken_over_and_released(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()  # its pid is free now
    (tmp_path / LOCK_FILE).write_text(f"{p.pid}\n")
    with RunLock(tmp_path / LOCK_FILE):
        assert (tmp_path / LOCK_FILE).read_text().strip() == str(os.getpid())
    assert not (tmp_path / LOCK_FILE).exists()


def test_two_runs_into_one_folder(tmp_path, other_process, capsys):
    """A train run into a folder another run holds is refused before it writes anything there."""
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_FILE).write_text(f"{other_process}\n")
    argv = ["train", "--model", "squeezenas_mac_small", "--dataset", "synthetic", "--data-option", "num_samples=4",
            "--data-option", "size=[32,64]", "--crop", "32", "64", "--batch-size", "2", "--epochs", "1",
            "--max-steps-per-epoch", "1", "--workers", "0", "--no-progress", "--no-tensorboard", "--out", str(out)]
    assert main(argv) == 2
    assert "in use by another squeezenas process" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]
    search = ["search", "--dataset", "synthetic", "--data-option", "num_samples=4", "--data-option", "size=[32,64]",
              "--crop", "32", "64", "--scale", "1", "1", "--batch-size", "2", "--epochs", "1", "--steps-per-epoch",
              "1", "--workers", "0", "--no-progress", "--no-tensorboard", "--out", str(out)]
    assert main(search) == 2
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]


def test_an_unwritable_folder_is_named(tmp_path, monkeypatch):
    """As root every folder is writable, so the check's answer is faked here; the test as a user is in
    tests/test_bad_input.py."""
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real(p, mode))
    with pytest.raises(OutputError, match=f"the folder {tmp_path} is not writable"):
        check_output(tmp_path / "out.json")
    with pytest.raises(OutputError, match="not writable"):
        check_output(tmp_path / "a" / "b", kind="folder")
