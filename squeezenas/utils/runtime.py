"""Process settings that make CPU work fast and steady: supernet steps (docs/SUPERNET.md) and every timing (docs/LATENCY.md)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4

_tuned = False


def tune_cpu_allocator() -> bool:
    """Keep freed memory in the process instead of returning it to the kernel (glibc only).

    glibc serves every allocation above 32 MiB with a fresh ``mmap`` and unmaps it on free, so each step's
    large activations (a superblock's expanded tensor is 35–140 MiB at batch 8, 128×256) are page-faulted and
    zeroed by the kernel again, every step: a 1×1 conv writing one took 20 ms instead of 5. This serves them
    from the heap and never trims it, the usual fix (jemalloc/tcmalloc do the same). The resident set stays
    at the step's peak. Returns False where it does not apply (not Linux/glibc); idempotent.
    """
    global _tuned
    if _tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) and mallopt(_M_TOP_PAD, 256 << 20)
    _tuned = bool(ok)
    return _tuned


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int) -> bool:
    """Have the kernel end this process (SIGTERM) when ``parent_pid``, the process that started it, ends.

    For helper processes (a timing child): without it, a parent killed by a signal leaves the child running
    its work to the end. Linux only (prctl PR_SET_PDEATHSIG); returns False where it does not apply. Exits at
    once when the parent is already gone (the race between starting and this call).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent_pid:
        os._exit(1)
    return True
