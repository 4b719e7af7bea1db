"""glibc malloc settings for torch generation on CPU (Linux).

torch gets every intermediate tensor from malloc. glibc serves blocks above its mmap threshold
(128 KiB at start) with fresh pages from the kernel and unmaps them on free, and gives free heap
memory back above its trim threshold; a sampler that runs many passes over few-MB activations
then pays a page fault per 4 KiB touched, and with several threads each unmap also interrupts
the other cores (TLB shootdown). bes3-gan's generator at batch 10000 (minor page faults from
getrusage over 10 calls): 7.2 faults per shower and 35 000 showers/s on one thread, 1.5 and
84 000 on two, with the defaults; 0 and 63 000, 0.03 and 108 000 with ``keep_freed_memory()``.
Whole ``sample`` calls: ``python benchmarks/studies/models_gan.py [--default-malloc]``.

The setting is process-wide and permanent (glibc has no getter to restore the defaults), so the
processes that generate call it once: ``calobench run``, ``calobench time`` and the benchmarks.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

#: mallopt parameter numbers (glibc malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

#: blocks up to this size come from the heap (32 MiB is glibc's upper limit on 64-bit)
MMAP_THRESHOLD = 32 << 20
#: free memory kept at the top of a heap before it is given back to the kernel
TRIM_THRESHOLD = 256 << 20


def keep_freed_memory(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Serve blocks up to ``mmap_threshold`` bytes from the heap and keep up to ``trim_threshold``
    bytes of freed heap memory for reuse. Returns True when glibc took both settings, False on
    other C libraries and platforms (nothing changed)."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, int(mmap_threshold))) and bool(mallopt(M_TRIM_THRESHOLD, int(trim_threshold)))
