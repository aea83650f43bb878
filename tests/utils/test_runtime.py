"""die_with_parent: a helper process ends when the process that started it is killed."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

# The parent starts a child that calls die_with_parent and then sleeps; the parent prints the child's pid and
# waits. Killing the parent with SIGKILL (no chance to clean up) must end the child.
PARENT = textwrap.dedent("""
    import os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c",
        "import os, sys, time; from squeezenas.utils.runtime import die_with_parent; "
        "ok = die_with_parent(int(sys.argv[1])); print(ok, flush=True); time.sleep(60)", str(os.getpid())],
        stdout=subprocess.PIPE, text=True)
    print(child.pid, child.stdout.readline().strip(), flush=True)
    time.sleep(60)
""")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_child_ends_when_its_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        child_pid, ok = parent.stdout.readline().split()
        child_pid = int(child_pid)
        assert ok == "True" and _alive(child_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while _alive(child_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child_pid)
    finally:
        parent.kill()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_a_parent_already_gone_ends_the_caller_at_once():
    code = "from squeezenas.utils.runtime import die_with_parent; die_with_parent(1); print('survived')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "survived" not in out.stdout  # its parent is this test, not pid 1
