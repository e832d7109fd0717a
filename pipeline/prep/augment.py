"""Seeded stamp augmentation in torch, on whole batches ``(N, C, H, W)`` float32 on any device: what to apply
and in which order.

The building blocks take their random draws from a ``torch.Generator`` on the tensor's device: geometric
ones (exact dihedral transforms, bilinear warps, exact flips and integer shifts) in
:mod:`pipeline.prep.geometric`, photometric ones (Gaussian and Poisson-like noise, log-uniform brightness,
colour perturbation along the principal components of the pixel colours) in :mod:`pipeline.prep.photometric`.

:class:`AugmentConfig` (a JSON-able dataclass; everything off by default) selects and parameterises them,
:func:`augment_preset` gives the ``morphology`` and ``realbogus`` presets, and :class:`Augmenter` applies a
config: geometric transforms first (the same one to every channel of a stamp, so template, science and
difference stay aligned), then photometric ones. The same config, seed and input give the same output.

Label preservation (:data:`LABEL_PRESERVING`):

- **Real-bogus** (``real``): every transform of the ``realbogus`` preset keeps the label. A point source
  stays a point source under the 8 dihedral symmetries, flips, rotations and small shifts (the candidate
  stays at the centre to within the shift); artefacts (bad columns, cosmic rays, subtraction dipoles) stay
  artefacts when rotated or mirrored. Added noise should stay small (the preset adds 25 % of the stamp's
  own sigma, +3 % in quadrature) so faint reals stay visible. Zoom changes the PSF width in pixels, a cue
  for real vs bogus, so it is only approximately label-preserving and off in the preset.
- **Morphology** (the 37 Galaxy Zoo 2 / Kaggle cumulative vote fractions): rotations and flips are exact
  symmetries of the answers. No question asks for an orientation, and a mirror image only reverses the
  winding direction of spiral arms (clockwise vs anticlockwise), which Galaxy Zoo 1 asked but the GZ2
  decision tree of the Kaggle challenge does not (Q10 asks arm tightness, Q11 arm count, both unchanged by a
  mirror), so flips preserve all 37 labels. Shifts of a few pixels keep the galaxy centred (Dieleman limited
  them for that reason) and are preserved. Zoom (1/1.3..1.3) preserves shape questions (roundness, bulge,
  bar, arms, edge-on) but not the apparent size, which voters may use implicitly; Dieleman found it helped,
  so it is treated as approximately label-preserving. Brightness/colour perturbation and noise are
  approximately preserving: they can hide or show faint features (Q1 smooth vs features, Q6 odd), so keep
  them small.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pipeline.prep.geometric import PADDING_MODES, affine_warp, dihedral, exact_source_index, permute_pixels
from pipeline.prep.photometric import (
    add_gaussian_noise,
    add_poisson_noise,
    color_perturb,
    fit_color_pca,
    log_uniform,
)
from pipeline.prep.preprocess import as_batch, robust_sigma

#: For each task, how each augmentation relates to the labels ("exact", "approximate"); see module docstring.
LABEL_PRESERVING: dict[str, dict[str, str]] = {
    "realbogus": {
        "dihedral": "exact",
        "flip": "exact",
        "rotate": "exact",
        "shift": "exact (small shifts keep the candidate centred)",
        "zoom": "approximate (changes the PSF width in pixels)",
        "noise": "exact for small noise",
        "poisson": "exact for small noise",
        "brightness": "exact",
        "color_pca": "approximate",
    },
    "morphology": {
        "dihedral": "exact",
        "flip": "exact (GZ2 answers do not encode spiral handedness)",
        "rotate": "exact",
        "shift": "exact for a few pixels",
        "zoom": "approximate (shape answers unchanged, apparent size changes)",
        "noise": "approximate (can hide faint features)",
        "poisson": "approximate (can hide faint features)",
        "brightness": "approximate",
        "color_pca": "approximate",
    },
}


# ----------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations to apply and how; every one is off by default. JSON-able (:meth:`to_json`).

    Attributes:
        dihedral: a random exact element of the 8 symmetries of the square per stamp.
        flip: random mirrors left-right and up-down, each with probability 0.5.
        rotate: rotation by an angle uniform in ``rotation_range_deg`` (bilinear).
        rotation_range_deg: degrees.
        shift_px: shifts uniform in ``[-shift_px, shift_px]`` pixels along x and y (0: off).
        integer_shift: draw whole-pixel shifts and apply them exactly (only when no rotation or zoom).
        zoom_range: ``(lo, hi)`` magnification, log-uniform; ``(1, 1)`` is off.
        padding_mode: fill for pixels from outside the stamp: ``zeros``, ``border`` or ``reflection``.
        noise_level: Gaussian noise of this multiple of each stamp channel's robust sigma (0: off); the sigma
            is measured on the input stamp, before any interpolation.
        poisson_gain: Poisson-like noise with ``gain`` counts per unit (0: off).
        brightness_range: ``(lo, hi)`` multiplicative factor per stamp, log-uniform; ``(1, 1)`` is off.
        color_pca_sigma: scale of Krizhevsky colour perturbation (0: off; Dieleman 0.5).
        color_pca_components: how many principal components to perturb along (None: all; Dieleman's code: 1).
        color_pca_eigvals, color_pca_eigvecs: fitted PCA (:func:`fit_color_pca`) as lists; when None the
            PCA of each batch is used.
        clip_range: clip the result to ``(lo, hi)`` (Dieleman clipped to [0, 1]); None: no clipping.
    """

    dihedral: bool = False
    flip: bool = False
    rotate: bool = False
    rotation_range_deg: tuple[float, float] = (0.0, 360.0)
    shift_px: float = 0.0
    integer_shift: bool = False
    zoom_range: tuple[float, float] = (1.0, 1.0)
    padding_mode: str = "reflection"
    noise_level: float = 0.0
    poisson_gain: float = 0.0
    brightness_range: tuple[float, float] = (1.0, 1.0)
    color_pca_sigma: float = 0.0
    color_pca_components: int | None = None
    color_pca_eigvals: tuple[float, ...] | None = None
    color_pca_eigvecs: tuple[tuple[float, ...], ...] | None = None
    clip_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {self.padding_mode!r}")
        for name in ("zoom_range", "brightness_range"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must satisfy 0 < lo <= hi, got {(lo, hi)}")
        if self.shift_px < 0 or self.noise_level < 0 or self.poisson_gain < 0 or self.color_pca_sigma < 0:
            raise ValueError("shift_px, noise_level, poisson_gain and color_pca_sigma must be >= 0")

    @property
    def interpolating(self) -> bool:
        """True when a bilinear warp is needed (rotation, zoom, or non-integer shifts)."""
        zoom = tuple(self.zoom_range) != (1.0, 1.0)
        return self.rotate or zoom or (self.shift_px > 0 and not self.integer_shift)

    @property
    def enabled(self) -> list[str]:
        """Names of the augmentations this config turns on, in the order they are applied."""
        on = {
            "dihedral": self.dihedral,
            "flip": self.flip,
            "rotate": self.rotate,
            "zoom": tuple(self.zoom_range) != (1.0, 1.0),
            "shift": self.shift_px > 0,
            "brightness": tuple(self.brightness_range) != (1.0, 1.0),
            "color_pca": self.color_pca_sigma > 0,
            "noise": self.noise_level > 0,
            "poisson": self.poisson_gain > 0,
        }
        return [name for name, flag in on.items() if flag]

    def with_color_pca(self, eigvals: Tensor, eigvecs: Tensor) -> AugmentConfig:
        """A copy holding a fitted colour PCA (from :func:`fit_color_pca`)."""
        return replace(
            self,
            color_pca_eigvals=tuple(float(v) for v in eigvals.tolist()),
            color_pca_eigvecs=tuple(tuple(float(v) for v in row) for row in eigvecs.tolist()),
        )

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise, lists become tuples."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown augmentation settings {unknown}; known: {sorted(known)}")

        def tup(value: Any) -> Any:
            return tuple(tup(v) for v in value) if isinstance(value, (list, tuple)) else value

        return cls(**{key: tup(value) for key, value in data.items()})

    @classmethod
    def from_json(cls, text: str) -> AugmentConfig:
        return cls.from_dict(json.loads(text))


