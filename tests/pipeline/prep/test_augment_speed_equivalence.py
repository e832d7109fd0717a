"""The fast augmentation computes what the straightforward one did: the same random draws in the same order
and the same values bit for bit.

Two references: a slow, obvious implementation kept here (one transform at a time, per-stamp loops,
torch.median, numpy padding), compared exactly on this machine; and the outputs recorded with the
implementation before the speed-up (tests/data/augment_reference/augment_outputs.json, see its note),
compared to 1e-6 relative so that a change of draws or order fails on any machine.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.prep import AugmentConfig, Augmenter, augment_preset, dihedral, integer_shift, robust_sigma
from pipeline.prep.preprocess import MAD_TO_SIGMA

REFERENCE = Path(__file__).parents[2] / "data" / "augment_reference" / "augment_outputs.json"

#: name -> (config or preset name, batch shape, auxiliary channels); the recorded outputs use these.
CASES = {
    "small_3x65x65": (
        {"dihedral": True, "shift_px": 2.0, "integer_shift": True, "noise_level": 0.5},
        (8, 3, 65, 65),
        0,
    ),
    "realbogus_4x21x21": (
        {"dihedral": True, "shift_px": 2.0, "integer_shift": True, "noise_level": 0.25},
        (8, 4, 21, 21),
        0,
    ),
    "morphology_3x65x65": ("morphology", (8, 3, 65, 65), 0),
    "zeros_flips_poisson_aux_2x8x8": (
        {
            "dihedral": True,
            "flip": True,
            "shift_px": 3.0,
            "integer_shift": True,
            "padding_mode": "zeros",
            "noise_level": 0.3,
            "poisson_gain": 50.0,
            "brightness_range": [0.8, 1.25],
            "clip_range": [-1.0, 2.0],
        },
        (5, 3, 8, 8),
        1,
    ),
    "border_flips_2x12x16": (
        {"flip": True, "shift_px": 2.0, "integer_shift": True, "padding_mode": "border", "noise_level": 1.0},
        (4, 2, 12, 16),
        0,
    ),
}


def seeded_stamps(shape: tuple[int, ...], seed: int = 7) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g) * 0.1 + torch.rand((*shape[:2], 1, 1), generator=g)


def config_of(name: str) -> AugmentConfig:
    cfg = CASES[name][0]
    return augment_preset(cfg) if isinstance(cfg, str) else AugmentConfig.from_dict(cfg)


# ------------------------------------------------------------------ the slow, straightforward reference
def slow_sigma(x: torch.Tensor) -> torch.Tensor:
    flat = x.flatten(2)
    med = flat.median(dim=-1, keepdim=True).values
    return (flat - med).abs().median(dim=-1).values * MAD_TO_SIGMA


def slow_dihedral(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    stamps = []
    for stamp, kk in zip(x, k.tolist(), strict=True):
        stamp = stamp.flip(-1) if kk >= 4 else stamp
        stamps.append(torch.rot90(stamp, kk % 4, dims=(-2, -1)))
    return torch.stack(stamps)


def slow_shift(x: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, padding_mode: str) -> torch.Tensor:
    mode = {"zeros": "constant", "border": "edge", "reflection": "symmetric"}[padding_mode]
    p = int(max(dx.abs().max(), dy.abs().max()))
    out = []
    for stamp, sx, sy in zip(x.numpy(), dx.tolist(), dy.tolist(), strict=True):
        padded = np.pad(stamp, ((0, 0), (p, p), (p, p)), mode=mode)
        h, w = stamp.shape[-2:]
        out.append(padded[:, p - sy : p - sy + h, p - sx : p - sx + w])
    return torch.from_numpy(np.stack(out))


def slow_augment(config: AugmentConfig, x: torch.Tensor, g: torch.Generator, n_aux: int) -> torch.Tensor:
    """Integer-pixel configs only: every step on its own, in the documented order."""
    n, n_img = x.shape[0], x.shape[1] - n_aux
    sigma = slow_sigma(x[:, :n_img])
    if config.dihedral:
        x = slow_dihedral(x, torch.randint(0, 8, (n,), generator=g))
    if config.flip:
        flips = torch.rand(2, n, generator=g) < 0.5
        x = torch.where(flips[0][:, None, None, None], x.flip(-1), x)
        x = torch.where(flips[1][:, None, None, None], x.flip(-2), x)
    s = math.floor(config.shift_px)
    d = torch.randint(-s, s + 1, (2, n), generator=g)
    x = slow_shift(x, d[0], d[1], config.padding_mode)
    img = x[:, :n_img]
    if tuple(config.brightness_range) != (1.0, 1.0):
        lo, hi = config.brightness_range
        u = torch.rand(n, generator=g)
        img = img * torch.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))[:, None, None, None]
    img = img + torch.randn(img.shape, generator=g) * (config.noise_level * sigma)[..., None, None]
    if config.poisson_gain > 0:
        img = img + torch.randn(img.shape, generator=g) * torch.sqrt(img.clamp(min=0.0) / config.poisson_gain)
    if config.clip_range is not None:
        img = img.clamp(*config.clip_range)
    return torch.cat([img, x[:, n_img:]], dim=1)


# ------------------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("name", [name for name in CASES if name != "morphology_3x65x65"])
def test_fast_augmenter_equals_the_straightforward_steps_bit_for_bit(name):
    _, shape, n_aux = CASES[name]
    config = config_of(name)
    x = seeded_stamps(shape)
    fast_g, slow_g = torch.Generator().manual_seed(11), torch.Generator().manual_seed(11)
    for _ in range(2):  # the second batch checks that both consumed the same number of draws
        fast = Augmenter(config)(x, generator=fast_g, n_aux=n_aux)
        assert torch.equal(fast, slow_augment(config, x, slow_g, n_aux)), name
    assert torch.equal(x, seeded_stamps(shape)), "the input must not be modified"


@pytest.mark.parametrize("name", list(CASES))
def test_augmenter_reproduces_the_outputs_recorded_before_the_speed_up(name):
    recorded = json.loads(REFERENCE.read_text())["cases"][name]
    _, shape, n_aux = CASES[name]
    augmenter = Augmenter(config_of(name), seed=3)
    x = seeded_stamps(shape)
    y = torch.stack([augmenter(x, n_aux=n_aux), augmenter(x, n_aux=n_aux)]).double()
    assert y.sum().item() == pytest.approx(recorded["sum"], rel=1e-6)
    assert y.abs().sum().item() == pytest.approx(recorded["abs_sum"], rel=1e-6)
    np.testing.assert_allclose(y.flatten()[:6].numpy(), recorded["first"], rtol=1e-6, atol=1e-7)


def test_composed_exact_transforms_equal_one_at_a_time():
    x = seeded_stamps((6, 2, 9, 9), seed=2)
    k = torch.tensor([0, 1, 2, 5, 6, 7])
    dx, dy = torch.tensor([0, 1, -2, 3, -1, 2]), torch.tensor([2, -3, 0, 1, 1, -2])
    for mode in ("zeros", "border", "reflection"):
        assert torch.equal(integer_shift(x, dx, dy, mode), slow_shift(x, dx, dy, mode)), mode
    assert torch.equal(dihedral(x, k), slow_dihedral(x, k))


def test_robust_sigma_fast_path_equals_torch_median_also_with_nan_and_inf():
    x = seeded_stamps((4, 3, 16, 15), seed=5)
    assert torch.equal(robust_sigma(x), slow_sigma(x))
    x[0, 1, 2, 3], x[1, 0, 0, 0] = float("inf"), float("-inf")  # the sum is NaN, no pixel is
    assert torch.equal(robust_sigma(x), slow_sigma(x))
    x[2, 2, 5, 5] = float("nan")  # NaN pixels are left out of that channel only
    sigma = robust_sigma(x)
    valid = x[2, 2].flatten()[~torch.isnan(x[2, 2].flatten())]
    expected = (valid - valid.median()).abs().median() * MAD_TO_SIGMA
    assert sigma[2, 2] == expected
    assert torch.equal(sigma[:2], slow_sigma(x[:2]))
