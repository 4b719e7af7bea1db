"""calobench.allocator: glibc keeps freed memory, so repeated few-MB tensors stop page-faulting."""

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


def minor_faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_keep_freed_memory_stops_page_faults_of_repeated_allocations():
    default = minor_faults("default")
    tuned = minor_faults("tuned")
    # glibc's default raises its mmap threshold to 4 MiB after the first free, but trims the
    # 16 MiB freed at the top of the heap, so the blocks are faulted in again on every pass
    # (1024 pages of 4 KiB each, fewer with larger pages)
    assert default > 50 * 1000
    assert tuned < default / 20
