"""Helpers of the model tests: tiny simulated galaxies, a few optimiser steps on a fixed batch."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from data_catalogs.galaxy_zoo import QUESTION_SLICES, cumulative_from_conditional


def galaxies(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 3, size, size)`` elliptical exponential discs in noise and ``(n, 37)`` tree-valid labels.

    Labels: per-question fractions from a Dirichlet, with Q1 "smooth" and Q7 "round" tied to the axis ratio
    so that the images carry some signal; then :func:`cumulative_from_conditional`.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    stamps = np.empty((n, 3, size, size), np.float32)
    cond = np.empty((n, 37))
    for i in range(n):
        q, pa = rng.uniform(0.2, 1.0), rng.uniform(0, np.pi)
        u = xx * np.cos(pa) + yy * np.sin(pa)
        v = (-xx * np.sin(pa) + yy * np.cos(pa)) / q
        disc = np.exp(-np.hypot(u, v) / (size / 12))
        stamps[i] = disc * np.array([0.8, 1.0, 1.2])[:, None, None] + rng.normal(0, 0.02, (3, size, size))
        for name in QUESTION_SLICES:
            sl = QUESTION_SLICES[name]
            cond[i, sl] = rng.dirichlet(np.ones(sl.stop - sl.start))
        cond[i, QUESTION_SLICES["Q1"]] = [q * 0.9, (1 - q) * 0.9, 0.1]
        cond[i, QUESTION_SLICES["Q7"]] = [q**2, 2 * q * (1 - q), (1 - q) ** 2]
    return stamps, cumulative_from_conditional(cond).astype(np.float32)


def fixed_batch_losses(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
) -> list[float]:
    """The loss before each of ``steps`` optimiser steps of ``model`` on the one batch ``(x, y)``."""
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
