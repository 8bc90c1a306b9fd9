"""Keep the C allocator from handing big message buffers back to the kernel after each use.

Every order that carries an image passes through several buffers of a message's size (gRPC's
receive and send buffers, the bytes objects of a request and of a response). With glibc's
defaults, blocks that big are mapped fresh for each message and unmapped when freed, so the
kernel faults in and zeroes every page again for every message: with 64 KiB images that was
a fifth of the balancer's CPU time. Raising the mmap and trim thresholds makes freed buffers
go back to the heap and be reused. What the heap may keep unused is bounded by the trim
threshold.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's most for this setting (64-bit)
TRIM_THRESHOLD = 256 * 1024 * 1024


def keep_big_buffers() -> bool:
    """Tune glibc's malloc for the process; False where there is no glibc (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
