"""Preprocessing: Dieleman crop/downsample and viewpoints, Deep-HiTS and ZTF normalisation, masked pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from astropy.stats import mad_std

from pipeline.prep import (
    DielemanViewpoints,
    crop_and_downsample,
    deep_hits_normalize,
    dieleman_viewpoints,
    dihedral,
    fill_masked,
    get_preprocessor,
    minmax_scale,
    robust_sigma,
    ztf_normalize,
)
from tests.pipeline.prep.prep_helpers import random_stamps


def test_crop_and_downsample_is_a_3x3_block_mean_of_the_centre_207px():
    x = np.random.default_rng(0).random((2, 3, 424, 424), dtype=np.float32)
    out = crop_and_downsample(x)  # numpy in, tensor out
    assert out.shape == (2, 3, 69, 69) and out.dtype == torch.float32
    top = (424 - 207) // 2
    crop = x[:, :, top : top + 207, top : top + 207]
    expected = crop.reshape(2, 3, 69, 3, 69, 3).mean(axis=(3, 5))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_viewpoints_are_the_rotated_corners_of_the_four_views():
    x = random_stamps(2, 3, 69)
    parts = dieleman_viewpoints(x)
    assert parts.shape == (2, 16, 3, 45, 45)
    # View 0: part k is corner k (clockwise from top-left) rotated by k * 90 degrees.
    assert torch.equal(parts[:, 0], x[..., :45, :45])
    assert torch.equal(parts[:, 1], torch.rot90(x[..., :45, 24:], 1, dims=(-2, -1)))
    assert torch.equal(parts[:, 2], torch.rot90(x[..., 24:, 24:], 2, dims=(-2, -1)))
    assert torch.equal(parts[:, 3], torch.rot90(x[..., 24:, :45], 3, dims=(-2, -1)))
    # View 1 is the mirror of view 0.
    assert torch.equal(parts[:, 4], x.flip(-1)[..., :45, :45])
    # The stamp centre (34, 34) lands on the same pixel, (34, 34), of every part of the unrotated views.
    marked = torch.zeros(1, 1, 69, 69)
    marked[..., 34, 34] = 1.0
    centre = dieleman_viewpoints(marked)[0, :, 0]
    assert torch.all(centre[:8, 34, 34] == 1.0) and torch.all(centre[:8].sum(dim=(-2, -1)) == 1.0)
    assert torch.allclose(centre[8:, 34, 34], torch.ones(8))  # 45-degree views: also on the centre pixel


@pytest.mark.parametrize("k", range(1, 8))
def test_viewpoints_of_a_rotated_or_mirrored_stamp_are_the_same_set_permuted(k):
    x = random_stamps(3, 3, 69, seed=1)
    base = dieleman_viewpoints(x)
    moved = dieleman_viewpoints(dihedral(x, k))
    dist = (moved[:, :, None] - base[:, None]).abs().flatten(3).amax(-1).amax(0)  # (16, 16)
    match = dist.argmin(dim=1)
    assert sorted(match.tolist()) == list(range(16))  # a permutation
    assert dist.min(dim=1).values.max() < 1e-5  # 45-degree views: bilinear, equal to float rounding
    # The 0-degree views move exactly, without interpolation.
    assert torch.equal(moved[:, :8], base[:, match[:8]])
    if k < 4:  # a pure rotation only cycles the parts within each view
        assert torch.equal(match.view(4, 4)[:, 0] // 4, torch.arange(4))


def test_viewpoint_layer_is_differentiable_and_flattens_for_a_shared_conv_stack():
    x = random_stamps(2, 3, 45).requires_grad_(True)
    layer = DielemanViewpoints(part_size=29)  # a smaller grid, as a `small` preset may use
    out = layer(x)
    assert out.shape == (2 * 16, 3, 29, 29)
    (out * torch.linspace(0, 1, out.numel()).view_as(out)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_viewpoints_reject_parts_larger_than_the_view():
    with pytest.raises(ValueError, match="part_size"):
        dieleman_viewpoints(random_stamps(1, 1, 40), part_size=45)


def test_robust_sigma_recovers_the_noise_and_ignores_a_bright_source():
    rng = np.random.default_rng(2)
    sigma = np.array([0.5, 2.0, 7.0], dtype=np.float32)
    x = rng.normal(size=(3, 2, 63, 63)).astype(np.float32) * sigma[:, None, None, None]
    x[:, :, 30:33, 30:33] += 1000.0  # a bright point source
    est = robust_sigma(x)
    assert est.shape == (3, 2)
    np.testing.assert_allclose(est.numpy(), np.repeat(sigma[:, None], 2, axis=1), rtol=0.05)
    np.testing.assert_allclose(est.numpy(), mad_std(x, axis=(2, 3)), rtol=1e-3)
    # The masked path (torch nanmedian) gives the same numbers as the fast numpy path.
    masked = robust_sigma(x, mask=np.zeros(x.shape, bool))
    np.testing.assert_allclose(masked.numpy(), est.numpy(), rtol=1e-6)


def test_deep_hits_normalisation_scales_each_channel_to_unit_range_and_adds_snr():
    rng = np.random.default_rng(3)
    triplet = (
        rng.normal(size=(4, 3, 21, 21)).astype(np.float32) * np.array([1, 2, 3], np.float32)[:, None, None]
    )
    out = deep_hits_normalize(triplet)
    assert out.shape == (4, 4, 21, 21)
    assert torch.allclose(out.amin(dim=(-2, -1)), torch.zeros(4, 4))
    assert torch.allclose(out.amax(dim=(-2, -1)), torch.ones(4, 4))
    # One sigma per stamp: the scaled SNR equals the scaled difference; a noise map changes it.
    assert torch.allclose(out[:, 3], out[:, 2], atol=1e-6)
    noise_map = np.linspace(1.0, 4.0, 21 * 21, dtype=np.float32).reshape(1, 21, 21).repeat(4, 0)
    with_map = deep_hits_normalize(triplet, noise=noise_map)
    expected = minmax_scale(torch.from_numpy(triplet[:, 2:3] / noise_map[:, None]))[:, 0]
    assert torch.allclose(with_map[:, 3], expected, atol=1e-6)
    assert not torch.allclose(with_map[:, 3], with_map[:, 2], atol=1e-3)


def test_numpy_input_of_any_byte_order_or_layout_is_accepted():
    x = np.random.default_rng(5).normal(size=(2, 3, 9, 9))
    big_endian = x.astype(">f4")[:, :, ::-1]  # FITS byte order and a negative stride
    out = minmax_scale(big_endian)
    assert out.dtype == torch.float32
    assert torch.allclose(out, minmax_scale(torch.from_numpy(x[:, :, ::-1].copy()).float()))


def test_minmax_of_a_constant_channel_is_zero_not_nan():
    out = minmax_scale(torch.full((1, 2, 5, 5), 3.0))
    assert torch.equal(out, torch.zeros(1, 2, 5, 5))


def test_ztf_normalisation_zeroes_nans_unit_norms_each_image_and_pads_to_63():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 3, 50, 63)).astype(np.float32) * 30.0
    x[0, 1, 5, 5] = np.nan
    out = ztf_normalize(x)
    assert out.shape == (2, 3, 63, 63)
    body = out[..., :50, :]
    assert torch.isfinite(out).all() and body[0, 1, 5, 5] == 0.0
    norms = torch.linalg.vector_norm(body, dim=(-2, -1))
    assert torch.allclose(norms, torch.ones(2, 3), atol=1e-5)
    assert torch.all(out[..., 50:, :] == torch.tensor(1e-9))  # braai pads the bottom rows with 1e-9
    with pytest.raises(ValueError, match="larger"):
        ztf_normalize(np.zeros((1, 3, 64, 64), np.float32))


def test_fill_masked_fills_and_keeps_the_mask_as_channels():
    x = torch.arange(2 * 2 * 3 * 3, dtype=torch.float32).view(2, 2, 3, 3)
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[0, 1, 0, 0] = True
    x[1, 0, 2, 2] = float("nan")  # NaN counts as masked
    zero = fill_masked(x, mask)
    assert zero[0, 1, 0, 0] == 0 and zero[1, 0, 2, 2] == 0 and torch.isfinite(zero).all()
    median = fill_masked(x, mask, fill="median")
    assert median[0, 1, 0, 0] == torch.median(x[0, 1].flatten()[1:])  # the median of the valid pixels
    any_ = fill_masked(x, mask, keep_mask="any")
    assert (
        any_.shape == (2, 3, 3, 3)
        and any_[0, 2, 0, 0] == 1
        and any_[1, 2, 2, 2] == 1
        and any_[:, 2].sum() == 2
    )
    each = fill_masked(x, mask, fill=-1.0, keep_mask="each")
    assert each.shape == (2, 4, 3, 3) and each[0, 3, 0, 0] == 1 and each[0, 2, 0, 0] == 0
    assert each[0, 1, 0, 0] == -1.0


def test_named_preprocessors_bind_their_arguments():
    prep = get_preprocessor("dieleman", crop=30, out=10)
    assert prep(random_stamps(1, 3, 40)).shape == (1, 3, 10, 10)
    assert get_preprocessor("none") is None
    with pytest.raises(ValueError, match="unknown preprocessing"):
        get_preprocessor("nope")
