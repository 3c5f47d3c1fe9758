"""Random inputs shared by the exercise topics (seeded by the checker, hidden from learners)."""
import torch
import torch.nn.functional as F

DTYPES = (torch.float32, torch.float64)


def generator(rng) -> torch.Generator:
    return torch.Generator().manual_seed(int(rng.integers(1 << 31)))


def randn(rng, *shape, normalize=False, dtype=torch.float64):
    x = torch.randn(*shape, generator=generator(rng), dtype=dtype)
    return F.normalize(x, dim=-1) if normalize else x


def pick_dtype(rng) -> torch.dtype:
    """float32 or float64, drawn: both must work."""
    return DTYPES[int(rng.integers(2))]


def sizes(rng, low: int, high: int, count: int) -> list[int]:
    """``count`` random sizes in ``[low, high]``."""
    return [int(v) for v in rng.integers(low, high + 1, size=count)]
