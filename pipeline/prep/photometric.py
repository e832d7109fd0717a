"""Photometric augmentation of stamp batches ``(N, C, H, W)`` float32 in torch, on any device; each random
draw comes from a ``torch.Generator`` on the tensor's device.

- Gaussian noise at a multiple of each stamp channel's own robust (MAD) sigma (:func:`add_gaussian_noise`)
  and Poisson-like, signal-dependent noise (:func:`add_poisson_noise`), in the units of the stamps;
- log-uniform factors (:func:`log_uniform`) for brightness scaling (and the zoom of the geometric warp);
- Krizhevsky/Dieleman colour perturbation along the principal components of the pixel colours
  (:func:`fit_color_pca`, :func:`color_perturb`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from pipeline.prep.preprocess import as_batch, robust_sigma


def add_gaussian_noise(
    x: Tensor, level: float, generator: torch.Generator, sigma: Tensor | None = None
) -> Tensor:
    """Add white Gaussian noise of standard deviation ``level * sigma`` to each stamp channel.

    Args:
        x: ``(N, C, H, W)``.
        level: noise as a multiple of each channel's own noise (0.25 adds 25 %; the total noise grows by
            ``sqrt(1 + level**2)``).
        generator: random source on ``x.device``.
        sigma: ``(N, C)`` noise of each stamp channel; default :func:`pipeline.prep.preprocess.robust_sigma` of ``x``.
    """
    if sigma is None:
        sigma = robust_sigma(x)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    # In place on the fresh noise (no temporaries): the same float32 products and sums as x + noise * scale.
    return noise.mul_((level * torch.nan_to_num(sigma, nan=0.0))[..., None, None]).add_(x)


def add_poisson_noise(x: Tensor, gain: float, generator: torch.Generator) -> Tensor:
    """Poisson-like (signal-dependent) noise: Gaussian of variance ``max(x, 0) / gain`` per pixel.

    ``gain`` is counts per unit of ``x``: a pixel of value v has the shot noise of ``v * gain`` counts,
    expressed back in the units of ``x``. Negative pixels get no added noise.
    """
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return noise.mul_(x.clamp(min=0.0).div_(gain).sqrt_()).add_(x)


def fit_color_pca(x: Tensor | np.ndarray, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Principal components of the pixel colours: the covariance of the C-vectors of all pixels.

    Args:
        x: ``(N, C, H, W)`` stamps (a sample of the training set).
        mask: optional ``(N, 1 or C, H, W)`` bool, True for pixels to leave out.

    Returns:
        ``(eigvals (C,), eigvecs (C, C))`` float32, eigenvalues (variances) in decreasing order and the
        matching unit eigenvectors as columns.
    """
    t = as_batch(x)
    colours = t.transpose(0, 1).reshape(t.shape[1], -1)
    if mask is not None:
        keep = ~mask.to(t.device).bool().any(dim=1).reshape(-1)
        colours = colours[:, keep]
    vals, vecs = torch.linalg.eigh(torch.cov(colours).double())
    order = torch.argsort(vals, descending=True)
    return vals[order].clamp(min=0).float(), vecs[:, order].float()


def color_perturb(
    x: Tensor, eigvals: Tensor, eigvecs: Tensor, sigma: float, generator: torch.Generator
) -> Tensor:
    """Krizhevsky et al. 2012 colour augmentation: add ``sum_i alpha_i sqrt(lambda_i) p_i`` to every pixel.

    ``alpha_i ~ N(0, sigma)`` per stamp and component (Dieleman 2015: ``sigma = 0.5``). The scale along each
    component is the colour standard deviation ``sqrt(lambda_i)`` (as in the common implementations of
    Krizhevsky's recipe), so the shift is in pixel units whatever the data scale. Dieleman's code used only
    the first component: pass ``eigvals[:1], eigvecs[:, :1]``.

    Args:
        x: ``(N, C, H, W)``.
        eigvals: ``(K,)`` variances; eigvecs: ``(C, K)`` unit vectors (from :func:`fit_color_pca`).
    """
    vals = eigvals.to(x.device, x.dtype)
    vecs = eigvecs.to(x.device, x.dtype)
    alpha = (
        torch.randn(x.shape[0], vals.shape[0], generator=generator, device=x.device, dtype=x.dtype) * sigma
    )
    shift = (alpha * vals.sqrt()) @ vecs.T  # (N, C)
    return x + shift[..., None, None]


def log_uniform(
    n: int, lo: float, hi: float, generator: torch.Generator, device: torch.device | str = "cpu"
) -> Tensor:
    """``(n,)`` samples whose log is uniform in ``[log lo, log hi]``."""
    u = torch.rand(n, generator=generator, device=device)
    return torch.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