#: Preset settings. ``morphology``: Dieleman et al. 2015 (rotation 0-360, shifts, zoom 1/1.3..1.3
#: log-uniform, flips, colour perturbation sigma 0.5). Their +-4 px shifts are in the 424-px frame, which is
#: downsampled 3x, so +-4/3 px on the 69x69 input this preset is for (override ``shift_px`` for other frames).
#: ``realbogus``: the exact symmetries (dihedral), whole-pixel shifts of up to 2 px and Gaussian noise of 25 %
#: of each stamp's own sigma. ``none``: nothing.
AUGMENT_PRESETS: dict[str, dict[str, Any]] = {
    "none": {},
    "morphology": {
        "rotate": True,
        "rotation_range_deg": (0.0, 360.0),
        "shift_px": 4.0 / 3.0,
        "zoom_range": (1.0 / 1.3, 1.3),
        "flip": True,
        "color_pca_sigma": 0.5,
        "padding_mode": "reflection",
    },
    "realbogus": {
        "dihedral": True,
        "shift_px": 2.0,
        "integer_shift": True,
        "noise_level": 0.25,
        "padding_mode": "reflection",
    },
}


def augment_preset(name: str, **overrides: Any) -> AugmentConfig:
    """The :class:`AugmentConfig` of a preset (:data:`AUGMENT_PRESETS`), with settings overridden by keyword."""
    if name not in AUGMENT_PRESETS:
        raise ValueError(f"unknown augmentation preset {name!r}; known: {sorted(AUGMENT_PRESETS)}")
    return AugmentConfig.from_dict({**AUGMENT_PRESETS[name], **overrides})


