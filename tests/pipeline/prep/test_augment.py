"""Augmentation: exact dihedral transforms, warps, noise levels, colour PCA, configs and seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.prep import (
    AugmentConfig,
    Augmenter,
    add_poisson_noise,
    affine_warp,
    all_dihedral,
    as_generator,
    augment_preset,
    color_perturb,
    dihedral,
    fit_color_pca,
    integer_shift,
    inverse_dihedral,
    make_augmenter,
    robust_sigma,
)
from tests.pipeline.prep.prep_helpers import random_stamps


@pytest.mark.parametrize("k", range(8))
def test_dihedral_then_inverse_returns_the_stamp_exactly(k):
    x = random_stamps(5, 4, 21)
    assert torch.equal(inverse_dihedral(dihedral(x, k), k), x)
    per_stamp = torch.tensor([k, (k + 1) % 8, (k + 3) % 8, 7 - k, k])
    assert torch.equal(inverse_dihedral(dihedral(x, per_stamp), per_stamp), x)


def test_dihedral_elements_are_rotations_and_mirrors_and_all_distinct():
    x = random_stamps(3, 2, 9, seed=1)
    assert torch.equal(dihedral(x, 1), torch.rot90(x, 1, dims=(-2, -1)))
    assert torch.equal(dihedral(x, 4), x.flip(-1))
    assert torch.equal(dihedral(x, 6), torch.rot90(x.flip(-1), 2, dims=(-2, -1)))
    # The per-stamp path (a gather) equals the per-batch path (rot90/flip).
    ks = torch.tensor([6, 1, 3])
    expected = torch.stack([dihedral(x[i : i + 1], int(k))[0] for i, k in enumerate(ks)])
    assert torch.equal(dihedral(x, ks), expected)
    images = all_dihedral(x)
    assert images.shape == (8, 3, 2, 9, 9)
    flat = images[:, 0].flatten(1)
    assert len({tuple(row.tolist()) for row in flat}) == 8


def test_affine_warp_agrees_with_the_exact_operations():
    x = random_stamps(2, 3, 21, seed=2)
    ones = torch.ones(2)
    assert torch.allclose(affine_warp(x, angle_deg=90 * ones), torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5)
    assert torch.allclose(affine_warp(x, flip_lr=ones.bool()), x.flip(-1), atol=1e-5)
    shifts = torch.tensor([[1.0, 0.0], [-2.0, 3.0]])
    for mode in ("zeros", "border", "reflection"):
        warped = affine_warp(x, shift_px=shifts, padding_mode=mode)
        exact = integer_shift(x, shifts[:, 0].long(), shifts[:, 1].long(), padding_mode=mode)
        assert torch.allclose(warped, exact, atol=1e-5), mode
    assert torch.equal(
        integer_shift(x, torch.tensor([1, 0]), torch.tensor([0, 0]))[0, :, :, 1:], x[0, :, :, :-1]
    )
    # A zoom > 1 enlarges: a centred Gaussian keeps its peak and gains flux.
    yy, xx = torch.meshgrid(torch.arange(21.0) - 10, torch.arange(21.0) - 10, indexing="ij")
    blob = torch.exp(-(xx**2 + yy**2) / 8.0)[None, None]
    zoomed = affine_warp(blob, zoom=torch.tensor([1.5]))
    assert zoomed[0, 0, 10, 10] == pytest.approx(1.0, abs=1e-5) and zoomed.sum() > 2.0 * blob.sum()


@pytest.mark.parametrize("level", [0.25, 1.0])
def test_gaussian_noise_has_the_requested_level_of_each_stamps_own_noise(level):
    rng = np.random.default_rng(3)
    sigma = np.array([0.1, 1.0, 30.0, 500.0], dtype=np.float32)[:, None, None, None]
    x = torch.from_numpy(rng.normal(size=(4, 3, 128, 128)).astype(np.float32) * sigma + 100.0)
    out = Augmenter(AugmentConfig(noise_level=level), seed=0)(x)
    added = (out - x).flatten(2).std(dim=-1) / torch.from_numpy(sigma[:, :, 0, 0])
    assert torch.allclose(added, torch.full_like(added, level), rtol=0.05)
    total = robust_sigma(out) / torch.from_numpy(sigma[:, :, 0, 0])
    assert torch.allclose(total, torch.full_like(total, (1 + level**2) ** 0.5), rtol=0.05)


def test_poisson_like_noise_variance_follows_the_signal():
    x = torch.full((2, 1, 100, 100), 50.0)
    x[1] = 200.0
    out = add_poisson_noise(x, gain=2.0, generator=torch.Generator().manual_seed(0))
    var = (out - x).flatten(1).var(dim=1)
    assert torch.allclose(var, torch.tensor([25.0, 100.0]), rtol=0.05)
    assert torch.equal(add_poisson_noise(-x, 2.0, torch.Generator().manual_seed(0)), -x)  # no noise below 0


def test_colour_pca_finds_the_colour_direction_and_perturbs_along_it():
    g = torch.Generator().manual_seed(4)
    brightness = torch.rand(64, 1, 8, 8, generator=g)
    direction = torch.tensor([0.8, 0.5, 0.3])
    x = brightness * direction[None, :, None, None] + 0.01 * torch.randn(64, 3, 8, 8, generator=g)
    vals, vecs = fit_color_pca(x)
    assert vals[0] > 100 * vals[1]
    assert torch.allclose(vecs[:, 0].abs(), direction / direction.norm(), atol=1e-2)
    out = color_perturb(x, vals[:1], vecs[:, :1], sigma=0.5, generator=g)
    shift = (out - x).flatten(2)
    assert torch.allclose(shift.std(dim=-1), torch.zeros(64, 3), atol=1e-6)  # one colour per stamp
    per_stamp = shift[:, :, 0]
    cos = (per_stamp @ vecs[:, 0]).abs() / per_stamp.norm(dim=1)
    assert torch.all(cos > 0.999)  # along the first principal component
    alpha = (per_stamp @ vecs[:, 0]) / vals[0].sqrt()
    assert 0.35 < float(alpha.std()) < 0.65  # sigma 0.5


def test_config_is_off_by_default_json_round_trips_and_presets_turn_things_on():
    assert AugmentConfig().enabled == []
    assert make_augmenter(None) is None and make_augmenter("none") is None
    morph = augment_preset("morphology")
    assert morph.enabled == ["flip", "rotate", "zoom", "shift", "color_pca"]
    assert morph.zoom_range == pytest.approx((1 / 1.3, 1.3)) and morph.color_pca_sigma == 0.5
    rb = augment_preset("realbogus", noise_level=0.5)
    assert rb.enabled == ["dihedral", "shift", "noise"] and rb.noise_level == 0.5 and not rb.interpolating
    fitted = morph.with_color_pca(torch.tensor([2.0, 1.0]), torch.eye(2))
    assert AugmentConfig.from_json(fitted.to_json()) == fitted
    with pytest.raises(ValueError, match="unknown augmentation settings"):
        AugmentConfig.from_dict({"rotation": True})
    with pytest.raises(ValueError, match="zoom_range"):
        AugmentConfig(zoom_range=(0.0, 1.0))


@pytest.mark.parametrize("preset", ["morphology", "realbogus"])
def test_same_seed_gives_the_same_augmentation(preset):
    x = random_stamps(16, 3, 33, seed=5)
    cfg = augment_preset(preset)
    a = Augmenter(cfg, seed=7)(x)
    b = Augmenter(cfg, seed=7)(x)
    c = Augmenter(cfg, seed=8)(x)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and torch.isfinite(a).all()
    aug = Augmenter(cfg, seed=0)
    assert torch.equal(aug(x, generator=as_generator((1, 2, 3))), aug(x, generator=as_generator((1, 2, 3))))


def test_every_channel_of_a_stamp_gets_the_same_geometric_transform():
    one = random_stamps(32, 1, 21, seed=6)
    x = one.repeat(1, 4, 1, 1)  # four identical channels (template, science, difference, snr)
    cfg = augment_preset("realbogus", noise_level=0.0)
    out = Augmenter(cfg, seed=1)(x)
    assert torch.equal(out, out[:, :1].expand_as(out))
    assert not torch.equal(out, x)
    # Auxiliary (mask) channels move with the image but get no photometric change.
    mask = (one > 0.9).float()
    with_mask = Augmenter(augment_preset("realbogus"), seed=1)(torch.cat([one, mask], 1), n_aux=1)
    assert set(torch.unique(with_mask[:, 1]).tolist()) <= {0.0, 1.0}
    geometric = Augmenter(cfg, seed=1)(torch.cat([one, mask], 1), n_aux=1)
    assert torch.equal(with_mask[:, 1], geometric[:, 1])
