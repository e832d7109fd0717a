"""Random stamp batches shared by the preprocessing and augmentation tests."""

from __future__ import annotations

import torch


def random_stamps(n: int, c: int, size: int, seed: int = 0) -> torch.Tensor:
    """``(n, c, size, size)`` float32 uniform in [0, 1), the same for the same ``seed``."""
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed))
