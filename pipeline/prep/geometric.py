"""Geometric augmentation of stamp batches ``(N, C, H, W)`` float32 in torch, on any device; every transform
moves all channels of a stamp alike (template, science and difference stay aligned).

- exact dihedral transforms (:func:`dihedral`, :func:`inverse_dihedral`, :func:`all_dihedral`): the 8
  symmetries of the square, a pure pixel permutation (no interpolation), so
  ``inverse_dihedral(dihedral(x, k), k) == x`` bit for bit;
- one bilinear affine warp per stamp (:func:`affine_warp`) for rotation by any angle (degrees), sub-pixel
  shifts (pixels), zoom and flips;
- exact flips (:func:`random_flips`) and exact integer shifts (:func:`integer_shift`) when no interpolation
  is wanted; :func:`exact_source_index` composes dihedral, flips and shift into one source index per stamp
  and :func:`permute_pixels` applies it with one gather (one pass over the pixels instead of three).

Pixels from outside the stamp are filled as :data:`PADDING_MODES` say.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pipeline.prep.preprocess import as_batch

#: How pixels from outside the stamp are filled: zeros, the edge pixel repeated, or the stamp mirrored.
PADDING_MODES = ("zeros", "border", "reflection")

#: Inverse of dihedral element k: rotations r -> -r, flip-then-rotate elements are their own inverse.
DIHEDRAL_INVERSE = (0, 3, 2, 1, 4, 5, 6, 7)


def _dihedral_one(x: Tensor, k: int) -> Tensor:
    """Element ``k`` of D4: ``rot90^(k % 4)(flip_lr^(k // 4)(x))``."""
    if k >= 4:
        x = x.flip(-1)
    return torch.rot90(x, k % 4, dims=(-2, -1))


@functools.lru_cache(maxsize=16)
def _dihedral_index(size: int, device: torch.device) -> Tensor:
    """``(8, size * size)`` int64: output pixel -> input pixel for the 8 dihedral elements (cached per size
    and device, so never modify it in place)."""
    grid = torch.arange(size * size, device=device).reshape(1, 1, size, size)
    return torch.cat([_dihedral_one(grid, k).reshape(1, -1) for k in range(8)])


@functools.lru_cache(maxsize=16)
def _dihedral_parts(size: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """The dihedral source index as an outer sum: ``index[k, r * size + c] == rows[k, r] + cols[k, c]``,
    two ``(8, size)`` int64 tables (cached, never modify them in place)."""
    table = _dihedral_index(size, device).view(8, size, size)
    return table[:, :, 0].contiguous(), (table[:, 0, :] - table[:, :1, 0]).contiguous()


def dihedral(x: Tensor | np.ndarray, k: int | Tensor) -> Tensor:
    """Apply dihedral element(s) ``k`` (0-3: rotation by ``k * 90`` deg counter-clockwise; 4-7: mirror
    left-right then rotate by ``(k - 4) * 90``) exactly, as a pixel permutation.

    Args:
        x: ``(N, C, S, S)`` square stamps.
        k: one int for the whole batch, or ``(N,)`` int64, one element per stamp.

    Returns:
        ``(N, C, S, S)`` float32, values moved, never interpolated.
    """
    t = as_batch(x)
    if isinstance(k, int):
        return _dihedral_one(t, k % 8)
    n, _, h, w = t.shape
    return permute_pixels(t, *exact_source_index(n, h, w, t.device, k=k))


def exact_source_index(
    n: int,
    h: int,
    w: int,
    device: torch.device | str,
    k: Tensor | None = None,
    flip_lr: Tensor | None = None,
    flip_ud: Tensor | None = None,
    shift: tuple[Tensor, Tensor] | None = None,
    padding_mode: str = "reflection",
) -> tuple[Tensor, Tensor | None]:
    """Where each output pixel comes from after dihedral ``k``, then flips, then an integer shift.

    The exact transforms are pixel permutations, so they compose into one source index per stamp and
    :func:`permute_pixels` applies them all with a single gather (the same values as applying
    :func:`dihedral`, the flips of :func:`random_flips` and :func:`integer_shift` one after the other).

    Args:
        n, h, w: batch size and stamp height and width (pixels).
        k: ``(N,)`` dihedral elements (square stamps only), or None.
        flip_lr, flip_ud: ``(N,)`` bool, mirror left-right, then up-down; or None.
        shift: ``(dx, dy)``, each ``(N,)`` int pixels (positive moves the content right / down), or None.
        padding_mode: fill of pixels shifted in from outside: ``zeros``, ``border`` or ``reflection``.

    Returns:
        ``(N, H * W)`` int64 flat source pixel of each output pixel, and for ``zeros`` padding with a shift
        an ``(N, H, W)`` bool mask of the pixels that come from inside the stamp (else None).
    """
    # Every step maps rows and columns separately (a dihedral element may swap them), so the flat source
    # index is an outer sum row_part[r] + col_part[c]: built from (N, H) and (N, W) vectors, never per pixel.
    rows = torch.arange(h, device=device).expand(n, h)
    cols = torch.arange(w, device=device).expand(n, w)
    inside = None
    if shift is not None:
        dx, dy = (torch.as_tensor(d, device=device).long() for d in shift)
        rows, rows_in = _padded_index(rows - dy[:, None], h, padding_mode)
        cols, cols_in = _padded_index(cols - dx[:, None], w, padding_mode)
        inside = rows_in[:, :, None] & cols_in[:, None, :] if padding_mode == "zeros" else None
    if flip_ud is not None:
        rows = torch.where(flip_ud.to(device)[:, None], h - 1 - rows, rows)
    if flip_lr is not None:
        cols = torch.where(flip_lr.to(device)[:, None], w - 1 - cols, cols)
    if k is None:
        return (rows[:, :, None] * w + cols[:, None, :]).reshape(n, h * w), inside
    if h != w:
        raise ValueError(f"dihedral transforms need square stamps, got {(h, w)}")
    row_table, col_table = _dihedral_parts(h, torch.device(device))
    k = torch.as_tensor(k, device=device).long() % 8
    row_part = row_table[k].gather(1, rows)
    col_part = col_table[k].gather(1, cols)
    return (row_part[:, :, None] + col_part[:, None, :]).reshape(n, h * w), inside


def permute_pixels(x: Tensor, index: Tensor, inside: Tensor | None = None) -> Tensor:
    """Move the pixels of every channel of each stamp: ``out[i, c].flat[p] = x[i, c].flat[index[i, p]]``.

    Args:
        x: ``(N, C, H, W)``.
        index: ``(N, H * W)`` int64 source pixels (from :func:`exact_source_index`).
        inside: optional ``(N, H, W)`` bool; pixels where it is False are zeroed (multiplied by 0).

    Returns:
        ``(N, C, H, W)``, a new tensor.
    """
    n, c, h, w = x.shape
    out = x.reshape(n, c, h * w).gather(2, index[:, None, :].expand(n, c, h * w)).view(n, c, h, w)
    return out if inside is None else out.mul_(inside[:, None])


def inverse_dihedral(x: Tensor | np.ndarray, k: int | Tensor) -> Tensor:
    """Undo :func:`dihedral` with the same ``k``: ``inverse_dihedral(dihedral(x, k), k) == x`` exactly."""
    inv = torch.tensor(DIHEDRAL_INVERSE)
    if isinstance(k, int):
        return dihedral(x, DIHEDRAL_INVERSE[k % 8])
    k = torch.as_tensor(k).long() % 8
    return dihedral(x, inv.to(k.device)[k])


def all_dihedral(x: Tensor | np.ndarray) -> Tensor:
    """All 8 dihedral images of each stamp: ``(N, C, S, S) -> (8, N, C, S, S)`` (test-time augmentation)."""
    t = as_batch(x)
    return torch.stack([_dihedral_one(t, k) for k in range(8)])


def affine_warp(
    x: Tensor | np.ndarray,
    angle_deg: Tensor | None = None,
    shift_px: Tensor | None = None,
    zoom: Tensor | None = None,
    flip_lr: Tensor | None = None,
    flip_ud: Tensor | None = None,
    padding_mode: str = "reflection",
) -> Tensor:
    """One bilinear warp per stamp: flip, rotate by ``angle_deg``, zoom, then shift, about the stamp centre.

    Args:
        x: ``(N, C, H, W)``.
        angle_deg: ``(N,)`` counter-clockwise rotation in degrees (as displayed, row 0 at the top).
        shift_px: ``(N, 2)`` shift ``(dx, dy)`` in pixels; positive moves the content right/down.
        zoom: ``(N,)`` magnification; > 1 enlarges the content.
        flip_lr, flip_ud: ``(N,)`` bool, mirror left-right / up-down before rotating.
        padding_mode: value of pixels from outside the stamp: ``zeros``, ``border`` or ``reflection``.

    Returns:
        ``(N, C, H, W)`` float32.
    """
    t = as_batch(x)
    n, _, h, w = t.shape
    opts = {"device": t.device, "dtype": torch.float32}
    a = torch.zeros(n, **opts) if angle_deg is None else torch.deg2rad(angle_deg.to(**opts))
    s = torch.ones(n, **opts) if zoom is None else zoom.to(**opts)
    shift = torch.zeros(n, 2, **opts) if shift_px is None else shift_px.to(**opts)
    fx = torch.ones(n, **opts) if flip_lr is None else 1.0 - 2.0 * flip_lr.to(**opts)
    fy = torch.ones(n, **opts) if flip_ud is None else 1.0 - 2.0 * flip_ud.to(**opts)
    # Output pixel p (pixel units, centred) comes from input F R(-a) (p - shift) / s; the y axis points down,
    # so a counter-clockwise rotation as displayed is R(+a) on (x, y_down) coordinates of the inverse map.
    cos, sin = torch.cos(a) / s, torch.sin(a) / s
    lin = torch.stack([torch.stack([cos * fx, -sin * fx], -1), torch.stack([sin * fy, cos * fy], -1)], -2)
    # affine_grid works in normalised coordinates (x / (W/2), y / (H/2)): conjugate by that scaling.
    half = torch.tensor([w / 2.0, h / 2.0], **opts)
    lin_norm = lin * half[None, None, :] / half[None, :, None]
    offset = -(lin_norm @ (shift / half)[..., None])
    theta = torch.cat([lin_norm, offset], dim=-1)
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    return F.grid_sample(t, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def _padded_index(index: Tensor, size: int, padding_mode: str) -> tuple[Tensor, Tensor]:
    """Source index inside ``[0, size)`` for possibly outside ``index``, and whether it was inside."""
    inside = (index >= 0) & (index < size)
    if padding_mode == "reflection":  # mirror about the pixel edge, like grid_sample(align_corners=False)
        period = index.remainder(2 * size)
        return torch.where(period < size, period, 2 * size - 1 - period), inside
    return index.clamp(0, size - 1), inside


def integer_shift(x: Tensor | np.ndarray, dx: Tensor, dy: Tensor, padding_mode: str = "reflection") -> Tensor:
    """Shift each stamp by whole pixels, exactly (no interpolation, so the noise texture is unchanged).

    Args:
        x: ``(N, C, H, W)``.
        dx, dy: ``(N,)`` int shifts in pixels; positive moves the content right / down.
        padding_mode: ``zeros``, ``border`` (repeat the edge pixel) or ``reflection`` (mirror).

    Returns:
        ``(N, C, H, W)`` float32.
    """
    t = as_batch(x)
    n, _, h, w = t.shape
    return permute_pixels(
        t, *exact_source_index(n, h, w, t.device, shift=(dx, dy), padding_mode=padding_mode)
    )


def random_flips(x: Tensor, generator: torch.Generator, p: float = 0.5) -> Tensor:
    """Exact random mirrors: left-right and up-down, each with probability ``p`` per stamp."""
    n = x.shape[0]
    flips = torch.rand(2, n, generator=generator, device=x.device) < p
    x = torch.where(flips[0][:, None, None, None], x.flip(-1), x)
    return torch.where(flips[1][:, None, None, None], x.flip(-2), x)
