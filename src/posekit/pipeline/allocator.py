"""Keep the C allocator from holding on to freed video frames (glibc only).

A 1080p RGB frame is a 6 MiB numpy array. glibc serves allocations above its mmap
threshold (128 KiB at start) with their own ``mmap`` and gives them back to the
system on ``free``; but the first time such a block is freed, glibc raises the
threshold to that block's size (up to 32 MiB) and the trim threshold to twice it. From
then on every frame, crop and decoded picture comes from the heap, where blocks freed
between long-lived small ones cannot be returned: the process's resident memory
creeps up with the number of frames decoded (6-12 MB per minute of 1080p video in
``benchmarks/video_memory.py``, flat with this fix).

:func:`limit_heap_growth` sets the mmap threshold explicitly to glibc's own starting
value, which turns that dynamic adjustment off for the process; big blocks keep
going back to the system when freed. It is called by the video paths
(:func:`posekit.pipeline.video.run_tracked`); it does nothing on other C libraries
(macOS, Windows, musl) and when ``POSEKIT_MALLOC_DEFAULTS=1`` is set.

The price: every big block is a fresh ``mmap`` whose pages the kernel zeroes, about
5 ms of CPU per 1080p frame decoded and converted to float32 (3.0 -> 8.4 ms in a
decode-only loop), some 2% of BlazePose's CPU time per frame. Measured and not
adopted: ``malloc_trim`` every 8 sampled frames (no cost, but peak RSS 517-519 MB
against 455-463 MB) and a 32 MiB fixed threshold (still 6 ms: the default trim
threshold then returns the heap's top after every frame).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

__all__ = ["MMAP_THRESHOLD", "limit_heap_growth"]

log = logging.getLogger(__name__)

#: glibc's ``M_MMAP_THRESHOLD`` parameter number and its default starting value.
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024

_applied: bool | None = None


def limit_heap_growth() -> bool:
    """Fix glibc's mmap threshold at :data:`MMAP_THRESHOLD` (once per process).

    Returns:
        True when it is in effect (glibc, not opted out), else False.
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("POSEKIT_MALLOC_DEFAULTS") == "1" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    log.debug("glibc mmap threshold fixed at %d bytes: %s", MMAP_THRESHOLD, _applied)
    return _applied
