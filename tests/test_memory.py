"""mmcourse.memory.peak_memory: real resident memory, not fooled by memory freed earlier."""
import pytest
import torch

from mmcourse.memory import peak_memory, peak_memory_supported

pytestmark = pytest.mark.skipif(not peak_memory_supported(), reason="needs Linux /proc/self/clear_refs")
MIB = 2**20


def _touch(nbytes: int) -> float:
    x = torch.ones(nbytes // 4)  # float32, every page written
    return float(x[-1])


def test_peak_memory_sees_a_fresh_allocation_and_returns_the_result():
    peak = peak_memory(lambda: _touch(48 * MIB))
    assert 44 <= peak.mib <= 80, peak.mib
    assert peak.result == 1.0


_FREED_EARLIER = """
import torch
from mmcourse.memory import peak_memory
MIB = 2**20
def touch(nbytes):
    x = torch.ones(nbytes // 4)  # float32, every page written
    return float(x[-1])
touch(96 * MIB)  # glibc raises its mmap threshold after freeing this block...
touch(32 * MIB)  # ...so this one comes from the heap and stays there, free, once released
print(peak_memory(lambda: touch(16 * MIB), repeats=2).mib)
"""


def test_memory_freed_earlier_does_not_hide_a_later_peak():
    """A big block freed before the measurement must not absorb the measured call's 16 MiB.

    Run in a fresh interpreter: the allocator state this test sets up must not depend on what
    every earlier test in the session left behind (thousands of cached tensors, other threads).
    """
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _FREED_EARLIER], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    mib = float(out.stdout.strip().splitlines()[-1])
    assert mib >= 14, mib


def test_repeats_must_be_positive():
    with pytest.raises(ValueError, match="repeats"):
        peak_memory(lambda: None, repeats=0)
