"""calobench.allocator: glibc keeps freed memory, so repeated few-MB tensors stop page-faulting;
for compare, freed large arrays go back to the kernel even when smaller live ones lie above them."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHILD = """
import resource, sys
import numpy as np
from calobench.allocator import keep_freed_memory
if sys.argv[1] == "tuned":
    assert keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
np.ones(1 << 20, np.float32)  # warm-up: 4 MiB
start = faults()
for _ in range(50):
    # like the activations of a network pass: several 4 MiB blocks alive together, written
    # (touched), then all freed
    blocks = [np.ones(1 << 20, np.float32) for _ in range(4)]
    del blocks
print(faults() - start)
"""


def child_figure(code: str, mode: str) -> float:
    """The number a child process running ``code`` with argument ``mode`` prints."""
    out = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def minor_faults(mode: str) -> float:
    return child_figure(CHILD, mode)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_keep_freed_memory_stops_page_faults_of_repeated_allocations():
    default = minor_faults("default")
    tuned = minor_faults("tuned")
    # glibc's default raises its mmap threshold to 4 MiB after the first free, but trims the
    # 16 MiB freed at the top of the heap, so the blocks are faulted in again on every pass
    # (1024 pages of 4 KiB each, fewer with larger pages)
    assert default > 50 * 1000
    assert tuned < default / 20


RETURN_CHILD = """
import os, sys
import numpy as np
from calobench.allocator import return_freed_memory
if sys.argv[1] == "tuned":
    assert return_freed_memory()
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
big = np.ones(1 << 20)  # 8 MiB, mmapped; freeing it raises glibc's dynamic threshold to 8 MiB
del big
start = rss_mb()
arrays, kept = [], []
for _ in range(50):
    arrays.append(np.ones(1 << 18))  # 2 MiB, freed below
    kept.append(np.ones(1 << 13))    # 64 KiB, kept: lies above the 2 MiB block on the heap
del arrays
print(rss_mb() - start)
"""


def resident_after_free_mb(mode: str) -> float:
    return child_figure(RETURN_CHILD, mode)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_return_freed_memory_gives_back_large_arrays_below_live_ones():
    # 50 x 2 MiB freed, 50 x 64 KiB (3.1 MiB) still alive
    default = resident_after_free_mb("default")
    tuned = resident_after_free_mb("tuned")
    assert default > 80  # the heap holds the 100 MiB freed: it cannot shrink past the live blocks
    assert tuned < 10