# --------------------------------------------------------------------------------------------- augmenter
class Augmenter:
    """Apply an :class:`AugmentConfig` to batches, reproducibly.

    Order: (noise sigma measured) -> dihedral -> warp (rotation, zoom, shift, flips in one bilinear
    resampling) or exact flips and integer shifts -> brightness -> colour -> Gaussian noise -> Poisson noise
    -> clip. The last ``n_aux`` channels (e.g. mask channels from :func:`pipeline.prep.preprocess.fill_masked`)
    get the geometric transforms only.

    Args:
        config: what to apply.
        seed: seed of the default generator (one per device, created on first use).
    """

    def __init__(self, config: AugmentConfig, seed: int = 0):
        self.config = config
        self.seed = int(seed)
        self._generators: dict[str, torch.Generator] = {}

    def generator(self, device: torch.device | str = "cpu") -> torch.Generator:
        """The augmenter's own generator on ``device``, seeded with ``seed`` when first used."""
        key = str(torch.device(device))
        if key not in self._generators:
            self._generators[key] = torch.Generator(device=key).manual_seed(self.seed)
        return self._generators[key]

    def __call__(
        self, x: Tensor | np.ndarray, generator: torch.Generator | None = None, n_aux: int = 0
    ) -> Tensor:
        """Augment a batch ``(N, C, H, W) -> (N, C, H, W)`` float32.

        Args:
            x: stamps on any device.
            generator: random source on ``x.device``; default the augmenter's own (advances on each call).
            n_aux: number of trailing auxiliary channels that only get geometric transforms.
        """
        t = as_batch(x)
        g = generator if generator is not None else self.generator(t.device)
        n_img = t.shape[1] - n_aux
        sigma = robust_sigma(t[:, :n_img]) if self.config.noise_level > 0 else None
        t = self._geometric(t, g)
        return self._photometric(t, g, n_img, sigma)

    def _geometric(self, t: Tensor, g: torch.Generator) -> Tensor:
        """Dihedral, then one bilinear warp or the exact flips and integer shift (one gather for all)."""
        cfg = self.config
        n, dev = t.shape[0], t.device
        k = torch.randint(0, 8, (n,), generator=g, device=dev) if cfg.dihedral else None
        if cfg.interpolating:
            if k is not None:
                t = dihedral(t, k)
            lo, hi = cfg.rotation_range_deg
            angle = lo + (hi - lo) * torch.rand(n, generator=g, device=dev) if cfg.rotate else None
            zoom = log_uniform(n, *cfg.zoom_range, generator=g, device=dev)
            shift = (torch.rand(n, 2, generator=g, device=dev) * 2 - 1) * cfg.shift_px
            flips = torch.rand(2, n, generator=g, device=dev) < 0.5 if cfg.flip else (None, None)
            return affine_warp(t, angle, shift, zoom, flips[0], flips[1], cfg.padding_mode)
        # The same draws, in the same order, as dihedral -> random_flips -> integer_shift one by one.
        flips = torch.rand(2, n, generator=g, device=dev) < 0.5 if cfg.flip else (None, None)
        shift = None
        if cfg.shift_px > 0:
            s = math.floor(cfg.shift_px)
            d = torch.randint(-s, s + 1, (2, n), generator=g, device=dev)
            shift = (d[0], d[1])
        if k is None and flips[0] is None and shift is None:
            return t
        h, w = t.shape[-2:]
        index, inside = exact_source_index(n, h, w, dev, k, flips[0], flips[1], shift, cfg.padding_mode)
        return permute_pixels(t, index, inside)

    def _photometric(self, t: Tensor, g: torch.Generator, n_img: int, sigma: Tensor | None) -> Tensor:
        """Brightness, colour, Gaussian and Poisson noise and clipping of the first ``n_img`` channels."""
        cfg = self.config
        n, dev = t.shape[0], t.device
        img = t[:, :n_img]
        if tuple(cfg.brightness_range) != (1.0, 1.0):
            img = img * log_uniform(n, *cfg.brightness_range, generator=g, device=dev)[:, None, None, None]
        if cfg.color_pca_sigma > 0:
            vals, vecs = self._color_pca(img)
            img = color_perturb(img, vals, vecs, cfg.color_pca_sigma, g)
        if cfg.noise_level > 0:
            img = add_gaussian_noise(img, cfg.noise_level, g, sigma)
        if cfg.poisson_gain > 0:
            img = add_poisson_noise(img, cfg.poisson_gain, g)
        if cfg.clip_range is not None:
            img = img.clamp(*cfg.clip_range)
        return img if n_img == t.shape[1] else torch.cat([img, t[:, n_img:]], dim=1)

    def _color_pca(self, img: Tensor) -> tuple[Tensor, Tensor]:
        cfg = self.config
        if cfg.color_pca_eigvals is not None and cfg.color_pca_eigvecs is not None:
            vals = torch.tensor(cfg.color_pca_eigvals, dtype=torch.float32)
            vecs = torch.tensor(cfg.color_pca_eigvecs, dtype=torch.float32)
        else:
            vals, vecs = fit_color_pca(img)
        k = cfg.color_pca_components or vals.shape[0]
        return vals[:k], vecs[:, :k]


def make_augmenter(augment: AugmentConfig | str | dict | None, seed: int = 0) -> Augmenter | None:
    """An :class:`Augmenter` from a config, a preset name or a dict; None or ``"none"`` gives None."""
    if augment is None or augment == "none":
        return None
    if isinstance(augment, str):
        augment = augment_preset(augment)
    elif isinstance(augment, dict):
        augment = AugmentConfig.from_dict(augment)
    return Augmenter(augment, seed) if augment.enabled else None


def as_generator(seed: int | Sequence[int], device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator seeded from an int or a sequence of ints (e.g. ``(seed, epoch, batch)``)."""
    entropy = [int(seed)] if isinstance(seed, (int, np.integer)) else [int(s) for s in seed]
    state = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
    return torch.Generator(device=device).manual_seed(int(state[0]) << 32 | int(state[1]))
