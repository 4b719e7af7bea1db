"""glibc malloc settings (Linux): one for torch generation on CPU, one for large compares.

torch gets every intermediate tensor from malloc. glibc serves blocks above its mmap threshold
(128 KiB at start) with fresh pages from the kernel and unmaps them on free, and gives free heap
memory back above its trim threshold; a sampler that runs many passes over few-MB activations
then pays a page fault per 4 KiB touched, and with several threads each unmap also interrupts
the other cores (TLB shootdown). bes3-gan's generator at batch 10000 (minor page faults from
getrusage over 10 calls): 7.2 faults per shower and 35 000 showers/s on one thread, 1.5 and
84 000 on two, with the defaults; 0 and 63 000, 0.03 and 108 000 with ``keep_freed_memory()``.
Whole ``sample`` calls: ``python benchmarks/studies/models_gan.py [--default-malloc]``.

A compare has the opposite need. Its arrays are few and large (feature tables, high-level
vectors, classifier splits: tens to hundreds of MB at 100 000 events), and glibc's *dynamic*
threshold rises to the size of every mmapped block freed (up to 32 MiB), after which blocks of
that size come from the heap and the heap cannot shrink past the live blocks above them. On
100 000 vs 100 000 calochallenge-2-shaped showers (all stages but cls-low,
``benchmarks/studies/compare_memory.py --together-only``) the peak RSS was 3160 MB with the
defaults and 2291 MB with ``return_freed_memory()`` (a fixed 1 MiB threshold), same values, no
slower (379 s beside a selftest, 313 s alone; docs/performance.md).

Both settings are process-wide and permanent (glibc has no getter to restore the defaults), so
only the processes that own their lifetime call them: ``calobench run`` and ``calobench time``
(generation) and ``calobench compare`` (evaluation), and the benchmarks that stand for them.
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
    mallopt = _mallopt()
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, int(mmap_threshold))) and bool(mallopt(M_TRIM_THRESHOLD, int(trim_threshold)))


#: compare: every block from 1 MiB up is its own mapping, unmapped (returned) when freed
COMPARE_MMAP_THRESHOLD = 1 << 20


def _mallopt():
    """glibc's ``mallopt`` as a ctypes function, or None on other C libraries and platforms."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt


def return_freed_memory(mmap_threshold: int = COMPARE_MMAP_THRESHOLD) -> bool:
    """Serve every block of ``mmap_threshold`` bytes or more as its own mapping, so that a freed
    array goes back to the kernel at once (a fixed threshold also switches off glibc's dynamic
    one). For processes that hold a few large arrays at a time: ``calobench compare``. Returns
    True when glibc took the setting, False on other C libraries and platforms (nothing changed)."""
    mallopt = _mallopt()
    return mallopt is not None and bool(mallopt(M_MMAP_THRESHOLD, int(mmap_threshold)))
